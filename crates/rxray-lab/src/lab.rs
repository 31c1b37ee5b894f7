//! `Lab`: two network namespaces joined by one veth pair, built with iproute2 and removed on Drop.
//! Addresses come only from 198.18.0.0/15 and 2001:2::/48; no default route, no forwarding, and
//! both veth ends live inside lab namespaces, so the root namespace takes no part.

use std::ffi::OsStr;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// MAC address set on `veth-a` (locally administered, "RX" in bytes 1-2).
pub const MAC_A: [u8; 6] = [0x02, 0x52, 0x58, 0x00, 0x00, 0x0a];
/// MAC address set on `veth-b`.
pub const MAC_B: [u8; 6] = [0x02, 0x52, 0x58, 0x00, 0x00, 0x0b];

const IF_A: &str = "veth-a";
const IF_B: &str = "veth-b";

/// Per-process lab counter: picks the third octet of the lab's /24 (and the /64's fourth group), so
/// two labs of one process are told apart in captures and logs.
static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Sysctls applied in both namespaces before any link exists, so new links inherit them:
/// no forwarding (IPv4 may inherit the host's ip_forward), no router solicitation or autoconf.
const NS_SYSCTLS: &[&str] = &[
    "net.ipv4.ip_forward=0",
    "net.ipv6.conf.all.forwarding=0",
    "net.ipv6.conf.default.forwarding=0",
    "net.ipv6.conf.all.accept_ra=0",
    "net.ipv6.conf.default.accept_ra=0",
    "net.ipv6.conf.all.autoconf=0",
    "net.ipv6.conf.default.autoconf=0",
    "net.ipv6.conf.all.router_solicitations=0",
    "net.ipv6.conf.default.router_solicitations=0",
];

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the network lab needs root (effective uid is {euid}); run the tests as root")]
    NotRoot { euid: u32 },
    #[error("cannot run `ip` (iproute2): {0}; install the iproute2 package")]
    NoIp(#[source] io::Error),
    #[error("invalid lab name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("could not start `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: io::Error,
    },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("unexpected output from `{cmd}`: {output:?}")]
    Output { cmd: String, output: String },
    #[error("{what} (namespace {ns}, interface {ifname}): {source}")]
    Io {
        what: String,
        ns: String,
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("the sending thread for namespace {ns} panicked")]
    ThreadPanicked { ns: String },
}

/// Two namespaces `<name>-a` and `<name>-b` joined by `veth-a` (in a) and `veth-b` (in b).
///
/// a has 198.18.k.1/24 and 2001:2:0:k::1/64, b has .2 and ::2, where k counts labs in this process
/// (mod 256). In quiet-sender mode `veth-a` has no address and IPv6 disabled, so the kernel in a
/// sends nothing by itself; the a-addresses are then still the natural sources for crafted frames.
#[derive(Debug)]
pub struct Lab {
    ns_a: String,
    ns_b: String,
    /// Which namespaces this lab created (and so may delete): a, b.
    created: [bool; 2],
    k: u8,
    quiet_sender: bool,
    ifindex_a: u32,
    ifindex_b: u32,
}

impl Lab {
    /// Creates the pair with addresses on both sides. `name` must be unique among the namespaces
    /// on this machine, e.g. `format!("rxt{}{}", std::process::id(), n)`.
    pub fn pair(name: &str) -> Result<Lab, LabError> {
        Lab::create(name, false)
    }

    /// Leaves the namespaces in place when this value goes (for `rxray lab up`); remove them
    /// later with [`Lab::cleanup_stale`].
    pub fn keep(mut self) {
        self.created = [false, false];
    }

    /// Like [`Lab::pair`], but `veth-a` gets no addresses and IPv6 is disabled on it before it
    /// comes up, so every frame leaving a is one the test sent itself.
    pub fn pair_quiet(name: &str) -> Result<Lab, LabError> {
        Lab::create(name, true)
    }

