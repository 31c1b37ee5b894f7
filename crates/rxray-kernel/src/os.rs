//! The operating system as rxray reads it (`rxray_engine::os::Os` on Linux): exe of a pid, cgroup
//! v2 paths, /proc/net/tcp{,6}, /proc/net/netstat, the interfaces that are up, this host's
//! addresses, and the clock. Everything else in rxray gets these through the trait.
pub mod links;
pub mod netns;
pub mod proc_tcp;

use crate::Clock;
use rxray_engine::os::{Os, TcpSocket};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::os::{fd::AsRawFd, unix::fs::MetadataExt};
use std::path::{Path, PathBuf};

/// Linux, through /proc, /sys and netlink.
pub struct LinuxOs {
    clock: Clock,
    /// Found on first use (it walks mountinfo up the process tree).
    cgroups: Option<CgroupPaths>,
}

impl LinuxOs {
    pub fn new() -> Self {
        LinuxOs { clock: Clock::now(), cgroups: None }
    }
}

impl Default for LinuxOs {
    fn default() -> Self {
        Self::new()
    }
}

impl Os for LinuxOs {
    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn exe_of(&mut self, pid: u32) -> Option<String> {
        std::fs::read_link(format!("/proc/{pid}/exe")).ok().map(|p| p.display().to_string())
    }

    fn cgroup_path(&mut self, id: u64) -> Option<String> {
        self.cgroups.get_or_insert_with(CgroupPaths::new).cgroup_path(id)
    }

    fn tcp_sockets(&mut self) -> Result<Vec<TcpSocket>, String> {
        proc_tcp::read()
    }

    fn tcp_counters(&mut self, names: &[&str]) -> Result<BTreeMap<String, u64>, String> {
        let text = std::fs::read_to_string("/proc/net/netstat").map_err(|e| format!("reading /proc/net/netstat: {e}"))?;
        Ok(parse_netstat(&text, names))
    }

    fn up_interfaces(&mut self) -> Result<Vec<String>, String> {
        let links = links::links().map_err(|e| format!("listing interfaces (RTM_GETLINK): {e}"))?;
        let mut v: Vec<String> = links.into_iter().filter(|l| l.up && !l.loopback).map(|l| l.name).collect();
        v.sort();
        Ok(v)
    }

    fn host_addresses(&mut self) -> Result<Vec<IpAddr>, String> {
        crate::host::addresses().map_err(|e| e.to_string())
    }
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

/// Cgroup v2 ids to paths. The ids are the cgroup directories' inode numbers: the mount is walked to find them, once per unknown id
/// (a cgroup created since the last walk is found by the next), and the answers are cached.
pub struct CgroupPaths {
    mount: Option<PathBuf>,
    paths: HashMap<u64, Option<String>>,
    _dir: Option<std::fs::File>,
}

impl CgroupPaths {
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
        CgroupPaths { mount, paths: HashMap::new(), _dir: _keep }
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
}

impl Default for CgroupPaths {
    fn default() -> Self {
        Self::new()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstat_reads_the_tcpext_pair() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 3 4\nIpExt: InNoRoutes\nIpExt: 0\n";
        let m = parse_netstat(text, &["ListenOverflows", "ListenDrops"]);
        assert_eq!(m.get("ListenOverflows"), Some(&3));
        assert_eq!(m.get("ListenDrops"), Some(&4));
    }

    #[test]
    fn the_cgroup2_mount_is_found_in_mountinfo() {
        let t = "25 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                 35 25 0:30 / /sys/fs/cgroup/unified\\040x rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount_in(t), Some(PathBuf::from("/sys/fs/cgroup/unified x")));
        assert_eq!(cgroup2_mount_in("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn this_process_has_an_exe_and_the_clock_reads_wall_time() {
        let mut os = LinuxOs::new();
        assert!(os.exe_of(std::process::id()).is_some());
        assert!(os.now_ns() > 1_700_000_000_000_000_000);
    }
}
