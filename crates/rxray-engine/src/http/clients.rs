//! Each endpoint's calls split by client and server (the agent's store keeps them per minute, so
//! `investigate ADDR` shows an address's HTTP calls): what every (endpoint, client, server) pair did
//! since the table was last taken. Bounded: past `max` pairs in one period, a call's counts go to its
//! endpoint's `other` entry (no addresses, counted), so the sums over the table stay exact.
use super::endpoints::LatencyHist;
use super::ConnKey;
use hashbrown::HashMap;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Who took part in a call: the client, the server and its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peers {
    pub client: IpAddr,
    pub server: IpAddr,
    pub server_port: u16,
}

/// An entry's key: the endpoint (its index in the endpoint table) and the peers (none: `other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub endpoint: usize,
    pub peers: Option<Peers>,
}

/// What one (endpoint, client, server) did, counted as the endpoint counts (request at its head,
/// bytes as they pass, status and latency at the final answer, unanswered when given up).
#[derive(Clone, Debug, Default)]
pub struct ClientCounts {
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub unanswered: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub latency: LatencyHist,
}

/// The table, taken (and emptied) by its reader each period.
#[derive(Debug)]
pub struct ClientTable {
    map: HashMap<ClientKey, ClientCounts, foldhash::fast::FixedState>,
    max: usize,
}

impl ClientTable {
    pub fn new(max: usize) -> ClientTable {
        ClientTable { map: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0)), max: max.max(1) }
    }

    /// The entry of endpoint `e` on connection `conn` (its endpoint's `other` entry when full).
    pub fn entry(&mut self, e: usize, conn: &ConnKey) -> &mut ClientCounts {
        let key = ClientKey { endpoint: e, peers: Some(Peers { client: conn.client, server: conn.server, server_port: conn.server_port }) };
        let key = if self.map.contains_key(&key) || self.map.len() < self.max { key } else { ClientKey { endpoint: e, peers: None } };
        self.map.entry(key).or_default()
    }

    /// Everything since the last take; the table starts empty again.
    pub fn take(&mut self) -> Vec<(ClientKey, ClientCounts)> {
        self.map.drain().collect()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
