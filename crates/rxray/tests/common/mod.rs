//! Running the real `rxray` binary inside a lab namespace, and reading what it printed.
#![allow(dead_code, unused_imports)]
use serde_json::Value;
use rxray_lab::Lab;
use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

pub use rxray_lab::testing::{have, need_root, skip_or_fail, unique_name, TempDir};

pub fn rxray_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rxray")
}

/// A running rxray command in a namespace; stdout and stderr are collected line by line.
pub struct Running {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

fn pump(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    /// Starts `rxray ARGS` inside `ns` (ip netns exec replaces itself, so the pid is rxray's).
    pub fn start(ns: &str, args: &[&str]) -> Running {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, rxray_bin()]).args(args);
        Self::spawn(cmd)
    }

    /// Starts `rxray --netns NS ARGS`: only the network namespace is entered, so the host's bpffs
    /// (the firewall's pins) stays visible.
    pub fn start_netns(ns: &str, args: &[&str]) -> Running {
        let mut cmd = Command::new(rxray_bin());
        cmd.args(["--netns", ns]).args(args);
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rxray");
        let out = pump(child.stdout.take().unwrap());
        let err = pump(child.stderr.take().unwrap());
        Running { child, out, err, stdout: Vec::new(), stderr: Vec::new() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn collect(&mut self) {
        self.stdout.extend(self.out.try_iter());
        self.stderr.extend(self.err.try_iter());
    }

    /// Waits (bounded) until a stderr line contains `needle`; panics with everything printed so far.
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.collect();
            if self.stderr.iter().any(|l| l.contains(needle)) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                self.collect();
                panic!("rxray exited ({st}) before printing {needle:?}; stderr: {:?}", self.stderr);
            }
            assert!(Instant::now() < deadline, "no {needle:?} within {timeout:?}; stderr: {:?}", self.stderr);
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until stdout has at least `n` lines.
    pub fn wait_lines(&mut self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.collect();
            if self.stdout.len() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGINT, then waits (bounded) for the exit; returns its status code.
    pub fn interrupt(self) -> (Option<i32>, Vec<String>, Vec<String>) {
        // SAFETY: kill with a pid we spawned and still own (not yet reaped).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.finish()
    }

    /// Waits (bounded, 20 s) for the exit; kills it when it does not come.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("rxray did not exit within 20 s");
            }
            thread::sleep(Duration::from_millis(20));
        };
        // The pumps end at EOF; give them a moment to deliver the last lines.
        thread::sleep(Duration::from_millis(100));
        self.collect();
        (status.code(), std::mem::take(&mut self.stdout), std::mem::take(&mut self.stderr))
    }
}

impl Drop for Running {
    /// A test that ends (or fails) without stopping its rxray: Ctrl-C first, so that rxray removes
    /// what it made (owner locks, the agent's socket, its /run/rxray directory) as on any stop;
    /// SIGKILL when it has not gone within 5 s.
    fn drop(&mut self) {
        interrupt_then_kill(&mut self.child);
    }
}

/// Stops an `rxray` a test started and did not stop itself: Ctrl-C (SIGINT) first, so that it
/// removes what it made (owner locks, the agent's socket, its /run/rxray directory) as on any
/// stop; SIGKILL when it has not gone within 5 s. Reaps it either way.
pub fn interrupt_then_kill(child: &mut std::process::Child) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: kill with a pid we spawned and still own (not yet reaped).
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The `{"summary": {...}}` line `watch --json` prints on stderr at exit.
pub fn summary(stderr: &[String]) -> Value {
    let line = stderr
        .iter()
        .find(|l| l.starts_with("{\"summary\""))
        .unwrap_or_else(|| panic!("no summary line in stderr: {stderr:?}"));
    serde_json::from_str::<Value>(line).expect("summary JSON")["summary"].clone()
}

