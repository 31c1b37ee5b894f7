//! The XDP firewall's kernel state: installing the program with firewall-sized maps, pinning
//! everything so it outlives the agent (fail-static), applying compiled rule sets atomically (two
//! generations, one flip), dynamic blocks with in-kernel expiry, counters, and the what-if replay
//! through the very program (BPF_PROG_TEST_RUN with the simulated clock).
//!
//! Pins live in `/sys/fs/bpf/rxray/<netns inode>/<ifindex>/`: `link`, `prog` and every map by name.
//! A missing bpffs is mounted (`crate::bpffs`). Under `ip netns exec`, /sys is a fresh sysfs of that
//! command alone: firewall commands then refuse to run (pins made there would vanish with it) and
//! say to use `rxray --netns NAME`, which enters only the network namespace.
use crate::{abi, classify_load_error, hook::Hook, ingress::{ifindex_of, load_tc, load_xdp}, AttachMode, KernelError, TC_FW_OBJ, XDP_FW_OBJ, XDP_INGRESS_OBJ};
use aya::{
    maps::{Array, ArrayOfMaps, HashMap as BpfHash, Map, MapData, PerCpuArray, PerCpuValues},
    programs::{links::FdLink, links::Link as _, links::PinnedLink, TestRun, TestRunOptions, Xdp, XdpMode},
    util::nr_cpus,
    Ebpf, EbpfLoader,
};
use rxray_engine::cidr::Cidr;
use rxray_engine::firewall::Compiled;
use rxray_wire::dissect::ip_from;
use std::{
    net::IpAddr,
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
};

pub use crate::bpffs::BPFFS;

/// Capacities of the firewall's maps.
#[derive(Clone, Copy, Debug)]
pub struct FwCapacity {
    /// Most entries of one rule set's prefix table (rxray_fw_lpm, sized per rule set): IPv6 and
    /// destination prefixes, and IPv4 source prefixes longer than /24. Checked at every apply.
    pub prefixes: u32,
    pub blocks: u32,
    pub buckets: u32,
}

impl Default for FwCapacity {
    fn default() -> Self {
        FwCapacity { prefixes: 1 << 21, blocks: 1 << 16, buckets: 1 << 16 }
    }
}

/// Bytes per prefix-table bucket (struct rxray_fw_pbucket).
const FW_PBUCKET: usize = std::mem::size_of::<abi::FwPbucket>();
/// Map flags of a prefix table (an inner map of rxray_fw_lpm, memory-mapped by user space).
const BPF_F_MMAPABLE: u32 = 1 << 10;
const BPF_F_INNER_MAP: u32 = 1 << 12;

/// The fd of a map made to go into a map of maps.
fn inner_fd<M: aya::maps::InnerMap>(m: &M) -> std::os::fd::RawFd {
    m.fd().as_fd().as_raw_fd()
}

/// The pin root of an interface in this network namespace.
pub fn pin_root(ifindex: u32) -> PathBuf {
    PathBuf::from(BPFFS).join("rxray").join(crate::owner::netns_inode().to_string()).join(ifindex.to_string())
}

/// Whether the firewall is installed (pinned) on an interface.
pub fn installed(ifindex: u32) -> bool {
    pin_root(ifindex).join("link").exists()
}

/// /sys/fs/bpf must be a bpffs that outlives this command: mounted here when missing (see
/// `crate::bpffs`); under `ip netns exec` an error names `rxray --netns`.
pub fn check_bpffs() -> Result<(), KernelError> {
    crate::bpffs::ensure().map(|_| ())
}

fn merr(map: &'static str) -> impl Fn(aya::maps::MapError) -> KernelError {
    move |e| KernelError::Map { map, detail: e.to_string() }
}

/// Maps a direct table (an mmapable array of u64 words) shared and writable; (null, 0) when the map
/// is not sized for the firewall (never written then).
fn map_direct(map: &Map, name: &'static str, words: u32) -> Result<(*mut u8, usize), KernelError> {
    let Map::Array(md) = map else {
        return Err(KernelError::Map { map: name, detail: "not an array".into() });
    };
    let entries = md.info().map_err(merr(name))?.max_entries() as usize;
    if entries < words as usize {
        return Ok((std::ptr::null_mut(), 0));
    }
    let len = entries * 8;
    // SAFETY: a shared mapping of the map's fd (created BPF_F_MMAPABLE) of exactly its value area.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, md.fd().as_fd().as_raw_fd(), 0)
    };
    if p == libc::MAP_FAILED {
        return Err(KernelError::Map { map: name, detail: format!("mmap: {}", std::io::Error::last_os_error()) });
    }
    Ok((p.cast(), len))
}

/// Writes generation `gen`'s half of a direct table (byte gen * len / 2 + slot), zeros where `src`
/// (len / 2 slots, or empty for all zeros) has none; the other generation's half is untouched.
fn write_direct(mem: *mut u8, len: usize, name: &'static str, src: &[u8], gen: u32) -> Result<(), KernelError> {
    if mem.is_null() {
        if src.is_empty() {
            return Ok(());
        }
        return Err(KernelError::Map { map: name, detail: "not sized for the firewall".into() });
    }
    let half = len / 2;
    if src.len() > half {
        return Err(KernelError::Map { map: name, detail: format!("{} slots for a table of {half}", src.len()) });
    }
    // SAFETY: mem maps len bytes (map_direct); the range is generation gen's half of them.
    let mem = unsafe { std::slice::from_raw_parts_mut(mem.add(gen as usize * half), half) };
    mem[..src.len()].copy_from_slice(src);
    mem[src.len()..].fill(0);
    Ok(())
}

/// The firewall's maps, from a fresh load or from pins.
struct FwMaps {
    config: Map,
    active: Map,
    sets: Map,
    v4: Map,
    v6: Map,
    lpm: Map,
    classes: Map,
    rules: Map,
    counters: Map,
    blocks: Map,
    block_lens: Map,
    dlimits: Map,
    slimits: Map,
    last: Map,
    stats: Map,
    /// The mmap of rxray_fw_v4 (2^25 bytes: byte gen << 24 | a24).
    v4_mem: *mut u8,
    v4_len: usize,
    /// The mmap of rxray_fw_v6 (2^23 bytes: byte gen << 22 | slot).
    v6_mem: *mut u8,
    v6_len: usize,
    /// Most prefix-table entries a rule set may have (FwCapacity::prefixes).
    prefix_cap: u32,
}

