//! TCP flows a `pass` rule passed. Suricata (rules/intro.rst, "pass"): "If a signature matches
//! and contains pass, Suricata stops scanning the packet and skips to the end of all rules (only
//! for the current packet). If the signature matches on a TCP connection, the entire flow will be
//! passed but details of the flow will still be logged." (detect-engine-alert.c sets
//! FLOW_ACTION_PASS and the flow's no-inspection flag.) A passed flow's later packets, HTTP
//! messages and TLS handshakes are not inspected by the signatures. A new SYN (without ACK) on
//! the same addresses and ports starts a new connection, which is inspected again.
use super::table::Bounded;
use super::threshold::Tuple;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    a: (IpAddr, u16),
    b: (IpAddr, u16),
}

fn key(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Key {
    let (x, y) = ((src, sport), (dst, dport));
    if x <= y {
        Key { a: x, b: y }
    } else {
        Key { a: y, b: x }
    }
}

/// The passed TCP flows, bounded like the flow table (the least recently used half is dropped
/// when full: such a flow is inspected again).
pub struct PassedFlows {
    flows: Bounded<Key, ()>,
}

impl PassedFlows {
    pub fn new(capacity: usize) -> Self {
        PassedFlows { flows: Bounded::new(capacity) }
    }

    /// A pass rule matched on `t` (and got past its thresholds): a TCP flow is passed.
    pub fn pass(&mut self, t: &Tuple) {
        if t.proto == 6 {
            self.flows.entry(key(t.src, t.sport, t.dst, t.dport), || ());
        }
    }

    /// Whether the TCP flow of these endpoints (either direction) is passed.
    pub fn is_passed(&self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> bool {
        !self.flows.is_empty() && self.flows.contains(&key(src, sport, dst, dport))
    }

    /// Whether a TCP packet with `flags` on these endpoints belongs to a passed flow. A SYN without
    /// ACK opens a new connection: the old one's pass is forgotten.
    pub fn packet_passed(&mut self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, flags: u8) -> bool {
        if self.flows.is_empty() {
            return false;
        }
        let k = key(src, sport, dst, dport);
        if flags & 0x12 == 0x02 {
            self.flows.remove(&k);
            return false;
        }
        self.flows.contains(&k)
    }

    pub fn evicted(&self) -> u64 {
        self.flows.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_tcp_flow_holds_both_ways_until_a_new_syn() {
        let (c, s): (IpAddr, IpAddr) = ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
        let mut p = PassedFlows::new(16);
        p.pass(&Tuple { proto: 17, src: c, sport: 1, dst: s, dport: 53 });
        assert!(!p.is_passed(c, 1, s, 53), "UDP is never passed per flow");
        p.pass(&Tuple { proto: 6, src: s, sport: 80, dst: c, dport: 40000 });
        assert!(p.is_passed(c, 40000, s, 80) && p.packet_passed(s, 80, c, 40000, 0x10));
        assert!(!p.is_passed(c, 40001, s, 80));
        assert!(!p.packet_passed(c, 40000, s, 80, 0x02), "a new SYN starts over");
        assert!(!p.is_passed(c, 40000, s, 80));
    }
}
