//! rxray-io: capture files in and out: a streaming pcap/pcapng reader (and the capture source over
//! it) and pcapng/pcap writers. Also the one bounded reader for the text files rxray loads (`text`).
//! No packet parsing here (that is rxray-wire); records carry bytes, lengths, times and link types.
pub mod read;
pub mod source;
pub mod text;
pub mod write;

pub use source::CaptureSource;
pub use read::{CaptureReader, Format, Interface, ReadError, Record, TsResol};
pub use rxray_wire::LinkType;
pub use write::{PcapWriter, PcapngWriter};
