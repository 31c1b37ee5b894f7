//! Running the real `rxray` binary inside a lab namespace, and reading what it printed.
#![allow(dead_code, unused_imports)]
use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
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
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, rxray_bin()])
            .args(args)
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