impl Drop for FwMaps {
    fn drop(&mut self) {
        for (p, len) in [(self.v4_mem, self.v4_len), (self.v6_mem, self.v6_len)] {
            if !p.is_null() {
                // SAFETY: mapped in map_direct with this length, unmapped once.
                unsafe { libc::munmap(p.cast(), len) };
            }
        }
    }
}

const MAP_NAMES: [&str; 15] = [
    "rxray_config",
    "rxray_fw_active",
    "rxray_fw_sets",
    "rxray_fw_v4",
    "rxray_fw_v6",
    "rxray_fw_lpm",
    "rxray_fw_classes",
    "rxray_fw_rules",
    "rxray_fw_counters",
    "rxray_fw_blocks",
    "rxray_fw_block_lens",
    "rxray_fw_dlimits",
    "rxray_fw_slimits",
    "rxray_fw_last",
    "rxray_stats",
];

impl FwMaps {
    fn from_fn(mut get: impl FnMut(&'static str) -> Result<Map, KernelError>) -> Result<FwMaps, KernelError> {
        let mut m = FwMaps {
            config: get("rxray_config")?,
            active: get("rxray_fw_active")?,
            sets: get("rxray_fw_sets")?,
            v4: get("rxray_fw_v4")?,
            v6: get("rxray_fw_v6")?,
            lpm: get("rxray_fw_lpm")?,
            classes: get("rxray_fw_classes")?,
            rules: get("rxray_fw_rules")?,
            counters: get("rxray_fw_counters")?,
            blocks: get("rxray_fw_blocks")?,
            block_lens: get("rxray_fw_block_lens")?,
            dlimits: get("rxray_fw_dlimits")?,
            slimits: get("rxray_fw_slimits")?,
            last: get("rxray_fw_last")?,
            stats: get("rxray_stats")?,
            v4_mem: std::ptr::null_mut(),
            v4_len: 0,
            v6_mem: std::ptr::null_mut(),
            v6_len: 0,
            prefix_cap: FwCapacity::default().prefixes,
        };
        (m.v4_mem, m.v4_len) = map_direct(&m.v4, "rxray_fw_v4", abi::FW_V4_WORDS)?;
        (m.v6_mem, m.v6_len) = map_direct(&m.v6, "rxray_fw_v6", abi::FW_V6_WORDS)?;
        Ok(m)
    }

    fn from_ebpf(ebpf: &mut Ebpf) -> Result<FwMaps, KernelError> {
        FwMaps::from_fn(|name| {
            ebpf.take_map(name).ok_or(KernelError::Map { map: name_static(name), detail: "missing from the object".into() })
        })
    }

    /// The maps of the firewall pinned under `root` (on `iface`). One pinned by an older rxray may
    /// lack a map this one uses, or pin one of another shape: that is said with what to do, not as a
    /// bare missing file or a map error later.
    fn from_pins(root: &Path, iface: &str) -> Result<FwMaps, KernelError> {
        let maps = FwMaps::from_fn(|name| {
            if !root.join(name).exists() {
                return Err(KernelError::Load(format!(
                    "the firewall on {iface} was installed by an older rxray (it has no map {name}): \
                     remove it with `rxray firewall off -i {iface}`, then apply the rules again"
                )));
            }
            let md = MapData::from_pin(root.join(name)).map_err(merr(name_static(name)))?;
            Ok(match name {
                "rxray_fw_blocks" | "rxray_fw_dlimits" | "rxray_fw_slimits" => Map::HashMap(md),
                "rxray_fw_counters" | "rxray_stats" => Map::PerCpuArray(md),
                "rxray_fw_lpm" => Map::ArrayOfMaps(md),
                _ => Map::Array(md),
            })
        })?;
        crate::pins::check(root, crate::XDP_FW_OBJ, iface)?;
        Ok(maps)
    }

    fn config(&self) -> Result<abi::Config, KernelError> {
        let a: Array<&MapData, abi::Config> = Array::try_from(&self.config).map_err(merr("rxray_config"))?;
        a.get(&0, 0).map_err(merr("rxray_config"))
    }

    fn set_config(&mut self, c: abi::Config) -> Result<(), KernelError> {
        let mut a: Array<&mut MapData, abi::Config> = Array::try_from(&mut self.config).map_err(merr("rxray_config"))?;
        a.set(0, c, 0).map_err(merr("rxray_config"))
    }

    fn active(&self) -> Result<u32, KernelError> {
        let a: Array<&MapData, u32> = Array::try_from(&self.active).map_err(merr("rxray_fw_active"))?;
        Ok(a.get(&0, 0).map_err(merr("rxray_fw_active"))? & 1)
    }

    fn set(&self, gen: u32) -> Result<abi::FwSet, KernelError> {
        let a: Array<&MapData, abi::FwSet> = Array::try_from(&self.sets).map_err(merr("rxray_fw_sets"))?;
        a.get(&gen, 0).map_err(merr("rxray_fw_sets"))
    }

    /// Writes `c` into the inactive generation, then makes it the active one (one word), then frees
    /// the old generation's prefixes. Rules with a TTL expire at `now + ttl` (CLOCK_MONOTONIC ns).
    fn apply(&mut self, c: &Compiled, now_ns: u64) -> Result<u32, KernelError> {
        if c.prefixes.len() > self.prefix_cap as usize {
            return Err(KernelError::Map {
                map: "rxray_fw_lpm",
                detail: format!("{} prefixes for a capacity of {} (--prefix-capacity)", c.prefixes.len(), self.prefix_cap),
            });
        }
        let old = self.active()?;
        let new = old ^ 1;
        // The IPv4 source table and the IPv6 source filter, generation `new` bytes only.
        write_direct(self.v4_mem, self.v4_len, "rxray_fw_v4", &c.v4_src, new)?;
        write_direct(self.v6_mem, self.v6_len, "rxray_fw_v6", &c.v6_src, new)?;
        // The new generation's prefix table: a fresh array of its own size.
        self.set_ptable(new, c.ptable.bytes())?;
        {
            let mut a: Array<&mut MapData, u64> = Array::try_from(&mut self.classes).map_err(merr("rxray_fw_classes"))?;
            for field in 0..2u32 {
                for cls in 0..abi::FW_CLASSES as u32 {
                    let ix = (new * 2 + field) * abi::FW_CLASSES as u32 + cls;
                    a.set(ix, c.class_masks[field as usize][cls as usize], 0).map_err(merr("rxray_fw_classes"))?;
                }
            }
        }
        {
            let mut a: Array<&mut MapData, abi::FwRule> = Array::try_from(&mut self.rules).map_err(merr("rxray_fw_rules"))?;
            for i in 0..abi::FW_RULES {
                let r = c.rules.get(i).map(|r| abi::FwRule {
                    expires_ns: r.ttl_s.map_or(0, |t| now_ns + t * 1_000_000_000),
                    pps: r.pps,
                    burst_pkts: r.burst_pkts,
                    bps: r.bps,
                    burst_bytes: r.burst_bytes,
                    id: r.id,
                    action: action_code(r.action),
                    ip_ver: r.ip_ver,
                    proto: r.proto,
                    limit_by: limit_by_code(r.limit_by),
                    limit_len: r.limit_len,
                    limit_len6: r.limit_len6,
                    flags_mask: r.flags_mask,
                    flags_value: r.flags_value,
                    sport_lo: r.sport.0,
                    sport_hi: r.sport.1,
                    dport_lo: r.dport.0,
                    dport_hi: r.dport.1,
                    l4: r.l4 as u8,
                    _pad: [0; 3],
                });
                a.set((new * abi::FW_RULES as u32) + i as u32, r.unwrap_or_default(), 0).map_err(merr("rxray_fw_rules"))?;
            }
        }
        {
            let mut a: PerCpuArray<&mut MapData, abi::FwCounter> =
                PerCpuArray::try_from(&mut self.counters).map_err(merr("rxray_fw_counters"))?;
            let n = nr_cpus().map_err(|(_, e)| KernelError::Io(e))?;
            for slot in 0..abi::FW_SLOTS as u32 {
                let zero = PerCpuValues::try_from(vec![abi::FwCounter::default(); n]).map_err(KernelError::Io)?;
                a.set(new * abi::FW_SLOTS as u32 + slot, zero, 0).map_err(merr("rxray_fw_counters"))?;
            }
        }
        let mut set = abi::FwSet {
            nrules: c.rules.len() as u32,
            default_action: if c.default_deny { abi::FWA_DENY } else { abi::FWA_ALLOW },
            drop_malformed: c.drop_malformed as u8,
            v6_always: c.v6_always,
            v4_direct: !c.v4_src.is_empty() as u8,
            groups: c.groups,
            pbuckets: c.ptable.home_buckets(),
            ..Default::default()
        };
        for field in 0..2 {
            for vi in 0..2 {
                let l = &c.lens[field][vi];
                set.nlens[field][vi] = l.len() as u8;
                set.lens[field][vi][..l.len()].copy_from_slice(l);
            }
        }
        {
            let mut a: Array<&mut MapData, abi::FwSet> = Array::try_from(&mut self.sets).map_err(merr("rxray_fw_sets"))?;
            a.set(new, set, 0).map_err(merr("rxray_fw_sets"))?;
        }
        // The flip: from here on every packet sees the new rule set, whole.
        {
            let mut a: Array<&mut MapData, u32> = Array::try_from(&mut self.active).map_err(merr("rxray_fw_active"))?;
            a.set(0, new, 0).map_err(merr("rxray_fw_active"))?;
        }
        let mut cfg = self.config()?;
        cfg.features |= abi::FEAT_FIREWALL;
        if c.dry_run {
            cfg.features |= abi::FEAT_FW_DRYRUN;
        } else {
            cfg.features &= !abi::FEAT_FW_DRYRUN;
        }
        self.set_config(cfg)?;
        // Packets already past the flip finish within microseconds (XDP runs under RCU); then the old
        // generation's prefixes go.
        std::thread::sleep(std::time::Duration::from_millis(20));
        self.set_ptable(old, &[])?;
        Ok(new)
    }

    /// Puts a new prefix table holding `bytes` (whole buckets; empty: one free bucket) in generation
    /// `gen`'s slot of rxray_fw_lpm. The table it replaces is freed once no program reads it.
    fn set_ptable(&mut self, gen: u32, bytes: &[u8]) -> Result<(), KernelError> {
        const NAME: &str = "rxray_fw_lpm";
        let buckets = (bytes.len() / FW_PBUCKET).max(1) as u32;
        let t: Array<MapData, [u8; FW_PBUCKET]> =
            Array::create(buckets, BPF_F_MMAPABLE | BPF_F_INNER_MAP).map_err(merr(NAME))?;
        if !bytes.is_empty() {
            let len = buckets as usize * FW_PBUCKET;
            let fd = inner_fd(&t);
            // SAFETY: a shared mapping of the new array (BPF_F_MMAPABLE) of exactly its value area,
            // written then unmapped here; no program reads it before it is put in the outer map.
            unsafe {
                let p = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
                if p == libc::MAP_FAILED {
                    return Err(KernelError::Map { map: NAME, detail: format!("mmap: {}", std::io::Error::last_os_error()) });
                }
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), len);
                libc::munmap(p, len);
            }
        }
        let mut outer: ArrayOfMaps<&mut MapData, Array<MapData, [u8; FW_PBUCKET]>> =
            ArrayOfMaps::try_from(&mut self.lpm).map_err(merr(NAME))?;
        outer.set(gen, &t, 0).map_err(merr(NAME))
    }

    /// The program's totals of packets seen, dropped by the firewall and would-be dropped (dry run),
    /// over every rule set since the install.
    fn totals(&self) -> Result<(u64, u64, u64), KernelError> {
        let a: PerCpuArray<&MapData, abi::Stats> = PerCpuArray::try_from(&self.stats).map_err(merr("rxray_stats"))?;
        let v = a.get(&0, 0).map_err(merr("rxray_stats"))?;
        let sum = |i: usize| v.iter().map(|s| s.c[i]).sum::<u64>();
        Ok((sum(abi::C_PACKETS), sum(abi::C_FW_DROPPED), sum(abi::C_FW_WOULD)))
    }

    /// Per-slot counters of the active generation, summed over CPUs.
    fn counters(&self) -> Result<Vec<abi::FwCounter>, KernelError> {
        let gen = self.active()?;
        let a: PerCpuArray<&MapData, abi::FwCounter> = PerCpuArray::try_from(&self.counters).map_err(merr("rxray_fw_counters"))?;
        let mut out = Vec::with_capacity(abi::FW_SLOTS);
        for slot in 0..abi::FW_SLOTS as u32 {
            let v = a.get(&(gen * abi::FW_SLOTS as u32 + slot), 0).map_err(merr("rxray_fw_counters"))?;
            out.push(v.iter().fold(abi::FwCounter::default(), |acc, c| abi::FwCounter {
                packets: acc.packets + c.packets,
                bytes: acc.bytes + c.bytes,
                last_ns: acc.last_ns.max(c.last_ns),
            }));
        }
        Ok(out)
    }

    fn blocks(&self) -> Result<Vec<(abi::FwBlockKey, abi::FwBlock)>, KernelError> {
        let h: BpfHash<&MapData, abi::FwBlockKey, abi::FwBlock> = BpfHash::try_from(&self.blocks).map_err(merr("rxray_fw_blocks"))?;
        Ok(h.iter().filter_map(|r| r.ok()).collect())
    }

    fn write_block_lens(&mut self, lens: abi::FwBlockLens) -> Result<(), KernelError> {
        let mut a: Array<&mut MapData, abi::FwBlockLens> =
            Array::try_from(&mut self.block_lens).map_err(merr("rxray_fw_block_lens"))?;
        a.set(0, lens, 0).map_err(merr("rxray_fw_block_lens"))
    }

    fn block_lens(&self) -> Result<abi::FwBlockLens, KernelError> {
        let a: Array<&MapData, abi::FwBlockLens> = Array::try_from(&self.block_lens).map_err(merr("rxray_fw_block_lens"))?;
        a.get(&0, 0).map_err(merr("rxray_fw_block_lens"))
    }

    /// Recomputes the lengths bitmap and the rate-limit count from the entries left (after removals).
    fn refresh_block_lens(&mut self) -> Result<(), KernelError> {
        let mut lens = abi::FwBlockLens::default();
        for (k, _) in self.blocks()? {
            set_len_bit(&mut lens, k.ver, k.len);
        }
        lens.dlimits = self.dlimits()?.len() as u32;
        let s = self.slimits()?;
        lens.slimits = s.len() as u32;
        for (k, _) in s {
            if k.ver == 4 {
                lens.s4 |= 1 << k.len;
            } else {
                lens.s6[(k.len / 64) as usize] |= 1 << (k.len % 64);
            }
        }
        self.write_block_lens(lens)
    }

    fn slimits(&self) -> Result<Vec<(abi::FwBlockKey, abi::FwSlimit)>, KernelError> {
        let h: BpfHash<&MapData, abi::FwBlockKey, abi::FwSlimit> =
            BpfHash::try_from(&self.slimits).map_err(merr("rxray_fw_slimits"))?;
        Ok(h.iter().filter_map(|r| r.ok()).collect())
    }

    /// The next dynamic entry's number (blocks, destination and source limits share them).
    fn next_id(&self) -> Result<u32, KernelError> {
        let b = self.blocks()?.iter().map(|(_, b)| b.id).max().unwrap_or(0);
        let d = self.dlimits()?.iter().map(|(_, d)| d.id).max().unwrap_or(0);
        let s = self.slimits()?.iter().map(|(_, x)| x.id).max().unwrap_or(0);
        Ok(b.max(d).max(s) + 1)
    }

    fn dlimits(&self) -> Result<Vec<(abi::FwDlimitKey, abi::FwDlimit)>, KernelError> {
        let h: BpfHash<&MapData, abi::FwDlimitKey, abi::FwDlimit> =
            BpfHash::try_from(&self.dlimits).map_err(merr("rxray_fw_dlimits"))?;
        Ok(h.iter().filter_map(|r| r.ok()).collect())
    }
}

