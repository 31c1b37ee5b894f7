//! `rxray conns`: the TCP connections of this network namespace from the kernel's own state
//! changes: states in order, handshake time, bytes each way, retransmits, resets and who sent
//! them, smoothed and minimum RTT; plus the namespace's accept-queue counters (ListenOverflows,
//! ListenDrops).
use crate::{line::clock_time, seed, session};
use anyhow::{Context, Result};
use rxray_kernel::{abi, btf, Clock, ConnTotals, Conns, ConnsOptions, Drops, DropsOptions};
use serde::Serialize;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{self, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

#[derive(clap::Args)]
pub struct ConnsArgs {
    /// JSON Lines: one object per connection when it closes (and per live one at each interval);
    /// the summary goes to stderr as `{"summary": ...}`.
    #[arg(long)]
    pub json: bool,
    /// Also list the live connections every S seconds (0: only at exit).
    #[arg(long, default_value_t = 0.0, value_parser = crate::args::seconds)]
    pub interval: f64,
    /// Exit after this many connections have closed.
    #[arg(short = 'c', long = "count")]
    pub count: Option<u64>,
    /// Ring-buffer size: bytes or a size such as 1MiB, a power of two from 4 KiB to 1 GiB.
    #[arg(long = "ring-size", default_value_t = 1 << 20, value_parser = crate::args::ring_size)]
    pub ring_size: u32,
}

/// Kernel TCP state names (include/net/tcp_states.h).
pub fn state_name(s: u8) -> &'static str {
    match s {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        13 => "BOUND_INACTIVE",
        _ => "UNKNOWN",
    }
}

/// One connection as printed.
#[derive(Serialize, Clone, Debug)]
pub struct ConnRecord {
    /// "closed" (the record is final) or "live".
    pub status: &'static str,
    pub ts_ns: u64,
    pub local: String,
    pub remote: String,
    pub local_addr: Option<IpAddr>,
    pub local_port: u16,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: u16,
    pub state: &'static str,
    /// States in the order entered (up to 16; later ones replace the last).
    pub states: Vec<&'static str>,
    /// Accepted here (SYN_RECV), not connected from here.
    pub passive: bool,
    /// First seen after its handshake (older than rxray, or evicted from the map).
    pub late: bool,
    /// Existed before rxray started (listed in /proc/net/tcp{,6} then): its start time is unknown
    /// (age_ms and handshake_ms are null) and its counters cover only what followed the first
    /// state change rxray saw (none, while it has not changed state).
    pub seeded: bool,
    /// Since the first state change seen; null for a seeded connection.
    pub age_ms: Option<f64>,
    /// SYN_SENT/SYN_RECV → ESTABLISHED. For an accepted socket this starts when the kernel
    /// created it from the handshake's last ACK, so it is short; its srtt holds the SYN-ACK RTT.
    pub handshake_ms: Option<f64>,
    /// Payload bytes received (tp->bytes_received less a received FIN).
    pub bytes_rx: u64,
    /// Payload bytes sent once (tp->bytes_sent less tp->bytes_retrans).
    pub bytes_tx: u64,
    pub bytes_received: u64,
    pub bytes_acked: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    /// Retransmitted segments seen (tcp_retransmit_skb).
    pub retransmits: u32,
    pub total_retrans: u32,
    pub rst_rx: u16,
    pub rst_tx: u16,
    /// Who reset the connection: "peer", "local", "both", or null.
    pub reset_by: Option<&'static str>,
    pub srtt_us: u32,
    pub rttvar_us: u32,
    pub min_rtt_us: u32,
    pub srtt_min_us: u32,
    pub srtt_max_us: u32,
    /// The process that last read the connection's bytes (sock_recv_length): its tgid, or null
    /// when nothing was read (or the kernel has no sock_recv_length tracepoint).
    pub pid: Option<u32>,
    /// Its comm as the kernel had it then (the reading thread's name).
    pub comm: Option<String>,
    /// readlink /proc/<pid>/exe when the record is printed; null when the process is gone.
    pub exe: Option<String>,
    /// Its cgroup v2 id (the cgroup directory's inode number).
    pub cgroup_id: Option<u64>,
    /// Its cgroup v2 path relative to the cgroup2 mount, as in /proc/<pid>/cgroup ("/" is the root);
    /// null when the cgroup is gone or no cgroup2 is mounted.
    pub cgroup: Option<String>,
    /// Bytes that process received (positive recvmsg returns, MSG_PEEK excluded).
    pub read_bytes: u64,
    /// Times the reading process changed after the first.
    pub reader_changes: u32,
}

