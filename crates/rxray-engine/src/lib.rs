//! rxray's engine: plain, deterministic Rust over events (no I/O, no threads, no clock).
//! Sources (kernel, capture files) produce `event::Packet`; outputs consume what the engine derives.
pub mod event;
pub mod flows;
pub mod analysis;
pub mod conv;
