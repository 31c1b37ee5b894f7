//! What every live command does first: check privileges, pick interfaces, load and attach the XDP
//! program, and install the stop signals (SIGINT, SIGTERM).
use crate::XdpModeArg;
use anyhow::{bail, Context, Result};
use rxray_kernel::{AttachMode, Ingress, IngressOptions};
use std::os::fd::RawFd;
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("rxray needs root to load eBPF programs: run it with sudo");
    }
    Ok(())
}

/// Every interface that is up, except loopback, in this namespace.
pub fn up_interfaces() -> Result<Vec<String>> {
    let mut v = Vec::new();
    for ent in std::fs::read_dir("/sys/class/net").context("listing /sys/class/net")? {
        let name = ent?.file_name().to_string_lossy().into_owned();
        let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags")).unwrap_or_default();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        // IFF_UP = 1, IFF_LOOPBACK = 8
        if flags & 1 != 0 && flags & 8 == 0 {
            v.push(name);
        }
    }
    v.sort();
    Ok(v)
}

pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handlers")?;
    }
    Ok(stop)
}

/// Loads the program and attaches it to `ifaces` (default: every up interface but loopback);
/// prints which interfaces and modes on stderr.
pub fn attach(ifaces: &[String], mode: XdpModeArg, opts: IngressOptions, command: &str, what: &str) -> Result<Ingress> {
    attach_then(ifaces, mode, opts, command, what, |_| Ok(())).map(|(i, ())| i)
}

/// Like `attach`, running `then` (attaching what goes with the program) before the announcement,
/// so everything is in place once the "Ctrl-C to stop" line is out.
pub fn attach_then<T>(
    ifaces: &[String],
    mode: XdpModeArg,
    opts: IngressOptions,
    command: &str,
    what: &str,
    then: impl FnOnce(&mut Ingress) -> Result<T>,
) -> Result<(Ingress, T)> {
    require_root()?;
    let ifaces = if ifaces.is_empty() { up_interfaces()? } else { ifaces.to_vec() };
    if ifaces.is_empty() {
        bail!("no interface is up here; name one with -i (see `ip link`)");
    }
    let opts = IngressOptions { command: command.to_string(), ..opts };
    // An interface with rxray's firewall already runs rxray's program: observe through it.
    let firewalled: Vec<&String> =
        ifaces.iter().filter(|i| rxray_kernel::ifindex_of(i).is_ok_and(rxray_kernel::firewall::installed)).collect();
    if !firewalled.is_empty() {
        if ifaces.len() > 1 {
            bail!(
                "{} {} rxray's firewall, which has its own program and maps: observe {} on its own (-i {})",
                firewalled.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                if firewalled.len() == 1 { "has" } else { "have" },
                if firewalled.len() == 1 { "it" } else { "each" },
                firewalled[0]
            );
        }
        let mut ingress = Ingress::adopt(&ifaces[0], &opts)?;
        let t = then(&mut ingress)?;
        eprintln!("rxray: {what} {} (through the firewall's XDP program); Ctrl-C to stop", ifaces[0]);
        return Ok((ingress, t));
    }
    let mode: AttachMode = mode.into();
    // Observers: TC ingress where native XDP would cost the device GRO (see rxray_kernel::hook).
    let opts = IngressOptions { hook: rxray_kernel::hook::observer_hook_all(&ifaces, mode), ..opts };
    let mut ingress = Ingress::load(&opts)?;
    let mut names = Vec::new();
    for i in &ifaces {
        let att = ingress.attach(i, mode)?;
        names.push(format!("{} ({})", att.iface, att.hook_name()));
    }
    let t = then(&mut ingress)?;
    eprintln!("rxray: {what} {}; Ctrl-C to stop", names.join(", "));
    Ok((ingress, t))
}

/// Records a reader takes from a ring buffer in one pass before doing its per-pass work.
pub const BATCH: usize = 4096;

/// What one pass over a ring buffer did.
pub struct Pass {
    /// Records read.
    pub read: usize,
    /// The reader is finished (count reached, output closed, ...).
    pub done: bool,
}

/// The read loop every ring-buffer reader shares. `pass` reads up to `BATCH` records and does its
/// per-pass work (flush, ticks). The loop ends when a pass says done, or, once `stop` is set, at
/// the first pass that read less than a full batch: whatever was in the ring when the signal came
/// has then been delivered. A pass that read nothing waits on `fd` (100 ms at most).
pub fn pump(fd: RawFd, stop: &AtomicBool, mut pass: impl FnMut() -> Result<Pass>) -> Result<()> {
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let p = pass()?;
        if p.done || (stopping && p.read < BATCH) {
            return Ok(());
        }
        if p.read == 0 {
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: pfd is a valid pollfd for the ring buffer's fd, which the caller keeps open.
            unsafe { libc::poll(&mut pfd, 1, 100) };
        }
    }
}