    fn create(name: &str, quiet_sender: bool) -> Result<Lab, LabError> {
        check_name(name)?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(LabError::NotRoot { euid });
        }
        check_ip()?;
        let k = (LAB_COUNTER.fetch_add(1, Ordering::Relaxed) % 256) as u8;
        let mut lab = Lab {
            ns_a: format!("{name}-a"),
            ns_b: format!("{name}-b"),
            created: [false, false],
            k,
            quiet_sender,
            ifindex_a: 0,
            ifindex_b: 0,
        };
        // On error `lab` is dropped here, which deletes whatever namespaces it had created.
        lab.build()?;
        Ok(lab)
    }

    fn build(&mut self) -> Result<(), LabError> {
        let (a, b) = (self.ns_a.clone(), self.ns_b.clone());
        ip(&["netns", "add", &a])?;
        self.created[0] = true;
        ip(&["netns", "add", &b])?;
        self.created[1] = true;

        for ns in [&a, &b] {
            let mut args = vec!["netns", "exec", ns.as_str(), "sysctl", "-q", "-w"];
            args.extend_from_slice(NS_SYSCTLS);
            ip(&args)?;
        }

        // Created inside a with its peer placed straight into b: no link ever exists in the root
        // namespace, not even for a moment.
        ip(&[
            "-n", &a, "link", "add", IF_A, "type", "veth", "peer", "name", IF_B, "netns", &b,
        ])?;
        ip(&[
            "-n",
            &a,
            "link",
            "set",
            "dev",
            IF_A,
            "address",
            &mac_string(&MAC_A),
        ])?;
        ip(&[
            "-n",
            &b,
            "link",
            "set",
            "dev",
            IF_B,
            "address",
            &mac_string(&MAC_B),
        ])?;

        if self.quiet_sender {
            // Before the link comes up, so not even a link-local address or an MLD report leaves a.
            let key = format!("net.ipv6.conf.{IF_A}.disable_ipv6=1");
            ip(&["netns", "exec", &a, "sysctl", "-q", "-w", &key])?;
        } else {
            ip(&[
                "-n",
                &a,
                "addr",
                "add",
                &format!("{}/24", self.addr4_a()),
                "dev",
                IF_A,
            ])?;
            ip(&[
                "-n",
                &a,
                "addr",
                "add",
                &format!("{}/64", self.addr6_a()),
                "dev",
                IF_A,
                "nodad",
            ])?;
        }
        ip(&[
            "-n",
            &b,
            "addr",
            "add",
            &format!("{}/24", self.addr4_b()),
            "dev",
            IF_B,
        ])?;
        ip(&[
            "-n",
            &b,
            "addr",
            "add",
            &format!("{}/64", self.addr6_b()),
            "dev",
            IF_B,
            "nodad",
        ])?;

        for (ns, ifname) in [(&a, IF_A), (&b, IF_B)] {
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", "dev", ifname, "up"])?;
        }
        self.ifindex_a = read_ifindex(&a, IF_A)?;
        self.ifindex_b = read_ifindex(&b, IF_B)?;
        Ok(())
    }

    pub fn ns_a(&self) -> &str {
        &self.ns_a
    }
    pub fn ns_b(&self) -> &str {
        &self.ns_b
    }
    pub fn if_a(&self) -> &str {
        IF_A
    }
    pub fn if_b(&self) -> &str {
        IF_B
    }
    pub fn quiet_sender(&self) -> bool {
        self.quiet_sender
    }
    /// a's IPv4 address; in quiet-sender mode it is not configured on `veth-a`.
    pub fn addr4_a(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.k, 1)
    }
    pub fn addr4_b(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.k, 2)
    }
    /// a's IPv6 address; in quiet-sender mode it is not configured on `veth-a`.
    pub fn addr6_a(&self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 2, 0, self.k.into(), 0, 0, 0, 1)
    }
    pub fn addr6_b(&self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 2, 0, self.k.into(), 0, 0, 0, 2)
    }
    pub fn mac_a(&self) -> [u8; 6] {
        MAC_A
    }
    pub fn mac_b(&self) -> [u8; 6] {
        MAC_B
    }
    /// Interface index of `veth-a` inside namespace a.
    pub fn ifindex_a(&self) -> u32 {
        self.ifindex_a
    }
    /// Interface index of `veth-b` inside namespace b.
    pub fn ifindex_b(&self) -> u32 {
        self.ifindex_b
    }

    /// `ip netns exec <ns> <args...>`, ready for the caller to add I/O settings and run.
    pub fn exec<I, S>(&self, ns: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args);
        cmd
    }

    /// Deletes every namespace whose name starts with `prefix` (leftovers of killed runs) and
    /// returns the deleted names. An empty prefix is refused: it would match every namespace.
    pub fn cleanup_stale(prefix: &str) -> Result<Vec<String>, LabError> {
        if prefix.is_empty() {
            return Err(LabError::BadName {
                name: String::new(),
                reason: "an empty prefix would match every namespace",
            });
        }
        check_ip()?;
        let listing = ip(&["netns", "list"])?;
        let mut deleted = Vec::new();
        // Lines look like "name (id: 3)" or just "name".
        for name in listing.lines().filter_map(|l| l.split_whitespace().next()) {
            if name.starts_with(prefix) {
                ip(&["netns", "del", name])?;
                deleted.push(name.to_string());
            }
        }
        Ok(deleted)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (created, ns) in self.created.iter().zip([&self.ns_a, &self.ns_b]) {
            if *created {
                // Every process still in the namespace (a server, tcpdump, hping3, rxray a test
                // started and did not stop, because it failed or panicked) goes with it.
                kill_processes_in(ns);
                // Deleting a namespace destroys the veth end inside it, and with it the peer.
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
        }
    }
}

