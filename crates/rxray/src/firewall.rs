//! `rxray firewall`: apply a rules file, block and unblock prefixes with a TTL, list, count, replay a
//! capture through the proposed rules (simulate), and remove the firewall. The firewall's state is
//! pinned in the kernel, so every command opens it afresh and none has to keep running.
use crate::args::FileLimit;
use crate::records;
use crate::XdpModeArg;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use rxray_engine::cidr::parse_cidr;
use rxray_engine::firewall::{parse_rules, rules::parse_duration, Compiled, RuleSet};
use rxray_io::CaptureReader;
use rxray_kernel::firewall::{self as fw, FwCapacity, Firewall, Simulator, SLOT_NOT_IP};
use rxray_wire::{dissect::dissect, ipproto, LinkType};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum FirewallCmd {
    /// Validate a rules file and make it the live rule set, atomically (installs the firewall if needed).
    Apply(ApplyArgs),
    /// Validate a rules file only: errors with line and column, or a summary.
    Check {
        file: PathBuf,
        #[command(flatten)]
        files: FileLimit,
    },
    /// Drop traffic from a prefix (an address is a /32 or /128) until the TTL runs out.
    Block(BlockArgs),
    /// Remove a block.
    Unblock(BlockArgs),
    /// Rate-limit traffic to one destination address until the TTL runs out (a flood's target).
    Limit(LimitArgs),
    /// Remove a destination rate limit.
    Unlimit(LimitArgs),
    /// The live rules and blocks.
    List(ListArgs),
    /// Per-rule counters: packets, bytes, last hit (and what dry run would have dropped).
    Stats(StatsArgs),
    /// Replay a capture through the XDP program with the proposed rules (nothing is enforced).
    Simulate(SimArgs),
    /// Remove the firewall (program, link, maps) from interfaces.
    Off(IfaceArgs),
}

#[derive(Args)]
pub struct IfaceArgs {
    /// Interface (repeatable). Default: every interface with rxray's firewall in this namespace.
    #[arg(short = 'i', long = "interface")]
    pub ifaces: Vec<String>,
}

#[derive(Args)]
pub struct ApplyArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub files: FileLimit,
    #[command(flatten)]
    pub ifaces: IfaceArgs,
    /// Count what would be dropped, drop nothing (overrides the file's dry_run).
    #[arg(long)]
    pub dry_run: bool,
    /// Where to attach when installing: auto (TC (tcx) on veth, where frames are skbs already;
    /// native XDP, else generic, elsewhere), native, generic or tc.
    #[arg(long, value_enum, default_value = "auto")]
    pub xdp_mode: XdpModeArg,
    /// Prefix-table capacity per rule set (IPv6, destination, and IPv4 source prefixes longer than /24).
    #[arg(long, default_value_t = 1 << 21)]
    pub prefix_capacity: u32,
    /// Keep running and apply the file again whenever it changes (a bad version keeps the last good rules).
    #[arg(long)]
    pub follow: bool,
    /// Apply even when the live rule set is the same (which restarts its counters and rate limits).
    #[arg(long)]
    pub force: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BlockArgs {
    /// Prefix or address.
    pub cidr: String,
    /// How long the block holds (e.g. 30s, 10m, 2h, 1d); without it, until unblocked.
    #[arg(long)]
    pub ttl: Option<String>,
    #[command(flatten)]
    pub ifaces: IfaceArgs,
}

#[derive(Args)]
pub struct LimitArgs {
    /// Destination address.
    pub dst: std::net::IpAddr,
    /// Packets per second let through (e.g. 1000/s).
    #[arg(long, default_value = "1000/s")]
    pub rate: String,
    /// Packets allowed above the rate at once.
    #[arg(long, default_value_t = 2000)]
    pub burst: u64,
    #[arg(long)]
    pub ttl: Option<String>,
    #[command(flatten)]
    pub ifaces: IfaceArgs,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub ifaces: IfaceArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub ifaces: IfaceArgs,
    #[arg(long)]
    pub json: bool,
    /// Print again every this many seconds.
    #[arg(long)]
    pub interval: Option<f64>,
    /// Stop after this many prints (with --interval).
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
}

#[derive(Args)]
pub struct SimArgs {
    pub rules: PathBuf,
    pub capture: PathBuf,
    #[command(flatten)]
    pub files: FileLimit,
    /// JSON output (the report).
    #[arg(long)]
    pub json: bool,
    /// Also print each packet's verdict (JSON Lines: index, ts_ns, verdict, rule).
    #[arg(long)]
    pub packets: bool,
}

