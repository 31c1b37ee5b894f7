//! Helpers every rxray test that needs root, namespaces or outside tools shares: the skip rule
//! (under CI=true a test that cannot run fails; elsewhere it says why and skips), unique names,
//! and scratch directories.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Under CI=true a test that cannot run fails; elsewhere it prints why and is skipped.
pub fn skip_or_fail(reason: &str) {
    if in_ci() {
        panic!("CI=true and this test cannot run: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `tool --version` starts, i.e. the tool is installed.
pub fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// True when the test may go on: root is there. Otherwise skips (or fails under CI).
pub fn need_root() -> bool {
    if is_root() {
        return true;
    }
    skip_or_fail("needs root for namespaces and eBPF");
    false
}

/// A lab name unique on this machine: "rxt" + pid + per-process counter.
pub fn unique_name() -> String {
    format!("rxt{}n{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("rxray-test-{}", unique_name()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// xorshift64*: a small seeded generator for test traffic, so a failure reproduces from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-enough in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}

/// A word of `min..=max` lowercase letters.
pub fn word(rng: &mut Rng, min: usize, max: usize) -> String {
    let n = min + rng.below(max - min + 1);
    (0..n).map(|_| (b'a' + rng.below(26) as u8) as char).collect()
}

/// `n` generated signatures for the benchmarks (sids from `sid_base`), and each one's first content:
/// a distinct content of 5-12 letters; a third nocase; a fifth with a second, relative content; a
/// fifth with a relative pcre; a tenth with flow:established,to_server; a quarter on web ports only.
pub fn generated_rules(rng: &mut Rng, n: usize, sid_base: u32) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut words = Vec::new();
    for i in 0..n {
        let w = word(rng, 5, 12);
        let mut opts = format!("msg:\"generated {i}\"; content:\"{w}\"; ");
        if rng.below(3) == 0 {
            opts.push_str("nocase; ");
        }
        if rng.below(5) == 0 {
            opts.push_str(&format!("content:\"{}\"; distance:0; within:64; ", word(rng, 2, 3)));
        }
        if rng.below(5) == 0 {
            opts.push_str(&format!("pcre:\"/^[=\\/]?[a-z0-9]{{{},}}/iR\"; ", 1 + rng.below(3)));
        }
        if rng.below(10) == 0 {
            opts.push_str("flow:established,to_server; ");
        }
        let ports = if rng.below(4) == 0 { "[80,443,8000:8999]" } else { "any" };
        text.push_str(&format!(
            "alert tcp any any -> any {ports} ({opts}classtype:misc-activity; sid:{}; rev:1;)\n",
            sid_base + i as u32
        ));
        words.push(w);
    }
    (text, words)
}

/// What a process run under [`run_bounded`] did, and what it cost.
#[derive(Debug)]
pub struct BoundedRun {
    /// `None` when the process was killed (by the time bound, or a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Wall time from start to exit.
    pub secs: f64,
    /// Peak resident memory (VmHWM) of the process, in KiB, as last read before it exited.
    pub max_rss_kib: u64,
    /// True when the time bound ran out and the process was killed.
    pub timed_out: bool,
}

/// VmHWM of a live process, in KiB (None once it has exited).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd` with a time bound and a memory bound, and measures both.
///
/// Memory: the child's data segment limit (RLIMIT_DATA: heap and private writable mappings) is
/// `max_data_mib`, so a runaway allocation fails inside the child instead of taking the machine.
/// The peak RSS is the child's own VmHWM from /proc/<pid>/status, read every millisecond until it
/// exits (VmHWM only grows, so the last reading is the peak up to a millisecond before exit).
/// Not wait4's ru_maxrss: the kernel folds the forking parent's peak into it at exec.
/// Time: the child is killed after `max_secs`.
pub fn run_bounded(mut cmd: std::process::Command, max_secs: f64, max_data_mib: u64) -> BoundedRun {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let limit = max_data_mib << 20;
    // SAFETY: setrlimit is async-signal-safe; the closure touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_DATA, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let start = std::time::Instant::now();
    let mut child = cmd.spawn().expect("spawn the command under test");
    let pid = child.id();
    let pump = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = pump(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = pump(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let mut timed_out = false;
    let mut peak = 0;
    let status = loop {
        if let Some(k) = vm_hwm_kib(pid) {
            peak = peak.max(k);
        }
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => panic!("waiting for the command under test: {e}"),
        }
        if !timed_out && start.elapsed().as_secs_f64() > max_secs {
            timed_out = true;
            let _ = child.kill();
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    BoundedRun {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        secs: start.elapsed().as_secs_f64(),
        max_rss_kib: peak,
        timed_out,
    }
}
