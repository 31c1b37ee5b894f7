//! Kernel context joined to flows and packets: the process (and its exe and cgroup, through `Os`)
//! that read each flow, and the drops per flow with the last reason; on the events the live
//! source yields (drops) and the readers table it reads.
use crate::event::Packet;
use crate::os::Os;
use crate::source::DropEvent;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap as Map};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A socket: (proto, local address, local port, remote address, remote port).
pub type Sock = (u8, IpAddr, u16, IpAddr, u16);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    pub pid: u32,
    pub comm: String,
    pub cgroup_id: u64,
    pub bytes: u64,
    pub reads: u64,
}

/// A socket's (proto, local, local port, remote, remote port); IPv4-mapped IPv6 reads as IPv4.



/// A snapshot of the readers map, indexed for joining packets to sockets.
#[derive(Clone, Debug, Default)]
pub struct ReaderTable {
    by_sock: Map<Sock, ReaderInfo>,
}

impl ReaderTable {
    /// The table of readers by socket: (proto, local, local port, remote, remote port).
    pub fn from_sockets(entries: impl IntoIterator<Item = (Sock, ReaderInfo)>) -> Self {
        ReaderTable { by_sock: entries.into_iter().collect() }
    }

    pub fn lookup(&self, proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Option<&ReaderInfo> {
        let any = |a: IpAddr| if a.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
        let tries = [
            (proto, dst, dport, src, sport),
            (proto, dst, dport, any(src), 0),
            (proto, any(dst), dport, any(src), 0),
            // An IPv6 socket bound to [::] also receives IPv4 (its remote is then v4-mapped: read as IPv4).
            (proto, IpAddr::V6(Ipv6Addr::UNSPECIFIED), dport, any(src), 0),
            (proto, any(dst), dport, IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
            (proto, IpAddr::V6(Ipv6Addr::UNSPECIFIED), dport, IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        ];
        if proto != 17 {
            // TCP: only the connection itself; a listener is never read.
            return self.by_sock.get(&tries[0]);
        }
        tries.iter().find_map(|k| self.by_sock.get(k))
    }

    pub fn len(&self) -> usize {
        self.by_sock.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sock.is_empty()
    }
}

/// The process that read a flow, as printed.
#[derive(Serialize, schemars::JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct ReaderOut {
    pub pid: u32,
    pub comm: String,
    /// readlink /proc/<pid>/exe; null when the process is gone.
    pub exe: Option<String>,
    pub cgroup_id: u64,
    /// The cgroup v2 path relative to the mount ("/" is the root); null when unknown.
    pub cgroup: Option<String>,
}

/// A flow's drops, as printed.
#[derive(Serialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct DropsOut {
    pub count: u64,
    /// The reason of the latest drop (the kernel's enum skb_drop_reason name).
    pub last_reason: Option<String>,
}

/// (proto, src, sport, dst, dport) of incoming packets.
type FlowTuple = (u8, IpAddr, u16, IpAddr, u16);

/// The joins: readers and drops to flows and packets.
#[derive(Default)]
pub struct FlowContext {
    table: ReaderTable,
    /// Drop-reason names by number (the kernel's BTF).
    reasons: BTreeMap<u64, String>,
    per_flow: Map<FlowTuple, (u64, u32)>,
    exes: Map<u32, Option<String>>,
}

impl FlowContext {
    pub fn new(reasons: BTreeMap<u64, String>) -> Self {
        FlowContext { reasons, ..Default::default() }
    }

    /// The readers table now (the kernel's map, read by the source).
    pub fn set_readers(&mut self, t: ReaderTable) {
        self.table = t;
    }

    pub fn readers(&self) -> &ReaderTable {
        &self.table
    }

    /// Counts a drop against its flow.
    pub fn on_drop(&mut self, e: &DropEvent) {
        let (Some(src), Some(dst)) = (e.src, e.dst) else { return };
        let slot = self.per_flow.entry((e.proto, src, e.sport, dst, e.dport)).or_default();
        slot.0 += 1;
        slot.1 = e.reason;
    }