/// What `apply` records beside the pins, for `list` (the kernel keeps numbers, not names).
#[derive(Serialize, serde::Deserialize)]
struct Meta {
    file: String,
    /// Fingerprint of the rule set (rules, lists, options): an apply of the same set changes nothing.
    #[serde(default)]
    digest: String,
    applied_unix_s: u64,
    default: String,
    dry_run: bool,
    rules: Vec<MetaRule>,
}

/// A rule of the applied file, as `firewall list` shows it.
#[derive(Serialize, serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct MetaRule {
    /// The rule's number (its position in the file, from 1).
    pub(crate) id: u32,
    /// Its `name`, or "".
    pub(crate) name: String,
    /// Its line in the rules file.
    pub(crate) line: usize,
    /// The rule as text.
    pub(crate) rule: String,
}

fn meta_path(ifindex: u32) -> PathBuf {
    rxray_kernel::owner::lock_dir().join(format!("firewall-{ifindex}.json"))
}

pub fn run(cmd: FirewallCmd) -> Result<()> {
    match cmd {
        FirewallCmd::Check { file, files } => {
            let set = load_rules(&file, &files)?;
            let c = Compiled::new(&set).map_err(|e| anyhow!("{}: {e}", file.display()))?;
            print_summary(&file, &set, &c);
            Ok(())
        }
        FirewallCmd::Simulate(a) => simulate(a),
        other => {
            crate::session::require_root()?;
            fw::check_bpffs()?;
            match other {
                FirewallCmd::Apply(a) => apply(a),
                FirewallCmd::Block(a) => block(a, true),
                FirewallCmd::Unblock(a) => block(a, false),
                FirewallCmd::Limit(a) => limit(a, true),
                FirewallCmd::Unlimit(a) => limit(a, false),
                FirewallCmd::List(a) => list(a),
                FirewallCmd::Stats(a) => stats(a),
                FirewallCmd::Off(a) => off(a),
                FirewallCmd::Check { .. } | FirewallCmd::Simulate(_) => unreachable!(),
            }
        }
    }
}

/// Reads and validates a rules file; blocklists it names are read relative to it. Every file
/// goes through the bounded reader (`--max-file-size`).
pub(crate) fn load_rules(file: &Path, files: &FileLimit) -> Result<RuleSet> {
    let text = files.read(file)?;
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let read = |p: &str| -> Result<String, String> { files.read(&dir.join(p)).map_err(|e| e.to_string()) };
    parse_rules(&file.display().to_string(), &text, &read).map_err(|errs| {
        let n = errs.len();
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        anyhow!("{}\n{} error{} in the rules; nothing was changed", lines.join("\n"), n, if n == 1 { "" } else { "s" })
    })
}

fn print_summary(file: &Path, set: &RuleSet, c: &Compiled) {
    println!(
        "{}: {} rules, default {}, {} prefixes ({} source and {} destination classes){}",
        file.display(),
        set.rules.len(),
        if set.default == rxray_engine::firewall::Action::Deny { "deny" } else { "allow" },
        set.rules.iter().map(|r| prefixes(&r.src) + prefixes(&r.dst)).sum::<usize>(),
        c.classes[0],
        c.classes[1],
        if set.dry_run { ", dry run" } else { "" }
    );
    for r in &set.rules {
        println!("  {:>3}  {}{}", r.id, r.describe(), if r.name.is_empty() { String::new() } else { format!("  # {}", r.name) });
        for l in &r.lists {
            println!(
                "       {} {}: {} read, {} duplicates, {} inside others, {} loaded{}",
                l.field,
                l.file,
                l.stats.read,
                l.stats.duplicates,
                l.stats.covered,
                l.stats.result,
                if l.host_bits_cleared > 0 { format!(", {} had host bits set (cleared)", l.host_bits_cleared) } else { String::new() }
            );
        }
    }
}

fn prefixes(m: &rxray_engine::firewall::AddrMatch) -> usize {
    match m {
        rxray_engine::firewall::AddrMatch::Any => 0,
        rxray_engine::firewall::AddrMatch::Prefixes(v) => v.len(),
    }
}

