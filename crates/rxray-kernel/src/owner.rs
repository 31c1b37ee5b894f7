//! One owner per interface: the process that attaches rxray to an interface holds an flock on
//! /run/rxray/<netns inode>/<ifindex>.lock for its whole life. The kernel drops the lock when the
//! process dies, however it dies, so a lock file nobody holds is a leftover (`rxray detach`).
use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, Write},
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::PathBuf,
};

/// Where rxray keeps owner locks, one directory per network namespace.
pub const RUN_DIR: &str = "/run/rxray";

/// The inode of this process's network namespace (what `ip netns identify` compares).
pub fn netns_inode() -> u64 {
    fs::metadata("/proc/self/ns/net").map(|m| m.ino()).unwrap_or(0)
}

pub fn lock_dir() -> PathBuf {
    PathBuf::from(RUN_DIR).join(netns_inode().to_string())
}

pub fn lock_path(ifindex: u32) -> PathBuf {
    lock_dir().join(format!("{ifindex}.lock"))
}

/// Who holds (or held) an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub command: String,
    /// The lock is held: the owner is running.
    pub alive: bool,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rxray {} (pid {})", self.command, self.pid)
    }
}

fn flock(file: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on an fd we own; no memory is passed.
    unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) == 0 }
}

fn parse(text: &str) -> (u32, String) {
    let mut pid = 0;
    let mut cmd = String::from("?");
    for part in text.split_whitespace() {
        if let Some(v) = part.strip_prefix("pid=") {
            pid = v.parse().unwrap_or(0);
        } else if let Some(v) = part.strip_prefix("command=") {
            cmd = v.to_string();
        }
    }
    (pid, cmd)
}

/// The owner of an interface, if a lock file exists.
pub fn owner_of(ifindex: u32) -> Option<Owner> {
    let mut f = File::open(lock_path(ifindex)).ok()?;
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    let (pid, command) = parse(&text);
    let alive = !flock(&f, libc::LOCK_SH);
    Some(Owner { pid, command, alive })
}

/// Held for as long as this process owns the interface; removes its file on drop.
#[derive(Debug)]
pub struct OwnerLock {
    file: File,
    path: PathBuf,
}

impl OwnerLock {
    /// Takes the interface, or returns who has it.
    pub fn acquire(ifindex: u32, command: &str) -> Result<OwnerLock, Result<Owner, std::io::Error>> {
        let dir = lock_dir();
        fs::create_dir_all(&dir).map_err(Err)?;
        let path = lock_path(ifindex);
        let mut file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(Err)?;
        if !flock(&file, libc::LOCK_EX) {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let (pid, command) = parse(&text);
            return Err(Ok(Owner { pid, command, alive: true }));
        }
        file.set_len(0).map_err(Err)?;
        file.rewind().map_err(Err)?;
        writeln!(file, "pid={} command={command}", std::process::id()).map_err(Err)?;
        Ok(OwnerLock { file, path })
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = flock(&self.file, libc::LOCK_UN);
        // The namespace's directory goes when its last interface does.
        if let Some(dir) = self.path.parent() {
            let _ = fs::remove_dir(dir);
        }
    }
}