    /// The process that read the flow from `src:sport` to `dst:dport`, if one has (its exe is
    /// asked of the OS once per pid).
    pub fn reader(&mut self, os: &mut dyn Os, proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Option<ReaderOut> {
        let r = self.table.lookup(proto, src, sport, dst, dport)?.clone();
        let exe = self.exes.entry(r.pid).or_insert_with(|| os.exe_of(r.pid)).clone();
        Some(ReaderOut { pid: r.pid, comm: r.comm, exe, cgroup_id: r.cgroup_id, cgroup: os.cgroup_path(r.cgroup_id) })
    }

    /// The reader of the socket an incoming packet was for (TCP and UDP only).
    pub fn reader_of(&mut self, os: &mut dyn Os, p: &Packet) -> Option<ReaderOut> {
        let ip = p.ip.as_ref()?;
        let (sport, dport) = match (&p.tcp, &p.udp) {
            (Some(t), _) if ip.proto == 6 => (t.sport, t.dport),
            (_, Some(u)) if ip.proto == 17 => (u.sport, u.dport),
            _ => return None,
        };
        self.reader(os, ip.proto, ip.src, sport, ip.dst, dport)
    }

    /// The flow's drops (count 0 when none).
    pub fn drops(&self, proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> DropsOut {
        match self.per_flow.get(&(proto, src, sport, dst, dport)) {
            Some((n, reason)) => DropsOut {
                count: *n,
                last_reason: Some(self.reasons.get(&u64::from(*reason)).cloned().unwrap_or_else(|| format!("reason_{reason}"))),
            },
            None => DropsOut::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::FakeOs;

    fn info(pid: u32) -> ReaderInfo {
        ReaderInfo { pid, comm: "nginx".into(), cgroup_id: 7, bytes: 0, reads: 0 }
    }

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_flow_gets_its_reader_with_exe_and_cgroup_and_its_drops_with_the_last_reason() {
        let mut os = FakeOs::default();
        os.exes.insert(42, "/usr/sbin/nginx".into());
        os.cgroups.insert(7, "/system.slice/nginx.service".into());
        let mut ctx = FlowContext::new([(2, "NO_SOCKET".to_string()), (5, "TCP_CSUM".to_string())].into());
        ctx.set_readers(ReaderTable::from_sockets([((6, a("10.0.0.2"), 80, a("10.0.0.1"), 4000), info(42))]));
        let r = ctx.reader(&mut os, 6, a("10.0.0.1"), 4000, a("10.0.0.2"), 80).expect("joined remote → local");
        assert_eq!((r.pid, r.exe.as_deref(), r.cgroup.as_deref()), (42, Some("/usr/sbin/nginx"), Some("/system.slice/nginx.service")));
        let lookups = os.lookups;
        ctx.reader(&mut os, 6, a("10.0.0.1"), 4000, a("10.0.0.2"), 80);
        assert_eq!(os.lookups, lookups + 1, "the exe is asked once per pid (the cgroup every time)");
        assert_eq!(ctx.reader(&mut os, 6, a("10.0.0.1"), 4001, a("10.0.0.2"), 80), None);
        let drop = |reason| DropEvent { proto: 6, src: Some(a("10.0.0.1")), sport: 4000, dst: Some(a("10.0.0.2")), dport: 80, reason, ..Default::default() };
        ctx.on_drop(&drop(2));
        ctx.on_drop(&drop(5));
        ctx.on_drop(&DropEvent { reason: 2, ..Default::default() }); // not IP: not a flow's
        let d = ctx.drops(6, a("10.0.0.1"), 4000, a("10.0.0.2"), 80);
        assert_eq!((d.count, d.last_reason.as_deref()), (2, Some("TCP_CSUM")));
        assert_eq!(ctx.drops(17, a("10.0.0.1"), 4000, a("10.0.0.2"), 80), DropsOut::default());
    }
}
