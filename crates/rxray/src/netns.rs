//! `rxray --netns NAME`: run in a named network namespace (like `ip netns exec NAME rxray ...`), but
//! keep the host's BPF filesystem, so the firewall's pins outlive this process.
//!
//! Like `ip netns exec`, it enters the namespace, takes a private mount namespace and mounts a
//! sysfs of the new network namespace on /sys (so /sys/class/net lists its interfaces); unlike it,
//! it then bind-mounts the host's bpffs (the copy this mount namespace started with) onto the new
//! /sys/fs/bpf.
use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::AsRawFd;

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in a constant path")
}

/// Must run before any thread starts (setns and unshare act on the calling thread / a lone thread).
pub fn enter(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') {
        bail!("--netns {name:?}: a namespace name as `ip netns list` shows it");
    }
    let path = format!("/run/netns/{name}");
    let ns = std::fs::File::open(&path).with_context(|| format!("--netns {name}: opening {path} (see `ip netns list`)"))?;
    // SAFETY: plain syscalls on fds we own and NUL-terminated paths; failures are checked.
    unsafe {
        if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            bail!("--netns {name}: entering the namespace: {}", std::io::Error::last_os_error());
        }
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            bail!("--netns {name}: a private mount namespace: {}", std::io::Error::last_os_error());
        }
        if libc::mount(std::ptr::null(), cstr("/").as_ptr(), std::ptr::null(), libc::MS_SLAVE | libc::MS_REC, std::ptr::null()) != 0 {
            bail!("--netns {name}: making mounts private: {}", std::io::Error::last_os_error());
        }
        // The bpffs as this mount namespace has it (a bind mount must come from the caller's namespace);
        // the new sysfs is stacked on /sys rather than replacing it, so this mount stays attached.
        let bpffs = std::fs::File::open("/sys/fs/bpf").ok();
        if libc::mount(cstr(name).as_ptr(), cstr("/sys").as_ptr(), cstr("sysfs").as_ptr(), 0, std::ptr::null()) != 0 {
            bail!("--netns {name}: mounting sysfs: {}", std::io::Error::last_os_error());
        }
        if let Some(b) = bpffs {
            let src = cstr(&format!("/proc/self/fd/{}", b.as_raw_fd()));
            if libc::mount(src.as_ptr(), cstr("/sys/fs/bpf").as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0 {
                bail!("--netns {name}: keeping the host's /sys/fs/bpf: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}
