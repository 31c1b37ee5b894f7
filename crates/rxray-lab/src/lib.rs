//! rxray-lab: the fixture that tests and demos run against.
//! It owns lab namespaces joined by veth (`Lab`), raw frame injection (`send_frames`), a packet
//! builder (`frames`) and a minimal pcap writer (`pcap`). Nothing here ever touches the root
//! namespace's links, routes or addresses.

pub mod frames;
mod lab;
pub mod pcap;
pub mod testing;
pub mod tmux;
mod send;

pub use lab::{kill_processes_in, processes_in, Lab, LabError, MAC_A, MAC_B};
pub use send::{send_frames, send_frames_paced};
