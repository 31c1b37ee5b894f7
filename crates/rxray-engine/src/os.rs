//! What rxray needs to know of the operating system beyond its sources, behind one interface:
//! process and cgroup names, the sockets and counters of /proc/net, interfaces, addresses, the
//! clock. The Linux implementation is `rxray_kernel::os::LinuxOs`; `FakeOs` stands in for it in
//! tests, so the joins that use it run without root.
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A TCP socket as the kernel lists it (/proc/net/tcp and tcp6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// Kernel TCP state (include/net/tcp_states.h).
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// The operating system, as rxray reads it. Errors are messages naming what could not be read.
pub trait Os {
    /// The time now, Unix-epoch nanoseconds.
    fn now_ns(&self) -> u64;
    /// The executable of a process (readlink /proc/PID/exe); `None` when it is gone.
    fn exe_of(&mut self, pid: u32) -> Option<String>;
    /// A cgroup v2 id's path relative to the cgroup2 mount ("/" is the root); `None` when unknown.
    fn cgroup_path(&mut self, id: u64) -> Option<String>;
    /// The TCP sockets of this network namespace now.
    fn tcp_sockets(&mut self) -> Result<Vec<TcpSocket>, String>;
    /// The TcpExt counters of this network namespace named in `names` (/proc/net/netstat).
    fn tcp_counters(&mut self, names: &[&str]) -> Result<BTreeMap<String, u64>, String>;
    /// The interfaces that are up, except loopback, sorted by name.
    fn up_interfaces(&mut self) -> Result<Vec<String>, String>;
    /// This network namespace's own addresses.
    fn host_addresses(&mut self) -> Result<Vec<IpAddr>, String>;
}

/// An `Os` made of fixed answers, for tests.
#[derive(Clone, Debug, Default)]
pub struct FakeOs {
    pub now_ns: u64,
    pub exes: HashMap<u32, String>,
    pub cgroups: HashMap<u64, String>,
    pub tcp: Vec<TcpSocket>,
    pub counters: BTreeMap<String, u64>,
    pub interfaces: Vec<String>,
    pub addresses: Vec<IpAddr>,
    /// Calls of `exe_of` and `cgroup_path`, to test caching.
    pub lookups: u64,
}

impl Os for FakeOs {
    fn now_ns(&self) -> u64 {
        self.now_ns
    }
    fn exe_of(&mut self, pid: u32) -> Option<String> {
        self.lookups += 1;
        self.exes.get(&pid).cloned()
    }
    fn cgroup_path(&mut self, id: u64) -> Option<String> {
        self.lookups += 1;
        self.cgroups.get(&id).cloned()
    }
    fn tcp_sockets(&mut self) -> Result<Vec<TcpSocket>, String> {
        Ok(self.tcp.clone())
    }
    fn tcp_counters(&mut self, names: &[&str]) -> Result<BTreeMap<String, u64>, String> {
        Ok(self.counters.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(k, v)| (k.clone(), *v)).collect())
    }
    fn up_interfaces(&mut self) -> Result<Vec<String>, String> {
        Ok(self.interfaces.clone())
    }
    fn host_addresses(&mut self) -> Result<Vec<IpAddr>, String> {
        Ok(self.addresses.clone())
    }
}