/// Removes `key` from one of the firewall's hash maps; false when it was not there.
fn remove_key<K: aya::Pod, V: aya::Pod>(map: &mut Map, name: &'static str, key: &K) -> Result<bool, KernelError> {
    let mut h: BpfHash<&mut MapData, K, V> = BpfHash::try_from(map).map_err(merr(name))?;
    Ok(h.remove(key).is_ok())
}

fn set_len_bit(l: &mut abi::FwBlockLens, ver: u8, len: u8) {
    if ver == 4 {
        l.v4 |= 1 << len;
    } else {
        l.v6[(len / 64) as usize] |= 1 << (len % 64);
    }
}

fn name_static(name: &str) -> &'static str {
    MAP_NAMES.iter().find(|n| **n == name).copied().unwrap_or("firewall map")
}

fn addr16(a: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => b[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => b = v.octets(),
    }
    b
}

fn block_key(c: &Cidr) -> abi::FwBlockKey {
    abi::FwBlockKey { ver: if c.is_ipv4() { 4 } else { 6 }, len: c.prefix_len(), _pad: [0; 2], addr: addr16(c.addr()) }
}

pub use crate::decode::monotonic_ns;
/// The typed counter view and slot constants of `firewall stats`.
pub use crate::abi::{FwCounterView, FW_C_DEFAULT, FW_SLOTS};

