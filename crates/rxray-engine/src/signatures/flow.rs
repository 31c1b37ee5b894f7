//! The minimal per-flow tracker behind `flow:`: who the client is (for `to_server`/`to_client`)
//! and whether the flow is established. It sees packets one at a time, in either direction.
//!
//! Semantics (documented in docs/signatures.md):
//! - The client is the sender of a SYN without ACK; when a flow's first packet is a SYN-ACK, its
//!   receiver; otherwise the sender of the first packet seen (UDP, ICMP, TCP picked up midstream).
//! - TCP is established from the packet *after* the one that completes the handshake, as in
//!   Suricata: its flow engine sets a packet's FLOW_PKT_ESTABLISHED from the flow's state before
//!   the stream engine has seen that packet (flow.c, FlowHandlePacketUpdate), so the handshake's
//!   ACK is not established and the next packet is. The handshake completes with an ACK without
//!   SYN from the client after the SYN-ACK, or after its SYN (a server sees only the client's half
//!   of the handshake). A client that sees only the server's half (SYN-ACK, then the server's
//!   data) takes the server's first packet after the SYN-ACK as established: the client's ACK,
//!   which it cannot see, came before it. A flow picked up midstream is never established
//!   (Suricata's default, midstream off). A RST, or a FIN from each side, ends it: that packet is
//!   still established (the state before it), later ones are not; a new SYN starts over.
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
    start_ns: u64,
    pkts: [u64; 2],
    bytes: [u64; 2],
}

/// What the flow keyword needs to know about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowView {
    pub to_server: bool,
    pub established: bool,
    /// The client's and the server's endpoints.
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// Packets and frame bytes so far, this packet included: [to server, to client].
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    /// Time of the flow's first packet.
    pub start_ns: u64,
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
        let st = self.flows.entry(key, || State { start_ns: p.ts_ns, ..State::default() });
        let view = |st: &State, to_server: bool, established: bool| {
            let client = st.client.unwrap_or(src);
            let server = if client == src { dst } else { src };
            FlowView { to_server, established, client, server, pkts: st.pkts, bytes: st.bytes, start_ns: st.start_ns }
        };
        if let Some(t) = p.tcp {
            let f = t.flags;
            if st.client.is_none() {
                st.client = Some(if f & (SYN | ACK) == SYN | ACK { dst } else { src });
            }
            let from_client = st.client == Some(src);
            let was = st.established;
            count(st, from_client, p.len);
            if f & (SYN | ACK) == SYN && from_client {
                // A (new) connection attempt: forget any previous one on this 4-tuple.
                *st = State { client: st.client, syn: true, start_ns: st.start_ns, pkts: st.pkts, bytes: st.bytes, ..State::default() };
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
            // The state before this packet; a server's packet after the SYN-ACK also implies the
            // client's ACK before it.
            let established = was || (st.established && !from_client);
            Some(view(st, from_client, established))
        } else {
            if st.client.is_none() {
                st.client = Some(src);
            }
            let to_server = st.client == Some(src);
            count(st, to_server, p.len);
            if to_server {
                st.seen_to_server = true;
            } else {
                st.seen_to_client = true;
            }
            let established = st.seen_to_server && st.seen_to_client;
            Some(view(st, to_server, established))
        }
    }
}

fn count(st: &mut State, to_server: bool, len: u32) {
    let i = usize::from(!to_server);
    st.pkts[i] += 1;
    st.bytes[i] += len as u64;
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
