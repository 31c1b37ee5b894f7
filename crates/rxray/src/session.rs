//! What every live command does first: check privileges, pick interfaces, load and attach the XDP
//! program, and install the stop signals (SIGINT, SIGTERM).
use crate::XdpModeArg;
use anyhow::{bail, Context, Result};
use rxray_kernel::{AttachMode, Ingress, IngressOptions};
use std::sync::{atomic::AtomicBool, Arc};

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
    require_root()?;
    let ifaces = if ifaces.is_empty() { up_interfaces()? } else { ifaces.to_vec() };
    if ifaces.is_empty() {
        bail!("no interface is up here; name one with -i (see `ip link`)");
    }
    let mut ingress = Ingress::load(&IngressOptions { command: command.to_string(), ..opts })?;
    let mode = match mode {
        XdpModeArg::Native => AttachMode::Native,
        XdpModeArg::Generic => AttachMode::Generic,
        XdpModeArg::Auto => AttachMode::Auto,
    };
    let mut names = Vec::new();
    for i in &ifaces {
        let att = ingress.attach(i, mode)?;
        names.push(format!("{} ({} XDP)", att.iface, att.mode));
    }
    eprintln!("rxray: {what} {}; Ctrl-C to stop", names.join(", "));
    Ok(ingress)
}
