//! `rxray drops`: every packet the kernel drops in this network namespace, with the kernel's reason
//! and the function that dropped it, live (text or JSON Lines), then counts per reason and per flow.
use crate::{line::clock_time, session};
use anyhow::{Context, Result};
use rxray_engine::source::{DropEvent, Event};
use rxray_kernel::{btf, kallsyms::Kallsyms, Drops, DropsOptions, LiveSource};
use rxray_wire::ipproto::{self, Spelling};
use std::{
    collections::{BTreeMap, HashMap},
    io,
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

#[derive(clap::Args)]
#[command(mut_arg("json", |a| a.help("JSON Lines: one object per drop; the summary goes to stderr as `{\"summary\": ...}`")))]
#[command(mut_arg("interval", |a| a.help("Also print the counts per reason every S seconds (0: only at exit)")))]
#[command(mut_arg("count", |a| a.help("Exit after this many drops")))]
pub struct DropsArgs {
    /// Only drops on this interface (repeatable). Default: every interface in this namespace.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
    #[command(flatten)]
    pub report: crate::args::Report,
    #[command(flatten)]
    pub ring: crate::args::Ring,
    /// Test aid: wait this long after attaching before reading drops (forces ring-buffer loss).
    #[arg(long = "stall-ms", default_value_t = 0, hide = true)]
    pub stall_ms: u64,
    /// Attach even when an agent runs here (with -i, a command joins the agent that owns those
    /// interfaces; docs/agent.md, "Joining the agent").
    #[arg(long)]
    pub standalone: bool,
}

pub use crate::records::drops::DropRecord;
use crate::records::drops::{DropCounts, DropFlow, DropsSummary};
use crate::records::Summary;
use crate::sinks::{AsText, Lines, Sink};
use std::io::Write;

/// Names for reason numbers (from the kernel's BTF) and interface indexes (cached).
pub(crate) struct Names {
    reasons: BTreeMap<u64, String>,
    syms: Kallsyms,
    ifaces: HashMap<u32, String>,
}

impl Names {
    /// The kernel's reason names (BTF) and its symbols (kallsyms).
    pub(crate) fn load() -> Result<Names> {
        let reasons = btf::drop_reasons(Path::new(btf::VMLINUX))
            .context("reading drop-reason names from the kernel's BTF (needs CONFIG_DEBUG_INFO_BTF)")?;
        let syms = Kallsyms::load(Path::new(rxray_kernel::kallsyms::PROC_KALLSYMS));
        Ok(Names { reasons, syms, ifaces: HashMap::new() })
    }

    fn reason(&self, code: u32) -> String {
        self.reasons.get(&(code as u64)).cloned().unwrap_or_else(|| format!("reason_{code}"))
    }

    /// The name of a per-reason counter slot: the last one also counts every larger reason (the
    /// subsystem-encoded ones).
    pub(crate) fn slot(&self, code: u32) -> String {
        if code as usize == rxray_kernel::drops::REASON_SLOTS - 1 {
            "OTHER".to_string()
        } else {
            self.reason(code)
        }
    }

    fn iface(&mut self, ifindex: u32) -> String {
        if ifindex == 0 {
            return "-".into();
        }
        self.ifaces
            .entry(ifindex)
            .or_insert_with(|| rxray_kernel::ifname_of(ifindex).unwrap_or_else(|| format!("if{ifindex}")))
            .clone()
    }
}

fn record(e: &DropEvent, names: &mut Names) -> DropRecord {
    DropRecord {
        ts_ns: e.ts_ns,
        iface: names.iface(e.ifindex),
        ifindex: e.ifindex,
        reason: names.reason(e.reason),
        reason_code: e.reason,
        location: names.syms.format(e.location),
        len: e.len,
        protocol: e.protocol,
        ip_ver: e.ip_ver,
        proto: e.proto,
        src: e.src,
        dst: e.dst,
        sport: e.sport,
        dport: e.dport,
        tcp_flags: e.tcp_flags,
    }
}

fn endpoint(a: IpAddr, port: u16, proto: u8) -> String {
    let ports = matches!(proto, 6 | 17);
    match (a, ports) {
        (IpAddr::V6(_), true) => format!("[{a}]:{port}"),
        (_, true) => format!("{a}:{port}"),
        _ => a.to_string(),
    }
}

impl AsText for DropRecord {
    fn text(&self) -> String {
        format_line(self) + "\n"
    }
}

impl AsText for DropCounts {
    fn text(&self) -> String {
        format!("-- {}: {} drops, {} lost --\n{}", clock_time(self.now_ns), self.drops, self.lost, counts_table(&self.rows))
    }
}

/// `time iface reason at function+off: PROTO src > dst, length N`.
fn format_line(d: &DropRecord) -> String {
    let what = match (d.src, d.dst) {
        (Some(s), Some(t)) => {
            format!("{} {} > {}", ipproto::name_or_proto_n(d.proto, Spelling::Tcpdump), endpoint(s, d.sport, d.proto), endpoint(t, d.dport, d.proto))
        }
        _ => format!("ethertype 0x{:04x}", d.protocol),
    };
    format!("{} {} {} at {}: {}, length {}", clock_time(d.ts_ns), d.iface, d.reason, d.location, what, d.len)
}

/// (reason, proto, src, sport, dst, dport): the per-flow key of the summary.
pub(crate) type FlowKey = (String, u8, Option<IpAddr>, u16, Option<IpAddr>, u16);

/// One drop as `drops` prints it (a text line or a JSON line), counted in `flows`. The agent
/// renders a joined `drops`'s lines with this same function.
pub(crate) fn write_drop(out: &mut impl Write, e: &DropEvent, names: &mut Names, flows: &mut BTreeMap<FlowKey, u64>, json: bool) -> io::Result<()> {
    let d = record(e, names);
    *flows.entry((d.reason.clone(), d.proto, d.src, d.sport, d.dst, d.dport)).or_default() += 1;
    Lines::new(out, json).write(&d)
}

/// The periodic counts (`--interval`) at `now_ns`.
pub(crate) fn write_counts(out: &mut impl Write, names: &Names, totals: &rxray_kernel::DropTotals, now_ns: u64, json: bool) -> io::Result<()> {
    // The counts are a map: sorted keys, as they always printed.
    let counts = DropCounts::new(now_ns, count_rows(names, totals), totals.drops, totals.lost);
    Lines::new(out, json).write(&counts)
}

/// The per-reason counter slots, by name, in the kernel's order.
fn count_rows(names: &Names, t: &rxray_kernel::DropTotals) -> Vec<(String, u64)> {
    t.by_reason.iter().map(|(c, n)| (names.slot(*c), *n)).collect()
}

fn counts_table(rows: &[(String, u64)]) -> String {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut s = format!("{:<32} {:>10}\n", "REASON", "DROPS");
    for (r, n) in rows {
        s.push_str(&format!("{r:<32} {n:>10}\n"));
    }
    s
}

pub fn run(a: DropsArgs) -> Result<()> {
    session::require_root()?;
    let mut ifindexes = Vec::new();
    for i in &a.ifaces {
        ifindexes.push(rxray_kernel::ifindex_of(i)?);
    }
    let mut names = Names::load()?;
    if names.syms.is_empty() {
        eprintln!("rxray: /proc/kallsyms shows no addresses here (kptr_restrict); drop locations print as hex");
    }
    let stop = session::stop_flag()?;
    // With -i, the agent that owns those interfaces counts their drops: join it (without -i the
    // whole namespace is watched, more than the agent's interfaces: attach).
    if !a.standalone && !a.ifaces.is_empty() {
        let req = crate::join::JoinRequest {
            interfaces: a.ifaces.clone(),
            json: a.report.json,
            count: a.report.count,
            interval: a.report.period().map(|d| d.as_secs_f64()),
            ..Default::default()
        };
        if let Some(j) = crate::join::client::try_join("drops", req)? {
            return crate::join::client::run_stream(j, &stop, "watching drops on", Duration::from_millis(a.stall_ms));
        }
    }
    let netns = rxray_kernel::drops::current_netns_ino()?;
    let drops = Drops::attach(&DropsOptions { ring_bytes: a.ring.ring_size, netns_ino: Some(netns), ifindexes, events: true })
        .context("attaching the drop tracepoint (tp_btf/kfree_skb)")?;
    let scope = if a.ifaces.is_empty() { "every interface".to_string() } else { a.ifaces.join(", ") };
    eprintln!("rxray: watching drops in network namespace {netns} ({scope}); Ctrl-C to stop");

    if a.stall_ms > 0 {
        std::thread::sleep(Duration::from_millis(a.stall_ms));
    }
    let mut src = LiveSource::new().with_drops(drops);
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let start = Instant::now();
    let interval = a.report.period();
    let mut next_tick = interval.map(|i| Instant::now() + i);
    let mut delivered = 0u64;
    let mut flows: BTreeMap<FlowKey, u64> = BTreeMap::new();
    let mut pump = session::Pump::new(&stop);
    loop {
        while let Some(ev) = pump.next(&mut src) {
            let Event::Drop(ev) = ev? else { continue };
            delivered += 1;
            let res = write_drop(&mut out, ev, &mut names, &mut flows, a.report.json);
            if res.is_err() || a.report.count.is_some_and(|c| delivered >= c) {
                pump.finish();
            }
        }
        if let (Some(iv), Some(t)) = (interval, next_tick) {
            if Instant::now() >= t {
                let totals = src.drops().context("no drop program")?.totals()?;
                if write_counts(&mut out, &names, &totals, src.now_ns(), a.report.json).is_err() {
                    pump.finish();
                }
                next_tick = Some(t + iv);
            }
        }
        if out.flush().is_err() {
            pump.finish();
        }
        if !pump.again(&mut src) {
            break;
        }
    }
    drop(out);
    let totals = src.drops().context("no drop program")?.totals()?;
    eprint!("{}", summary_text(&names, &totals, &flows, delivered, start.elapsed().as_secs_f64(), a.report.json));
    Ok(())
}

/// What `drops` writes to stderr at exit: the counts per reason and the top flows (a joined
/// `drops`'s summary is rendered in the agent with this same function).
pub(crate) fn summary_text(names: &Names, totals: &rxray_kernel::DropTotals, flows: &BTreeMap<FlowKey, u64>, delivered: u64, seconds: f64, json: bool) -> String {
    let mut top: Vec<(&FlowKey, &u64)> = flows.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if json {
        let flows = top
            .iter()
            .map(|((reason, proto, src, sport, dst, dport), n)| DropFlow {
                dport: *dport,
                drops: **n,
                dst: *dst,
                proto: *proto,
                reason: reason.clone(),
                sport: *sport,
                src: *src,
            })
            .collect();
        let summary = DropsSummary {
            by_reason: count_rows(names, totals).into_iter().collect(),
            delivered,
            drops: totals.drops,
            flows,
            lost: totals.lost,
            no_netns: totals.no_netns,
            seconds,
        };
        format!("{}\n", crate::sinks::json_line(&Summary { summary }))
    } else {
        let mut s = format!(
            "\n{} drops, {} delivered, {} lost (ring buffer full)\n",
            totals.drops, delivered, totals.lost
        );
        s.push_str(&counts_table(&count_rows(names, totals)));
        if !top.is_empty() {
            s.push_str(&format!("\n{:<24} {:<6} {:>45} {:>45} {:>8}\n", "REASON", "PROTO", "SOURCE", "DESTINATION", "DROPS"));
            for ((reason, proto, src, sport, dst, dport), n) in top.iter().take(20) {
                let (s_, d_) = match (src, dst) {
                    (Some(s), Some(d)) => (endpoint(*s, *sport, *proto), endpoint(*d, *dport, *proto)),
                    _ => ("-".into(), "-".into()),
                };
                let p = if src.is_some() { ipproto::name_or_proto_n(*proto, Spelling::Tcpdump) } else { "-".into() };
                s.push_str(&format!("{reason:<24} {p:<6} {s_:>45} {d_:>45} {n:>8}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_reason_place_and_flow() {
        let d = DropRecord {
            ts_ns: 3_600_000_000_123,
            iface: "veth-b".into(),
            ifindex: 2,
            reason: "NO_SOCKET".into(),
            reason_code: 3,
            location: "__udp4_lib_rcv+0x1f0".into(),
            len: 30,
            protocol: 0x0800,
            ip_ver: 4,
            proto: 17,
            src: Some("198.18.0.1".parse().unwrap()),
            dst: Some("198.18.0.2".parse().unwrap()),
            sport: 4000,
            dport: 9999,
            tcp_flags: 0,
        };
        assert_eq!(
            format_line(&d),
            "01:00:00.000000123 veth-b NO_SOCKET at __udp4_lib_rcv+0x1f0: UDP 198.18.0.1:4000 > 198.18.0.2:9999, length 30"
        );
        let arp = DropRecord { ip_ver: 0, src: None, dst: None, protocol: 0x0806, ..d };
        assert!(format_line(&arp).ends_with(": ethertype 0x0806, length 30"));
    }
}
