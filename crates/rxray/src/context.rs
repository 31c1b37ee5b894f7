//! Kernel context joined to `flows` and `watch`: the process and cgroup that read each flow
//! (tp_btf/sock_recv_length, joined by the incoming 5-tuple, remote → local) and, for flows, the
//! drops per flow with the last reason (tp_btf/kfree_skb). Attached by default when available
//! (`--no-context` turns it off). Cost: the reader program runs after every recvmsg on the host
//! (filtered to this namespace first), the drop program on every freed-with-reason packet.
use crate::records::flows::ContextTotals;
use anyhow::{Context as _, Result};
use rxray_engine::context::FlowContext;
pub use rxray_engine::context::{DropsOut, ReaderOut};
use rxray_engine::event::Packet;
use rxray_engine::source::DropEvent;
use rxray_kernel::os::LinuxOs;
use rxray_kernel::{btf, Drops, DropsOptions, LiveSource, Readers};
use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

/// The engine's joins (`FlowContext`) on this host's OS, with the readers table re-read as due.
pub struct KernelContext {
    joins: FlowContext,
    os: LinuxOs,
    refreshed: Option<Instant>,
    drops: bool,
}

/// How often `watch` re-reads the readers map (flows re-read it once per refresh).
const READERS_EVERY: Duration = Duration::from_millis(200);

impl KernelContext {
    /// Attaches the reader program (and, with `drops_on`, the drop program on those ifindexes,
    /// with a ring of that many bytes).
    /// `None` with one warning when the kernel cannot: the command then runs without context.
    /// The programs go into the live source (`with_context`), which reads them.
    pub fn attach(drops_on: Option<(&[u32], u32)>) -> Option<(KernelContext, Parts)> {
        let netns = rxray_kernel::drops::current_netns_ino().ok();
        let readers = match Readers::attach(netns) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("rxray: no process per flow ({e}); --no-context hides this warning");
                return None;
            }
        };
        let mut drops = None;
        let mut reasons = BTreeMap::new();
        if let Some((ifindexes, ring_bytes)) = drops_on {
            let opts = DropsOptions { ring_bytes, netns_ino: netns, ifindexes: ifindexes.to_vec(), events: true };
            match Drops::attach(&opts).and_then(|d| Ok((d, btf::drop_reasons(Path::new(btf::VMLINUX)).map_err(|e| {
                rxray_kernel::KernelError::Load(format!("drop-reason names: {e}"))
            })?))) {
                Ok((d, r)) => {
                    drops = Some(d);
                    reasons = r;
                }
                Err(e) => eprintln!("rxray: no drops per flow ({e})"),
            }
        }
        let ctx = KernelContext { joins: FlowContext::new(reasons), os: LinuxOs::new(), refreshed: None, drops: drops.is_some() };
        Some((ctx, Parts { readers, drops }))
    }

    /// Re-reads the readers map (at most every 200 ms unless `force`).
    pub fn refresh(&mut self, src: &LiveSource, force: bool) -> Result<()> {
        if force || self.refreshed.is_none_or(|t| t.elapsed() >= READERS_EVERY) {
            self.joins.set_readers(src.reader_table().context("reading the readers map")?);
            self.refreshed = Some(Instant::now());
        }
        Ok(())
    }

    /// Counts a drop against its flow.
    pub fn on_drop(&mut self, e: &DropEvent) {
        self.joins.on_drop(e);
    }

    /// The process that read the flow from `src:sport` to `dst:dport`, if one has.
    pub fn reader(&mut self, proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Option<ReaderOut> {
        self.joins.reader(&mut self.os, proto, src, sport, dst, dport)
    }

    /// The reader of the socket an incoming packet was for (TCP and UDP only).
    pub fn reader_of(&mut self, p: &Packet) -> Option<ReaderOut> {
        self.joins.reader_of(&mut self.os, p)
    }

    /// What the context counted that it could not join: drop events the ring had no room for
    /// (their flows' drop counts are short by that many), for the flows snapshot's `context`.
    pub fn context_totals(&self, src: &LiveSource) -> ContextTotals {
        let lost = src.drops().and_then(|d| d.totals().ok()).map(|t| t.lost);
        ContextTotals { drop_events_lost: lost, drops: self.drops, readers: self.joins.readers().len() }
    }

    /// The flow's drops (count 0 when none, or when drops are not attached).
    pub fn drops(&self, proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> DropsOut {
        self.joins.drops(proto, src, sport, dst, dport)
    }
}

/// The programs the kernel context needs, for the live source to read.
pub struct Parts {
    readers: Readers,
    drops: Option<Drops>,
}

/// Adds the context's programs (if it attached) to the source.
pub fn with_context(src: LiveSource, ctx: Option<(KernelContext, Parts)>) -> (LiveSource, Option<KernelContext>) {
    match ctx {
        None => (src, None),
        Some((c, p)) => {
            let src = src.with_readers(p.readers);
            (if let Some(d) = p.drops { src.with_drops(d) } else { src }, Some(c))
        }
    }
}
