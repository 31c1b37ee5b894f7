//! The minimal per-flow tracker behind `flow:`: who the client is (for `to_server`/`to_client`)
//! and whether the flow is established. It sees packets one at a time, in either direction.
//!
//! Semantics (documented in docs/signatures.md):
//! - The client is the sender of a SYN without ACK; when a flow's first packet is a SYN-ACK, its
//!   receiver; otherwise the sender of the first packet seen (UDP, ICMP, TCP picked up midstream).
//! - TCP is established from the packet that completes the handshake as far as this host can see
//!   it: an ACK without SYN after a SYN-ACK was seen, or an ACK without SYN from the client after
//!   its SYN was seen (a server sees only the client's half of the handshake; a client only the
//!   server's). A flow picked up midstream is never established (Suricata's default, midstream off).
//!   A RST, or a FIN from each side, ends it: that packet and later ones are not established;
//!   a new SYN from the client starts over.
//! - Other protocols are established once packets in both directions have been seen.
use super::table::Bounded;
use crate::event::Packet;
use std::net::IpAddr;

/// Flows tracked at once (the least recently used half is dropped when full).
pub const DEFAULT_FLOW_CAPACITY: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    proto: u8,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
}

#[derive(Clone, Copy, Debug, Default)]
struct State {
    client: Option<(IpAddr, u16)>,
    syn: bool,
    syn_ack: bool,
    established: bool,
    fin_client: bool,
    fin_server: bool,
    /// RST, or FIN from both sides: not established again until a new SYN.
    closed: bool,
    seen_to_server: bool,
    seen_to_client: bool,
}

/// What the flow keyword needs to know about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowView {
    pub to_server: bool,
    pub established: bool,
}

pub struct FlowTracker {
    flows: Bounded<Key, State>,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

impl FlowTracker {
    pub fn new(capacity: usize) -> Self {
        FlowTracker { flows: Bounded::new(capacity) }
    }

    /// Flows whose state was dropped to make room.
    pub fn evicted(&self) -> u64 {
        self.flows.evicted
    }

    /// Updates the flow of `p` with it and says where `p` stands. None for non-IP packets.
    pub fn update(&mut self, p: &Packet) -> Option<FlowView> {
        let ip = p.ip.as_ref()?;
        let (sport, dport) = ports(p);
        let src = (ip.src, sport);
        let dst = (ip.dst, dport);
        let key = if src <= dst { Key { proto: ip.proto, a: src, b: dst } } else { Key { proto: ip.proto, a: dst, b: src } };
        let st = self.flows.entry(key, State::default);
        if let Some(t) = p.tcp {
            let f = t.flags;
            if st.client.is_none() {
                st.client = Some(if f & (SYN | ACK) == SYN | ACK { dst } else { src });
            }
            let from_client = st.client == Some(src);
            if f & (SYN | ACK) == SYN && from_client {
                // A (new) connection attempt: forget any previous one on this 4-tuple.
                *st = State { client: st.client, syn: true, ..State::default() };
            } else if f & (SYN | ACK) == SYN | ACK && !from_client {
                st.syn_ack = true;
            } else if f & SYN == 0 && f & ACK != 0 && (st.syn_ack || (st.syn && from_client)) && !st.closed {
                st.established = true;
            }
            if f & FIN != 0 {
                if from_client {
                    st.fin_client = true;
                } else {
                    st.fin_server = true;
                }
            }
            if f & RST != 0 || (st.fin_client && st.fin_server) {
                st.closed = true;
                st.established = false;
            }
            Some(FlowView { to_server: from_client, established: st.established })
        } else {
            if st.client.is_none() {
                st.client = Some(src);
            }
            let to_server = st.client == Some(src);
            if to_server {
                st.seen_to_server = true;
            } else {
                st.seen_to_client = true;
            }
            Some(FlowView { to_server, established: st.seen_to_server && st.seen_to_client })
        }
    }
}

fn ports(p: &Packet) -> (u16, u16) {
    if let Some(t) = p.tcp {
        (t.sport, t.dport)
    } else if let Some(u) = p.udp {
        (u.sport, u.dport)
    } else {
        (0, 0)
    }
}
