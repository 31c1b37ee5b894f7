//! Connections as rxray prints them (`rxray conns`): the kernel's records joined with the sockets
//! that were open before rxray started, and with the reading process's exe and cgroup (through `Os`).
use crate::os::{Os, TcpSocket};
use crate::source::{ConnSnapshot, Connection};
use serde::Serialize;
use std::collections::HashSet;
use std::net::IpAddr;

/// Kernel TCP state names (include/net/tcp_states.h).
pub fn state_name(s: u8) -> &'static str {
    match s {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        13 => "BOUND_INACTIVE",
        _ => "UNKNOWN",
    }
}

/// One connection as printed.
#[derive(Serialize, schemars::JsonSchema, Clone, Debug)]
pub struct ConnRecord {
    /// "closed" (the record is final) or "live".
    pub status: &'static str,
    pub ts_ns: u64,
    pub local: String,
    pub remote: String,
    pub local_addr: Option<IpAddr>,
    pub local_port: u16,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: u16,
    pub state: &'static str,
    /// States in the order entered (up to 16; later ones replace the last).
    pub states: Vec<&'static str>,
    /// Accepted here (SYN_RECV), not connected from here.
    pub passive: bool,
    /// First seen after its handshake (older than rxray, or evicted from the map).
    pub late: bool,
    /// Existed before rxray started (listed in /proc/net/tcp{,6} then): its start time is unknown
    /// (age_ms and handshake_ms are null) and its counters cover only what followed the first
    /// state change rxray saw (none, while it has not changed state).
    pub seeded: bool,
    /// Since the first state change seen; null for a seeded connection.
    pub age_ms: Option<f64>,
    /// SYN_SENT/SYN_RECV → ESTABLISHED. For an accepted socket this starts when the kernel
    /// created it from the handshake's last ACK, so it is short; its srtt holds the SYN-ACK RTT.
    pub handshake_ms: Option<f64>,
    /// Payload bytes received (tp->bytes_received less a received FIN).
    pub bytes_rx: u64,
    /// Payload bytes sent once (tp->bytes_sent less tp->bytes_retrans).
    pub bytes_tx: u64,
    pub bytes_received: u64,
    pub bytes_acked: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    /// Retransmitted segments seen (tcp_retransmit_skb).
    pub retransmits: u32,
    pub total_retrans: u32,
    pub rst_rx: u16,
    pub rst_tx: u16,
    /// Who reset the connection: "peer", "local", "both", or null.
    pub reset_by: Option<&'static str>,
    pub srtt_us: u32,
    pub rttvar_us: u32,
    pub min_rtt_us: u32,
    pub srtt_min_us: u32,
    pub srtt_max_us: u32,
    /// The process that last read the connection's bytes (sock_recv_length): its tgid, or null
    /// when nothing was read (or the kernel has no sock_recv_length tracepoint).
    pub pid: Option<u32>,
    /// Its comm as the kernel had it then (the reading thread's name).
    pub comm: Option<String>,
    /// readlink /proc/<pid>/exe when the record is printed; null when the process is gone.
    pub exe: Option<String>,
    /// Its cgroup v2 id (the cgroup directory's inode number).
    pub cgroup_id: Option<u64>,
    /// Its cgroup v2 path relative to the cgroup2 mount, as in /proc/<pid>/cgroup ("/" is the root);
    /// null when the cgroup is gone or no cgroup2 is mounted.
    pub cgroup: Option<String>,
    /// Bytes that process received (positive recvmsg returns, MSG_PEEK excluded).
    pub read_bytes: u64,
    /// Times the reading process changed after the first.
    pub reader_changes: u32,
}

pub fn endpoint(a: Option<IpAddr>, port: u16) -> String {
    match a {
        Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        Some(a) => format!("{a}:{port}"),
        None => format!("?:{port}"),
    }
}

/// The printed record of a connection at `ts_ns` ("closed": final, its age ends at its last change).
pub fn record(c: &Connection, ts_ns: u64, status: &'static str) -> ConnRecord {
    let local_addr = c.local;
    let remote_addr = c.remote;
    let fin = u64::from(c.fin_rx);
    let reset_by = match (c.rst_rx > 0, c.rst_tx > 0) {
        (true, true) => Some("both"),
        (true, false) => Some("peer"),
        (false, true) => Some("local"),
        _ => None,
    };
    let end = if status == "closed" { c.last_ns.unwrap_or(0) } else { ts_ns };
    let reader = c.reader.as_ref();
    ConnRecord {
        status,
        ts_ns,
        local: endpoint(local_addr, c.local_port),
        remote: endpoint(remote_addr, c.remote_port),
        local_addr,
        local_port: c.local_port,
        remote_addr,
        remote_port: c.remote_port,
        state: state_name(c.state),
        states: c.path.iter().map(|s| state_name(*s)).collect(),
        passive: c.passive,
        late: c.late,
        seeded: false,
        age_ms: Some(end.saturating_sub(c.first_ns.unwrap_or(0)) as f64 / 1e6),
        handshake_ms: match (c.syn_ns, c.established_ns) {
            (Some(syn), Some(est)) if est >= syn => Some((est - syn) as f64 / 1e6),
            _ => None,
        },
        bytes_rx: c.bytes_received.saturating_sub(fin),
        bytes_tx: c.bytes_sent.saturating_sub(c.bytes_retrans),
        bytes_received: c.bytes_received,
        bytes_acked: c.bytes_acked,
        bytes_sent: c.bytes_sent,
        bytes_retrans: c.bytes_retrans,
        retransmits: c.retransmits,
        total_retrans: c.total_retrans,
        rst_rx: c.rst_rx,
        rst_tx: c.rst_tx,
        reset_by,
        srtt_us: c.srtt_us,
        rttvar_us: c.rttvar_us,
        min_rtt_us: c.min_rtt_us,
        srtt_min_us: c.srtt_min_us,
        srtt_max_us: c.srtt_max_us,
        pid: reader.map(|r| r.pid),
        comm: reader.map(|r| r.comm.clone()),
        exe: None,
        cgroup_id: reader.map(|r| r.cgroup_id),
        cgroup: None,
        read_bytes: c.reader_bytes,
        reader_changes: c.reader_changes,
    }
}

