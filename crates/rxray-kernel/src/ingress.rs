//! The XDP ingress program: load it from the embedded object, configure it, attach it to
//! interfaces, and expose its ring buffer and counters. Dropping an `Ingress` detaches everything.
use crate::{abi, classify_load_error, KernelError, XDP_INGRESS_OBJ};
use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use std::ffi::CString;

/// How to attach XDP: in the driver (native), in the generic stack path, or native when the driver
/// supports it and generic otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Native,
    Generic,
    Auto,
}

#[derive(Clone, Debug)]
pub struct IngressOptions {
    /// Ring-buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Payload bytes copied per event (0..=256).
    pub payload_snap: u32,
    /// Emit one event per packet.
    pub events: bool,
}

impl Default for IngressOptions {
    fn default() -> Self {
        IngressOptions { ring_bytes: 8 << 20, payload_snap: abi::PAYLOAD_DEFAULT, events: true }
    }
}

#[derive(Clone, Debug)]
pub struct Attached {
    pub iface: String,
    pub ifindex: u32,
    /// "native" or "generic".
    pub mode: &'static str,
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
}

pub struct Ingress {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
    attached: Vec<Attached>,
    config: abi::Config,
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

impl Ingress {
    /// Loads and verifies the program; nothing is attached yet.
    pub fn load(opts: &IngressOptions) -> Result<Self, KernelError> {
        let page = 4096u32;
        if !opts.ring_bytes.is_power_of_two() || opts.ring_bytes < page {
            return Err(KernelError::Load(format!(
                "ring buffer size {} is not a power of two of at least {page} bytes",
                opts.ring_bytes
            )));
        }
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("rxray_events", opts.ring_bytes)
            .load(XDP_INGRESS_OBJ)
            .map_err(classify_load_error)?;
        let prog: &mut Xdp = ebpf
            .program_mut("rxray_xdp")
            .ok_or_else(|| KernelError::Load("program rxray_xdp missing from the object".into()))?
            .try_into()
            .map_err(|e| KernelError::Load(format!("{e}")))?;
        prog.load().map_err(classify_load_error)?;
        let ring_map = ebpf
            .take_map("rxray_events")
            .ok_or(KernelError::Map { map: "rxray_events", detail: "missing from the object".into() })?;
        let ring = RingBuf::try_from(ring_map)
            .map_err(|e| KernelError::Map { map: "rxray_events", detail: e.to_string() })?;
        let config = abi::Config {
            features: if opts.events { abi::FEAT_EVENTS } else { 0 },
            payload_snap: opts.payload_snap.min(abi::PAYLOAD_MAX as u32),
            clock_ns: 0,
            // A batch of about 1/16 of the ring; readers poll at least every 100 ms for the rest.
            wakeup_bytes: (opts.ring_bytes / 16).max(4096) as u64,
        };
        let mut me = Ingress { ebpf, ring, attached: Vec::new(), config };
        me.write_config()?;
        Ok(me)
    }

    fn write_config(&mut self) -> Result<(), KernelError> {
        let map = self
            .ebpf
            .map_mut("rxray_config")
            .ok_or(KernelError::Map { map: "rxray_config", detail: "missing from the object".into() })?;
        let mut arr: Array<&mut MapData, abi::Config> =
            Array::try_from(map).map_err(|e| KernelError::Map { map: "rxray_config", detail: e.to_string() })?;
        arr.set(0, self.config, 0).map_err(|e| KernelError::Map { map: "rxray_config", detail: e.to_string() })
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

    /// Attaches to `iface`. `Auto` tries native first and falls back to generic.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<Attached, KernelError> {
        let ifindex = ifindex_of(iface)?;
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
        };
        let mut errors = Vec::new();
        for (m, name) in tries {
            match prog.attach_to_if_index(ifindex, *m) {
                Ok(_) => {
                    let a = Attached { iface: iface.to_string(), ifindex, mode: name };
                    self.attached.push(a.clone());
                    return Ok(a);
                }
                Err(e) => errors.push(format!("{name}: {e}{}", source_chain(&e))),
            }
        }
        Err(KernelError::Attach { iface: iface.to_string(), detail: errors.join("; ") })
    }

    pub fn attached(&self) -> &[Attached] {
        &self.attached
    }

    /// The interface name for an ifindex this program is attached to.
    pub fn iface_name(&self, ifindex: u32) -> &str {
        self.attached.iter().find(|a| a.ifindex == ifindex).map(|a| a.iface.as_str()).unwrap_or("?")
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
        })
    }
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