fn loader(cap: FwCapacity) -> EbpfLoader<'static> {
    let mut l = EbpfLoader::new();
    l.map_max_entries("rxray_fw_v4", abi::FW_V4_WORDS)
        .map_max_entries("rxray_fw_v6", abi::FW_V6_WORDS)
        .map_max_entries("rxray_fw_blocks", cap.blocks.max(1))
        .map_max_entries("rxray_fw_buckets", cap.buckets.max(1))
        .map_max_entries("rxray_fw_dlimits", 4096)
        .map_max_entries("rxray_fw_slimits", 4096)
        // Sized for an observer that adopts the firewall's program (rxray watch, flows, alerts on the
        // same interface); these are ring buffers, paged in only as they fill.
        .map_max_entries("rxray_events", 8 << 20)
        .map_max_entries("rxray_cap", 4 << 20)
        // The HTTP copies of an observer with --port (alerts --enforce: OpenAPI, HTTP rules, API limits).
        .map_max_entries("rxray_http", 4 << 20);
    l
}

/// A dynamic block as `firewall list` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct BlockInfo {
    pub id: u32,
    pub cidr: String,
    /// Seconds left, or None for a block without expiry.
    pub expires_in_s: Option<f64>,
    pub packets: u64,
    pub bytes: u64,
}

/// A destination rate limit as `firewall list` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct LimitInfo {
    pub id: u32,
    pub dst: String,
    pub pps: u64,
    pub burst: u64,
    pub expires_in_s: Option<f64>,
    pub dropped: u64,
}

/// A source rate limit as `firewall list` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct SrcLimitInfo {
    pub id: u32,
    pub src: String,
    /// The destination port it applies to (None: any).
    pub dport: Option<u16>,
    /// Only connection openings (TCP SYN without ACK) count.
    pub syn_only: bool,
    /// Conforming packets per second (fractional for rates below one per second).
    pub rate_per_s: f64,
    pub burst: u64,
    pub expires_in_s: Option<f64>,
    pub dropped: u64,
    /// Packets the limit applied to and let through.
    pub passed: u64,
}