pub(crate) fn ip_of(family: u16, b: &[u8; 16]) -> Option<IpAddr> {
    match family {
        2 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        10 => {
            let v6 = Ipv6Addr::from(*b);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

fn endpoint(a: Option<IpAddr>, port: u16) -> String {
    match a {
        Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        Some(a) => format!("{a}:{port}"),
        None => format!("?:{port}"),
    }
}

pub fn record(c: &abi::Conn, ts_mono: u64, status: &'static str, clock: &Clock) -> ConnRecord {
    let local_addr = ip_of(c.family, &c.saddr);
    let remote_addr = ip_of(c.family, &c.daddr);
    let n = (c.npath as usize).min(abi::CONN_PATH);
    let fin = u64::from(c.flags & abi::CONNF_FIN_RX != 0);
    let reset_by = match (c.rst_rx > 0, c.rst_tx > 0) {
        (true, true) => Some("both"),
        (true, false) => Some("peer"),
        (false, true) => Some("local"),
        _ => None,
    };
    let end = if status == "closed" { c.last_ns } else { ts_mono };
    ConnRecord {
        status,
        ts_ns: clock.to_unix_ns(ts_mono),
        local: endpoint(local_addr, c.sport),
        remote: endpoint(remote_addr, c.dport),
        local_addr,
        local_port: c.sport,
        remote_addr,
        remote_port: c.dport,
        state: state_name(c.state),
        states: c.path[..n].iter().map(|s| state_name(*s)).collect(),
        passive: c.flags & abi::CONNF_PASSIVE != 0,
        late: c.flags & abi::CONNF_LATE != 0,
        seeded: false,
        age_ms: Some(end.saturating_sub(c.first_ns) as f64 / 1e6),
        handshake_ms: (c.syn_ns > 0 && c.established_ns >= c.syn_ns)
            .then(|| (c.established_ns - c.syn_ns) as f64 / 1e6),
        bytes_rx: c.bytes_received.saturating_sub(fin),
        bytes_tx: c.bytes_sent.saturating_sub(c.bytes_retrans),
        bytes_received: c.bytes_received,
        bytes_acked: c.bytes_acked,
        bytes_sent: c.bytes_sent,
        bytes_retrans: c.bytes_retrans,
        retransmits: c.retransmits,
        total_retrans: c.total_retrans,
        rst_rx: c.rst_rx,
        rst_tx: c.rst_tx,
        reset_by,
        srtt_us: c.srtt_us,
        rttvar_us: c.rttvar_us,
        min_rtt_us: c.min_rtt_us,
        srtt_min_us: c.srtt_min_us,
        srtt_max_us: c.srtt_max_us,
        pid: (c.reader_pid != 0).then_some(c.reader_pid),
        comm: (c.reader_pid != 0).then(|| comm_str(&c.reader_comm)),
        exe: None,
        cgroup_id: (c.reader_pid != 0).then_some(c.reader_cgroup),
        cgroup: None,
        read_bytes: c.reader_bytes,
        reader_changes: c.reader_changes,
    }
}

/// A connection's (local, local port, remote, remote port).
type Tuple = (IpAddr, u16, IpAddr, u16);

fn tuple_of(r: &ConnRecord) -> Option<Tuple> {
    Some((r.local_addr?, r.local_port, r.remote_addr?, r.remote_port))
}

/// The connections that existed when rxray started (by tuple).
pub struct Seeds(HashSet<Tuple>);

impl Seeds {
    pub fn new(now: &[seed::ProcTcp]) -> Self {
        Seeds(now.iter().map(|t| (t.local, t.local_port, t.remote, t.remote_port)).collect())
    }

    /// Marks a kernel record first seen late whose tuple was there at the start.
    pub fn mark(&self, r: &mut ConnRecord) {
        if r.late && tuple_of(r).is_some_and(|t| self.0.contains(&t)) {
            r.seeded = true;
            r.age_ms = None;
            r.handshake_ms = None;
        }
    }

    /// Records for the seeded connections in `now` that the kernel map does not hold (no state
    /// change seen yet).
    pub fn untracked(&self, now: &[seed::ProcTcp], tracked: &HashSet<Tuple>, ts_ns: u64) -> Vec<ConnRecord> {
        now.iter()
            .filter(|t| {
                let k = (t.local, t.local_port, t.remote, t.remote_port);
                self.0.contains(&k) && !tracked.contains(&k)
            })
            .map(|t| seeded_record(t, ts_ns))
            .collect()
    }
}

fn seeded_record(t: &seed::ProcTcp, ts_ns: u64) -> ConnRecord {
    let state = state_name(t.state);
    ConnRecord {
        status: "live",
        ts_ns,
        local: endpoint(Some(t.local), t.local_port),
        remote: endpoint(Some(t.remote), t.remote_port),
        local_addr: Some(t.local),
        local_port: t.local_port,
        remote_addr: Some(t.remote),
        remote_port: t.remote_port,
        state,
        states: vec![state],
        passive: false,
        late: true,
        seeded: true,
        age_ms: None,
        handshake_ms: None,
        bytes_rx: 0,
        bytes_tx: 0,
        bytes_received: 0,
        bytes_acked: 0,
        bytes_sent: 0,
        bytes_retrans: 0,
        retransmits: 0,
        total_retrans: 0,
        rst_rx: 0,
        rst_tx: 0,
        reset_by: None,
        srtt_us: 0,
        rttvar_us: 0,
        min_rtt_us: 0,
        srtt_min_us: 0,
        srtt_max_us: 0,
        pid: None,
        comm: None,
        exe: None,
        cgroup_id: None,
        cgroup: None,
        read_bytes: 0,
        reader_changes: 0,
    }
}

fn comm_str(b: &[u8; 16]) -> String {
    let n = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// The cgroup2 mount point from a mountinfo text (the first `cgroup2` file system).
fn cgroup2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        if post.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let mp = pre.split_whitespace().nth(4)?;
        return Some(PathBuf::from(unescape_mountinfo(mp)));
    }
    None
}

/// The parent pid from /proc/<pid>/stat.
fn parent_of(pid: u32) -> Option<u32> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    st.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resolves a record's process (exe) and cgroup id (path) from user space. Cgroup ids on cgroup v2
/// are the cgroup directories' inode numbers: the mount is walked to find them, once per unknown id
/// (a cgroup created since the last walk is found by the next), and the answers are cached.
pub struct Resolver {
    mount: Option<PathBuf>,
    paths: HashMap<u64, Option<String>>,
    _dir: Option<std::fs::File>,
}

impl Resolver {
    pub fn new() -> Self {
        // `ip netns exec` remounts /sys in a new mount namespace, hiding a cgroup2 mounted under
        // it: then use the mount of the nearest ancestor that sees one (the shell that ran `ip`),
        // through /proc/<pid>/root, kept open so the ancestor may exit.
        let mut pid = std::process::id();
        let mut dir = None;
        for _ in 0..32 {
            let base = if pid == std::process::id() { "/proc/self".to_string() } else { format!("/proc/{pid}") };
            if let Some(m) = std::fs::read_to_string(format!("{base}/mountinfo")).ok().and_then(|t| cgroup2_mount_in(&t)) {
                let p = if base == "/proc/self" {
                    m
                } else {
                    Path::new(&base).join("root").join(m.strip_prefix("/").unwrap_or(&m))
                };
                if let Ok(f) = std::fs::File::open(&p) {
                    dir = Some(f);
                    break;
                }
            }
            match parent_of(pid) {
                Some(pp) if pp > 0 && pp != pid => pid = pp,
                _ => break,
            }
        }
        let mount = dir.as_ref().map(|f| PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())));
        let _keep = dir;
        Resolver { mount, paths: HashMap::new(), _dir: _keep }
    }

    fn walk(&mut self) {
        let Some(root) = self.mount.clone() else { return };
        let mut stack = vec![root.clone()];
        let mut seen = 0usize;
        while let Some(dir) = stack.pop() {
            let Ok(md) = std::fs::metadata(&dir) else { continue };
            let rel = dir.strip_prefix(&root).map(|p| format!("/{}", p.display())).unwrap_or_default();
            self.paths.insert(md.ino(), Some(rel));
            seen += 1;
            if seen > 200_000 {
                break;
            }
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
        }
    }

    pub fn cgroup_path(&mut self, id: u64) -> Option<String> {
        if let Some(p) = self.paths.get(&id) {
            return p.clone();
        }
        self.walk();
        self.paths.entry(id).or_insert(None).clone()
    }

    pub fn fill(&mut self, r: &mut ConnRecord) {
        if let Some(pid) = r.pid {
            r.exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok().map(|p| p.display().to_string());
        }
        if let Some(id) = r.cgroup_id {
            r.cgroup = self.cgroup_path(id);
        }
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new()
    }
}