/// A connection's (local, local port, remote, remote port).
pub type Tuple = (IpAddr, u16, IpAddr, u16);

pub fn tuple_of(r: &ConnRecord) -> Option<Tuple> {
    Some((r.local_addr?, r.local_port, r.remote_addr?, r.remote_port))
}

/// The connections that existed when rxray started (by tuple).
pub struct Seeds(HashSet<Tuple>);

impl Seeds {
    pub fn new(now: &[TcpSocket]) -> Self {
        Seeds(now.iter().map(|t| (t.local, t.local_port, t.remote, t.remote_port)).collect())
    }

    /// Marks a kernel record first seen late whose tuple was there at the start.
    pub fn mark(&self, r: &mut ConnRecord) {
        if r.late && tuple_of(r).is_some_and(|t| self.0.contains(&t)) {
            r.seeded = true;
            r.age_ms = None;
            r.handshake_ms = None;
        }
    }

    /// Records for the seeded connections in `now` that the kernel map does not hold (no state
    /// change seen yet).
    pub fn untracked(&self, now: &[TcpSocket], tracked: &HashSet<Tuple>, ts_ns: u64) -> Vec<ConnRecord> {
        now.iter()
            .filter(|t| {
                let k = (t.local, t.local_port, t.remote, t.remote_port);
                self.0.contains(&k) && !tracked.contains(&k)
            })
            .map(|t| seeded_record(t, ts_ns))
            .collect()
    }
}

fn seeded_record(t: &TcpSocket, ts_ns: u64) -> ConnRecord {
    let state = state_name(t.state);
    ConnRecord {
        status: "live",
        ts_ns,
        local: endpoint(Some(t.local), t.local_port),
        remote: endpoint(Some(t.remote), t.remote_port),
        local_addr: Some(t.local),
        local_port: t.local_port,
        remote_addr: Some(t.remote),
        remote_port: t.remote_port,
        state,
        states: vec![state],
        passive: false,
        late: true,
        seeded: true,
        age_ms: None,
        handshake_ms: None,
        bytes_rx: 0,
        bytes_tx: 0,
        bytes_received: 0,
        bytes_acked: 0,
        bytes_sent: 0,
        bytes_retrans: 0,
        retransmits: 0,
        total_retrans: 0,
        rst_rx: 0,
        rst_tx: 0,
        reset_by: None,
        srtt_us: 0,
        rttvar_us: 0,
        min_rtt_us: 0,
        srtt_min_us: 0,
        srtt_max_us: 0,
        pid: None,
        comm: None,
        exe: None,
        cgroup_id: None,
        cgroup: None,
        read_bytes: 0,
        reader_changes: 0,
    }
}

/// Fills a record's process (exe) and cgroup path in from the OS.
pub fn fill(os: &mut dyn Os, r: &mut ConnRecord) {
    if let Some(pid) = r.pid {
        r.exe = os.exe_of(pid);
    }
    if let Some(id) = r.cgroup_id {
        r.cgroup = os.cgroup_path(id);
    }
}