/// What a source rate limit applies to and how fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrcLimit {
    /// Only packets to this port (None: any).
    pub dport: Option<u16>,
    /// Only connection openings (TCP SYN without ACK) count and are dropped.
    pub syn_only: bool,
    /// One conforming packet per interval.
    pub interval_ns: u64,
    pub burst: u64,
}

/// Per-slot counters of the active rule set.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct FwCounts {
    /// Since the install, over every rule set: packets the program saw, the firewall dropped, and
    /// would have dropped in dry run.
    pub packets_seen: u64,
    pub dropped_total: u64,
    pub would_drop_total: u64,
    pub rules: Vec<abi::FwCounterView>,
    pub default: abi::FwCounterView,
    pub blocks: abi::FwCounterView,
    pub dry_run: bool,
    pub generation: u32,
}

/// Attaches the loaded XDP copy in `mode` (auto: native, then generic); returns its bpf_link.
fn attach_xdp(ebpf: &mut Ebpf, iface: &str, ifindex: u32, mode: AttachMode) -> Result<FdLink, KernelError> {
    let prog: &mut Xdp = ebpf.program_mut("rxray_xdp").expect("loaded").try_into().expect("rxray_xdp is XDP");
    let tries: &[XdpMode] = match mode {
        AttachMode::Native => &[XdpMode::Driver],
        AttachMode::Generic => &[XdpMode::Skb],
        _ => &[XdpMode::Driver, XdpMode::Skb],
    };
    let mut errors = Vec::new();
    for m in tries {
        match prog.attach_to_if_index(ifindex, *m) {
            Ok(id) => {
                let owned = prog.take_link(id).map_err(|e| KernelError::Load(format!("taking the link: {e}")))?;
                return owned.try_into().map_err(|e| KernelError::Load(format!("the XDP link is not a bpf_link: {e}")));
            }
            Err(e) => errors.push(format!("{m:?}: {e}")),
        }
    }
    Err(KernelError::Attach { iface: iface.into(), detail: errors.join("; ") })
}

/// Attaches the loaded TC copy as a tcx ingress link (Linux 6.6 and later: a bpf_link that can be
/// pinned, so the rules outlive the process as the XDP link does).
fn attach_tc(ebpf: &mut Ebpf, iface: &str) -> Result<FdLink, KernelError> {
    use aya::programs::{links::LinkOrder, tc::TcAttachOptions, SchedClassifier, TcAttachType};
    let prog: &mut SchedClassifier = ebpf.program_mut("rxray_tc").expect("loaded").try_into().expect("rxray_tc is a classifier");
    let id = prog
        .attach_with_options(iface, TcAttachType::Ingress, TcAttachOptions::TcxOrder(LinkOrder::default()))
        .map_err(|e| KernelError::Attach { iface: iface.into(), detail: format!("tcx ingress (Linux 6.6 or later): {e}") })?;
    let owned = prog.take_link(id).map_err(|e| KernelError::Load(format!("taking the link: {e}")))?;
    owned.try_into().map_err(|e| KernelError::Load(format!("the tcx link is not a bpf_link: {e}")))
}

/// The firewall installed on one interface (pinned), opened by any rxray process.
pub struct Firewall {
    maps: FwMaps,
    pub iface: String,
    pub ifindex: u32,
    pub root: PathBuf,
}

impl Firewall {
    /// Opens the firewall pinned on `iface`, or installs it (load, attach, pin) when there is none.
    /// Returns whether it was installed now.
    pub fn open_or_install(iface: &str, mode: AttachMode, cap: FwCapacity) -> Result<(Firewall, bool), KernelError> {
        check_bpffs()?;
        let ifindex = ifindex_of(iface)?;
        let root = pin_root(ifindex);
        if installed(ifindex) {
            let mut maps = FwMaps::from_pins(&root, iface)?;
            maps.prefix_cap = cap.prefixes;
            return Ok((Firewall { maps, iface: iface.into(), ifindex, root }, false));
        }
        if let Some(owner) = crate::owner::owner_of(ifindex).filter(|o| o.alive) {
            return Err(KernelError::Owned { iface: iface.into(), owner });
        }
        // Maps left without a link (an install that failed half-way, or a namespace inode reused
        // after its namespace went) must not be adopted by the new program: start clean.
        if root.exists() {
            remove_pins(&root)?;
        }
        // The maps are created and pinned by name under the root as the object loads (RXRAY_PINNING).
        std::fs::create_dir_all(&root)?;
        let hook = crate::hook::firewall_hook(iface, mode);
        let loaded = (|| -> Result<Ebpf, KernelError> {
            let obj = if hook == Hook::Tc { TC_FW_OBJ } else { XDP_FW_OBJ };
            let mut ebpf = loader(cap).default_map_pin_directory(&root).load(obj).map_err(classify_load_error)?;
            if hook == Hook::Tc {
                load_tc(&mut ebpf)?;
            } else {
                load_xdp(&mut ebpf)?;
            }
            Ok(ebpf)
        })();
        let mut ebpf = match loaded {
            Ok(e) => e,
            Err(e) => {
                let _ = remove_pins(&root);
                return Err(e);
            }
        };
        let attached = if hook == Hook::Tc { attach_tc(&mut ebpf, iface) } else { attach_xdp(&mut ebpf, iface, ifindex, mode) };
        let result = attached.and_then(|link| {
            let name = if hook == Hook::Tc { "rxray_tc" } else { "rxray_xdp" };
            let prog = ebpf.program_mut(name).expect("loaded above");
            prog.pin(root.join("prog")).map_err(|e| KernelError::Load(format!("pinning the program: {e}")))?;
            link.pin(root.join("link")).map_err(|e| KernelError::Load(format!("pinning the link: {e}")))?;
            Ok(())
        });
        if let Err(e) = result {
            drop(ebpf);
            let _ = remove_pins(&root);
            return Err(e);
        }
        drop(ebpf); // the pins hold the program, its link and its maps now
        let mut maps = FwMaps::from_pins(&root, iface)?;
        maps.prefix_cap = cap.prefixes;
        Ok((Firewall { maps, iface: iface.into(), ifindex, root }, true))
    }

