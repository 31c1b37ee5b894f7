//! The host as the kernel describes it: the addresses of this network namespace's interfaces
//! (read with getifaddrs(3), which asks the kernel over netlink), for the rule that rxray never
//! blocks the host itself.
use std::net::IpAddr;

/// Every address configured on an interface of this network namespace, loopback included.
/// An error means the list could not be read; callers whose safety depends on it must stop.
pub fn addresses() -> std::io::Result<Vec<IpAddr>> {
    let mut v = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let Some(a) = ifa.address else { continue };
        if let Some(s) = a.as_sockaddr_in() {
            v.push(IpAddr::V4(s.ip()));
        } else if let Some(s) = a.as_sockaddr_in6() {
            v.push(IpAddr::V6(s.ip()));
        }
    }
    v.sort();
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_among_the_addresses() {
        // Every network namespace has lo; it is up in the host's (where tests run).
        let a = super::addresses().expect("getifaddrs");
        assert!(a.contains(&"127.0.0.1".parse().unwrap()), "{a:?}");
    }
}
