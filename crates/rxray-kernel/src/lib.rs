//! rxray's kernel side seen from user space: the embedded eBPF objects, loading and attaching them,
//! and the live source (`source::LiveSource`) that turns ring-buffer and map records into the
//! engine's typed events. Nothing above this crate sees ABI bytes.
pub mod abi;
pub mod bpffs;
pub mod btf;
pub mod capture;
pub mod conns;
mod decode;
pub mod drops;
pub mod filter;
pub mod firewall;
pub mod hook;
pub mod host;
pub mod http;
mod ingress;
pub mod kallsyms;
pub mod latency;
pub mod os;
pub mod owner;
mod pins;
pub mod readers;
pub mod source;
pub use ingress::{ifindex_of, ifname_of};

pub use decode::{decode, decode_conn, decode_drop, decode_flow, monotonic_ns, Clock};
pub use source::LiveSource;
pub use conns::{ConnTotals, Conns, ConnsOptions};
pub use drops::{DropTotals, Drops, DropsOptions};
pub use readers::{ReaderInfo, ReaderTable, Readers};
pub use latency::{LatencyEntry, LatencyStages, LatencyTotals};
pub use hook::{AttachMode, Hook};
pub use ingress::{Attached, Ingress, IngressOptions, Totals};

use std::io;

/// The smallest ring buffer: one page (the kernel's minimum).
pub const RING_MIN_BYTES: u32 = 4096;
/// The largest ring buffer rxray asks for: 1 GiB (the memory is locked, and the kernel's
/// `max_entries` limit for a ring is far above what any host should give one).
pub const RING_MAX_BYTES: u32 = 1 << 30;

/// The one rule for every ring buffer size (`--ring-size` of every command, and every loader):
/// a power of two from 4 KiB to 1 GiB. The error says the rule and the value.
pub fn check_ring_size(bytes: u64) -> Result<u32, String> {
    if !bytes.is_power_of_two() || bytes < RING_MIN_BYTES as u64 || bytes > RING_MAX_BYTES as u64 {
        return Err(format!(
            "ring buffer size {bytes} is not a power of two from {RING_MIN_BYTES} (4 KiB) to {RING_MAX_BYTES} (1 GiB) bytes"
        ));
    }
    Ok(bytes as u32)
}

/// The compiled XDP ingress program (bpf/xdp_ingress.bpf.c), checked against its sources at build time.
pub static XDP_INGRESS_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/xdp_ingress.bpf.o");
/// The observers' TC ingress build of the same program (bpf/tc_ingress.bpf.c).
pub static TC_INGRESS_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/tc_ingress.bpf.o");
/// The firewall's copy of the XDP program (bpf/xdp_fw.bpf.c): the same code with its maps pinned by name.
pub static XDP_FW_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/xdp_fw.bpf.o");
/// The firewall's TC (tcx) copy (bpf/tc_fw.bpf.c), for devices where frames arrive as skbs (veth).
pub static TC_FW_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/tc_fw.bpf.o");
/// The tracepoint programs (bpf/kernel.bpf.c): drops and TCP connections.
pub static KERNEL_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/kernel.bpf.o");
/// The benchmark floor: an XDP program that only returns XDP_PASS.
pub static BENCH_PASS_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/bench_pass.bpf.o");
/// The firewall benchmark's peer: a plain LPM trie per IP version, XDP_DROP on a listed source.
pub static BENCH_LPM_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/bench_lpm.bpf.o");
/// The firewall benchmark's source rotation: rewrites each run's source, then tail-calls the program under test.
pub static BENCH_ROTATE_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/bench_rotate.bpf.o");
/// The firewall benchmark's flood generator: XDP_TX under BPF_F_TEST_XDP_LIVE_FRAMES, rotating sources.
pub static BENCH_TX_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/bench_tx.bpf.o");
/// The latency benchmark's floors: tp_btf programs on the latency stages' tracepoints that only return.
pub static BENCH_TRACE_OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/obj/bench_trace.bpf.o");

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("rxray needs root (or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON) to load eBPF programs: run it with sudo")]
    NotPrivileged,
    #[error("this kernel has no usable BPF support ({0}); rxray needs Linux 5.18 or newer with CONFIG_BPF_SYSCALL")]
    NoBpf(String),
    #[error("no interface named {0:?} in this network namespace (list them with `ip link`)")]
    NoSuchInterface(String),
    #[error("{iface} is owned by {owner}; stop it first (or, if that process is gone, run `rxray detach -i {iface}`)")]
    Owned { iface: String, owner: owner::Owner },
    #[error("attaching XDP to {iface}: {detail}")]
    Attach { iface: String, detail: String },
    #[error(transparent)]
    FilterTooLarge(#[from] filter::FilterTooLarge),
    #[error("loading the eBPF program: {0}")]
    Load(String),
    #[error("eBPF map {map}: {detail}")]
    Map { map: &'static str, detail: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Maps a load-time error to the clear message a user needs (privileges, missing BPF).
pub(crate) fn classify_load_error(e: impl std::fmt::Display + std::fmt::Debug) -> KernelError {
    let text = format!("{e}: {e:?}");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 && (text.contains("EPERM") || text.contains("Operation not permitted") || text.contains("os error 1)")) {
        return KernelError::NotPrivileged;
    }
    if text.contains("ENOSYS") || text.contains("Function not implemented") {
        return KernelError::NoBpf(e.to_string());
    }
    KernelError::Load(text)
}

/// Loads the `tp_btf` program `name` of `ebpf` for tracepoint `tp` and attaches it (the link lives
/// as long as `ebpf`). A tracepoint this kernel lacks is named in the error.
pub(crate) fn attach_tp(ebpf: &mut aya::Ebpf, btf: &aya::Btf, name: &str, tp: &str) -> Result<(), KernelError> {
    let prog: &mut aya::programs::BtfTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| KernelError::Load(format!("program {name} missing from the object")))?
        .try_into()
        .map_err(|e| KernelError::Load(format!("{e}")))?;
    prog.load(tp, btf).map_err(|e| {
        let text = format!("{e:?}");
        if text.contains("UnknownBtfTypeName") || text.contains(&format!("btf_trace_{tp}")) {
            KernelError::Load(format!("this kernel has no {tp} tracepoint in its BTF (btf_trace_{tp})"))
        } else {
            classify_load_error(e)
        }
    })?;
    prog.attach().map_err(|e| KernelError::Load(format!("attaching to tp_btf/{tp}: {e}")))?;
    Ok(())
}

/// The running kernel's BTF, which every tracing program needs.
pub(crate) fn kernel_btf(what: &str) -> Result<aya::Btf, KernelError> {
    aya::Btf::from_sys_fs().map_err(|e| {
        KernelError::Load(format!(
            "reading the kernel's BTF (/sys/kernel/btf/vmlinux): {e}; {what} needs a kernel built with CONFIG_DEBUG_INFO_BTF"
        ))
    })
}