    /// Opens the firewall pinned on `iface`; an error when none is installed.
    pub fn open(iface: &str) -> Result<Firewall, KernelError> {
        check_bpffs()?;
        let ifindex = ifindex_of(iface)?;
        let root = pin_root(ifindex);
        if !installed(ifindex) {
            return Err(KernelError::Load(format!("no rxray firewall is installed on {iface} (rxray firewall apply FILE -i {iface})")));
        }
        Ok(Firewall { maps: FwMaps::from_pins(&root, iface)?, iface: iface.into(), ifindex, root })
    }

    /// Makes `c` the live rule set (atomically); returns the generation now active.
    pub fn apply(&mut self, c: &Compiled) -> Result<u32, KernelError> {
        self.maps.apply(c, monotonic_ns())
    }

    /// Counters of the active rule set.
    pub fn counts(&self) -> Result<FwCounts, KernelError> {
        let v = self.maps.counters()?;
        let set = self.maps.set(self.maps.active()?)?;
        let dry = self.maps.config()?.features & abi::FEAT_FW_DRYRUN != 0;
        let view = |c: &abi::FwCounter| abi::FwCounterView::from_raw(c, monotonic_ns());
        let (packets_seen, dropped_total, would_drop_total) = self.maps.totals()?;
        Ok(FwCounts {
            packets_seen,
            dropped_total,
            would_drop_total,
            rules: v[..set.nrules as usize].iter().map(view).collect(),
            default: view(&v[abi::FW_C_DEFAULT]),
            blocks: view(&v[abi::FW_C_BLOCKS]),
            dry_run: dry,
            generation: self.maps.active()?,
        })
    }

    /// Blocks `cidr` (sources) until `ttl_s` from now (None: until unblocked).
    pub fn block(&mut self, cidr: &Cidr, ttl_s: Option<u64>) -> Result<u32, KernelError> {
        self.expire_blocks()?;
        let existing = self.maps.blocks()?;
        let id = existing.iter().map(|(_, b)| b.id).max().unwrap_or(0) + 1;
        let now = monotonic_ns();
        let key = block_key(cidr);
        // The length bit first, then the entry: a packet never misses a block that exists.
        let mut lens = self.maps.block_lens()?;
        set_len_bit(&mut lens, key.ver, key.len);
        self.maps.write_block_lens(lens)?;
        let mut h: BpfHash<&mut MapData, abi::FwBlockKey, abi::FwBlock> =
            BpfHash::try_from(&mut self.maps.blocks).map_err(merr("rxray_fw_blocks"))?;
        let b = abi::FwBlock { expires_ns: ttl_s.map_or(0, |t| now + t * 1_000_000_000), added_ns: now, id, ..Default::default() };
        h.insert(key, b, 0).map_err(merr("rxray_fw_blocks"))?;
        let mut cfg = self.maps.config()?;
        if cfg.features & abi::FEAT_FIREWALL == 0 {
            cfg.features |= abi::FEAT_FIREWALL;
            self.maps.set_config(cfg)?;
        }
        Ok(id)
    }

    /// Removes the block on exactly `cidr`; false when there was none.
    pub fn unblock(&mut self, cidr: &Cidr) -> Result<bool, KernelError> {
        let found = remove_key::<_, abi::FwBlock>(&mut self.maps.blocks, "rxray_fw_blocks", &block_key(cidr))?;
        self.maps.refresh_block_lens()?;
        Ok(found)
    }

    /// Rate-limits traffic to `dst` to `pps` packets/s (with `burst`) until `ttl_s` from now.
    pub fn limit_dst(&mut self, dst: IpAddr, pps: u64, burst: u64, ttl_s: Option<u64>) -> Result<u32, KernelError> {
        self.expire_blocks()?;
        let existing = self.maps.dlimits()?;
        let id = existing.iter().map(|(_, d)| d.id).max().unwrap_or(0).max(self.maps.blocks()?.iter().map(|(_, b)| b.id).max().unwrap_or(0)) + 1;
        let now = monotonic_ns();
        let key = abi::FwDlimitKey { ver: if dst.is_ipv4() { 4 } else { 6 }, _pad: [0; 3], addr: addr16(dst) };
        let v = abi::FwDlimit {
            expires_ns: ttl_s.map_or(0, |t| now + t * 1_000_000_000),
            added_ns: now,
            pps: pps.max(1),
            burst,
            tat: 0,
            id,
            ..Default::default()
        };
        {
            let mut h: BpfHash<&mut MapData, abi::FwDlimitKey, abi::FwDlimit> =
                BpfHash::try_from(&mut self.maps.dlimits).map_err(merr("rxray_fw_dlimits"))?;
            h.insert(key, v, 0).map_err(merr("rxray_fw_dlimits"))?;
        }
        self.maps.refresh_block_lens()?;
        let mut cfg = self.maps.config()?;
        if cfg.features & abi::FEAT_FIREWALL == 0 {
            cfg.features |= abi::FEAT_FIREWALL;
            self.maps.set_config(cfg)?;
        }
        Ok(id)
    }

    /// Rate-limits packets from `cidr` (as `lim` says) until `ttl_s` from now; replaces a limit on
    /// the same prefix (its counters start again).
    pub fn limit_src(&mut self, cidr: &Cidr, lim: SrcLimit, ttl_s: Option<u64>) -> Result<u32, KernelError> {
        self.expire_blocks()?;
        let id = self.maps.next_id()?;
        let now = monotonic_ns();
        let v = abi::FwSlimit {
            expires_ns: ttl_s.map_or(0, |t| now + t * 1_000_000_000),
            added_ns: now,
            interval_ns: lim.interval_ns.max(1),
            burst: lim.burst,
            id,
            dport: lim.dport.unwrap_or(0),
            syn_only: lim.syn_only as u8,
            ..Default::default()
        };
        {
            let mut h: BpfHash<&mut MapData, abi::FwBlockKey, abi::FwSlimit> =
                BpfHash::try_from(&mut self.maps.slimits).map_err(merr("rxray_fw_slimits"))?;
            h.insert(block_key(cidr), v, 0).map_err(merr("rxray_fw_slimits"))?;
        }
        self.maps.refresh_block_lens()?;
        let mut cfg = self.maps.config()?;
        if cfg.features & abi::FEAT_FIREWALL == 0 {
            cfg.features |= abi::FEAT_FIREWALL;
            self.maps.set_config(cfg)?;
        }
        Ok(id)
    }

    /// Removes the source rate limit on exactly `cidr`; false when there was none.
    pub fn unlimit_src(&mut self, cidr: &Cidr) -> Result<bool, KernelError> {
        let found = remove_key::<_, abi::FwSlimit>(&mut self.maps.slimits, "rxray_fw_slimits", &block_key(cidr))?;
        self.maps.refresh_block_lens()?;
        Ok(found)
    }

