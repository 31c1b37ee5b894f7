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
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
pub mod curl_log;
pub mod web;
pub mod pcap;