/// The TcpExt counters of /proc/net/netstat (this process's namespace) named in `names`.
pub fn netstat(names: &[&str]) -> Result<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string("/proc/net/netstat").context("reading /proc/net/netstat")?;
    Ok(parse_netstat(&text, names))
}

fn parse_netstat(text: &str, names: &[&str]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [h, v] = pair else { continue };
        let (Some(hk), Some(vk)) = (h.split_once(':'), v.split_once(':')) else { continue };
        if hk.0 != "TcpExt" || vk.0 != "TcpExt" {
            continue;
        }
        for (k, val) in hk.1.split_whitespace().zip(vk.1.split_whitespace()) {
            if names.contains(&k) {
                out.insert(k.to_string(), val.parse().unwrap_or(0));
            }
        }
    }
    out
}

const LISTEN_COUNTERS: &[&str] = &["ListenOverflows", "ListenDrops"];

/// Drop reasons (kfree_skb) that belong beside the listen counters: the accept queue's overflow.
const LISTEN_REASONS: &[&str] = &["TCP_LISTEN_OVERFLOW"];

/// Counts, since `drops` attached, of the `LISTEN_REASONS` this kernel has (by name from its BTF).
fn listen_reason_counts(drops: &Drops) -> Result<BTreeMap<String, u64>> {
    let names = btf::drop_reasons(Path::new(btf::VMLINUX)).context("reading drop-reason names from the kernel's BTF")?;
    let by = drops.totals()?.by_reason;
    let mut out = BTreeMap::new();
    for (code, name) in &names {
        if LISTEN_REASONS.contains(&name.as_str()) {
            let n = by.iter().find(|(c, _)| u64::from(*c) == *code).map(|(_, n)| *n).unwrap_or(0);
            out.insert(name.clone(), n);
        }
    }
    Ok(out)
}