    /// Source rate limits in force.
    pub fn src_limits(&self) -> Result<Vec<SrcLimitInfo>, KernelError> {
        let now = monotonic_ns();
        let mut v: Vec<SrcLimitInfo> = self
            .maps
            .slimits()?
            .into_iter()
            .filter(|(_, d)| d.expires_ns == 0 || d.expires_ns >= now)
            .map(|(k, d)| SrcLimitInfo {
                id: d.id,
                src: format!("{}/{}", ip_from(k.ver, &k.addr), k.len),
                dport: (d.dport != 0).then_some(d.dport),
                syn_only: d.syn_only != 0,
                rate_per_s: 1e9 / d.interval_ns.max(1) as f64,
                burst: d.burst,
                expires_in_s: (d.expires_ns != 0).then(|| (d.expires_ns - now) as f64 / 1e9),
                dropped: d.packets,
                passed: d.passed,
            })
            .collect();
        v.sort_by_key(|l| l.id);
        Ok(v)
    }

    /// Removes the rate limit on `dst`; false when there was none.
    pub fn unlimit_dst(&mut self, dst: IpAddr) -> Result<bool, KernelError> {
        let key = abi::FwDlimitKey { ver: if dst.is_ipv4() { 4 } else { 6 }, _pad: [0; 3], addr: addr16(dst) };
        let found = remove_key::<_, abi::FwDlimit>(&mut self.maps.dlimits, "rxray_fw_dlimits", &key)?;
        self.maps.refresh_block_lens()?;
        Ok(found)
    }

    /// Destination rate limits in force.
    pub fn dst_limits(&self) -> Result<Vec<LimitInfo>, KernelError> {
        let now = monotonic_ns();
        let mut v: Vec<LimitInfo> = self
            .maps
            .dlimits()?
            .into_iter()
            .filter(|(_, d)| d.expires_ns == 0 || d.expires_ns >= now)
            .map(|(k, d)| LimitInfo {
                id: d.id,
                dst: ip_from(k.ver, &k.addr).to_string(),
                pps: d.pps,
                burst: d.burst,
                expires_in_s: (d.expires_ns != 0).then(|| (d.expires_ns - now) as f64 / 1e9),
                dropped: d.packets,
            })
            .collect();
        v.sort_by_key(|l| l.id);
        Ok(v)
    }

    /// Deletes blocks whose time is up (the kernel already ignores them).
    pub fn expire_blocks(&mut self) -> Result<usize, KernelError> {
        let now = monotonic_ns();
        let gone: Vec<abi::FwBlockKey> =
            self.maps.blocks()?.into_iter().filter(|(_, b)| b.expires_ns != 0 && b.expires_ns < now).map(|(k, _)| k).collect();
        let gone_limits: Vec<abi::FwDlimitKey> =
            self.maps.dlimits()?.into_iter().filter(|(_, d)| d.expires_ns != 0 && d.expires_ns < now).map(|(k, _)| k).collect();
        let gone_src: Vec<abi::FwBlockKey> =
            self.maps.slimits()?.into_iter().filter(|(_, d)| d.expires_ns != 0 && d.expires_ns < now).map(|(k, _)| k).collect();
        if !gone_src.is_empty() {
            let mut h: BpfHash<&mut MapData, abi::FwBlockKey, abi::FwSlimit> =
                BpfHash::try_from(&mut self.maps.slimits).map_err(merr("rxray_fw_slimits"))?;
            for k in &gone_src {
                let _ = h.remove(k);
            }
        }
        if !gone_limits.is_empty() {
            let mut h: BpfHash<&mut MapData, abi::FwDlimitKey, abi::FwDlimit> =
                BpfHash::try_from(&mut self.maps.dlimits).map_err(merr("rxray_fw_dlimits"))?;
            for k in &gone_limits {
                let _ = h.remove(k);
            }
        }
        if !gone.is_empty() || !gone_limits.is_empty() || !gone_src.is_empty() {
            let mut h: BpfHash<&mut MapData, abi::FwBlockKey, abi::FwBlock> =
                BpfHash::try_from(&mut self.maps.blocks).map_err(merr("rxray_fw_blocks"))?;
            for k in &gone {
                let _ = h.remove(k);
            }
            self.maps.refresh_block_lens()?;
        }
        Ok(gone.len())
    }

    /// Blocks in force (expired ones are left out).
    pub fn blocks(&self) -> Result<Vec<BlockInfo>, KernelError> {
        let now = monotonic_ns();
        let mut v: Vec<BlockInfo> = self
            .maps
            .blocks()?
            .into_iter()
            .filter(|(_, b)| b.expires_ns == 0 || b.expires_ns >= now)
            .map(|(k, b)| {
                let ip = ip_from(k.ver, &k.addr);
                BlockInfo {
                    id: b.id,
                    cidr: format!("{ip}/{}", k.len),
                    expires_in_s: (b.expires_ns != 0).then(|| (b.expires_ns - now) as f64 / 1e9),
                    packets: b.packets,
                    bytes: b.bytes,
                }
            })
            .collect();
        v.sort_by_key(|b| b.id);
        Ok(v)
    }

    /// Turns dry run on or off for the live rule set.
    pub fn set_dry_run(&mut self, on: bool) -> Result<(), KernelError> {
        let mut cfg = self.maps.config()?;
        if on {
            cfg.features |= abi::FEAT_FW_DRYRUN;
        } else {
            cfg.features &= !abi::FEAT_FW_DRYRUN;
        }
        self.maps.set_config(cfg)
    }

    /// Removes the firewall from `iface`: the link (which detaches the program), the program, the maps.
    pub fn off(iface: &str) -> Result<bool, KernelError> {
        check_bpffs()?;
        let ifindex = ifindex_of(iface)?;
        let root = pin_root(ifindex);
        if !root.exists() {
            return Ok(false);
        }
        remove_pins(&root)?;
        if let Some(ns_dir) = root.parent() {
            let _ = std::fs::remove_dir(ns_dir); // only when no other interface's firewall is left
        }
        Ok(true)
    }
}