pub fn json_lines(lines: &[String]) -> Vec<Value> {
    lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"))).collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn mac(m: [u8; 6]) -> String {
    m.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// Runs `rxray ARGS` to completion inside `ns`; (exit code, stdout, stderr).
/// `rxray ARGS` (in this namespace) that must succeed: its stdout as JSON.
pub fn rx_json(args: &[&str]) -> serde_json::Value {
    let o = Command::new(rxray_bin()).args(args).output().unwrap();
    assert!(o.status.success(), "rxray {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("rxray {args:?}: {e}: {}", String::from_utf8_lossy(&o.stdout)))
}

pub fn rxray_in(ns: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("ip").args(["netns", "exec", ns, rxray_bin()]).args(args).output().expect("run rxray");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `rxray ifaces --json` inside `ns`, the entry for `iface`.
pub fn iface_state(ns: &str, iface: &str) -> Value {
    let (code, out, err) = rxray_in(ns, &["ifaces", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("ifaces JSON"))
        .find(|v| v["name"] == iface)
        .unwrap_or_else(|| panic!("{iface} not listed: {out}"))
}

/// A helper process (python, in a namespace), killed when the test lets go of it.
pub struct Kid {
    pub child: Child,
    out: BufReader<ChildStdout>,
}

impl Kid {
    pub fn python(lab: &Lab, ns: &str, script: &str, args: &[String]) -> Kid {
        let mut cmd: Command = lab.exec(ns, ["python3", "-u", "-c", script]);
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        let out = BufReader::new(child.stdout.take().unwrap());
        Kid { child, out }
    }

    /// The next stdout line (bounded by the script's own timeouts; panics at EOF).
    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read helper output");
        assert!(!s.is_empty(), "helper exited early");
        s.trim().to_string()
    }

    pub fn say(&mut self, s: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{s}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits (bounded) for the exit; returns whether it succeeded.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.success();
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cgroup v2 directory made for one test; its processes go back to the root and it is removed
/// when dropped.
pub struct Cgroup {
    pub mount: std::path::PathBuf,
    pub dir: std::path::PathBuf,
}

impl Cgroup {
    pub fn new() -> Cgroup {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mp = info
            .lines()
            .find_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                (post.split_whitespace().next() == Some("cgroup2")).then(|| pre.split_whitespace().nth(4).unwrap().to_string())
            })
            .expect("a cgroup2 mount");
        let mount = std::path::PathBuf::from(mp);
        let dir = mount.join(format!("rxray-test-{}-{}", std::process::id(), unique_name()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Cgroup { mount, dir }
    }

    /// The path as rxray reports it: relative to the mount, with a leading slash.
    pub fn rel(&self) -> String {
        format!("/{}", self.dir.strip_prefix(&self.mount).unwrap().display())
    }

    pub fn add(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).expect("moving into the cgroup");
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
                for p in procs.split_whitespace() {
                    let _ = std::fs::write(self.mount.join("cgroup.procs"), p);
                }
            }
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A tcpdump writing a pcap, started and confirmed listening before it is returned.
pub struct Dump {
    child: std::process::Child,
    file: std::path::PathBuf,
}

impl Dump {
    pub fn start(ns: &str, iface: &str, dir_q: &str, dir: &std::path::Path, tag: &str) -> Dump {
        Self::start_snap(ns, iface, dir_q, dir, tag, 400)
    }

    /// As [`Dump::start`], with the snap length given (0: whole packets).
    pub fn start_snap(ns: &str, iface: &str, dir_q: &str, dir: &std::path::Path, tag: &str, snap: u32) -> Dump {
        let file = dir.join(format!("{tag}.pcap"));
        let snap = snap.to_string();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "tcpdump", "-i", iface, "-Q", dir_q, "--immediate-mode", "-U", "-n", "-B", "16384", "-s", &snap, "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        let mut err = child.stderr.take().unwrap();
        use std::io::Read;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let mut seen = String::new();
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                if seen.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).expect("tcpdump did not start listening");
        Dump { child, file }
    }

    /// Stops tcpdump and returns its file with (kernel timestamp ns, frame) for every frame.
    pub fn stop(mut self) -> (std::path::PathBuf, Vec<(u64, Vec<u8>)>) {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill with the pid of our child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        let f = std::fs::File::open(&self.file).expect("tcpdump output");
        let mut rd = rxray_io::CaptureReader::new(std::io::BufReader::new(f)).expect("pcap");
        let mut out = Vec::new();
        while let Some(r) = rd.next_record() {
            let r = r.expect("record");
            out.push((r.ts_ns, r.data.to_vec()));
        }
        (self.file.clone(), out)
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
/// Takes rxray's firewall off the lab's second interface when it goes (an agent that enforces
/// leaves it pinned when it stops).
pub struct FwOff<'a>(pub &'a Lab);

impl Drop for FwOff<'_> {
    fn drop(&mut self) {
        let _ = Command::new(rxray_bin()).args(["--netns", self.0.ns_b(), "firewall", "off", "-i", self.0.if_b()]).output();
    }
}

/// The EVE of a run that sent one request matching signature `sid` and more requests to `endpoint`
/// than its API limit allows, all from `src`: exactly one signature alert (that sid, from `src`),
/// and at least one `api_limit` alert, each from `src` on `endpoint`. `ctx` is printed on failure.
pub fn expect_one_signature_and_api_limits(eve: &[Value], sid: u64, src: &str, endpoint: &str, ctx: &dyn std::fmt::Debug) {
    let sigs: Vec<&Value> = eve.iter().filter(|a| a["rxray"]["detector"] == "signature").collect();
    assert_eq!(sigs.len(), 1, "one signature alert: {sigs:?} {ctx:?}");
    assert_eq!(sigs[0]["alert"]["signature_id"].as_u64(), Some(sid), "{}", sigs[0]);
    assert_eq!(sigs[0]["src_ip"], src, "{}", sigs[0]);
    let limited: Vec<&Value> = eve.iter().filter(|a| a["rxray"]["detector"] == "api_limit").collect();
    assert!(!limited.is_empty(), "api_limit alerts: {eve:?} {ctx:?}");
    for a in &limited {
        assert_eq!(a["src_ip"], src, "{a}");
        assert_eq!(a["rxray"]["evidence"]["endpoint"], endpoint, "{a}");
    }
}

pub mod curl_log;
pub mod web;
pub mod pcap;

/// JA4 over a capture, written from FoxIO's published description (not from rxray's code): the
/// first ClientHello to `port` of each TCP connection, reassembled by sequence number.
pub const JA4_PY: &str = r#"
import sys, struct, hashlib
f = open(sys.argv[1], "rb").read(); port = int(sys.argv[2])
magic = struct.unpack("<I", f[:4])[0]
assert magic in (0xa1b2c3d4, 0xa1b23c4d), "not a little-endian pcap"
link = struct.unpack("<I", f[20:24])[0]
off, flows = 24, {}
while off + 16 <= len(f):
    _, _, incl, _ = struct.unpack("<IIII", f[off:off+16]); pkt = f[off+16:off+16+incl]; off += 16 + incl
    if link == 1: eth = pkt[14:] if pkt[12:14] == b"\x08\x00" else None
    elif link == 113: eth = pkt[16:] if pkt[14:16] == b"\x08\x00" else None
    else: raise SystemExit("link type %d" % link)
    if not eth or eth[9] != 6: continue
    ihl = (eth[0] & 15) * 4; tot = struct.unpack(">H", eth[2:4])[0]; tcp = eth[ihl:tot]
    sp, dp, seq = struct.unpack(">HHI", tcp[:8]); doff = (tcp[12] >> 4) * 4; flags = tcp[13]
    if dp != port: continue
    k = (eth[12:16], sp)
    if flags & 2: flows[k] = {"isn": seq + 1, "data": {}}; continue
    if k in flows and len(tcp) > doff: flows[k]["data"][seq - flows[k]["isn"]] = tcp[doff:]
def grease(v): return (v & 0x0f0f) == 0x0a0a and (v >> 8) == (v & 0xff)
def h12(s): return hashlib.sha256(s.encode()).hexdigest()[:12] if s else "000000000000"
for k in sorted(flows, key=lambda k: k[1]):
    d = flows[k]["data"]; buf = b""; pos = 0
    while pos in d: buf += d[pos]; pos += len(d[pos])
    hs = b""; i = 0
    while i + 5 <= len(buf) and buf[i] == 22:
        n = struct.unpack(">H", buf[i+3:i+5])[0]; hs += buf[i+5:i+5+n]; i += 5 + n
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"): break
    assert hs[0] == 1, "not a ClientHello"
    p = 4; ver = struct.unpack(">H", hs[p:p+2])[0]; p += 2 + 32
    p += 1 + hs[p]
    n = struct.unpack(">H", hs[p:p+2])[0]; ciphers = [struct.unpack(">H", hs[p+2+j:p+4+j])[0] for j in range(0, n, 2)]; p += 2 + n
    p += 1 + hs[p]
    end = p + 2 + struct.unpack(">H", hs[p:p+2])[0]; p += 2
    exts, sni, alpn, sigs, vers = [], False, [], [], []
    while p < end:
        t, n = struct.unpack(">HH", hs[p:p+4]); body = hs[p+4:p+4+n]; p += 4 + n
        exts.append(t)
        if t == 0: sni = True
        if t == 16:
            q = 2
            while q < len(body): alpn.append(body[q+1:q+1+body[q]]); q += 1 + body[q]
        if t == 13: sigs = [struct.unpack(">H", body[2+j:4+j])[0] for j in range(0, struct.unpack(">H", body[:2])[0], 2)]
        if t == 43: vers = [struct.unpack(">H", body[1+j:3+j])[0] for j in range(0, body[0], 2)]
    vers = [v for v in vers if not grease(v)]
    v = max(vers) if vers else ver
    vs = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}.get(v, "00")
    c = [x for x in ciphers if not grease(x)]; e = [x for x in exts if not grease(x)]
    if alpn and alpn[0]:
        a = alpn[0]
        al = chr(a[0]) + chr(a[-1]) if chr(a[0]).isalnum() and chr(a[-1]).isalnum() and a[0] < 128 and a[-1] < 128 else a.hex()[0] + a.hex()[-1]
    else: al = "00"
    pa = "t%s%s%02d%02d%s" % (vs, "d" if sni else "i", min(len(c), 99), min(len(e), 99), al)
    pb = h12(",".join("%04x" % x for x in sorted(c)))
    ce = ",".join("%04x" % x for x in sorted(x for x in e if x not in (0, 16)))
    s = [x for x in sigs if not grease(x)]
    if s: ce += "_" + ",".join("%04x" % x for x in s)
    print(k[1], "%s_%s_%s" % (pa, pb, h12(ce)))
"#;
