//! The ingress program (XDP, or its TC build for observers): load it from the embedded object,
//! configure it, attach it to interfaces, and expose its ring buffer and counters. Dropping an
//! `Ingress` detaches everything.
use crate::{abi, classify_load_error, owner::OwnerLock, AttachMode, Hook, KernelError, TC_INGRESS_OBJ, XDP_INGRESS_OBJ};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{tc::TcAttachType, SchedClassifier, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use rxray_engine::filter::Filter;
use rxray_engine::source::{Count, FlowSnapshot};
use std::ffi::CString;

#[derive(Clone, Debug)]
pub struct IngressOptions {
    /// Ring-buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Payload bytes copied per event (0..=256).
    pub payload_snap: u32,
    /// Emit one event per packet.
    pub events: bool,
    /// Keep per-flow, per-interface and per-protocol counters.
    pub flows: bool,
    /// Flow-table capacity (entries).
    pub flow_capacity: u32,
    /// Copy whole packets (up to `capture_snap` bytes) to the capture ring.
    pub capture: bool,
    pub capture_snap: u32,
    /// Capture ring size in bytes (power of two).
    pub capture_ring_bytes: u32,
    /// What the owner of the attached interfaces is called (`watch`, `flows`, ...).
    pub command: String,
    /// Only packets this filter matches become events (evaluated in the program).
    pub filter: Option<Filter>,
    /// HTTP payload ring size in bytes (power of two); 0 when HTTP is not used (a page is mapped).
    pub http_ring_bytes: u32,
    /// The XDP build or the TC build of the program (see `hook::observer_hook_all`).
    pub hook: Hook,
}

impl Default for IngressOptions {
    fn default() -> Self {
        IngressOptions {
            ring_bytes: 8 << 20,
            payload_snap: abi::PAYLOAD_DEFAULT,
            events: true,
            flows: true,
            flow_capacity: 65536,
            command: "rxray".into(),
            capture: false,
            capture_snap: abi::CAP_SNAP_MAX,
            capture_ring_bytes: 32 << 20,
            filter: None,
            http_ring_bytes: 0,
            hook: Hook::Xdp,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Attached {
    pub iface: String,
    pub ifindex: u32,
    /// "native" or "generic" (XDP), "tc" (TC ingress), or "the firewall's" (its XDP program).
    pub mode: &'static str,
}

impl Attached {
    /// The hook in words, for the start line: "native XDP", "TC ingress", ...
    pub fn hook_name(&self) -> String {
        match self.mode {
            "tc" => "TC ingress".into(),
            m => format!("{m} XDP"),
        }
    }
}

/// Counters summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub packets: u64,
    pub bytes: u64,
    pub events: u64,
    pub lost: u64,
    pub malformed: u64,
    /// Per malformed category, indexed like `abi::MALFORMED_NAMES`.
    pub malformed_by: [u64; abi::MAL_COUNT],
    /// Packets of new flows that found the flow table full.
    pub flow_insert_failed: u64,
    /// Later fragments counted in the fragments bucket.
    pub frag_unattributed: u64,
    /// Packets whose interface found the interface table full.
    pub iface_insert_failed: u64,
    /// Packets written whole to the capture ring, and those it had no room for.
    pub captured: u64,
    pub capture_lost: u64,
    /// Packets the filter rejected (they made no event).
    pub filtered: u64,
}

/// Applies `f` to each counter of `a` with the same counter of `b` (one list of the fields, for
/// sums over interfaces and differences since a moment).
fn zip_totals(a: &mut Totals, b: &Totals, f: impl Fn(u64, u64) -> u64) {
    for (x, y) in [
        (&mut a.packets, b.packets),
        (&mut a.bytes, b.bytes),
        (&mut a.events, b.events),
        (&mut a.lost, b.lost),
        (&mut a.malformed, b.malformed),
        (&mut a.flow_insert_failed, b.flow_insert_failed),
        (&mut a.frag_unattributed, b.frag_unattributed),
        (&mut a.iface_insert_failed, b.iface_insert_failed),
        (&mut a.captured, b.captured),
        (&mut a.capture_lost, b.capture_lost),
        (&mut a.filtered, b.filtered),
    ] {
        *x = f(*x, y);
    }
    for (x, y) in a.malformed_by.iter_mut().zip(b.malformed_by) {
        *x = f(*x, y);
    }
}

impl Totals {
    /// Adds another program's counters (a sum over interfaces).
    pub fn add(&mut self, other: &Totals) {
        zip_totals(self, other, u64::saturating_add);
    }

    /// What was counted since `base` was read (never negative).
    pub fn since(&self, base: &Totals) -> Totals {
        let mut d = self.clone();
        zip_totals(&mut d, base, u64::saturating_sub);
        d
    }

    /// The malformed categories that counted something, by name.
    pub fn malformed_named(&self) -> Vec<(&'static str, u64)> {
        abi::MALFORMED_NAMES.iter().zip(self.malformed_by.iter()).skip(1).filter(|(_, n)| **n > 0).map(|(k, n)| (*k, *n)).collect()
    }
}

pub struct Ingress {
    // Field order is drop order: the ring and program (detaching every link) go before the locks.
    ring: RingBuf<MapData>,
    ebpf: Ebpf,
    hook: Hook,
    attached: Vec<Attached>,
    config: abi::Config,
    locks: Vec<OwnerLock>,
    command: String,
    /// Observing through the firewall's attached program (shared maps): nothing of ours is
    /// attached, and at the end only our features are turned off.
    adopted: bool,
    /// The sizes of the event ring and the capture ring, which set the wake-up threshold.
    rings: RingSizes,
}

/// The rings' sizes in bytes, from which the reader's wake-up threshold follows.
#[derive(Clone, Copy, Debug)]
struct RingSizes {
    events: u64,
    capture: u64,
}

impl RingSizes {
    /// A batch of about 1/16 of the smallest ring being written (at least a page), so that
    /// neither ring fills before its reader is woken; readers poll at least every 100 ms for the
    /// rest. Events turned on later (a joined `watch` on an agent that reads only the capture
    /// ring) bring the threshold down to the event ring's with them.
    fn wakeup_bytes(self, features: u32) -> u64 {
        let events = features & abi::FEAT_EVENTS != 0;
        let capture = features & abi::FEAT_CAPTURE != 0;
        let ring = match (events, capture) {
            (true, true) => self.events.min(self.capture),
            (false, true) => self.capture,
            _ => self.events,
        };
        (ring / 16).max(4096)
    }
}

/// Config features that belong to the firewall, not to an observer.
const FW_FEATURES: u32 = abi::FEAT_FIREWALL | abi::FEAT_FW_DRYRUN;

impl Drop for Ingress {
    fn drop(&mut self) {
        if self.adopted {
            self.config.features = 0; // observation off; write_config keeps the firewall's bits
            let _ = self.write_config();
        }
    }
}

pub fn ifindex_of(iface: &str) -> Result<u32, KernelError> {
    let c = CString::new(iface).map_err(|_| KernelError::NoSuchInterface(iface.to_string()))?;
    // SAFETY: c is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(KernelError::NoSuchInterface(iface.to_string()));
    }
    Ok(idx)
}

/// The name of interface `ifindex` in this network namespace; `None` when there is none.
pub fn ifname_of(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    Some(unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

impl Ingress {
    /// Loads and verifies the program; nothing is attached yet.
    pub fn load(opts: &IngressOptions) -> Result<Self, KernelError> {
        if let Some(f) = &opts.filter {
            crate::filter::compile(f)?; // a filter too large for the kernel fails before any loading
        }
        crate::check_ring_size(opts.ring_bytes as u64).map_err(KernelError::Load)?;
        if opts.capture {
            crate::check_ring_size(opts.capture_ring_bytes as u64).map_err(|e| KernelError::Load(format!("capture {e}")))?;
        }
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("rxray_events", opts.ring_bytes)
            .map_max_entries("rxray_flows", opts.flow_capacity.max(1))
            .map_max_entries("rxray_cap", if opts.capture { opts.capture_ring_bytes } else { 4096 })
            .map_max_entries("rxray_http", opts.http_ring_bytes.max(4096))
            .load(match opts.hook {
                Hook::Xdp => XDP_INGRESS_OBJ,
                Hook::Tc => TC_INGRESS_OBJ,
            })
            .map_err(classify_load_error)?;
        match opts.hook {
            Hook::Xdp => {
                load_xdp(&mut ebpf)?;
            }
            Hook::Tc => load_tc(&mut ebpf)?,
        }
        let ring_map = ebpf
            .take_map("rxray_events")
            .ok_or(KernelError::Map { map: "rxray_events", detail: "missing from the object".into() })?;
        let ring = RingBuf::try_from(ring_map)
            .map_err(|e| KernelError::Map { map: "rxray_events", detail: e.to_string() })?;
        let config = Self::config_for(opts);
        let mut me = Ingress {
            ring,
            ebpf,
            hook: opts.hook,
            attached: Vec::new(),
            config,
            locks: Vec::new(),
            command: opts.command.clone(),
            adopted: false,
            rings: RingSizes { events: opts.ring_bytes as u64, capture: opts.capture_ring_bytes as u64 },
        };
        me.write_config()?;
        if opts.filter.is_some() {
            me.set_filter(opts.filter.as_ref())?;
        }
        Ok(me)
    }

    fn config_for(opts: &IngressOptions) -> abi::Config {
        abi::Config {
            features: if opts.events { abi::FEAT_EVENTS } else { 0 }
                | if opts.flows { abi::FEAT_FLOWS } else { 0 }
                | if opts.capture { abi::FEAT_CAPTURE } else { 0 },
            payload_snap: opts.payload_snap.min(abi::PAYLOAD_MAX as u32),
            clock_ns: 0,
            // Set from the features by `write_config` (see `RingSizes::wakeup_bytes`).
            wakeup_bytes: 0,
            capture_snap: opts.capture_snap.clamp(1, abi::CAP_SNAP_MAX),
            _pad0: 0,
        }
    }

    /// Observes `iface` through the firewall's program already attached there: the firewall's
    /// object is loaded with its pin directory, so its maps are the pinned ones (ring, counters,
    /// config), and nothing new is attached. Turning observation on or off never touches the rules.
    pub fn adopt(iface: &str, opts: &IngressOptions) -> Result<Self, KernelError> {
        if let Some(f) = &opts.filter {
            crate::filter::compile(f)?;
        }
        let ifindex = ifindex_of(iface)?;
        let root = crate::firewall::pin_root(ifindex);
        let lock = OwnerLock::acquire(ifindex, &opts.command).map_err(|e| match e {
            Ok(owner) => KernelError::Owned { iface: iface.to_string(), owner },
            Err(io) => KernelError::Io(io),
        })?;
        // Every map is opened from its pin, but aya sizes what it maps from the loader's view, so the
        // loader must be told the pinned sizes (a ring read with the wrong mask is garbage).
        let sizes = pinned_sizes(&root)?;
        crate::pins::check(&root, crate::XDP_FW_OBJ, iface)?;
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(&root);
        for (name, n) in &sizes {
            loader.map_max_entries(name, *n);
        }
        let mut ebpf = loader.load(crate::XDP_FW_OBJ).map_err(classify_load_error)?;
        let ring_map = ebpf
            .take_map("rxray_events")
            .ok_or(KernelError::Map { map: "rxray_events", detail: "missing from the object".into() })?;
        let ring = RingBuf::try_from(ring_map).map_err(|e| KernelError::Map { map: "rxray_events", detail: e.to_string() })?;
        let config = Self::config_for(opts);
        // The rings are the firewall's (their sizes were set at install).
        let pinned = |map: &str, or: u32| sizes.iter().find(|(n, _)| n == map).map_or(or, |(_, n)| *n) as u64;
        let rings = RingSizes { events: pinned("rxray_events", opts.ring_bytes), capture: pinned("rxray_cap", opts.capture_ring_bytes) };
        let mut me = Ingress {
            ring,
            ebpf,
            hook: Hook::Xdp,
            attached: vec![Attached { iface: iface.to_string(), ifindex, mode: "the firewall's" }],
            config,
            locks: vec![lock],
            command: opts.command.clone(),
            adopted: true,
            rings,
        };
        me.write_config()?;
        if opts.filter.is_some() {
            me.set_filter(opts.filter.as_ref())?;
        }
        Ok(me)
    }

    /// Writes our config; the firewall's feature bits are kept as they are in the map (a shared
    /// map when adopted; always zero otherwise).
    fn write_config(&mut self) -> Result<(), KernelError> {
        let map = self
            .ebpf
            .map_mut("rxray_config")
            .ok_or(KernelError::Map { map: "rxray_config", detail: "missing from the object".into() })?;
        let mut arr: Array<&mut MapData, abi::Config> =
            Array::try_from(map).map_err(|e| KernelError::Map { map: "rxray_config", detail: e.to_string() })?;
        let live = arr.get(&0, 0).map_err(|e| KernelError::Map { map: "rxray_config", detail: e.to_string() })?;
        self.config.wakeup_bytes = self.rings.wakeup_bytes(self.config.features);
        let mut c = self.config;
        c.features = (c.features & !FW_FEATURES) | (live.features & FW_FEATURES);
        arr.set(0, c, 0).map_err(|e| KernelError::Map { map: "rxray_config", detail: e.to_string() })
    }

    /// Installs `filter` in the XDP program (only matching packets become events), or removes the
    /// filter with `None`. The program is written before the feature is turned on.
    pub fn set_filter(&mut self, filter: Option<&Filter>) -> Result<(), KernelError> {
        let Some(f) = filter else {
            self.config.features &= !abi::FEAT_FILTER;
            return self.write_config();
        };
        let prog = crate::filter::compile(f)?;
        let map = self
            .ebpf
            .map_mut("rxray_filter")
            .ok_or(KernelError::Map { map: "rxray_filter", detail: "missing from the object".into() })?;
        let mut arr: Array<&mut MapData, abi::FilterProg> =
            Array::try_from(map).map_err(|e| KernelError::Map { map: "rxray_filter", detail: e.to_string() })?;
        arr.set(0, prog, 0).map_err(|e| KernelError::Map { map: "rxray_filter", detail: e.to_string() })?;
        self.config.features |= abi::FEAT_FILTER;
        self.write_config()
    }

    /// Turns per-packet events on or off without touching the attached program.
    pub fn set_events(&mut self, on: bool) -> Result<(), KernelError> {
        if on {
            self.config.features |= abi::FEAT_EVENTS;
        } else {
            self.config.features &= !abi::FEAT_EVENTS;
        }
        self.write_config()
    }

    /// Turns the copies of whole packets to the capture ring on or off (the ring must have been
    /// made with `capture`), without touching the attached program.
    pub fn set_capture(&mut self, on: bool) -> Result<(), KernelError> {
        self.set_feature(abi::FEAT_CAPTURE, on)
    }

    /// Whether whole packets are copied to the capture ring now.
    pub fn capturing(&self) -> bool {
        self.config.features & abi::FEAT_CAPTURE != 0
    }

    /// Sets or clears feature bits (`abi::FEAT_*`) in the live configuration.
    pub(crate) fn set_feature(&mut self, bit: u32, on: bool) -> Result<(), KernelError> {
        if on {
            self.config.features |= bit;
        } else {
            self.config.features &= !bit;
        }
        self.write_config()
    }

    /// The loaded object, for the modules that add programs or read maps of it (latency).
    pub(crate) fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    pub(crate) fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Attaches to `iface`. The TC build attaches as a TC ingress classifier (mode `Auto` or `Tc`);
    /// the XDP build in `mode`, where `Auto` tries native first and falls back to generic.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<Attached, KernelError> {
        let ifindex = ifindex_of(iface)?;
        let lock = OwnerLock::acquire(ifindex, &self.command).map_err(|e| match e {
            Ok(owner) => KernelError::Owned { iface: iface.to_string(), owner },
            Err(io) => KernelError::Io(io),
        })?;
        if self.hook == Hook::Tc {
            if !matches!(mode, AttachMode::Auto | AttachMode::Tc) {
                return Err(KernelError::Attach { iface: iface.into(), detail: format!("the TC build of the program cannot attach in {mode:?} XDP mode") });
            }
            let prog: &mut SchedClassifier = self
                .ebpf
                .program_mut("rxray_tc")
                .expect("loaded in Ingress::load")
                .try_into()
                .expect("rxray_tc is a classifier");
            // tcx (a bpf_link, gone with the process) on Linux >= 6.6; clsact via netlink before.
            if let Err(e) = prog.attach(iface, TcAttachType::Ingress) {
                let first = format!("{e}{}", source_chain(&e));
                let _ = aya::programs::tc::qdisc_add_clsact(iface);
                prog.attach(iface, TcAttachType::Ingress).map_err(|e2| KernelError::Attach {
                    iface: iface.into(),
                    detail: format!("TC ingress: {first}; after adding a clsact qdisc: {e2}{}", source_chain(&e2)),
                })?;
            }
            let a = Attached { iface: iface.to_string(), ifindex, mode: "tc" };
            self.attached.push(a.clone());
            self.locks.push(lock);
            return Ok(a);
        }
        let prog: &mut Xdp = self
            .ebpf
            .program_mut("rxray_xdp")
            .expect("loaded in Ingress::load")
            .try_into()
            .expect("rxray_xdp is an XDP program");
        let tries: &[(XdpMode, &'static str)] = match mode {
            AttachMode::Native => &[(XdpMode::Driver, "native")],
            AttachMode::Generic => &[(XdpMode::Skb, "generic")],
            AttachMode::Auto => &[(XdpMode::Driver, "native"), (XdpMode::Skb, "generic")],
            AttachMode::Tc => {
                return Err(KernelError::Attach { iface: iface.into(), detail: "TC mode needs the TC build of the program (IngressOptions::hook)".into() })
            }
        };
        let mut errors = Vec::new();
        for (m, name) in tries {
            match prog.attach_to_if_index(ifindex, *m) {
                Ok(_) => {
                    let a = Attached { iface: iface.to_string(), ifindex, mode: name };
                    self.attached.push(a.clone());
                    self.locks.push(lock);
                    return Ok(a);
                }
                Err(e) => errors.push(format!("{name}: {e}{}", source_chain(&e))),
            }
        }
        let mut detail = errors.join("; ");
        if detail.contains("exists") || detail.contains("busy") {
            detail.push_str(&format!(
                " (another XDP program is attached to {iface}; `rxray ifaces` shows it, and `rxray detach -i {iface}` removes one a killed rxray left)"
            ));
        }
        Err(KernelError::Attach { iface: iface.to_string(), detail })
    }

    pub fn attached(&self) -> &[Attached] {
        &self.attached
    }

    /// The interface name for an ifindex this program is attached to.
    pub fn iface_name(&self, ifindex: u32) -> &str {
        self.attached.iter().find(|a| a.ifindex == ifindex).map(|a| a.iface.as_str()).unwrap_or("?")
    }

    /// The capture ring (whole packets in chunks); `None` after the first call.
    pub fn take_capture_ring(&mut self) -> Option<RingBuf<MapData>> {
        let map = self.ebpf.take_map("rxray_cap")?;
        RingBuf::try_from(map).ok()
    }

    pub fn ring(&mut self) -> &mut RingBuf<MapData> {
        &mut self.ring
    }

    /// The loaded program, e.g. for BPF_PROG_TEST_RUN.
    pub fn program(&self) -> &Xdp {
        self.ebpf.program("rxray_xdp").expect("loaded").try_into().expect("XDP")
    }

    /// The program and the ring buffer at once: run the one while another thread drains the other.
    pub fn split(&mut self) -> (&Xdp, &mut RingBuf<MapData>) {
        let prog = self.ebpf.program("rxray_xdp").expect("loaded").try_into().expect("XDP");
        (prog, &mut self.ring)
    }

    /// The flow table: every entry's counters, shared by all CPUs (see struct rxray_flow_stats).
    pub fn flows(&self) -> Result<Vec<(abi::FlowKey, abi::FlowStats)>, KernelError> {
        let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_flows", detail: e.to_string() };
        let map = self.ebpf.map("rxray_flows").ok_or(KernelError::Map { map: "rxray_flows", detail: "missing".into() })?;
        let h: HashMap<&MapData, abi::FlowKey, abi::FlowStats> = HashMap::try_from(map).map_err(err)?;
        let mut out = Vec::new();
        for item in h.iter() {
            match item {
                Ok(kv) => out.push(kv),
                // A flow deleted between listing its key and reading it is simply gone.
                Err(aya::maps::MapError::KeyNotFound) => continue,
                Err(e) => return Err(err(e)),
            }
        }
        Ok(out)
    }

    /// Removes the flows whose last packet came before `cutoff_mono_ns` (the
    /// kernel's monotonic clock), so a long-lived owner (the agent) keeps room in the table; returns
    /// the keys removed, decoded. Each entry is read again just before its removal, so a flow that
    /// moved meanwhile stays (a packet that lands between that read and the delete is lost, a window
    /// of microseconds on an idle flow).
    /// `may_remove` sees each idle flow's key first (e.g. only those whose last counts are stored).
    pub fn remove_idle_flows(&mut self, cutoff_mono_ns: u64, may_remove: impl Fn(&rxray_engine::flows::FlowKey) -> bool) -> Result<Vec<rxray_engine::flows::FlowKey>, KernelError> {
        let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_flows", detail: e.to_string() };
        let idle: Vec<abi::FlowKey> = self.flows()?.into_iter().filter(|(_, v)| v.last_ns < cutoff_mono_ns).map(|(k, _)| k).collect();
        if idle.is_empty() {
            return Ok(Vec::new());
        }
        let clock = crate::Clock::now();
        let names: Vec<(u32, String)> = self.attached.iter().map(|a| (a.ifindex, a.iface.clone())).collect();
        let map = self.ebpf.map_mut("rxray_flows").ok_or(KernelError::Map { map: "rxray_flows", detail: "missing".into() })?;
        let mut h: HashMap<&mut MapData, abi::FlowKey, abi::FlowStats> = HashMap::try_from(map).map_err(err)?;
        let mut gone = Vec::new();
        for k in idle {
            let name = names.iter().find(|(i, _)| *i == k.ifindex).map_or("?", |(_, n)| n.as_str());
            let key = crate::decode_flow(&k, &abi::FlowStats::default(), &clock, name).key;
            if !may_remove(&key) {
                continue;
            }
            let still_idle = match h.get(&k, 0) {
                Ok(v) => v.last_ns < cutoff_mono_ns,
                Err(_) => false,
            };
            if still_idle && h.remove(&k).is_ok() {
                gone.push(key);
            }
        }
        Ok(gone)
    }

    /// Per-protocol-class packets and bytes, indexed like `abi::PROTO_NAMES`.
    pub fn protocols(&self) -> Result<Vec<abi::Count>, KernelError> {
        let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_protos", detail: e.to_string() };
        let map = self.ebpf.map("rxray_protos").ok_or(KernelError::Map { map: "rxray_protos", detail: "missing".into() })?;
        let a: PerCpuArray<&MapData, abi::Count> = PerCpuArray::try_from(map).map_err(err)?;
        let mut out = Vec::new();
        for i in 0..abi::PROTO_NAMES.len() as u32 {
            let v = a.get(&i, 0).map_err(err)?;
            out.push(v.iter().fold(abi::Count::default(), |acc, c| abi::Count {
                packets: acc.packets + c.packets,
                bytes: acc.bytes + c.bytes,
            }));
        }
        Ok(out)
    }

    /// Per-interface packets and bytes (ifindex, count).
    pub fn interfaces(&self) -> Result<Vec<(u32, abi::Count)>, KernelError> {
        let err = |e: aya::maps::MapError| KernelError::Map { map: "rxray_ifaces", detail: e.to_string() };
        let map = self.ebpf.map("rxray_ifaces").ok_or(KernelError::Map { map: "rxray_ifaces", detail: "missing".into() })?;
        let h: PerCpuHashMap<&MapData, u32, abi::Count> = PerCpuHashMap::try_from(map).map_err(err)?;
        let mut sum: std::collections::BTreeMap<u32, abi::Count> = std::collections::BTreeMap::new();
        let mut add = |k: u32, c: &abi::Count| {
            let s = sum.entry(k).or_default();
            s.packets += c.packets;
            s.bytes += c.bytes;
        };
        for item in h.iter() {
            let (k, v) = item.map_err(err)?;
            v.iter().for_each(|c| add(k, c));
        }
        // The per-CPU slots hold most interfaces' counts (see struct rxray_iface_slot).
        let serr = |e: aya::maps::MapError| KernelError::Map { map: "rxray_iface_slots", detail: e.to_string() };
        let map = self.ebpf.map("rxray_iface_slots").ok_or(KernelError::Map { map: "rxray_iface_slots", detail: "missing".into() })?;
        let slots: PerCpuArray<&MapData, abi::IfaceSlot> = PerCpuArray::try_from(map).map_err(serr)?;
        for i in 0..abi::IFACE_SLOTS as u32 {
            for s in slots.get(&i, 0).map_err(serr)?.iter().filter(|s| s.c.packets != 0) {
                add(s.ifindex, &s.c);
            }
        }
        Ok(sum.into_iter().collect())
    }

    /// The flow table decoded into records, with the per-protocol and per-interface counters,
    /// stamped `clock.now_ns()`.
    pub fn flow_snapshot(&self, clock: &crate::Clock) -> Result<FlowSnapshot, KernelError> {
        Ok(FlowSnapshot {
            ts_ns: clock.now_ns(),
            flows: self.flow_records(clock)?,
            protocols: self.protocol_counts()?,
            interfaces: self.interface_counts()?,
        })
    }

    /// The flow table decoded into records (times on `clock`).
    pub fn flow_records(&self, clock: &crate::Clock) -> Result<Vec<rxray_engine::flows::FlowRecord>, KernelError> {
        Ok(self.flows()?.iter().map(|(k, v)| crate::decode_flow(k, v, clock, self.iface_name(k.ifindex))).collect())
    }

    /// Packets and bytes per protocol class, by name.
    pub fn protocol_counts(&self) -> Result<Vec<(&'static str, Count)>, KernelError> {
        Ok(self.protocols()?.iter().zip(abi::PROTO_NAMES.iter()).map(|(c, n)| (*n, Count { packets: c.packets, bytes: c.bytes })).collect())
    }

    /// Packets and bytes per interface: (ifindex, name, count).
    pub fn interface_counts(&self) -> Result<Vec<(u32, String, Count)>, KernelError> {
        Ok(self
            .interfaces()?
            .iter()
            .map(|(i, c)| (*i, self.iface_name(*i).to_string(), Count { packets: c.packets, bytes: c.bytes }))
            .collect())
    }

    pub fn totals(&self) -> Result<Totals, KernelError> {
        let map = self
            .ebpf
            .map("rxray_stats")
            .ok_or(KernelError::Map { map: "rxray_stats", detail: "missing from the object".into() })?;
        let arr: PerCpuArray<&MapData, abi::Stats> =
            PerCpuArray::try_from(map).map_err(|e| KernelError::Map { map: "rxray_stats", detail: e.to_string() })?;
        let per_cpu = arr.get(&0, 0).map_err(|e| KernelError::Map { map: "rxray_stats", detail: e.to_string() })?;
        let mut c = [0u64; abi::C_COUNT];
        for s in per_cpu.iter() {
            for (acc, v) in c.iter_mut().zip(s.c.iter()) {
                *acc += v;
            }
        }
        let mut malformed_by = [0u64; abi::MAL_COUNT];
        malformed_by.copy_from_slice(&c[abi::C_MAL_BASE..abi::C_MAL_BASE + abi::MAL_COUNT]);
        Ok(Totals {
            packets: c[abi::C_PACKETS],
            bytes: c[abi::C_BYTES],
            events: c[abi::C_EVENTS],
            lost: c[abi::C_LOST],
            malformed: c[abi::C_MALFORMED],
            malformed_by,
            flow_insert_failed: c[abi::C_FLOW_FAIL],
            frag_unattributed: c[abi::C_FRAG_BUCKET],
            iface_insert_failed: c[abi::C_IFACE_FAIL],
            captured: c[abi::C_CAP_PACKETS],
            capture_lost: c[abi::C_CAP_LOST],
            filtered: c[abi::C_FILTERED],
        })
    }
}

/// Verifies and loads the object's XDP program (rxray_xdp); nothing is attached.
pub(crate) fn load_xdp(ebpf: &mut Ebpf) -> Result<&mut Xdp, KernelError> {
    let prog: &mut Xdp = ebpf
        .program_mut("rxray_xdp")
        .ok_or_else(|| KernelError::Load("program rxray_xdp missing from the object".into()))?
        .try_into()
        .map_err(|e| KernelError::Load(format!("{e}")))?;
    prog.load().map_err(classify_load_error)?;
    Ok(prog)
}

/// Verifies and loads the TC build's classifier (rxray_tc); nothing is attached.
pub(crate) fn load_tc(ebpf: &mut Ebpf) -> Result<(), KernelError> {
    let prog: &mut SchedClassifier = ebpf
        .program_mut("rxray_tc")
        .ok_or_else(|| KernelError::Load("program rxray_tc missing from the object".into()))?
        .try_into()
        .map_err(|e| KernelError::Load(format!("{e}")))?;
    prog.load().map_err(classify_load_error)
}

/// max_entries of every map pinned under a firewall's pin root, by name.
fn pinned_sizes(root: &std::path::Path) -> Result<Vec<(String, u32)>, KernelError> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(root)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("rxray_") {
            continue;
        }
        if let Ok(md) = MapData::from_pin(e.path()) {
            if let Ok(info) = md.info() {
                v.push((name, info.max_entries()));
            }
        }
    }
    Ok(v)
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = String::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: u32 = abi::FEAT_EVENTS;
    const CAPTURE: u32 = abi::FEAT_CAPTURE;

    #[test]
    fn the_reader_is_woken_before_the_smallest_ring_being_written_fills() {
        // An agent reading only a 8 MiB capture ring, whose joined `watch` turns on events into a
        // 64 KiB event ring: the threshold must follow the event ring down (it stayed at 512 KiB,
        // so the 64 KiB ring filled between 100 ms polls and lost events).
        let agent = RingSizes { events: 64 << 10, capture: 8 << 20 };
        assert_eq!(agent.wakeup_bytes(CAPTURE), 512 << 10);
        assert_eq!(agent.wakeup_bytes(CAPTURE | EVENTS), 4 << 10);
        assert_eq!(agent.wakeup_bytes(EVENTS), 4 << 10);
        // `capture` alone: its own ring, not the one-page event ring it never writes.
        let capture = RingSizes { events: 4096, capture: 4 << 20 };
        assert_eq!(capture.wakeup_bytes(CAPTURE), 256 << 10);
        // `watch`: 1/16 of its ring, never below a page.
        assert_eq!(RingSizes { events: 8 << 20, capture: 4096 }.wakeup_bytes(EVENTS), 512 << 10);
        assert_eq!(RingSizes { events: 16 << 10, capture: 4096 }.wakeup_bytes(EVENTS), 4096);
    }
}
