//! rxray's engine: plain, deterministic Rust over events (no I/O, no threads, no clock).
//! Sources (kernel, capture files) produce `event::Packet`; outputs consume what the engine derives.
/// The packet event lives with the dissector that produces it (engine → wire, as DESIGN.md draws).
pub use rxray_wire::event;
pub mod flows;
pub mod analysis;
mod flow_index;
pub mod conv;
pub mod filter;
pub mod firewall;
pub mod cidr;
pub mod alert;
pub mod detect;
pub mod inspect;
pub mod inspect_http;
pub mod signatures;
pub mod latency;
pub mod recorder;
pub mod source;
pub mod time;
pub mod os;
pub mod conns;
pub mod context;
pub mod http;
