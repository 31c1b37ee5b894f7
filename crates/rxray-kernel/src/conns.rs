//! TCP connections: the `tp_btf` programs of bpf/kernel.bpf.c on `inet_sock_set_state`,
//! `tcp_retransmit_skb`, `tcp_receive_reset`, `tcp_send_reset` and `tcp_probe`, filtered to one
//! network namespace; a record per socket in an LRU hash, and an event ring with one event per
//! state change.
use crate::{abi, classify_load_error, KernelError, KERNEL_OBJ};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    Ebpf, EbpfLoader,
};

/// (program, tracepoint, required): `tcp_probe` only refines RTT min/max and may be missing.
const PROGRAMS: &[(&str, &str, bool)] = &[
    ("rxray_sock_set_state", "inet_sock_set_state", true),
    ("rxray_tcp_retransmit", "tcp_retransmit_skb", true),
    ("rxray_tcp_receive_reset", "tcp_receive_reset", true),
    ("rxray_tcp_send_reset", "tcp_send_reset", true),
    ("rxray_tcp_probe", "tcp_probe", false),
    ("rxray_sock_recv_length", "sock_recv_length", false),
];

#[derive(Clone, Debug)]
pub struct ConnsOptions {
    /// Ring-buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Only sockets in the network namespace with this inode; `None`: this process's namespace.
    pub netns_ino: Option<u32>,
}

impl Default for ConnsOptions {
    fn default() -> Self {
        ConnsOptions { ring_bytes: 1 << 20, netns_ino: None }
    }
}

/// Counters summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnTotals {
    /// Sockets that entered the map.
    pub new: u64,
    pub events: u64,
    /// Events the ring had no room for.
    pub lost: u64,
    /// Sockets the map could not take.
    pub insert_failed: u64,
    /// State changes of sockets first seen after their handshake (older than rxray, or evicted).
    pub untracked: u64,
    /// Resets sent with no tracked socket (to closed ports, from TIME_WAIT, ...).
    pub rst_tx_nosock: u64,
    /// Records completed (state CLOSE).
    pub closed: u64,
}

pub struct Conns {
    // Field order is drop order: the ring, then the programs (detaching their links).
    ring: RingBuf<MapData>,
    ebpf: Ebpf,
    /// Whether tcp_probe is attached (RTT min/max sampled per ACK, not only at state changes).
    pub probe: bool,
    /// Whether sock_recv_length is attached (the reading process of each connection).
    pub readers: bool,
}

impl Conns {
    /// Loads the programs, writes the namespace filter and attaches them.
    pub fn attach(opts: &ConnsOptions) -> Result<Self, KernelError> {
        crate::check_ring_size(opts.ring_bytes as u64).map_err(KernelError::Load)?;
        let btf = crate::kernel_btf("conns")?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries("rxray_conn_events", opts.ring_bytes)
            .load(KERNEL_OBJ)
            .map_err(classify_load_error)?;
        let netns_ino = match opts.netns_ino {
            Some(i) => i,
            None => crate::drops::current_netns_ino()?,
        };
        {
            let map = ebpf.map_mut("rxray_conn_config").ok_or(KernelError::Map {
                map: "rxray_conn_config",
                detail: "missing from the object".into(),
            })?;
            let mut arr: Array<&mut MapData, abi::ConnConfig> = Array::try_from(map)
                .map_err(|e| KernelError::Map { map: "rxray_conn_config", detail: e.to_string() })?;
            arr.set(0, abi::ConnConfig { netns_ino, flags: 0 }, 0)
                .map_err(|e| KernelError::Map { map: "rxray_conn_config", detail: e.to_string() })?;
        }
        let mut probe = false;
        let mut readers = false;
        for (name, tp, required) in PROGRAMS {
            let res = crate::attach_tp(&mut ebpf, &btf, name, tp);
            match res {
                Ok(()) => {
                    if *tp == "tcp_probe" {
                        probe = true;
                    }
                    if *tp == "sock_recv_length" {
                        readers = true;
                    }
                }
                Err(e) if *required => return Err(e),
                Err(_) => {}
            }
        }
        let ring_map = ebpf
            .take_map("rxray_conn_events")
            .ok_or(KernelError::Map { map: "rxray_conn_events", detail: "missing from the object".into() })?;
        let ring = RingBuf::try_from(ring_map)
            .map_err(|e| KernelError::Map { map: "rxray_conn_events", detail: e.to_string() })?;
        Ok(Conns { ring, ebpf, probe, readers })
    }

    pub fn ring(&mut self) -> &mut RingBuf<MapData> {
        &mut self.ring
    }

    /// The records of the sockets tracked now (not yet closed).
    pub fn live(&self) -> Result<Vec<abi::Conn>, KernelError> {
        let map = self.ebpf.map("rxray_conns").ok_or(KernelError::Map { map: "rxray_conns", detail: "missing".into() })?;
        let h: HashMap<&MapData, u64, abi::Conn> =
            HashMap::try_from(map).map_err(|e| KernelError::Map { map: "rxray_conns", detail: e.to_string() })?;
        // Entries can vanish between listing a key and reading it (a close): skip those.
        Ok(h.iter().filter_map(|r| r.ok()).map(|(_, v)| v).collect())
    }

    pub fn totals(&self) -> Result<ConnTotals, KernelError> {
        let err = |map: &'static str| move |e: aya::maps::MapError| KernelError::Map { map, detail: e.to_string() };
        let map = self
            .ebpf
            .map("rxray_conn_stats")
            .ok_or(KernelError::Map { map: "rxray_conn_stats", detail: "missing".into() })?;
        let arr: PerCpuArray<&MapData, abi::ConnStats> = PerCpuArray::try_from(map).map_err(err("rxray_conn_stats"))?;
        let mut c = [0u64; abi::CC_COUNT];
        for s in arr.get(&0, 0).map_err(err("rxray_conn_stats"))?.iter() {
            for (acc, v) in c.iter_mut().zip(s.c.iter()) {
                *acc += v;
            }
        }
        Ok(ConnTotals {
            new: c[abi::CC_NEW],
            events: c[abi::CC_EVENTS],
            lost: c[abi::CC_LOST],
            insert_failed: c[abi::CC_INSERT_FAIL],
            untracked: c[abi::CC_UNTRACKED],
            rst_tx_nosock: c[abi::CC_RST_TX_NOSOCK],
            closed: c[abi::CC_CLOSED],
        })
    }
}
