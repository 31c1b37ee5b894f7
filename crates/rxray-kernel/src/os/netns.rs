//! Network namespaces: entering one (setns), and `rxray --netns NAME`, which runs in a named
//! network namespace (like `ip netns exec NAME rxray ...`) but keeps the host's BPF filesystem, so
//! the firewall's pins outlive the process.
//!
//! Like `ip netns exec`, `enter_named` enters the namespace, takes a private mount namespace and
//! mounts a sysfs of the new network namespace on /sys (so /sys/class/net lists its interfaces);
//! unlike it, it then bind-mounts the host's bpffs (the copy this mount namespace started with)
//! onto the new /sys/fs/bpf.
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;

/// Moves the calling thread into the network namespace `ns` (an open /run/netns/NAME or
/// /proc/PID/ns/net).
pub fn enter(ns: &File) -> std::io::Result<()> {
    // SAFETY: setns with a valid namespace fd; it changes only the calling thread's namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in a constant path")
}

/// `--netns NAME`. Must run before any thread starts (setns and unshare act on the calling thread
/// / a lone thread). The error names the step that failed.
pub fn enter_named(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') {
        return Err(format!("--netns {name:?}: a namespace name as `ip netns list` shows it"));
    }
    let path = format!("/run/netns/{name}");
    let ns = File::open(&path).map_err(|e| format!("--netns {name}: opening {path} (see `ip netns list`): {e}"))?;
    let fail = |what: &str| format!("--netns {name}: {what}: {}", std::io::Error::last_os_error());
    enter(&ns).map_err(|e| format!("--netns {name}: entering the namespace: {e}"))?;
    // SAFETY: plain syscalls on fds we own and NUL-terminated paths; failures are checked.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(fail("a private mount namespace"));
        }
        if libc::mount(std::ptr::null(), cstr("/").as_ptr(), std::ptr::null(), libc::MS_SLAVE | libc::MS_REC, std::ptr::null()) != 0 {
            return Err(fail("making mounts private"));
        }
        // The bpffs as this mount namespace has it (a bind mount must come from the caller's namespace);
        // the new sysfs is stacked on /sys rather than replacing it, so this mount stays attached.
        let bpffs = File::open("/sys/fs/bpf").ok();
        if libc::mount(cstr(name).as_ptr(), cstr("/sys").as_ptr(), cstr("sysfs").as_ptr(), 0, std::ptr::null()) != 0 {
            return Err(fail("mounting sysfs"));
        }
        if let Some(b) = bpffs {
            let src = cstr(&format!("/proc/self/fd/{}", b.as_raw_fd()));
            if libc::mount(src.as_ptr(), cstr("/sys/fs/bpf").as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0 {
                return Err(fail("keeping the host's /sys/fs/bpf"));
            }
        }
    }
    Ok(())
}