fn ms(us: u32) -> String {
    if us == 0 {
        "-".into()
    } else {
        format!("{:.3}", us as f64 / 1000.0)
    }
}

fn table_header() -> String {
    format!(
        "{:<6} {:<24} {:<24} {:<11} {:>9} {:>9} {:>10} {:>10} {:>5} {:>9} {:>8} {:>8} {:>8} {:>7} {:<16} {:<24} EXE",
        "STATUS", "LOCAL", "REMOTE", "STATE", "AGE_MS", "HS_MS", "RX", "TX", "RETR", "RST", "SRTT", "MIN", "MAX",
        "PID", "COMM", "CGROUP"
    )
}

fn table_row(r: &ConnRecord) -> String {
    let rst = match r.reset_by {
        Some(w) => format!("{}:{}/{}", w, r.rst_rx, r.rst_tx),
        None => "-".into(),
    };
    format!(
        "{:<6} {:<24} {:<24} {:<11} {:>9} {:>9} {:>10} {:>10} {:>5} {:>9} {:>8} {:>8} {:>8} {:>7} {:<16} {:<24} {}",
        r.status,
        r.local,
        r.remote,
        r.state,
        r.age_ms.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into()),
        r.handshake_ms.map(|h| format!("{h:.3}")).unwrap_or_else(|| "-".into()),
        r.bytes_rx,
        r.bytes_tx,
        r.retransmits,
        rst,
        ms(r.srtt_us),
        ms(r.min_rtt_us),
        ms(r.srtt_max_us),
        r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        r.comm.as_deref().unwrap_or("-"),
        r.cgroup.as_deref().unwrap_or("-"),
        r.exe.as_deref().unwrap_or("-"),
    )
}

