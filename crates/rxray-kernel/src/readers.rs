//! Who read each TCP or UDP socket of a network namespace: the `sock_recv_length` program of
//! bpf/kernel.bpf.c with RXRAY_CONN_CFG_READERS, and the lookup that joins an incoming packet's
//! 5-tuple (remote → local) with the socket that received it.
use crate::{abi, attach_tp, classify_load_error, kernel_btf, KernelError, KERNEL_OBJ};
use aya::{
    maps::{Array, HashMap, MapData},
    Ebpf, EbpfLoader,
};
use std::net::{IpAddr, Ipv6Addr};

/// The process that read a socket, as the kernel recorded it.
pub use rxray_engine::context::{ReaderInfo, ReaderTable};

/// The readers map's entries decoded into the engine's table.
pub fn table_from_entries(entries: impl IntoIterator<Item = (abi::ReaderKey, abi::Reader)>) -> ReaderTable {
    ReaderTable::from_sockets(entries.into_iter().map(|(k, v)| {
        let info = ReaderInfo {
            pid: v.tgid,
            comm: crate::decode::comm_str(&v.comm),
            cgroup_id: v.cgroup_id,
            bytes: v.bytes,
            reads: v.reads,
        };
        let ip = |b: &[u8; 16]| crate::decode::ip_by_family(k.family, b).unwrap_or(IpAddr::V6(Ipv6Addr::from(*b)));
        ((k.proto, ip(&k.laddr), k.lport, ip(&k.raddr), k.rport), info)
    }))
}

pub struct Readers {
    ebpf: Ebpf,
}

impl Readers {
    /// Loads the tracing object (its rings at their smallest: nothing else is attached) and
    /// attaches `sock_recv_length` for the namespace with inode `netns_ino` (`None`: this one).
    pub fn attach(netns_ino: Option<u32>) -> Result<Self, KernelError> {
        let btf = kernel_btf("process attribution")?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries("rxray_drops", 4096)
            .map_max_entries("rxray_conn_events", 4096)
            .load(KERNEL_OBJ)
            .map_err(classify_load_error)?;
        let netns_ino = match netns_ino {
            Some(i) => i,
            None => crate::drops::current_netns_ino()?,
        };
        {
            let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_conn_config", detail: e.to_string() };
            let map = ebpf
                .map_mut("rxray_conn_config")
                .ok_or(KernelError::Map { map: "rxray_conn_config", detail: "missing from the object".into() })?;
            let mut arr: Array<&mut MapData, abi::ConnConfig> = Array::try_from(map).map_err(err)?;
            arr.set(0, abi::ConnConfig { netns_ino, flags: abi::CONN_CFG_READERS }, 0).map_err(err)?;
        }
        attach_tp(&mut ebpf, &btf, "rxray_sock_recv_length", "sock_recv_length")?;
        Ok(Readers { ebpf })
    }

    /// The readers map now.
    pub fn table(&self) -> Result<ReaderTable, KernelError> {
        let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_readers", detail: e.to_string() };
        let map = self.ebpf.map("rxray_readers").ok_or(KernelError::Map { map: "rxray_readers", detail: "missing".into() })?;
        let h: HashMap<&MapData, abi::ReaderKey, abi::Reader> = HashMap::try_from(map).map_err(err)?;
        Ok(table_from_entries(h.iter().filter_map(|r| r.ok())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn entry(proto: u8, l: [u8; 4], lport: u16, r: [u8; 4], rport: u16, pid: u32) -> (abi::ReaderKey, abi::Reader) {
        let mut k = abi::ReaderKey { proto, family: 2, lport, rport, ..Default::default() };
        k.laddr[..4].copy_from_slice(&l);
        k.raddr[..4].copy_from_slice(&r);
        (k, abi::Reader { tgid: pid, ..Default::default() })
    }

    #[test]
    fn connected_sockets_win_and_unconnected_udp_falls_back_to_the_bound_address() {
        let t = table_from_entries([
            entry(6, [10, 0, 0, 2], 80, [10, 0, 0, 1], 4000, 1),
            entry(17, [10, 0, 0, 2], 53, [0; 4], 0, 2),
            entry(17, [0; 4], 123, [0; 4], 0, 3),
            entry(17, [10, 0, 0, 2], 53, [10, 0, 0, 9], 999, 4),
        ]);
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.lookup(6, a("10.0.0.1"), 4000, a("10.0.0.2"), 80).map(|r| r.pid), Some(1));
        assert_eq!(t.lookup(6, a("10.0.0.1"), 4001, a("10.0.0.2"), 80), None, "TCP: the connection only");
        assert_eq!(t.lookup(17, a("10.0.0.1"), 5000, a("10.0.0.2"), 53).map(|r| r.pid), Some(2));
        assert_eq!(t.lookup(17, a("10.0.0.9"), 999, a("10.0.0.2"), 53).map(|r| r.pid), Some(4));
        assert_eq!(t.lookup(17, a("10.0.0.1"), 5000, a("10.0.0.2"), 123).map(|r| r.pid), Some(3));
        assert_eq!(t.lookup(17, a("10.0.0.1"), 5000, a("10.0.0.2"), 124), None);
    }

    #[test]
    fn v4_mapped_sockets_join_ipv4_packets() {
        let mut k = abi::ReaderKey { proto: 6, family: 10, lport: 80, rport: 4000, ..Default::default() };
        k.laddr = Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped().octets();
        k.raddr = Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().octets();
        let t = table_from_entries([(k, abi::Reader { tgid: 7, ..Default::default() })]);
        let got = t.lookup(6, "10.0.0.1".parse().unwrap(), 4000, "10.0.0.2".parse().unwrap(), 80);
        assert_eq!(got.map(|r| r.pid), Some(7));
    }
}