/// The interfaces a command acts on: those named, or every one with the firewall installed here.
fn targets(a: &IfaceArgs, install: bool) -> Result<Vec<String>> {
    if !a.ifaces.is_empty() {
        return Ok(a.ifaces.clone());
    }
    let dir = fw::pin_root(0);
    let dir = dir.parent().unwrap();
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(ix) = e.file_name().to_string_lossy().parse::<u32>() {
                if let Some(name) = rxray_kernel::ifname_of(ix) {
                    v.push(name);
                }
            }
        }
    }
    if v.is_empty() {
        bail!(
            "no rxray firewall is installed in this network namespace{}",
            if install { "; name the interfaces with -i" } else { " (rxray firewall apply FILE -i IFACE)" }
        );
    }
    v.sort();
    Ok(v)
}

/// Makes `set` the live rule set of `f` unless it already is (same fingerprint, and not `force`),
/// and records its description beside the pins. The generation applied, or `None` when unchanged
/// (its counters and rate limits go on).
pub(crate) fn apply_to(f: &mut Firewall, fresh: bool, file: &Path, set: &RuleSet, c: &Compiled, force: bool) -> Result<Option<u32>> {
    let digest = fingerprint(set)?;
    let old: Option<Meta> = std::fs::read(meta_path(f.ifindex)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    if !fresh && !force && old.is_some_and(|m| m.digest == digest) {
        return Ok(None);
    }
    let gen = f.apply(c)?;
    let meta = Meta {
        digest,
        file: file.display().to_string(),
        applied_unix_s: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        default: if c.default_deny { "deny".into() } else { "allow".into() },
        dry_run: c.dry_run,
        rules: set.rules.iter().map(|r| MetaRule { id: r.id, name: r.name.clone(), line: r.line, rule: r.describe() }).collect(),
    };
    let path = meta_path(f.ifindex);
    std::fs::create_dir_all(path.parent().unwrap())?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&meta)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(Some(gen))
}

fn apply_once(a: &ApplyArgs, ifaces: &[String]) -> Result<()> {
    let mut set = load_rules(&a.file, &a.files)?;
    if a.dry_run {
        set.dry_run = true;
    }
    let c = Compiled::new(&set).map_err(|e| anyhow!("{}: {e}; nothing was changed", a.file.display()))?;
    let cap = FwCapacity { prefixes: a.prefix_capacity, ..Default::default() };
    for iface in ifaces {
        let (mut f, fresh) = Firewall::open_or_install(iface, a.xdp_mode.into(), cap)?;
        let Some(gen) = apply_to(&mut f, fresh, &a.file, &set, &c, a.force)? else {
            if a.json {
                crate::sinks::print(&records::FwUnchanged { interface: &iface, rules: set.rules.len(), unchanged: true })?;
            } else {
                println!("rxray: firewall on {iface}: these {} rules are already live; nothing changed", set.rules.len());
            }
            continue;
        };
        if a.json {
            let rec = records::FwApplied {
                dry_run: c.dry_run,
                generation: gen,
                installed: fresh,
                interface: &iface,
                lists: set.rules.iter().flat_map(|r| r.lists.clone()).collect(),
                rules: set.rules.len(),
            };
            crate::sinks::print(&rec)?;
        } else {
            println!(
                "rxray: firewall on {iface}: {} rules applied (generation {gen}){}{}",
                set.rules.len(),
                if fresh { ", installed and pinned" } else { "" },
                if c.dry_run { ", dry run: nothing is dropped" } else { "" }
            );
        }
    }
    if !a.json {
        print_summary(&a.file, &set, &c);
    }
    Ok(())
}

