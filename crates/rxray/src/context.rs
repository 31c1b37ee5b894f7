//! Kernel context joined to `flows` and `watch`: the process and cgroup that read each flow
//! (tp_btf/sock_recv_length, joined by the incoming 5-tuple, remote → local) and, for flows, the
//! drops per flow with the last reason (tp_btf/kfree_skb). Attached by default when available
//! (`--no-context` turns it off). Cost: the reader program runs after every recvmsg on the host
//! (filtered to this namespace first), the drop program on every freed-with-reason packet.
use crate::conns::Resolver;
use anyhow::{Context as _, Result};
use rxray_engine::event::Packet;
use rxray_engine::source::DropEvent;
use rxray_kernel::{btf, Drops, DropsOptions, LiveSource, ReaderTable, Readers};
use serde::Serialize;
use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

/// The process that read a flow, as printed.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ReaderOut {
    pub pid: u32,
    pub comm: String,
    /// readlink /proc/<pid>/exe; null when the process is gone.
    pub exe: Option<String>,
    pub cgroup_id: u64,
    /// The cgroup v2 path relative to the mount ("/" is the root); null when unknown.
    pub cgroup: Option<String>,
}

/// A flow's drops, as printed.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DropsOut {
    pub count: u64,
    /// The reason of the latest drop (the kernel's enum skb_drop_reason name).
    pub last_reason: Option<String>,
}

/// (proto, src, sport, dst, dport) of incoming packets.
type FlowTuple = (u8, IpAddr, u16, IpAddr, u16);

pub struct KernelContext {
    table: ReaderTable,
    refreshed: Option<Instant>,
    drops: bool,
    reasons: BTreeMap<u64, String>,
    per_flow: HashMap<FlowTuple, (u64, u32)>,
    resolver: Resolver,
    exes: HashMap<u32, Option<String>>,
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
        let ctx = KernelContext {
            table: ReaderTable::default(),
            refreshed: None,
            drops: drops.is_some(),
            reasons,
            per_flow: HashMap::new(),
            resolver: Resolver::new(),
            exes: HashMap::new(),
        };
        Some((ctx, Parts { readers, drops }))
    }

    /// Re-reads the readers map (at most every 200 ms unless `force`).
    pub fn refresh(&mut self, src: &LiveSource, force: bool) -> Result<()> {
        if force || self.refreshed.is_none_or(|t| t.elapsed() >= READERS_EVERY) {
            self.table = src.reader_table().context("reading the readers map")?;
            self.refreshed = Some(Instant::now());
        }
        Ok(())
    }

    /// Counts a drop against its flow.
    pub fn on_drop(&mut self, e: &DropEvent) {
        let (Some(src), Some(dst)) = (e.src, e.dst) else { return };
        let slot = self.per_flow.entry((e.proto, src, e.sport, dst, e.dport)).or_default();
        slot.0 += 1;
        slot.1 = e.reason;
    }

    /// The process that read the flow from `src:sport` to `dst:dport`, if one has.
    pub fn reader(&mut self, proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Option<ReaderOut> {
        let r = self.table.lookup(proto, src, sport, dst, dport)?.clone();
        let exe = self
            .exes
            .entry(r.pid)
            .or_insert_with(|| std::fs::read_link(format!("/proc/{}/exe", r.pid)).ok().map(|p| p.display().to_string()))
            .clone();
        Some(ReaderOut { pid: r.pid, comm: r.comm, exe, cgroup_id: r.cgroup_id, cgroup: self.resolver.cgroup_path(r.cgroup_id) })
    }

    /// The reader of the socket an incoming packet event was for (TCP and UDP only).
    pub fn reader_of(&mut self, p: &Packet) -> Option<ReaderOut> {
        let ip = p.ip.as_ref()?;
        let (sport, dport) = match (&p.tcp, &p.udp) {
            (Some(t), _) if ip.proto == 6 => (t.sport, t.dport),
            (_, Some(u)) if ip.proto == 17 => (u.sport, u.dport),
            _ => return None,
        };
        self.reader(ip.proto, ip.src, sport, ip.dst, dport)
    }

    /// What the context counted that it could not join: drop events the ring had no room for
    /// (their flows' drop counts are short by that many). JSON for the flows snapshot's totals.
    pub fn totals_json(&self, src: &LiveSource) -> serde_json::Value {
        let lost = src.drops().and_then(|d| d.totals().ok()).map(|t| t.lost);
        serde_json::json!({"readers": self.table.len(), "drops": self.drops, "drop_events_lost": lost})
    }

    /// The flow's drops (count 0 when none, or when drops are not attached).
    pub fn drops(&self, proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> DropsOut {
        match self.per_flow.get(&(proto, src, sport, dst, dport)) {
            Some((n, reason)) => DropsOut {
                count: *n,
                last_reason: Some(self.reasons.get(&u64::from(*reason)).cloned().unwrap_or_else(|| format!("reason_{reason}"))),
            },
            None => DropsOut::default(),
        }
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
