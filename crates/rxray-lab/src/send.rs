//! Raw frame injection: sends test-built Ethernet frames verbatim from inside a lab namespace.
//! A dedicated thread joins the namespace (setns affects only that thread) and uses AF_PACKET.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;
use std::time::Duration;

use crate::LabError;

/// Sends each frame verbatim out of `ifname` in namespace `ns` (a name under /run/netns) and
/// returns how many were sent. Frames are not padded: a 42-byte frame leaves as 42 bytes.
pub fn send_frames(ns: &str, ifname: &str, frames: &[Vec<u8>]) -> Result<usize, LabError> {
    send_frames_paced(ns, ifname, frames, Duration::ZERO)
}

/// Like [`send_frames`], sleeping `gap` between two frames.
pub fn send_frames_paced(
    ns: &str,
    ifname: &str,
    frames: &[Vec<u8>],
    gap: Duration,
) -> Result<usize, LabError> {
    let ns_owned = ns.to_string();
    let ifname_owned = ifname.to_string();
    // The thread owns copies so that it can be 'static; the frames are test-sized.
    let frames_owned = frames.to_vec();
    let handle = thread::Builder::new()
        .name(format!("rxray-lab-send-{ns}"))
        .spawn(move || send_in_thread(&ns_owned, &ifname_owned, &frames_owned, gap))
        .map_err(|e| io_err("spawn sending thread", ns, ifname, e))?;
    handle
        .join()
        .map_err(|_| LabError::ThreadPanicked { ns: ns.to_string() })?
}

fn io_err(what: impl Into<String>, ns: &str, ifname: &str, source: io::Error) -> LabError {
    LabError::Io {
        what: what.into(),
        ns: ns.to_string(),
        ifname: ifname.to_string(),
        source,
    }
}

/// Runs on a thread of its own: setns changes this thread's network namespace for good, and the
/// thread ends right after, so no other code ever runs in the lab namespace by accident.
fn send_in_thread(
    ns: &str,
    ifname: &str,
    frames: &[Vec<u8>],
    gap: Duration,
) -> Result<usize, LabError> {
    let path = format!("/run/netns/{ns}");
    let ns_file = File::open(&path).map_err(|e| io_err(format!("open {path}"), ns, ifname, e))?;
    // SAFETY: the fd is valid and open for the duration of the call (owned by `ns_file`);
    // setns only changes the calling thread's network namespace.
    let rc = unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io_err("setns", ns, ifname, io::Error::last_os_error()));
    }

    // Protocol 0: the socket is bound to no protocol, so it never receives (or queues) anything.
    // SAFETY: plain syscall with constant arguments; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io_err(
            "socket(AF_PACKET, SOCK_RAW, 0)",
            ns,
            ifname,
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by socket(2), is valid, and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };

    let c_ifname = std::ffi::CString::new(ifname).map_err(|_| {
        io_err(
            "interface name",
            ns,
            ifname,
            io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"),
        )
    })?;
    // SAFETY: `c_ifname` is a valid NUL-terminated string that outlives the call. Called after
    // setns, so the name is looked up in the lab namespace.
    let ifindex = unsafe { libc::if_nametoindex(c_ifname.as_ptr()) };
    if ifindex == 0 {
        return Err(io_err(
            "if_nametoindex",
            ns,
            ifname,
            io::Error::last_os_error(),
        ));
    }

    let mut sent = 0;
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 && !gap.is_zero() {
            thread::sleep(gap);
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        // The frame's own EtherType, kept in network byte order as sll_protocol expects.
        if frame.len() >= 14 {
            addr.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
            addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        }
        // SAFETY: the buffer pointer/length come from a live slice, and `addr` is a valid
        // sockaddr_ll whose size is passed; the socket fd is owned by `sock` and open.
        let n = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(io_err(
                format!("sendto frame {i} ({} bytes)", frame.len()),
                ns,
                ifname,
                e,
            ));
        }
        if n as usize != frame.len() {
            let e = io::Error::new(io::ErrorKind::WriteZero, format!("only {n} bytes sent"));
            return Err(io_err(
                format!("sendto frame {i} ({} bytes)", frame.len()),
                ns,
                ifname,
                e,
            ));
        }
        sent += 1;
    }
    Ok(sent)
}