/// FNV-1a over the rule set's JSON: stable across runs and builds (unlike std's hasher).
fn fingerprint(set: &RuleSet) -> Result<String> {
    struct Fnv(u64);
    impl std::io::Write for Fnv {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            for x in b {
                self.0 = (self.0 ^ *x as u64).wrapping_mul(0x100000001b3);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Fnv(0xcbf29ce484222325);
    serde_json::to_writer(&mut h, set)?;
    Ok(format!("{:016x}", h.0))
}

fn apply(a: ApplyArgs) -> Result<()> {
    let ifaces = targets(&a.ifaces, true)?;
    apply_once(&a, &ifaces)?;
    if !a.follow {
        return Ok(());
    }
    let stop = crate::session::stop_flag()?;
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last = stamp(&a.file);
    eprintln!("rxray: following {} (Ctrl-C stops; the rules stay in force)", a.file.display());
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = stamp(&a.file);
        if now != last {
            last = now;
            if let Err(e) = apply_once(&a, &ifaces) {
                eprintln!("rxray: {e:#}\nrxray: the previous rules stay in force");
            }
        }
    }
    Ok(())
}

fn block(a: BlockArgs, add: bool) -> Result<()> {
    let (c, host_bits) = parse_cidr(a.cidr.trim()).map_err(|(_, k)| anyhow!("{}: {k}", a.cidr))?;
    if host_bits {
        bail!("{} has host bits set (the prefix is {c})", a.cidr);
    }
    let ttl = a.ttl.as_deref().map(parse_duration).transpose().map_err(|e| anyhow!("--ttl {e}"))?;
    for iface in targets(&a.ifaces, add)? {
        if add {
            let (mut f, _) = Firewall::open_or_install(&iface, rxray_kernel::AttachMode::Auto, FwCapacity::default())?;
            let id = f.block(&c, ttl)?;
            println!(
                "rxray: {iface}: blocked {c} (block {id}){}",
                ttl.map(|t| format!(", expires in {t}s (enforced in the kernel)")).unwrap_or_default()
            );
        } else {
            let mut f = Firewall::open(&iface)?;
            if f.unblock(&c)? {
                println!("rxray: {iface}: unblocked {c}");
            } else {
                bail!("{iface}: {c} is not blocked (rxray firewall list shows the blocks)");
            }
        }
    }
    Ok(())
}

fn limit(a: LimitArgs, add: bool) -> Result<()> {
    let pps = rxray_engine::firewall::rules::parse_rate(&a.rate).map_err(|e| anyhow!("--rate {e}"))?;
    let ttl = a.ttl.as_deref().map(parse_duration).transpose().map_err(|e| anyhow!("--ttl {e}"))?;
    for iface in targets(&a.ifaces, add)? {
        if add {
            let (mut f, _) = Firewall::open_or_install(&iface, rxray_kernel::AttachMode::Auto, FwCapacity::default())?;
            let id = f.limit_dst(a.dst, pps, a.burst, ttl)?;
            println!(
                "rxray: {iface}: traffic to {} limited to {pps}/s, burst {} (limit {id}){}",
                a.dst,
                a.burst,
                ttl.map(|t| format!(", expires in {t}s")).unwrap_or_default()
            );
        } else if Firewall::open(&iface)?.unlimit_dst(a.dst)? {
            println!("rxray: {iface}: limit on {} removed", a.dst);
        } else {
            bail!("{iface}: {} has no rate limit", a.dst);
        }
    }
    Ok(())
}

fn list(a: ListArgs) -> Result<()> {
    for iface in targets(&a.ifaces, false)? {
        let mut f = Firewall::open(&iface)?;
        f.expire_blocks()?;
        let meta: Option<Meta> = std::fs::read(meta_path(f.ifindex)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let counts = f.counts()?;
        let blocks = f.blocks()?;
        let limits = f.dst_limits()?;
        let src_limits = f.src_limits()?;
        if a.json {
            let rec = records::FwList {
                blocks,
                default: meta.as_ref().map(|m| m.default.as_str()),
                dry_run: counts.dry_run,
                file: meta.as_ref().map(|m| m.file.as_str()),
                interface: &iface,
                limits,
                rules: meta.as_ref().map(|m| m.rules.as_slice()),
                src_limits,
            };
            crate::sinks::print(&rec)?;
            continue;
        }
        match &meta {
            Some(m) => println!("{iface}: rules from {} (default {}{})", m.file, m.default, if counts.dry_run { ", dry run" } else { "" }),
            None => println!("{iface}: no rules file applied (default allow)"),
        }
        for r in meta.iter().flat_map(|m| &m.rules) {
            println!("  {:>3}  {}{}", r.id, r.rule, if r.name.is_empty() { String::new() } else { format!("  # {}", r.name) });
        }
        println!("  blocks: {}", blocks.len());
        for b in &blocks {
            println!(
                "  {:>3}  deny from {}{}  ({} packets)",
                b.id,
                b.cidr,
                b.expires_in_s.map(|s| format!(", {s:.0}s left")).unwrap_or_default(),
                b.packets
            );
        }
        if !limits.is_empty() {
            println!("  destination rate limits: {}", limits.len());
        }
        for l in &limits {
            println!(
                "  {:>3}  limit to {} at {}/s burst {}{}  ({} dropped)",
                l.id,
                l.dst,
                l.pps,
                l.burst,
                l.expires_in_s.map(|s| format!(", {s:.0}s left")).unwrap_or_default(),
                l.dropped
            );
        }
        for l in &src_limits {
            println!(
                "  {:>3}  limit {} from {} to port {} at {:.3}/s burst {}{}  ({} dropped, {} passed)",
                l.id,
                if l.syn_only { "connections" } else { "packets" },
                l.src,
                l.dport.map_or("any".into(), |p| p.to_string()),
                l.rate_per_s,
                l.burst,
                l.expires_in_s.map(|s| format!(", {s:.0}s left")).unwrap_or_default(),
                l.dropped,
                l.passed
            );
        }
    }
    Ok(())
}

fn stats(a: StatsArgs) -> Result<()> {
    let ifaces = targets(&a.ifaces, false)?;
    let stop = crate::session::stop_flag()?;
    let mut printed = 0u64;
    loop {
        for iface in &ifaces {
            let f = Firewall::open(iface)?;
            let c = f.counts()?;
            let meta: Option<Meta> = std::fs::read(meta_path(f.ifindex)).ok().and_then(|b| serde_json::from_slice(&b).ok());
            if a.json {
                crate::sinks::print(&records::FwStats { counters: &c, interface: &iface })?;
                continue;
            }
            println!("{iface}: {}", if c.dry_run { "dry run (counts are what would have been dropped)" } else { "enforcing" });
            println!(
                "  since install: {} packets seen, {} dropped, {} would have been dropped in dry run",
                c.packets_seen, c.dropped_total, c.would_drop_total
            );
            println!("  {:>4}  {:>12}  {:>14}  {:>10}  rule", "id", "packets", "bytes", "last hit");
            let last = |v: &fw::FwCounterView| v.last_hit_s_ago.map(|s| format!("{s:.1}s ago")).unwrap_or_else(|| "never".into());
            for (i, v) in c.rules.iter().enumerate() {
                let desc = meta.as_ref().and_then(|m| m.rules.get(i)).map(|r| r.rule.as_str()).unwrap_or("");
                println!("  {:>4}  {:>12}  {:>14}  {:>10}  {desc}", i + 1, v.packets, v.bytes, last(v));
            }
            println!("  {:>4}  {:>12}  {:>14}  {:>10}  default ({})", "-", c.default.packets, c.default.bytes, last(&c.default),
                meta.as_ref().map(|m| m.default.as_str()).unwrap_or("allow"));
            println!("  {:>4}  {:>12}  {:>14}  {:>10}  dynamic blocks", "-", c.blocks.packets, c.blocks.bytes, last(&c.blocks));
        }
        printed += 1;
        let Some(iv) = a.interval else { break };
        if a.count.is_some_and(|n| printed >= n) || stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(iv));
    }
    Ok(())
}

fn off(a: IfaceArgs) -> Result<()> {
    for iface in targets(&a, false)? {
        if Firewall::off(&iface)? {
            let ix = rxray_kernel::ifindex_of(&iface)?;
            let _ = std::fs::remove_file(meta_path(ix));
            println!("rxray: firewall removed from {iface}");
        } else {
            println!("rxray: no firewall on {iface}");
        }
    }
    Ok(())
}

/// One rule's share of `firewall simulate --json`.
#[derive(Serialize, Default, schemars::JsonSchema)]
pub(crate) struct SimRule {
    id: u32,
    rule: String,
    packets: u64,
    bytes: u64,
    flows: usize,
    /// Flows with dropped packets, most dropped first (up to 10).
    top_flows: Vec<(String, u64)>,
}

/// `firewall simulate --json`: the capture replayed through the rules (keys in declared order).
#[derive(Serialize, Default, schemars::JsonSchema)]
pub(crate) struct SimReport {
    packets: u64,
    passed: u64,
    dropped: u64,
    not_ip: u64,
    not_ethernet: u64,
    truncated: u64,
    rules: Vec<SimRule>,
    default: SimRule,
    blocks_are_not_simulated: bool,
}

fn simulate(a: SimArgs) -> Result<()> {
    crate::session::require_root()?;
    let set = load_rules(&a.rules, &a.files)?;
    let c = Compiled::new(&set).map_err(|e| anyhow!("{}: {e}", a.rules.display()))?;
    let file = std::fs::File::open(&a.capture).with_context(|| format!("opening {}", a.capture.display()))?;
    let mut rd = CaptureReader::open(file).map_err(|e| anyhow!("{}: {e}", a.capture.display()))?;
    let mut sim: Option<Simulator> = None;
    let mut rep = SimReport { blocks_are_not_simulated: true, ..Default::default() };
    let mut per: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); fw::FW_SLOTS];
    let mut bytes = vec![0u64; fw::FW_SLOTS];
    let mut index = 0u64;
    while let Some(rec) = rd.next_record() {
        let rec = rec.map_err(|e| anyhow!("{}: {e}", a.capture.display()))?;
        index += 1;
        rep.packets += 1;
        if rec.linktype != LinkType::ETHERNET {
            rep.not_ethernet += 1;
            continue;
        }
        if (rec.data.len() as u32) < rec.orig_len {
            rep.truncated += 1;
        }
        let s = match &mut sim {
            Some(s) => s,
            None => sim.insert(Simulator::new(&c, rec.ts_ns, FwCapacity::default())?),
        };
        let v = s.run(rec.data, rec.ts_ns)?;
        if a.packets {
            let verdict = records::FwVerdict {
                default: v.slot == fw::FW_C_DEFAULT,
                index,
                rule: if v.slot < c.rules.len() { Some(c.rules[v.slot].id) } else { None },
                ts_ns: rec.ts_ns,
                verdict: if v.dropped { "drop" } else { "pass" },
            };
            crate::sinks::print(&verdict)?;
        }
        if v.slot == SLOT_NOT_IP {
            rep.not_ip += 1;
        }
        if !v.dropped {
            rep.passed += 1;
            continue;
        }
        rep.dropped += 1;
        let p = dissect(rec.data, rec.linktype, rec.ts_ns, rec.orig_len, "", 0);
        let flow = match (&p.ip, p.tcp.map(|t| (t.sport, t.dport)).or(p.udp.map(|u| (u.sport, u.dport)))) {
            (Some(ip), Some((sp, dp))) => format!("{} {}:{} > {}:{}", ipproto::name_or_number(ip.proto, ipproto::Spelling::Rules), ip.src, sp, ip.dst, dp),
            (Some(ip), None) => format!("{} {} > {}", ipproto::name_or_number(ip.proto, ipproto::Spelling::Rules), ip.src, ip.dst),
            _ => "non-IP".into(),
        };
        if v.slot < fw::FW_SLOTS {
            *per[v.slot].entry(flow).or_default() += 1;
            bytes[v.slot] += rec.orig_len as u64;
        }
    }
    let mk = |slot: usize, id: u32, rule: String| {
        let flows = &per[slot];
        let mut top: Vec<(String, u64)> = flows.iter().map(|(k, v)| (k.clone(), *v)).collect();
        top.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        top.truncate(10);
        SimRule { id, rule, packets: flows.values().sum(), bytes: bytes[slot], flows: flows.len(), top_flows: top }
    };
    rep.rules = set.rules.iter().enumerate().map(|(i, r)| mk(i, r.id, r.describe())).collect();
    rep.default = mk(fw::FW_C_DEFAULT, 0, format!("default {}", if c.default_deny { "deny" } else { "allow" }));
    if a.json {
        crate::sinks::Sink::write(&mut crate::sinks::JsonLines::new(std::io::stdout().lock()), &rep)?;
        return Ok(());
    }
    if a.packets {
        return Ok(());
    }
    println!(
        "{}: {} packets through {}: {} pass, {} dropped{}{}{}",
        a.capture.display(),
        rep.packets,
        a.rules.display(),
        rep.passed,
        rep.dropped,
        if rep.not_ip > 0 { format!(", {} not IP (never filtered)", rep.not_ip) } else { String::new() },
        if rep.not_ethernet > 0 { format!(", {} not Ethernet (not replayed)", rep.not_ethernet) } else { String::new() },
        if rep.truncated > 0 { format!(", {} cut short by the capture's snap length", rep.truncated) } else { String::new() },
    );
    for r in rep.rules.iter().chain(std::iter::once(&rep.default)) {
        if r.packets == 0 && r.id == 0 {
            continue;
        }
        println!("  {:>3}  {:>8} packets dropped, {:>5} flows cut  {}", if r.id == 0 { "-".into() } else { r.id.to_string() }, r.packets, r.flows, r.rule);
        for (f, n) in &r.top_flows {
            println!("         {n:>8}  {f}");
        }
    }
    Ok(())
}
