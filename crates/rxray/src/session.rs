//! What every live command does first: check privileges, pick interfaces, load and attach the XDP
//! program, and install the stop signals (SIGINT, SIGTERM).
use crate::XdpModeArg;
use anyhow::{bail, Context, Result};
use rxray_engine::os::Os;
use rxray_kernel::os::LinuxOs;
use rxray_kernel::{AttachMode, Ingress, IngressOptions};
use rxray_engine::source::{Event, Source, SourceError};
use std::time::Duration;
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
    LinuxOs::new().up_interfaces().map_err(|e| anyhow::anyhow!(e))
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
        eprintln!("rxray: {what} {} (through the firewall's program); Ctrl-C to stop", ifaces[0]);
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

/// What one pass over a ring buffer did (the `pump` of a command that reads a ring itself).
pub struct Pass {
    /// Records read.
    pub read: usize,
    /// The reader is finished (count reached, output closed, ...).
    pub done: bool,
}

/// The read loop of a command that reads one ring itself (`rxray http`, until its ring is one of
/// the live source's): like `Pump`, over a raw ring descriptor.
pub fn pump(fd: std::os::fd::RawFd, stop: &AtomicBool, mut pass: impl FnMut() -> Result<Pass>) -> Result<()> {
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

/// Events a reader takes from a source in one pass before doing its per-pass work.
pub const BATCH: usize = 4096;

/// The read loop every command shares, over any source:
///
/// ```ignore
/// let mut p = Pump::new(&stop);
/// loop {
///     while let Some(ev) = p.next(&mut src) { /* one event */ }
///     /* per-pass work (flush, ticks); p.finish() when done */
///     if !p.again(&mut src) { break }
/// }
/// ```
///
/// A pass reads up to `BATCH` events. The loop ends when `finish` is called, when a finite source
/// has ended, or, once `stop` is set, after the first pass that read less than a full batch:
/// whatever was in the rings when the signal came has then been delivered. A pass that read
/// nothing waits on the source (100 ms at most).
pub struct Pump<'a> {
    stop: &'a AtomicBool,
    stopping: bool,
    read: usize,
    done: bool,
}

impl<'a> Pump<'a> {
    pub fn new(stop: &'a AtomicBool) -> Self {
        Pump { stop, stopping: stop.load(Ordering::Relaxed), read: 0, done: false }
    }

    /// The next event of this pass; `None` when the pass is over (a full batch, or nothing ready).
    pub fn next<'s, S: Source + ?Sized>(&mut self, src: &'s mut S) -> Option<Result<Event<'s>, SourceError>> {
        if self.done || self.read >= BATCH {
            return None;
        }
        let ev = src.next_event()?;
        self.read += 1;
        Some(ev)
    }

    /// Ends the loop after this pass.
    pub fn finish(&mut self) {
        self.done = true;
    }

    /// Whether to run another pass (waiting first when this one read nothing).
    pub fn again<S: Source + ?Sized>(&mut self, src: &mut S) -> bool {
        if self.done || (self.stopping && self.read < BATCH) || src.ended() {
            return false;
        }
        if self.read == 0 {
            src.wait(Duration::from_millis(100));
        }
        self.read = 0;
        self.stopping = self.stop.load(Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxray_engine::source::Event;

    /// A finite source of `n` ticks, counting its waits.
    struct Ticks {
        left: u64,
        waits: u32,
    }

    impl Source for Ticks {
        fn next_event(&mut self) -> Option<Result<Event<'_>, SourceError>> {
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            Some(Ok(Event::Tick(self.left)))
        }
        fn wait(&mut self, _: Duration) {
            self.waits += 1;
        }
        fn ended(&self) -> bool {
            self.left == 0
        }
    }

    fn drain(src: &mut Ticks, stop: &AtomicBool, finish_at: Option<u64>) -> (u64, usize) {
        let (mut seen, mut passes) = (0u64, 0usize);
        let mut p = Pump::new(stop);
        loop {
            passes += 1;
            while let Some(ev) = p.next(src) {
                ev.unwrap();
                seen += 1;
                if finish_at == Some(seen) {
                    p.finish();
                }
            }
            if !p.again(src) {
                return (seen, passes);
            }
        }
    }

    #[test]
    fn a_pass_reads_a_batch_and_a_finite_source_is_read_to_its_end() {
        let mut src = Ticks { left: BATCH as u64 * 2 + 5, waits: 0 };
        assert_eq!(drain(&mut src, &AtomicBool::new(false), None), (BATCH as u64 * 2 + 5, 3));
        assert_eq!(src.waits, 0, "never waits while events come");
    }

    #[test]
    fn finish_ends_the_loop_and_stop_ends_it_once_a_pass_reads_less_than_a_batch() {
        let mut src = Ticks { left: 100, waits: 0 };
        assert_eq!(drain(&mut src, &AtomicBool::new(false), Some(10)).0, 10);
        // Stopped before it started: what is there is still delivered, up to a short pass.
        let mut src = Ticks { left: BATCH as u64 + 1, waits: 0 };
        assert_eq!(drain(&mut src, &AtomicBool::new(true), None), (BATCH as u64 + 1, 2));
    }
}
