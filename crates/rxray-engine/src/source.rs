//! Sources: the one event type every source yields (the live kernel, capture files) and the trait
//! they share. Events are decoded and typed, times are Unix-epoch nanoseconds: no ABI bytes above here.
use crate::flows::FlowRecord;
use crate::latency::Histogram;
pub use rxray_wire::event::Packet;
use serde::Serialize;
use std::net::IpAddr;
use std::time::Duration;

/// Something a source says, in the order it happened (per ring; rings are read in turns).
#[derive(Debug)]
pub enum Event<'a> {
    /// A dissected packet (the kernel's per-packet event, or a capture file's record).
    Packet(&'a Packet),
    /// A whole frame as captured (capture ring, or a capture file's record when frames are asked for).
    Frame(Frame<'a>),
    /// A packet the kernel dropped.
    Drop(&'a DropEvent),
    /// A TCP connection changed state (`conn.state == TCP_CLOSE` when it is final).
    Conn(&'a ConnEvent),
    /// The connections open now (live sources, at the interval they were asked for).
    Conns(&'a ConnSnapshot),
    /// The kernel's flow table (live sources, at the interval they were asked for).
    Flows(&'a FlowSnapshot),
    /// The latency histograms (live sources, at the interval they were asked for).
    Latency(&'a LatencySnapshot),
    /// The time now, for what runs on event time when no event comes (live sources only).
    Tick(u64),
}

/// A whole frame, up to its snap length.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts_ns: u64,
    pub ifindex: u32,
    pub iface: &'a str,
    pub rx_queue: u32,
    /// Length on the wire; `data` may be shorter.
    pub orig_len: u32,
    /// How `data` starts (Ethernet from the kernel; a capture file's record says its own).
    pub linktype: rxray_wire::LinkType,
    pub data: &'a [u8],
}

/// A packet the kernel freed with a reason (tp_btf/kfree_skb).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropEvent {
    pub ts_ns: u64,
    pub ifindex: u32,
    /// The kernel's `enum skb_drop_reason` value.
    pub reason: u32,
    /// The dropping instruction's address (name it with kallsyms).
    pub location: u64,
    pub len: u32,
    /// Ethertype (skb->protocol).
    pub protocol: u16,
    pub ip_ver: u8,
    pub proto: u8,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
}

/// The kernel's TCP state for CLOSE (include/net/tcp_states.h).
pub const TCP_CLOSE: u8 = 7;

/// A TCP connection as the kernel's state changes left it. Times are Unix-epoch ns; `None` where
/// the kernel had not stamped them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    /// The socket's local end (this host).
    pub local: Option<IpAddr>,
    pub local_port: u16,
    pub remote: Option<IpAddr>,
    pub remote_port: u16,
    pub state: u8,
    /// States in the order entered (up to 16).
    pub path: Vec<u8>,
    /// Accepted here (SYN_RECV), not connected from here.
    pub passive: bool,
    /// First seen after its handshake (older than rxray, or evicted from the map).
    pub late: bool,
    /// A FIN was received (it counts in bytes_received).
    pub fin_rx: bool,
    pub first_ns: Option<u64>,
    pub syn_ns: Option<u64>,
    pub established_ns: Option<u64>,
    pub last_ns: Option<u64>,
    pub bytes_received: u64,
    pub bytes_acked: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub retransmits: u32,
    pub total_retrans: u32,
    pub srtt_us: u32,
    pub rttvar_us: u32,
    pub min_rtt_us: u32,
    pub srtt_min_us: u32,
    pub srtt_max_us: u32,
    pub rst_rx: u16,
    pub rst_tx: u16,
    /// The process that last read the connection's bytes, if one has.
    pub reader: Option<ConnReader>,
    /// Bytes the latest reader received.
    pub reader_bytes: u64,
    /// Times the reading process changed after the first.
    pub reader_changes: u32,
}

impl Connection {
    /// The connection as the detectors take it at `now_ns` (this host is the socket's local end):
    /// bytes sent once (acked, or sent less retransmitted), from its first change (or now) to now.
    pub fn summary(&self, now_ns: u64) -> Option<crate::detect::ConnSummary> {
        Some(crate::detect::ConnSummary {
            local: self.local?,
            local_port: self.local_port,
            remote: self.remote?,
            remote_port: self.remote_port,
            proto: 6,
            bytes_sent: self.bytes_acked.saturating_sub(1).max(self.bytes_sent.saturating_sub(self.bytes_retrans)),
            bytes_received: self.bytes_received,
            start_ns: self.first_ns.unwrap_or(now_ns),
            end_ns: now_ns.max(self.last_ns.unwrap_or(0)),
        })
    }
}

/// The process that read a connection (sock_recv_length).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnReader {
    pub pid: u32,
    /// Its comm as the kernel had it then (the reading thread's name).
    pub comm: String,
    /// Its cgroup v2 id (the cgroup directory's inode number).
    pub cgroup_id: u64,
}

/// A state change, with the connection after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnEvent {
    pub ts_ns: u64,
    pub conn: Connection,
}

/// The connections open at `ts_ns`.
#[derive(Clone, Debug, Default)]
pub struct ConnSnapshot {
    pub ts_ns: u64,
    pub conns: Vec<Connection>,
}

/// Packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

/// The kernel's flow table and its per-protocol and per-interface counters, read at `ts_ns`.
#[derive(Clone, Debug, Default)]
pub struct FlowSnapshot {
    pub ts_ns: u64,
    pub flows: Vec<FlowRecord>,
    /// Per protocol class, by name.
    pub protocols: Vec<(&'static str, Count)>,
    /// Per interface: (ifindex, its name, count).
    pub interfaces: Vec<(u32, String, Count)>,
}

/// One flow's or process's two delivery-latency distributions.
#[derive(Clone, Debug, Default)]
pub struct LatencyEntry {
    /// arrival → read.
    pub read: Histogram,
    /// arrival → queue (only packets whose queueing was seen).
    pub queue: Histogram,
    /// Process entries: the reader's comm as the kernel had it.
    pub comm: String,
    /// CLOCK_MONOTONIC of the latest read.
    pub last_ns: u64,
}

/// One incoming flow's latency: remote → local.
#[derive(Clone, Debug, Default)]
pub struct LatencyFlow {
    pub proto: u8,
    pub remote: Option<IpAddr>,
    pub remote_port: u16,
    pub local: Option<IpAddr>,
    pub local_port: u16,
    pub latency: LatencyEntry,
}

/// One reading process's latency.
#[derive(Clone, Debug, Default)]
pub struct LatencyProc {
    pub pid: u32,
    pub cgroup_id: u64,
    pub latency: LatencyEntry,
}

/// The latency histograms, per flow and per process.
#[derive(Clone, Debug, Default)]
pub struct LatencySnapshot {
    pub flows: Vec<LatencyFlow>,
    pub procs: Vec<LatencyProc>,
}

/// A source could not go on (an input's fault, named with where it is).
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct SourceError {
    pub what: String,
    /// Nothing more can be read (an input that cannot be opened); otherwise the source goes on
    /// with its next input (a damaged file: the records before the fault were yielded).
    pub fatal: bool,
}

impl SourceError {
    pub fn fatal(what: impl Into<String>) -> Self {
        SourceError { what: what.into(), fatal: true }
    }

    pub fn damaged(what: impl Into<String>) -> Self {
        SourceError { what: what.into(), fatal: false }
    }
}

/// What every source does: yield events one at a time. A live source never ends; a finite one
/// (captures) says so with `ended`.
pub trait Source {
    /// The next event ready now; `None` when none is (wait, then ask again) or the input has ended.
    /// An error ends one input (a damaged file); a finite source then goes on with the next.
    fn next_event(&mut self) -> Option<Result<Event<'_>, SourceError>>;
    /// Waits until an event may be ready, `timeout` at most (live sources).
    fn wait(&mut self, timeout: Duration) {
        let _ = timeout;
    }
    /// True once a finite source has yielded everything.
    fn ended(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_summary_counts_bytes_sent_once_and_spans_first_change_to_now() {
        let c = Connection {
            local: Some("10.0.0.2".parse().unwrap()),
            local_port: 40000,
            remote: Some("203.0.113.9".parse().unwrap()),
            remote_port: 443,
            bytes_sent: 5_000,
            bytes_retrans: 1_000,
            bytes_acked: 3_001,
            bytes_received: 77,
            first_ns: Some(100),
            last_ns: Some(900),
            ..Default::default()
        };
        let s = c.summary(500).unwrap();
        assert_eq!((s.bytes_sent, s.bytes_received, s.start_ns, s.end_ns), (4_000, 77, 100, 900));
        let acked_more = Connection { bytes_acked: 4_501, ..c.clone() };
        assert_eq!(acked_more.summary(1_000).unwrap().bytes_sent, 4_500, "acked less the SYN");
        let unstamped = Connection { first_ns: None, last_ns: None, ..c.clone() };
        assert_eq!(unstamped.summary(700).map(|s| (s.start_ns, s.end_ns)), Some((700, 700)));
        assert!(Connection { local: None, ..c }.summary(1).is_none(), "no address family: no summary");
    }
}
