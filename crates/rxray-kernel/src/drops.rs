//! Packet drops: the `tp_btf/kfree_skb` program of bpf/kernel.bpf.c, filtered to one network
//! namespace (and optionally some interfaces), its event ring and its per-reason counters.
use crate::{abi, classify_load_error, KernelError, KERNEL_OBJ};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::BtfTracePoint,
    Btf, EbpfLoader, Ebpf,
};
use std::os::unix::fs::MetadataExt;

/// The tracepoint the drop program attaches to.
pub const TRACEPOINT: &str = "kfree_skb";

/// Per-reason counter slots; the last also counts every larger reason (the subsystem-encoded ones).
pub const REASON_SLOTS: usize = abi::DROP_REASONS;

#[derive(Clone, Debug)]
pub struct DropsOptions {
    /// Ring-buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Only drops in the network namespace with this inode; `None`: this process's namespace.
    pub netns_ino: Option<u32>,
    /// Only drops on these interfaces (ifindex); empty: every interface.
    pub ifindexes: Vec<u32>,
    /// Send one event per drop; `false`: only count per reason (the ring stays empty).
    pub events: bool,
}

impl Default for DropsOptions {
    fn default() -> Self {
        DropsOptions { ring_bytes: 1 << 20, netns_ino: None, ifindexes: Vec::new(), events: true }
    }
}

/// Counters summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropTotals {
    /// Drops that matched the namespace and interface filters.
    pub drops: u64,
    pub events: u64,
    /// Events the ring had no room for (their drops are still counted per reason).
    pub lost: u64,
    /// Drops with neither device nor socket, so no namespace to match (skipped).
    pub no_netns: u64,
    /// Per reason number (the last slot, `abi::DROP_REASONS - 1`, also holds every larger reason).
    pub by_reason: Vec<(u32, u64)>,
}

/// The network namespace inode of this process (`/proc/self/ns/net`).
pub fn current_netns_ino() -> Result<u32, KernelError> {
    Ok(std::fs::metadata("/proc/self/ns/net")?.ino() as u32)
}

pub struct Drops {
    // Field order is drop order: the ring, then the program (detaching its link).
    ring: RingBuf<MapData>,
    ebpf: Ebpf,
    config: abi::DropConfig,
}

impl Drops {
    /// Loads the program, writes its filters and attaches it to `tp_btf/kfree_skb`.
    pub fn attach(opts: &DropsOptions) -> Result<Self, KernelError> {
        crate::check_ring_size(opts.ring_bytes as u64).map_err(KernelError::Load)?;
        if opts.ifindexes.len() > abi::DROP_IFACES_MAX as usize {
            return Err(KernelError::Load(format!(
                "{} interfaces given; the drop filter holds at most {}",
                opts.ifindexes.len(),
                abi::DROP_IFACES_MAX
            )));
        }
        let btf = Btf::from_sys_fs().map_err(|e| {
            KernelError::Load(format!(
                "reading the kernel's BTF (/sys/kernel/btf/vmlinux): {e}; drops need a kernel built with CONFIG_DEBUG_INFO_BTF"
            ))
        })?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries("rxray_drops", opts.ring_bytes)
            .load(KERNEL_OBJ)
            .map_err(classify_load_error)?;
        let netns_ino = match opts.netns_ino {
            Some(i) => i,
            None => current_netns_ino()?,
        };
        let cfg = abi::DropConfig {
            netns_ino,
            flags: if opts.ifindexes.is_empty() { 0 } else { abi::DROPF_IFACES }
                | if opts.events { 0 } else { abi::DROPF_COUNT_ONLY },
        };
        {
            let map = ebpf.map_mut("rxray_drop_config").ok_or(KernelError::Map {
                map: "rxray_drop_config",
                detail: "missing from the object".into(),
            })?;
            let mut arr: Array<&mut MapData, abi::DropConfig> = Array::try_from(map)
                .map_err(|e| KernelError::Map { map: "rxray_drop_config", detail: e.to_string() })?;
            arr.set(0, cfg, 0).map_err(|e| KernelError::Map { map: "rxray_drop_config", detail: e.to_string() })?;
        }
        {
            let map = ebpf.map_mut("rxray_drop_ifaces").ok_or(KernelError::Map {
                map: "rxray_drop_ifaces",
                detail: "missing from the object".into(),
            })?;
            let mut h: HashMap<&mut MapData, u32, u8> = HashMap::try_from(map)
                .map_err(|e| KernelError::Map { map: "rxray_drop_ifaces", detail: e.to_string() })?;
            for i in &opts.ifindexes {
                h.insert(i, 1, 0).map_err(|e| KernelError::Map { map: "rxray_drop_ifaces", detail: e.to_string() })?;
            }
        }
        let prog: &mut BtfTracePoint = ebpf
            .program_mut("rxray_kfree_skb")
            .ok_or_else(|| KernelError::Load("program rxray_kfree_skb missing from the object".into()))?
            .try_into()
            .map_err(|e| KernelError::Load(format!("{e}")))?;
        prog.load(TRACEPOINT, &btf).map_err(|e| {
            let text = format!("{e:?}");
            if text.contains("UnknownBtfTypeName") || text.contains(&format!("btf_trace_{TRACEPOINT}")) {
                KernelError::Load(format!(
                    "this kernel has no {TRACEPOINT} tracepoint in its BTF (btf_trace_{TRACEPOINT}); rxray drops needs Linux 5.17 or newer"
                ))
            } else {
                classify_load_error(e)
            }
        })?;
        prog.attach().map_err(|e| KernelError::Load(format!("attaching to tp_btf/{TRACEPOINT}: {e}")))?;
        let ring_map = ebpf
            .take_map("rxray_drops")
            .ok_or(KernelError::Map { map: "rxray_drops", detail: "missing from the object".into() })?;
        let ring =
            RingBuf::try_from(ring_map).map_err(|e| KernelError::Map { map: "rxray_drops", detail: e.to_string() })?;
        Ok(Drops { ring, ebpf, config: cfg })
    }