/// The open connections at a snapshot: the kernel's, and those older than rxray (`seeds`) that
/// the OS still lists and the kernel has not seen change; each marked and filled in.
pub fn live_records(snap: &ConnSnapshot, seeds: &Seeds, os: &mut dyn Os) -> Vec<ConnRecord> {
    let mut recs: Vec<ConnRecord> = snap.conns.iter().map(|c| record(c, snap.ts_ns, "live")).collect();
    let tracked: HashSet<Tuple> = recs.iter().filter_map(tuple_of).collect();
    let now = os.tcp_sockets().unwrap_or_default();
    recs.extend(seeds.untracked(&now, &tracked, snap.ts_ns));
    for r in &mut recs {
        seeds.mark(r);
        fill(os, r);
    }
    recs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::FakeOs;
    use crate::source::ConnReader;

    #[test]
    fn a_closed_record_subtracts_the_fin_and_names_who_reset() {
        let c = Connection {
            local: Some("10.0.0.2".parse().unwrap()),
            local_port: 80,
            remote: Some("10.0.0.1".parse().unwrap()),
            remote_port: 40000,
            state: 7,
            path: vec![3, 1, 7],
            bytes_received: 101,
            bytes_sent: 60,
            bytes_retrans: 10,
            fin_rx: true,
            passive: true,
            first_ns: Some(1_000_000),
            syn_ns: Some(1_000_000),
            established_ns: Some(1_500_000),
            last_ns: Some(3_000_000),
            rst_rx: 1,
            ..Default::default()
        };
        let r = record(&c, 3_000_000, "closed");
        assert_eq!(r.local, "10.0.0.2:80");
        assert_eq!(r.remote, "10.0.0.1:40000");
        assert_eq!(r.states, vec!["SYN_RECV", "ESTABLISHED", "CLOSE"]);
        assert_eq!((r.bytes_rx, r.bytes_tx), (100, 50));
        assert_eq!(r.handshake_ms, Some(0.5));
        assert_eq!(r.age_ms, Some(2.0));
        assert!(!r.seeded);
        assert_eq!(r.reset_by, Some("peer"));
        assert!(r.passive);
        assert_eq!(r.pid, None);
    }

    #[test]
    fn the_reader_is_named() {
        let reader = ConnReader { pid: 42, comm: "python3".into(), cgroup_id: 7 };
        let c = Connection { reader: Some(reader), reader_bytes: 5, ..Default::default() };
        let r = record(&c, 0, "live");
        assert_eq!((r.pid, r.comm.as_deref(), r.cgroup_id, r.read_bytes), (Some(42), Some("python3"), Some(7), 5));
    }

    #[test]
    fn a_late_record_of_a_connection_older_than_rxray_is_seeded() {
        let t = TcpSocket {
            local: "10.0.0.2".parse().unwrap(),
            local_port: 80,
            remote: "10.0.0.1".parse().unwrap(),
            remote_port: 40000,
            state: 1,
            uid: 0,
            inode: 1,
        };
        let seeds = Seeds::new(std::slice::from_ref(&t));
        let mut c = Connection {
            local: Some("10.0.0.2".parse().unwrap()),
            local_port: 80,
            remote: Some("10.0.0.1".parse().unwrap()),
            remote_port: 40000,
            state: 7,
            late: true,
            ..Default::default()
        };
        let mut r = record(&c, 0, "closed");
        seeds.mark(&mut r);
        assert!(r.seeded && r.age_ms.is_none());
        // Tracked by the kernel: not listed twice; an unknown tuple is never seeded.
        let tracked: HashSet<Tuple> = [tuple_of(&r).unwrap()].into();
        assert!(seeds.untracked(std::slice::from_ref(&t), &tracked, 0).is_empty());
        let u = seeds.untracked(std::slice::from_ref(&t), &HashSet::new(), 0);
        assert_eq!((u.len(), u[0].state, u[0].seeded, u[0].age_ms), (1, "ESTABLISHED", true, None));
        c.remote_port = 40001;
        let mut other = record(&c, 0, "closed");
        seeds.mark(&mut other);
        assert!(!other.seeded);
    }
    #[test]
    fn a_live_snapshot_joins_the_kernel_the_older_sockets_and_the_process() {
        let old = TcpSocket {
            local: "10.0.0.2".parse().unwrap(),
            local_port: 22,
            remote: "10.0.0.9".parse().unwrap(),
            remote_port: 50000,
            state: 1,
            uid: 0,
            inode: 9,
        };
        let mut os = FakeOs { tcp: vec![old.clone()], ..Default::default() };
        os.exes.insert(42, "/usr/bin/python3".into());
        os.cgroups.insert(7, "/system.slice/x.service".into());
        let seeds = Seeds::new(std::slice::from_ref(&old));
        let reader = ConnReader { pid: 42, comm: "python3".into(), cgroup_id: 7 };
        let c = Connection {
            local: Some("10.0.0.2".parse().unwrap()),
            local_port: 80,
            remote: Some("10.0.0.1".parse().unwrap()),
            remote_port: 40000,
            state: 1,
            first_ns: Some(1_000),
            reader: Some(reader),
            ..Default::default()
        };
        let recs = live_records(&ConnSnapshot { ts_ns: 5_000, conns: vec![c] }, &seeds, &mut os);
        assert_eq!(recs.len(), 2, "the kernel's one, and the older one it has not seen change");
        assert_eq!((recs[0].local.as_str(), recs[0].age_ms, recs[0].seeded), ("10.0.0.2:80", Some(0.004), false));
        assert_eq!(recs[0].exe.as_deref(), Some("/usr/bin/python3"));
        assert_eq!(recs[0].cgroup.as_deref(), Some("/system.slice/x.service"));
        assert_eq!((recs[1].local.as_str(), recs[1].seeded, recs[1].age_ms, recs[1].state), ("10.0.0.2:22", true, None, "ESTABLISHED"));
        // Gone from the OS's list: no longer listed.
        os.tcp.clear();
        assert_eq!(live_records(&ConnSnapshot { ts_ns: 6_000, conns: vec![] }, &seeds, &mut os).len(), 0);
    }
}