/// The processes whose network namespace is the named one (as `ip netns pids` lists them), except
/// this process; an unreadable entry is passed over.
pub fn processes_in(ns: &str) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(format!("/run/netns/{ns}")) else { return Vec::new() };
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == target.ino() && m.dev() == target.dev())
        })
        .collect()
}

/// SIGKILLs every process in the namespace (see `processes_in`) and waits, bounded (2 s), until
/// they are gone, so the namespace is deleted with nothing left running in it.
pub fn kill_processes_in(ns: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let pids = processes_in(ns);
        if pids.is_empty() || std::time::Instant::now() > deadline {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) with a pid read from /proc; a pid that has exited meanwhile gets ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn check_name(name: &str) -> Result<(), LabError> {
    let bad = |reason| {
        Err(LabError::BadName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        return bad("use only ASCII letters, digits, '-' and '_'");
    }
    if name.len() > 64 {
        return bad("longer than 64 characters");
    }
    Ok(())
}

fn check_ip() -> Result<(), LabError> {
    match Command::new("ip").arg("-V").output() {
        Ok(_) => Ok(()),
        Err(e) => Err(LabError::NoIp(e)),
    }
}

/// Runs `ip <args>` and returns its stdout, or an error naming the command and its stderr.
fn ip(args: &[&str]) -> Result<String, LabError> {
    let cmd_line = format!("ip {}", args.join(" "));
    let out: Output = Command::new("ip").args(args).output().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            LabError::NoIp(e)
        } else {
            LabError::Spawn {
                cmd: cmd_line.clone(),
                source: e,
            }
        }
    })?;
    if !out.status.success() {
        return Err(LabError::Command {
            cmd: cmd_line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reads an interface index from `ip -o link show`, whose lines start with "<index>: <name>".
fn read_ifindex(ns: &str, ifname: &str) -> Result<u32, LabError> {
    let args = ["-n", ns, "-o", "link", "show", "dev", ifname];
    let out = ip(&args)?;
    out.split(':')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| LabError::Output {
            cmd: format!("ip {}", args.join(" ")),
            output: out.clone(),
        })
}

fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("rxt123-4_x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
        assert!(Lab::cleanup_stale("").is_err());
    }

    #[test]
    fn mac_formatting() {
        assert_eq!(mac_string(&MAC_A), "02:52:58:00:00:0a");
        assert_eq!(mac_string(&MAC_B), "02:52:58:00:00:0b");
    }
}