/// Removes the pinned firewall state of network namespaces that no longer exist (a namespace deleted
/// while its firewall was installed leaves its maps in bpffs), and their /run/rxray directories.
/// Returns the pin roots removed.
pub fn collect_orphans() -> Result<Vec<PathBuf>, KernelError> {
    use std::os::unix::fs::MetadataExt;
    let base = PathBuf::from(BPFFS).join("rxray");
    let Ok(rd) = std::fs::read_dir(&base) else { return Ok(Vec::new()) };
    // Every namespace still alive: those of processes, and those kept by a name in /run/netns.
    let mut live = std::collections::HashSet::new();
    for dir in ["/proc", "/run/netns"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = if dir == "/proc" { e.path().join("ns/net") } else { e.path() };
            if let Ok(m) = std::fs::metadata(&p) {
                live.insert(m.ino());
            }
        }
    }
    let mut removed = Vec::new();
    for e in rd.flatten() {
        let Ok(ino) = e.file_name().to_string_lossy().parse::<u64>() else { continue };
        if live.contains(&ino) {
            continue;
        }
        for ifdir in std::fs::read_dir(e.path())?.flatten() {
            remove_pins(&ifdir.path())?;
            removed.push(ifdir.path());
        }
        let _ = std::fs::remove_dir(e.path());
        // Its run directory (owner locks, the firewall's rule descriptions) goes too: the inode can
        // be reused by a new namespace, which must not inherit them.
        let run = PathBuf::from(crate::owner::RUN_DIR).join(ino.to_string());
        if run.exists() {
            std::fs::remove_dir_all(&run)?;
        }
    }
    Ok(removed)
}

fn remove_pins(root: &Path) -> Result<(), KernelError> {
    if root.join("link").exists() {
        let pinned = PinnedLink::from_pin(root.join("link")).map_err(|e| KernelError::Load(format!("opening the pinned link: {e}")))?;
        let link = pinned.unpin()?;
        let _ = link.detach();
    }
    for e in std::fs::read_dir(root)? {
        let p = e?.path();
        std::fs::remove_file(&p)?;
    }
    std::fs::remove_dir(root)?;
    Ok(())
}

/// The slot of packets the firewall does not evaluate (not IP).
pub const SLOT_NOT_IP: usize = 0xff;

/// What the program did to one replayed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimVerdict {
    pub dropped: bool,
    /// The deciding slot: a rule index, `abi::FW_C_DEFAULT`, `abi::FW_C_BLOCKS`, or `SLOT_NOT_IP`.
    pub slot: usize,
}

/// The what-if replay: the XDP program, loaded but not attached, with a proposed rule set in fresh
/// maps; each packet runs through BPF_PROG_TEST_RUN with the clock set to its timestamp.
pub struct Simulator {
    ebpf: Ebpf,
    maps: FwMaps,
}

impl Simulator {
    /// `start_ns`: the clock at which the rules are applied (TTLs count from it), e.g. the first
    /// packet's timestamp.
    pub fn new(c: &Compiled, start_ns: u64, cap: FwCapacity) -> Result<Simulator, KernelError> {
        let mut ebpf = loader(cap).load(XDP_INGRESS_OBJ).map_err(classify_load_error)?;
        load_xdp(&mut ebpf)?;
        let mut maps = FwMaps::from_ebpf(&mut ebpf)?;
        maps.prefix_cap = cap.prefixes;
        let mut cfg = maps.config()?;
        cfg.clock_ns = start_ns.max(1);
        maps.set_config(cfg)?;
        maps.apply(c, start_ns)?;
        let mut cfg = maps.config()?;
        cfg.features &= !abi::FEAT_FW_DRYRUN; // the replay reports what enforcing would do
        maps.set_config(cfg)?;
        Ok(Simulator { ebpf, maps })
    }

    /// Runs one frame at time `ts_ns` (the clock the program reads).
    pub fn run(&mut self, frame: &[u8], ts_ns: u64) -> Result<SimVerdict, KernelError> {
        let mut cfg = self.maps.config()?;
        cfg.clock_ns = ts_ns.max(1);
        self.maps.set_config(cfg)?;
        let prog: &Xdp = self.ebpf.program("rxray_xdp").expect("loaded").try_into().expect("XDP");
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        let r = prog.test_run(opts).map_err(|e| KernelError::Load(format!("BPF_PROG_TEST_RUN: {e}")))?;
        let a: Array<&MapData, u32> = Array::try_from(&self.maps.last).map_err(merr("rxray_fw_last"))?;
        let last = a.get(&0, 0).map_err(merr("rxray_fw_last"))?;
        Ok(SimVerdict { dropped: r.return_value == 1, slot: (last >> 8) as usize })
    }

    /// Times one frame for benchmarks: `repeat` runs through BPF_PROG_TEST_RUN on the kernel's own
    /// clocks (clock_ns = 0, as on an interface, so the timing includes the clock reads the replay
    /// skips). Returns the XDP action of the last run and the kernel's mean duration per run.
    /// Rate-limit buckets then hold real clock times: do not mix with [`Simulator::run`] on one
    /// rule set with limits.
    pub fn time(&mut self, frame: &[u8], repeat: u32) -> Result<(u32, std::time::Duration), KernelError> {
        let mut cfg = self.maps.config()?;
        if cfg.clock_ns != 0 {
            cfg.clock_ns = 0;
            self.maps.set_config(cfg)?;
        }
        let prog: &Xdp = self.ebpf.program("rxray_xdp").expect("loaded").try_into().expect("XDP");
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat.max(1);
        let r = prog.test_run(opts).map_err(|e| KernelError::Load(format!("BPF_PROG_TEST_RUN: {e}")))?;
        Ok((r.return_value, r.duration))
    }

    /// The loaded program, for benchmarks that chain into it (a tail call from a program that varies
    /// the frame between test runs).
    pub fn program(&self) -> &Xdp {
        self.ebpf.program("rxray_xdp").expect("loaded").try_into().expect("XDP")
    }

    /// The rule set's counters after the replay.
    pub fn counters(&self) -> Result<Vec<abi::FwCounter>, KernelError> {
        self.maps.counters()
    }
}

/// The kernel's code for a rule's action (enum rxray_fw_action).
fn action_code(a: rxray_engine::firewall::rules::Action) -> u8 {
    use rxray_engine::firewall::rules::Action;
    match a {
        Action::Allow => abi::FWA_ALLOW,
        Action::Deny => abi::FWA_DENY,
        Action::Limit => abi::FWA_LIMIT,
    }
}

/// The kernel's code for a rate limit's bucket key (enum rxray_fw_limit_by).
fn limit_by_code(k: rxray_engine::firewall::LimitKey) -> u8 {
    use rxray_engine::firewall::LimitKey;
    match k {
        LimitKey::Rule => abi::FWL_RULE,
        LimitKey::Src => abi::FWL_SRC,
        LimitKey::Dport => abi::FWL_DPORT,
    }
}