fn totals_json(t: &ConnTotals) -> serde_json::Value {
    serde_json::json!({
        "new": t.new, "closed": t.closed, "events": t.events, "lost": t.lost,
        "insert_failed": t.insert_failed, "untracked": t.untracked, "rst_tx_nosock": t.rst_tx_nosock,
    })
}

pub fn run(a: ConnsArgs) -> Result<()> {
    session::require_root()?;
    let stop = session::stop_flag()?;
    let netns = rxray_kernel::drops::current_netns_ino()?;
    let mut conns = Conns::attach(&ConnsOptions { ring_bytes: a.ring_size, netns_ino: Some(netns) })
        .context("attaching the TCP tracepoints (tp_btf/inet_sock_set_state, tcp_*)")?;
    // The drop program in count-only mode, for the accept queue's overflow reason beside the
    // namespace's counters; conns work without it.
    let drops = match Drops::attach(&DropsOptions { ring_bytes: 4096, netns_ino: Some(netns), ifindexes: Vec::new(), events: false }) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("rxray: no drop reasons beside the listen counters ({e})");
            None
        }
    };
    let listen0 = netstat(LISTEN_COUNTERS).unwrap_or_default();
    // Read after the programs are attached, so a connection is either seeded or seen changing state.
    let seeds = match seed::read() {
        Ok(now) => Seeds::new(&now),
        Err(e) => {
            eprintln!("rxray: connections older than rxray are not listed ({e:#})");
            Seeds::new(&[])
        }
    };
    eprintln!(
        "rxray: watching TCP connections in network namespace {netns}{}; Ctrl-C to stop",
        if conns.probe { "" } else { " (no tcp_probe: RTT sampled at state changes only)" }
    );
    if !conns.readers {
        eprintln!("rxray: this kernel has no sock_recv_length tracepoint: no reading process per connection");
    }
    let clock = Clock::now();
    let resolver = std::cell::RefCell::new(Resolver::new());
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let fd = conns.ring().as_raw_fd();
    let start = Instant::now();
    let interval = (a.interval > 0.0).then(|| Duration::from_secs_f64(a.interval.max(0.05)));
    let mut next_tick = interval.map(|i| Instant::now() + i);
    let mut closed = 0u64;
    let mut delivered = 0u64;
    if !a.json {
        writeln!(out, "{}", table_header())?;
    }
    let emit = |out: &mut io::BufWriter<io::StdoutLock>, r: &ConnRecord| -> io::Result<()> {
        if a.json {
            serde_json::to_writer(&mut *out, r).map_err(io::Error::from)?;
            out.write_all(b"\n")
        } else {
            writeln!(out, "{}", table_row(r))
        }
    };
    let live_snapshot = |out: &mut io::BufWriter<io::StdoutLock>, conns: &Conns| -> Result<()> {
        let now = monotonic_ns();
        let mut live = conns.live()?;
        live.sort_by_key(|c| c.first_ns);
        let mut recs: Vec<ConnRecord> = live.iter().map(|c| record(c, now, "live", &clock)).collect();
        let tracked: HashSet<Tuple> = recs.iter().filter_map(tuple_of).collect();
        let proc_now = seed::read().unwrap_or_default();
        recs.extend(seeds.untracked(&proc_now, &tracked, clock.to_unix_ns(now)));
        if !a.json {
            writeln!(out, "-- {}: {} live --", clock_time(clock.to_unix_ns(now)), recs.len())?;
        }
        for r in &mut recs {
            seeds.mark(r);
            resolver.borrow_mut().fill(r);
            emit(out, r)?;
        }
        Ok(())
    };
    session::pump(fd, &stop, || {
        let mut done = false;
        let mut batch = 0;
        while let Some(item) = conns.ring().next() {
            let Some(ev) = abi::ConnEvent::from_bytes(&item) else { continue };
            drop(item);
            delivered += 1;
            batch += 1;
            if ev.c.state != 7 {
                continue; // live connections are listed from the map at intervals and at exit
            }
            closed += 1;
            let mut r = record(&ev.c, ev.ts_ns, "closed", &clock);
            seeds.mark(&mut r);
            resolver.borrow_mut().fill(&mut r);
            if emit(&mut out, &r).is_err() || a.count.is_some_and(|c| closed >= c) {
                done = true;
                break;
            }
            if batch >= session::BATCH {
                break;
            }
        }
        if let (Some(iv), Some(t)) = (interval, next_tick) {
            if Instant::now() >= t {
                if live_snapshot(&mut out, &conns).is_err() {
                    done = true;
                }
                next_tick = Some(t + iv);
            }
        }
        if out.flush().is_err() {
            done = true;
        }
        Ok(session::Pass { read: batch, done })
    })?;
    // The connections still open at exit, once.
    let _ = live_snapshot(&mut out, &conns);
    let _ = out.flush();
    drop(out);
    let totals = conns.totals()?;
    let listen = netstat(LISTEN_COUNTERS).unwrap_or_default();
    let since: BTreeMap<String, u64> =
        listen.iter().map(|(k, v)| (k.clone(), v.saturating_sub(*listen0.get(k).unwrap_or(&0)))).collect();
    let reasons = match &drops {
        Some(d) => Some(listen_reason_counts(d)?),
        None => None,
    };
    if a.json {
        let v = serde_json::json!({"summary": {
            "closed": closed, "delivered": delivered, "kernel": totals_json(&totals),
            "listen": listen, "listen_since_start": since, "listen_drop_reasons": reasons,
            "tcp_probe": conns.probe, "readers": conns.readers,
            "seconds": start.elapsed().as_secs_f64(),
        }});
        eprintln!("{v}");
    } else {
        let mut s = format!(
            "\n{} connections closed, {} events, {} lost (ring buffer full), {} not tracked (map full), {} seen late\n",
            closed, totals.events, totals.lost, totals.insert_failed, totals.untracked
        );
        s.push_str(&format!("{} resets sent with no connection (closed ports, TIME_WAIT)\n", totals.rst_tx_nosock));
        for k in LISTEN_COUNTERS {
            s.push_str(&format!(
                "{k}: {} ({} since start)\n",
                listen.get(*k).copied().unwrap_or(0),
                since.get(*k).copied().unwrap_or(0)
            ));
        }
        for (k, n) in reasons.iter().flatten() {
            s.push_str(&format!("drop reason {k}: {n} (since start)\n"));
        }
        eprint!("{s}");
    }
    Ok(())
}

pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstat_reads_the_tcpext_pair() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 3 4\nIpExt: InNoRoutes\nIpExt: 0\n";
        let m = parse_netstat(text, LISTEN_COUNTERS);
        assert_eq!(m.get("ListenOverflows"), Some(&3));
        assert_eq!(m.get("ListenDrops"), Some(&4));
    }

    #[test]
    fn a_closed_record_subtracts_the_fin_and_names_who_reset() {
        let mut c = abi::Conn { family: 2, sport: 80, dport: 40000, state: 7, npath: 3, ..Default::default() };
        c.saddr[..4].copy_from_slice(&[10, 0, 0, 2]);
        c.daddr[..4].copy_from_slice(&[10, 0, 0, 1]);
        c.path[..3].copy_from_slice(&[3, 1, 7]);
        c.bytes_received = 101;
        c.bytes_sent = 60;
        c.bytes_retrans = 10;
        c.flags = abi::CONNF_FIN_RX | abi::CONNF_PASSIVE;
        c.first_ns = 1_000_000;
        c.syn_ns = 1_000_000;
        c.established_ns = 1_500_000;
        c.last_ns = 3_000_000;
        c.rst_rx = 1;
        let r = record(&c, 3_000_000, "closed", &Clock::now());
        assert_eq!(r.local, "10.0.0.2:80");
        assert_eq!(r.remote, "10.0.0.1:40000");
        assert_eq!(r.states, vec!["SYN_RECV", "ESTABLISHED", "CLOSE"]);
        assert_eq!((r.bytes_rx, r.bytes_tx), (100, 50));
        assert_eq!(r.handshake_ms, Some(0.5));
        assert_eq!(r.age_ms, Some(2.0));
        assert!(!r.seeded);
        assert_eq!(r.reset_by, Some("peer"));
        assert!(r.passive);
        assert_eq!(r.pid, None);
    }

    #[test]
    fn the_cgroup2_mount_is_found_in_mountinfo() {
        let t = "25 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                 35 25 0:30 / /sys/fs/cgroup/unified\\040x rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount_in(t), Some(PathBuf::from("/sys/fs/cgroup/unified x")));
        assert_eq!(cgroup2_mount_in("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn the_reader_is_named() {
        let mut c = abi::Conn { reader_pid: 42, reader_cgroup: 7, reader_bytes: 5, ..Default::default() };
        c.reader_comm[..7].copy_from_slice(b"python3");
        let r = record(&c, 0, "live", &Clock::now());
        assert_eq!((r.pid, r.comm.as_deref(), r.cgroup_id, r.read_bytes), (Some(42), Some("python3"), Some(7), 5));
    }

    #[test]
    fn a_late_record_of_a_connection_older_than_rxray_is_seeded() {
        let t = seed::ProcTcp {
            local: "10.0.0.2".parse().unwrap(),
            local_port: 80,
            remote: "10.0.0.1".parse().unwrap(),
            remote_port: 40000,
            state: 1,
            uid: 0,
            inode: 1,
        };
        let seeds = Seeds::new(std::slice::from_ref(&t));
        let mut c = abi::Conn { family: 2, sport: 80, dport: 40000, state: 7, flags: abi::CONNF_LATE, ..Default::default() };
        c.saddr[..4].copy_from_slice(&[10, 0, 0, 2]);
        c.daddr[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut r = record(&c, 0, "closed", &Clock::now());
        seeds.mark(&mut r);
        assert!(r.seeded && r.age_ms.is_none());
        // Tracked by the kernel: not listed twice; an unknown tuple is never seeded.
        let tracked: HashSet<Tuple> = [tuple_of(&r).unwrap()].into();
        assert!(seeds.untracked(std::slice::from_ref(&t), &tracked, 0).is_empty());
        let u = seeds.untracked(std::slice::from_ref(&t), &HashSet::new(), 0);
        assert_eq!((u.len(), u[0].state, u[0].seeded, u[0].age_ms), (1, "ESTABLISHED", true, None));
        c.dport = 40001;
        let mut other = record(&c, 0, "closed", &Clock::now());
        seeds.mark(&mut other);
        assert!(!other.seeded);
    }
}
