//! The BPF filesystem at /sys/fs/bpf, where the firewall's pinned state lives: checked, and mounted
//! when it is missing (as bpftool and Cilium do), so nothing depends on a mount made by hand.
//!
//! One case is refused rather than mounted: under `ip netns exec`, /sys is a fresh sysfs of that
//! command's own mount namespace, so a bpffs mounted there would vanish (with every pin in it) when
//! the command exits. `rxray --netns NAME` enters only the network namespace and keeps the host's.
use crate::KernelError;
use std::ffi::CString;
use std::path::Path;

pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// What `ensure` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bpffs {
    /// A bpffs was already mounted at /sys/fs/bpf.
    Present,
    /// None was; rxray mounted one in this mount namespace.
    Mounted,
}

/// Whether `path` is the root of a mounted BPF filesystem.
pub fn is_bpffs(path: &str) -> bool {
    let Ok(c) = CString::new(path) else { return false };
    // SAFETY: statfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0;
    ok && st.f_type as i64 == BPF_FS_MAGIC
}

/// The network namespace whose fresh sysfs `ip netns exec NAME` mounted on /sys (it gives the
/// mount the source NAME), read from this process's mountinfo; `None` outside `ip netns exec`.
pub fn ip_netns_exec_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    ip_netns_exec_name_in(&info, |name| Path::new("/run/netns").join(name).exists())
}

/// `ip_netns_exec_name` over mountinfo text; `named` says whether /run/netns has that name.
fn ip_netns_exec_name_in(mountinfo: &str, named: impl Fn(&str) -> bool) -> Option<String> {
    // The last mount on /sys is the one in effect. A line: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS
    // [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS.
    let top = mountinfo.lines().filter(|l| l.split(' ').nth(4) == Some("/sys")).last()?;
    let (_, after) = top.split_once(" - ")?;
    let mut f = after.split(' ');
    let (fstype, source) = (f.next()?, f.next()?);
    (fstype == "sysfs" && !source.is_empty() && !source.contains('/') && named(source)).then(|| source.to_string())
}

/// Makes sure /sys/fs/bpf is a bpffs: mounts one in this mount namespace when none is there.
/// Under `ip netns exec` it refuses, naming `rxray --netns`.
pub fn ensure() -> Result<Bpffs, KernelError> {
    if is_bpffs(BPFFS) {
        return Ok(Bpffs::Present);
    }
    if let Some(ns) = ip_netns_exec_name() {
        return Err(KernelError::Load(format!(
            "{BPFFS} is not a BPF filesystem under `ip netns exec {ns}`, which mounts a fresh /sys for this \
             command alone, so pinned state (the firewall's) would vanish when it exits: run \
             `rxray --netns {ns} ...` instead, which enters only the network namespace and keeps the host's {BPFFS}"
        )));
    }
    let _ = std::fs::create_dir_all(BPFFS);
    let c = |s: &str| CString::new(s).expect("no NUL in a constant");
    // SAFETY: mount(2) with NUL-terminated constant strings; the result is checked.
    let r = unsafe { libc::mount(c("bpf").as_ptr(), c(BPFFS).as_ptr(), c("bpf").as_ptr(), 0, c("mode=0700").as_ptr().cast()) };
    if r != 0 {
        return Err(KernelError::Load(format!(
            "{BPFFS} is not a BPF filesystem, and mounting one there failed ({}): mount it with \
             `mount -t bpf bpf {BPFFS}` (rxray needs it for the firewall's pinned state)",
            std::io::Error::last_os_error()
        )));
    }
    Ok(Bpffs::Mounted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n\
                        23 22 0:6 / /sys/kernel/security rw - securityfs securityfs rw\n";

    #[test]
    fn the_host_sysfs_is_not_ip_netns_exec() {
        // The host's sysfs has the source "sysfs", which names no namespace in /run/netns.
        assert_eq!(ip_netns_exec_name_in(HOST, |n| n == "lab-b"), None);
    }

    #[test]
    fn a_sysfs_named_after_a_netns_on_top_of_sys_is_ip_netns_exec() {
        let info = format!("{HOST}812 790 0:88 / /sys rw,relatime - sysfs lab-b rw\n");
        assert_eq!(ip_netns_exec_name_in(&info, |n| n == "lab-b"), Some("lab-b".into()));
        // A source that names no namespace in /run/netns is not one.
        assert_eq!(ip_netns_exec_name_in(&info, |_| false), None);
        // Only the mount in effect (the last on /sys) counts.
        let later = format!("{info}900 812 0:21 / /sys rw - sysfs sysfs rw\n");
        assert_eq!(ip_netns_exec_name_in(&later, |n| n == "lab-b"), None);
    }

    #[test]
    fn odd_mountinfo_lines_do_not_panic() {
        for l in ["", "x", "1 2 3 4 /sys", "1 2 3 4 /sys 6 -", "1 2 3 4 /sys 6 - sysfs", "1 2 3 4 /sys 6 - sysfs a/b x"] {
            assert_eq!(ip_netns_exec_name_in(l, |_| true), None, "{l:?}");
        }
    }
}