    /// Turns the per-drop events on or off in the attached program (the counters run either way):
    /// the agent sends events only while a joined `drops` reads them.
    pub fn set_events(&mut self, on: bool) -> Result<(), KernelError> {
        let mut c = self.config;
        c.flags = if on { c.flags & !abi::DROPF_COUNT_ONLY } else { c.flags | abi::DROPF_COUNT_ONLY };
        let map = self.ebpf.map_mut("rxray_drop_config").ok_or(KernelError::Map { map: "rxray_drop_config", detail: "missing from the object".into() })?;
        let mut arr: Array<&mut MapData, abi::DropConfig> = Array::try_from(map).map_err(|e| KernelError::Map { map: "rxray_drop_config", detail: e.to_string() })?;
        arr.set(0, c, 0).map_err(|e| KernelError::Map { map: "rxray_drop_config", detail: e.to_string() })?;
        self.config = c;
        Ok(())
    }

    /// Whether the program sends an event per drop.
    pub fn events(&self) -> bool {
        self.config.flags & abi::DROPF_COUNT_ONLY == 0
    }

    pub fn ring(&mut self) -> &mut RingBuf<MapData> {
        &mut self.ring
    }

    pub fn totals(&self) -> Result<DropTotals, KernelError> {
        let err = |map: &'static str| move |e: aya::maps::MapError| KernelError::Map { map, detail: e.to_string() };
        let map = self
            .ebpf
            .map("rxray_drop_stats")
            .ok_or(KernelError::Map { map: "rxray_drop_stats", detail: "missing".into() })?;
        let arr: PerCpuArray<&MapData, abi::DropStats> = PerCpuArray::try_from(map).map_err(err("rxray_drop_stats"))?;
        let mut c = [0u64; abi::DC_COUNT];
        for s in arr.get(&0, 0).map_err(err("rxray_drop_stats"))?.iter() {
            for (acc, v) in c.iter_mut().zip(s.c.iter()) {
                *acc += v;
            }
        }
        let map = self
            .ebpf
            .map("rxray_drop_reasons")
            .ok_or(KernelError::Map { map: "rxray_drop_reasons", detail: "missing".into() })?;
        let arr: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).map_err(err("rxray_drop_reasons"))?;
        let mut by_reason = Vec::new();
        for i in 0..abi::DROP_REASONS as u32 {
            let n: u64 = arr.get(&i, 0).map_err(err("rxray_drop_reasons"))?.iter().sum();
            if n > 0 {
                by_reason.push((i, n));
            }
        }
        Ok(DropTotals {
            drops: c[abi::DC_DROPS],
            events: c[abi::DC_EVENTS],
            lost: c[abi::DC_LOST],
            no_netns: c[abi::DC_NO_NETNS],
            by_reason,
        })
    }
}
