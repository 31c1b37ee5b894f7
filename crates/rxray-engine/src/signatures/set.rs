//! A loaded rule set and its matcher: an Aho-Corasick prefilter over one content per rule picks
//! the candidate rules for a packet; only those (and the rules without content) are evaluated.
use super::flow::{FlowTracker, FlowView, DEFAULT_FLOW_CAPACITY};
use super::pass::PassedFlows;
use super::http::HttpBuffers;
use super::payload::{inspect, Buffers};
use super::app::AppProto;
use super::dns::DnsSide;
use super::rule::{Buffer, FlowState, PayloadItem, Proto, Rule, RuleAction};
use super::threshold::{Slot, Thresholds, Tuple, DEFAULT_THRESHOLD_CAPACITY};
use super::threshold_config::{EntryKind, RateFilter, RateFilters, Suppress, ThresholdConfig};
use crate::event::Packet;
use crate::http::Call;
use std::net::IpAddr;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde::Serialize;
use std::collections::HashMap;

/// One rule that fired on one packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SigMatch {
    /// The action it alerts with (the rule's, or a rate filter's `new_action`).
    #[serde(skip)]
    pub action: RuleAction,
    pub gid: u32,
    pub sid: u32,
    pub rev: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classtype: Option<String>,
    /// 1 is the most severe (Suricata's scale).
    pub priority: u8,
    /// What matched, for each non-negated `content`/`pcre`, in rule order.
    pub evidence: Vec<Evidence>,
    /// The packet's flow (direction, counters), when the matcher tracked it.
    #[serde(skip)]
    pub flow: Option<FlowView>,
}

/// A payload match: where it is in the packet's payload (or HTTP buffer) and the bytes themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// "content" or "pcre".
    pub keyword: &'static str,
    /// The HTTP buffer (`http.uri`, ...) for an HTTP rule; absent for the packet payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer: Option<&'static str>,
    /// Offset in the payload (`Packet::payload`).
    pub offset: u32,
    #[serde(serialize_with = "hex")]
    pub bytes: Vec<u8>,
}

fn hex<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::event::hex_string(b))
}

/// Work and state counters; each eviction lost that flow's or address's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SigStats {
    pub packets: u64,
    /// Rules evaluated in full (after the prefilter).
    pub evaluated: u64,
    pub matches: u64,
    /// Matches a `threshold`, `detection_filter`, `suppress` or `pass` kept from alerting.
    pub suppressed: u64,
    pub flows_evicted: u64,
    pub thresholds_evicted: u64,
    /// HTTP calls inspected by the HTTP rules.
    pub calls: u64,
    /// pcre searches the PCRE2 match limit stopped (counted as no match).
    pub pcre_limit_hits: u64,
}

pub struct SignatureSet {
    rules: Vec<Rule>,
    /// Case-insensitive automaton over one pattern per prefiltered rule (None: no patterns).
    prefilter: Option<AhoCorasick>,
    /// Pattern id → rules (indices) that chose it.
    pattern_rules: Vec<Vec<u32>>,
    /// Rules with no usable content: evaluated on every packet.
    always: Vec<u32>,
    /// Packet rules (every rule but the HTTP ones), for evaluation without the prefilter.
    packet_rules: Vec<u32>,
    /// The HTTP rules' prefilter, the same way: automaton, pattern → rules, rules without content.
    http_prefilter: Option<AhoCorasick>,
    http_pattern_rules: Vec<Vec<u32>>,
    http_always: Vec<u32>,
    http_rules: Vec<u32>,
    /// `dns` rules (each DNS message) and `tls` rules (each connection's handshake facts).
    dns_rules: Vec<u32>,
    tls_rules: Vec<u32>,
    dns: DnsSide,
    use_prefilter: bool,
    needs_flow: bool,
    flows: FlowTracker,
    /// TCP flows a `pass` rule passed: not inspected again (pass.rs).
    passed: PassedFlows,
    thresholds: Thresholds,
    /// threshold.config: suppressions and rate filters per rule (index), when given.
    suppress: HashMap<u32, Vec<Suppress>>,
    rate: HashMap<u32, (u32, RateFilter)>,
    rates: RateFilters,
    stats: SigStats,
    /// Matches of one packet or call before the action order and thresholds: (rule, hits).
    pending: Vec<(u32, Vec<(u32, u32)>)>,
    // Per-packet scratch, reused so matching does not allocate.
    mark: Vec<u32>,
    generation: u32,
    candidates: Vec<u32>,
    lower: Vec<u8>,
    hits: Vec<(u32, u32)>,
}

impl SignatureSet {
    pub fn new(rules: Vec<Rule>) -> SignatureSet {
        let (mut packet, mut http) = (Keyed::default(), Keyed::default());
        let (mut dns_rules, mut tls_rules) = (Vec::new(), Vec::new());
        for (i, r) in rules.iter().enumerate() {
            if r.app.proto == AppProto::Dns {
                dns_rules.push(i as u32);
            } else if r.app.proto == AppProto::Tls {
                tls_rules.push(i as u32);
            } else if r.is_http() {
                let pat = prefilter_content(r.http.iter().flat_map(|(_, v)| v.iter()).chain(r.payload.iter()));
                http.add(i as u32, pat.map(|p| &p[..p.len().min(PREFILTER_MAX_PATTERN)]));
            } else {
                packet.add(i as u32, prefilter_pattern(r));
            }
        }
        let (prefilter, pattern_rules, always, packet_rules) = packet.build();
        let (http_prefilter, http_pattern_rules, http_always, http_rules) = http.build();
        // Always tracked: the alerts carry the flow's direction and counters (EVE `flow`).
        let needs_flow = rules.iter().any(|r| !r.is_http());
        let n = rules.len();
        SignatureSet {
            rules,
            prefilter,
            pattern_rules,
            always,
            packet_rules,
            http_prefilter,
            http_pattern_rules,
            http_always,
            http_rules,
            dns_rules,
            tls_rules,
            dns: DnsSide::default(),
            use_prefilter: true,
            needs_flow,
            flows: FlowTracker::new(DEFAULT_FLOW_CAPACITY),
            passed: PassedFlows::new(DEFAULT_FLOW_CAPACITY),
            thresholds: Thresholds::new(DEFAULT_THRESHOLD_CAPACITY),
            suppress: HashMap::new(),
            rate: HashMap::new(),
            rates: RateFilters::new(DEFAULT_THRESHOLD_CAPACITY),
            stats: SigStats::default(),
            pending: Vec::new(),
            mark: vec![0; n],
            generation: 0,
            candidates: Vec::new(),
            lower: Vec::new(),
            hits: Vec::new(),
        }
    }

    /// Bounds the flow table and the threshold table (entries; the least recently used half
    /// is dropped when full, and counted in [`SigStats`]).
    pub fn with_state_capacity(mut self, flows: usize, thresholds: usize) -> Self {
        self.flows = FlowTracker::new(flows);
        self.passed = PassedFlows::new(flows);
        self.thresholds = Thresholds::new(thresholds);
        self
    }

    /// Applies a threshold.config: `threshold` entries replace the rule's own threshold and
    /// detection_filter (wildcard entries only on rules that have neither, as Suricata does),
    /// `suppress` and `rate_filter` entries are checked on every match. Returns a note for each
    /// entry that names no loaded rule.
    pub fn with_threshold_config(mut self, cfg: &ThresholdConfig) -> (Self, Vec<String>) {
        let mut notes = Vec::new();
        for (ei, e) in cfg.entries.iter().enumerate() {
            let mut hit = false;
            for (ri, r) in self.rules.iter_mut().enumerate() {
                if !e.applies_to(r.gid, r.sid) {
                    continue;
                }
                match &e.kind {
                    EntryKind::Suppress(s) => self.suppress.entry(ri as u32).or_default().push(s.clone()),
                    EntryKind::Threshold(t) => {
                        if e.is_wildcard() && (r.threshold.is_some() || r.detection_filter.is_some()) {
                            continue;
                        }
                        r.threshold = Some(*t);
                        r.detection_filter = None;
                    }
                    EntryKind::Rate(rf) => {
                        self.rate.entry(ri as u32).or_insert((ei as u32, *rf));
                    }
                }
                hit = true;
            }
            if !hit && !e.is_wildcard() {
                notes.push(format!("line {}: gen_id {} sig_id {} names no loaded rule", e.line, e.gid, e.sid));
            }
        }
        (self, notes)
    }

    /// After a rule matched: `suppress`, `detection_filter`, `threshold`, then a rate filter's
    /// action. The action to alert with, or None when the match does not alert.
    fn gate(&mut self, ri: u32, tuple: &Tuple, ts_ns: u64) -> Option<RuleAction> {
        let rule = &self.rules[ri as usize];
        if !self.suppress.is_empty() {
            if let Some(list) = self.suppress.get(&ri) {
                if list.iter().any(|s| s.suppresses(tuple.src, tuple.dst)) {
                    return None;
                }
            }
        }
        if let Some(t) = rule.detection_filter.as_ref() {
            if !self.thresholds.allow(ri, Slot::DetectionFilter, t, tuple, ts_ns) {
                return None;
            }
        }
        if let Some(t) = rule.threshold.as_ref() {
            if !self.thresholds.allow(ri, Slot::Threshold, t, tuple, ts_ns) {
                return None;
            }
        }
        let mut action = rule.action;
        if let Some((ei, rf)) = self.rate.get(&ri) {
            action = self.rates.action(*ei, rf, tuple, ts_ns, action);
        }
        Some(action)
    }

    /// The pending matches in Suricata's order (detect-engine-sigorder.c: by action, pass, drop,
    /// reject, alert; then by priority, 1 first; then rule-file order), each through
    /// [`gate`](Self::gate); a `pass` that gets through ends the packet (nothing after it
    /// alerts) and, on TCP, passes the flow. Calls `emit` for each match that alerts, in that
    /// order (detect-engine-alert.c sorts a packet's alerts by that order before logging).
    fn finalize<T>(&mut self, pending: &mut Vec<(u32, T)>, tuple: &Tuple, ts_ns: u64, emit: impl FnMut(&Rule, RuleAction, T)) {
        self.finalize_each(pending, |_| *tuple, ts_ns, emit)
    }

    /// [`finalize`](Self::finalize) with each match's own tuple (the `tls` rules of one
    /// handshake look at either direction).
    fn finalize_each<T>(&mut self, pending: &mut Vec<(u32, T)>, tuple_of: impl Fn(&T) -> Tuple, ts_ns: u64, mut emit: impl FnMut(&Rule, RuleAction, T)) {
        pending.sort_by_key(|(ri, _)| {
            let r = &self.rules[*ri as usize];
            (r.action, r.priority, *ri)
        });
        let mut done = false;
        for (ri, hits) in pending.drain(..) {
            if done {
                self.stats.suppressed += 1;
                continue;
            }
            let tuple = tuple_of(&hits);
            match self.gate(ri, &tuple, ts_ns) {
                None => self.stats.suppressed += 1,
                Some(RuleAction::Pass) => {
                    self.stats.suppressed += 1;
                    self.passed.pass(&tuple);
                    done = true;
                }
                Some(a) => emit(&self.rules[ri as usize], a, hits),
            }
        }
    }

    /// Turns the prefilter off (every rule evaluated on every packet): the naive peer that the
    /// benchmark and the equivalence test compare against. Results are the same either way.
    pub fn set_prefilter(&mut self, on: bool) {
        self.use_prefilter = on;
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rules the prefilter cannot skip (no non-negated content).
    pub fn unfiltered_rules(&self) -> usize {
        self.always.len()
    }

    pub fn stats(&self) -> SigStats {
        let pcre_limit_hits = self
            .rules
            .iter()
            .flat_map(|r| r.payload.iter().chain(r.http.iter().flat_map(|(_, v)| v.iter())))
            .map(|i| match i {
                PayloadItem::Pcre(p) => p.regex.limit_hits(),
                PayloadItem::Content(_) => 0,
            })
            .sum();
        SigStats { flows_evicted: self.flows.evicted() + self.dns.streams_evicted() + self.passed.evicted(), thresholds_evicted: self.thresholds.evicted(), pcre_limit_hits, ..self.stats }
    }

    /// HTTP rules (evaluated on calls, not packets).
    pub fn http_rules(&self) -> usize {
        self.http_rules.len()
    }

    /// The HTTP rules that fire on a call, in Suricata's order (action, priority, rule file). Each rule looks at one side: rules
    /// on the request (to the server) read a request-only call (`Call::is_request_only`, delivered
    /// when the request is whole), rules on the response (to the client) the paired call.
    pub fn match_call_into(&mut self, c: &Call, out: &mut Vec<CallMatch>) {
        if self.http_rules.is_empty() {
            return;
        }
        let k = &c.conn;
        if self.passed.is_passed(k.client, k.client_port, k.server, k.server_port) {
            return;
        }
        self.stats.calls += 1;
        // One side per call: the request alone (request rules), or the paired call's response.
        let request_only = c.is_request_only();
        let side = if request_only { HttpBuffers::request(c) } else { HttpBuffers::response(c) };
        // Each buffer lowercased once per call, for `nocase` (not once per rule).
        let mut lowered: Vec<(Buffer, Vec<u8>)> = Vec::new();
        self.candidates.clear();
        if !self.use_prefilter {
            self.candidates.extend_from_slice(&self.http_rules);
        } else {
            self.generation = self.generation.wrapping_add(1);
            if self.generation == 0 {
                self.mark.iter_mut().for_each(|m| *m = 0);
                self.generation = 1;
            }
            if let Some(ac) = &self.http_prefilter {
                {
                    for b in SCANNED {
                        for m in ac.find_overlapping_iter(side.get(b)) {
                            for &ri in &self.http_pattern_rules[m.pattern().as_usize()] {
                                let slot = &mut self.mark[ri as usize];
                                if *slot != self.generation {
                                    *slot = self.generation;
                                    self.candidates.push(ri);
                                }
                            }
                        }
                    }
                }
            }
            self.candidates.extend_from_slice(&self.http_always);
            self.candidates.sort_unstable();
        }
        let candidates = std::mem::take(&mut self.candidates);
        let mut call_pending: Vec<(u32, Vec<Evidence>)> = Vec::new();
        // `=>` rules read the request's buffers from the request, the rest from the response.
        let request_side = (!request_only && candidates.iter().any(|&ri| self.rules[ri as usize].transactional)).then(|| HttpBuffers::request(c));
        for &ri in &candidates {
            self.stats.evaluated += 1;
            let rule = &self.rules[ri as usize];
            let k = &c.conn;
            // The side the rule inspects (both, for `file.data` with no direction), and the
            // addresses as that side's packets carry them.
            let to_client = if rule.app.both_sides { !request_only } else { rule.to_client };
            let (src, sport, dst, dport) =
                if to_client { (k.server, k.server_port, k.client, k.client_port) } else { (k.client, k.client_port, k.server, k.server_port) };
            // Request rules read the request alone, as soon as it is whole; response rules the
            // paired call (each side is inspected once).
            if to_client == request_only {
                continue;
            }
            if !call_header_matches(rule, src, sport, dst, dport) || rule.flow.is_some_and(|f| f.state == FlowState::NotEstablished) {
                continue;
            }
            let mut evidence = Vec::new();
            let lists = rule.http.iter().map(|(b, v)| (*b, v)).chain((!rule.payload.is_empty()).then_some((Buffer::Payload, &rule.payload)));
            let mut all = true;
            for (b, items) in lists {
                let raw = match &request_side {
                    Some(r) if rule.transactional && b.request_only() => r.get(b),
                    _ => side.get(b),
                };
                let li = match lowered.iter().position(|(x, _)| *x == b) {
                    Some(i) => i,
                    None => {
                        lowered.push((b, raw.to_ascii_lowercase()));
                        lowered.len() - 1
                    }
                };
                if !inspect(items, &Buffers { raw, lower: &lowered[li].1 }, &mut self.hits) {
                    all = false;
                    break;
                }
                let name = if b == Buffer::Payload { "raw" } else { b.name() };
                evidence.extend(evidence_of(items, raw, &self.hits).map(|mut e| {
                    e.buffer = Some(name);
                    e
                }));
            }
            if !all {
                continue;
            }
            self.stats.matches += 1;
            call_pending.push((ri, evidence));
        }
        self.candidates = candidates;
        // Every rule evaluated here inspects the same side of the call, so one tuple.
        let k = &c.conn;
        let (src, sport, dst, dport) =
            if request_only { (k.client, k.client_port, k.server, k.server_port) } else { (k.server, k.server_port, k.client, k.client_port) };
        let tuple = Tuple { proto: 6, src, sport, dst, dport };
        self.finalize(&mut call_pending, &tuple, c.ts_ns, |rule, action, evidence| {
            let m = SigMatch::of(rule, action, evidence);
            out.push(CallMatch { m, to_client: !request_only, src, sport, dst, dport });
        });
    }

    /// The rules that fire on `p`, in Suricata's order (action, priority, rule file). Packets must arrive in time order for
    /// `flow` and `threshold` state to mean what the rules say.
    pub fn match_packet(&mut self, p: &Packet) -> Vec<SigMatch> {
        let mut out = Vec::new();
        self.match_packet_into(p, &mut out);
        out
    }

    /// Like [`match_packet`](Self::match_packet), appending to `out` (no allocation when
    /// nothing fires).
    pub fn match_packet_into(&mut self, p: &Packet, out: &mut Vec<SigMatch>) {
        self.stats.packets += 1;
        if let (Some(ip), Some(t)) = (p.ip.as_ref(), p.tcp) {
            if self.passed.packet_passed(ip.src, t.sport, ip.dst, t.dport, t.flags) {
                // A passed flow: still tracked (its counters), no longer inspected.
                if self.needs_flow {
                    self.flows.update(p);
                }
                return;
            }
        }
        if !self.dns_rules.is_empty() {
            self.match_dns(p, out);
        }
        let view = if self.needs_flow { self.flows.update(p) } else { None };
        self.collect_candidates(&p.payload);
        if self.candidates.is_empty() {
            return;
        }
        self.lower.clear();
        self.lower.extend(p.payload.iter().map(|b| b.to_ascii_lowercase()));
        let dsize = payload_size(p);
        let candidates = std::mem::take(&mut self.candidates);
        for &ri in &candidates {
            self.stats.evaluated += 1;
            let rule = &self.rules[ri as usize];
            if !header_matches(rule, p) || !options_match(rule, p, view, dsize) {
                continue;
            }
            let buf = Buffers { raw: &p.payload, lower: &self.lower };
            if !inspect(&rule.payload, &buf, &mut self.hits) {
                continue;
            }
            self.stats.matches += 1;
            self.pending.push((ri, self.hits.clone()));
        }
        self.candidates = candidates;
        if self.pending.is_empty() {
            return;
        }
        // A packet with no IP header (only `pkthdr` rules with no address take it): thresholds
        // track it under the unspecified address.
        let (sport, dport) = ports(p).unwrap_or((0, 0));
        let none = IpAddr::from([0u8; 4]);
        let tuple = match p.ip.as_ref() {
            Some(ip) => Tuple { proto: ip.proto, src: ip.src, sport, dst: ip.dst, dport },
            None => Tuple { proto: 0, src: none, sport: 0, dst: none, dport: 0 },
        };
        let mut pending = std::mem::take(&mut self.pending);
        self.finalize(&mut pending, &tuple, p.ts_ns, |rule, action, hits| {
            let mut m = sig_match(rule, &p.payload, &hits);
            m.action = action;
            m.flow = view;
            out.push(m);
        });
        self.pending = pending;
    }

    /// The `dns` rules that fire on the DNS messages `p` carries or completes (over TCP).
    fn match_dns(&mut self, p: &Packet, out: &mut Vec<SigMatch>) {
        let whole = p.payload.len() as u32 >= payload_size(p);
        let SignatureSet { dns, rules, dns_rules, stats, hits, .. } = self;
        let mut ev = Vec::new();
        let mut pending: Vec<(u32, Vec<Evidence>)> = Vec::new();
        dns.messages(p, whole, |m| {
            for &ri in dns_rules.iter() {
                let r = &rules[ri as usize];
                stats.evaluated += 1;
                if !header_matches(r, p) || !super::dns::matches(r, m, hits, &mut ev) {
                    continue;
                }
                stats.matches += 1;
                let evidence = super::dns::keywords(r)
                    .zip(ev.iter())
                    .map(|(keyword, &h)| Evidence {
                        keyword,
                        buffer: (h.0 != Buffer::Payload).then_some(h.0.name()),
                        offset: h.2,
                        bytes: super::dns::hit_bytes(m, h).to_vec(),
                    })
                    .collect();
                pending.push((ri, evidence));
            }
        });
        // threshold, threshold.config and the action order, as for every other match.
        let Some(ip) = p.ip.as_ref() else { return };
        let (sport, dport) = ports(p).unwrap_or((0, 0));
        let tuple = Tuple { proto: ip.proto, src: ip.src, sport, dst: ip.dst, dport };
        self.finalize(&mut pending, &tuple, p.ts_ns, |rule, action, evidence| {
            out.push(SigMatch::of(rule, action, evidence));
        });
    }

    /// Some rule reads packet payloads (a packet rule with `content` or `pcre`, or a `dns`
    /// rule): a live source should then deliver whole payloads, not a prefix. HTTP and TLS rules
    /// read reassembled streams instead.
    pub fn needs_whole_payload(&self) -> bool {
        !self.dns_rules.is_empty() || self.packet_rules.iter().any(|&ri| !self.rules[ri as usize].payload.is_empty())
    }

    /// `tls` rules.
    pub fn tls_rules(&self) -> usize {
        self.tls_rules.len()
    }

    /// The `tls` rules that fire on one connection's handshake facts (once per connection, when
    /// the server's clear-text handshake is over), in Suricata's order (action, priority, file).
    pub fn match_tls_into(&mut self, f: &crate::http::TlsFacts, out: &mut Vec<CallMatch>) {
        let (Some(client), Some(server)) = (f.client, f.server) else { return };
        if self.passed.is_passed(client, f.client_port, server, f.server_port) {
            return;
        }
        let mut ev = Vec::new();
        // The matches in rule-file order, each with its direction, gated as every other match.
        let mut pending: Vec<(u32, (bool, Vec<Evidence>))> = Vec::new();
        let tls_rules = std::mem::take(&mut self.tls_rules);
        for &ri in &tls_rules {
            let rule = &self.rules[ri as usize];
            self.stats.evaluated += 1;
            let (src, sport, dst, dport) =
                if rule.to_client { (server, f.server_port, client, f.client_port) } else { (client, f.client_port, server, f.server_port) };
            if !call_header_matches(rule, src, sport, dst, dport) || rule.flow.is_some_and(|fl| fl.state == FlowState::NotEstablished) {
                continue;
            }
            if !super::tls::matches(rule, f, &mut self.hits, &mut ev) {
                continue;
            }
            self.stats.matches += 1;
            let keywords = rule.http.iter().flat_map(|(_, v)| v.iter()).filter(|i| !i.is_negated()).map(|i| match i {
                PayloadItem::Content(_) => "content",
                PayloadItem::Pcre(_) => "pcre",
            });
            let evidence = keywords
                .zip(ev.iter())
                .map(|(keyword, &(b, s, e))| Evidence {
                    keyword,
                    buffer: Some(b.name()),
                    offset: s,
                    bytes: super::tls::buffer(f, b).and_then(|x| x.get(s as usize..e as usize)).unwrap_or_default().to_vec(),
                })
                .collect();
            pending.push((ri, (rule.to_client, evidence)));
        }
        self.tls_rules = tls_rules;
        let ends = move |to_client: bool| {
            if to_client { (server, f.server_port, client, f.client_port) } else { (client, f.client_port, server, f.server_port) }
        };
        let tuple_of = move |(to_client, _): &(bool, Vec<Evidence>)| {
            let (src, sport, dst, dport) = ends(*to_client);
            Tuple { proto: 6, src, sport, dst, dport }
        };
        self.finalize_each(&mut pending, tuple_of, f.ts_ns, |rule, action, (to_client, evidence)| {
            let (src, sport, dst, dport) = ends(to_client);
            let m = SigMatch::of(rule, action, evidence);
            out.push(CallMatch { m, to_client, src, sport, dst, dport });
        });
    }

    /// Fills `self.candidates` (sorted rule indices) from the prefilter and the always-list.
    fn collect_candidates(&mut self, payload: &[u8]) {
        self.candidates.clear();
        if !self.use_prefilter {
            self.candidates.extend_from_slice(&self.packet_rules);
            return;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
        if let Some(ac) = &self.prefilter {
            if !payload.is_empty() {
                for m in ac.find_overlapping_iter(payload) {
                    for &ri in &self.pattern_rules[m.pattern().as_usize()] {
                        let slot = &mut self.mark[ri as usize];
                        if *slot != self.generation {
                            *slot = self.generation;
                            self.candidates.push(ri);
                        }
                    }
                }
            }
        }
        if self.candidates.is_empty() {
            self.candidates.extend_from_slice(&self.always);
            return;
        }
        self.candidates.extend_from_slice(&self.always);
        self.candidates.sort_unstable();
    }
}

/// Rules keyed by one prefilter pattern each (shared patterns once), and those without one.
#[derive(Default)]
struct Keyed {
    patterns: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, usize>,
    pattern_rules: Vec<Vec<u32>>,
    always: Vec<u32>,
    all: Vec<u32>,
}

impl Keyed {
    fn add(&mut self, ri: u32, pat: Option<&[u8]>) {
        self.all.push(ri);
        let Some(pat) = pat else {
            self.always.push(ri);
            return;
        };
        let key = pat.to_ascii_lowercase();
        let id = *self.index.entry(key.clone()).or_insert_with(|| {
            self.patterns.push(key);
            self.pattern_rules.push(Vec::new());
            self.patterns.len() - 1
        });
        self.pattern_rules[id].push(ri);
    }

    /// (automaton, pattern id → rules, rules always evaluated, every rule). Case-insensitive for
    /// all: a superset for case-sensitive contents, which the full evaluation then checks exactly.
    /// A DFA when it fits (the overlapping walk is the hot loop), else whatever the crate picks; if
    /// even that fails, every rule is evaluated.
    fn build(self) -> (Option<AhoCorasick>, Vec<Vec<u32>>, Vec<u32>, Vec<u32>) {
        let Keyed { patterns, mut pattern_rules, mut always, all, .. } = self;
        let build = |kind| AhoCorasickBuilder::new().ascii_case_insensitive(true).match_kind(MatchKind::Standard).kind(kind).build(&patterns);
        let ac = if patterns.is_empty() { None } else { build(Some(AhoCorasickKind::DFA)).or_else(|_| build(None)).ok() };
        if ac.is_none() && !patterns.is_empty() {
            always = all.clone();
            pattern_rules.clear();
        }
        (ac, pattern_rules, always, all)
    }
}

/// The prefilter keys on at most this many leading bytes of a content: any prefix of a content
/// is in every payload that holds the content, and the automaton's build is linear in its states,
/// so a 1 MB content would otherwise cost a million DFA states (seconds to minutes to build).
pub const PREFILTER_MAX_PATTERN: usize = 64;

fn prefilter_pattern(r: &Rule) -> Option<&[u8]> {
    prefilter_content(r.payload.iter()).map(|b| &b[..b.len().min(PREFILTER_MAX_PATTERN)])
}

/// The buffers an HTTP rule's contents can be in, scanned by the HTTP prefilter.
const SCANNED: [Buffer; 13] = [
    Buffer::Payload,
    Buffer::Method,
    Buffer::Uri,
    Buffer::UriRaw,
    Buffer::Header,
    Buffer::HeaderNames,
    Buffer::Host,
    Buffer::HostRaw,
    Buffer::UserAgent,
    Buffer::Cookie,
    Buffer::StatCode,
    Buffer::StatMsg,
    Buffer::FileData,
];

/// An HTTP rule that fired on a call: the match, the side it inspected and that side's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallMatch {
    pub m: SigMatch,
    pub to_client: bool,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
}

fn call_header_matches(r: &Rule, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> bool {
    if !matches!(r.proto, Proto::Tcp | Proto::Ip) {
        return false;
    }
    let fwd = r.src.matches(src) && r.dst.matches(dst) && r.sport.matches(sport) && r.dport.matches(dport);
    fwd || (r.bidirectional && r.src.matches(dst) && r.dst.matches(src) && r.sport.matches(dport) && r.dport.matches(sport))
}

/// The content the prefilter keys a rule on: the `fast_pattern` one if given, else the longest
/// non-negated content (the first of equal length). None when the rule has no such content.
fn prefilter_content<'a>(items: impl Iterator<Item = &'a PayloadItem>) -> Option<&'a [u8]> {
    let contents = items.filter_map(|i| match i {
        PayloadItem::Content(c) if !c.negated => Some(c),
        _ => None,
    });
    let mut best: Option<&super::rule::Content> = None;
    for c in contents {
        if c.fast_pattern {
            return Some(&c.bytes);
        }
        if best.is_none_or(|b| c.bytes.len() > b.bytes.len()) {
            best = Some(c);
        }
    }
    best.map(|c| c.bytes.as_slice())
}

fn ports(p: &Packet) -> Option<(u16, u16)> {
    if let Some(t) = p.tcp {
        Some((t.sport, t.dport))
    } else {
        p.udp.map(|u| (u.sport, u.dport))
    }
}

fn header_matches(r: &Rule, p: &Packet) -> bool {
    let Some(ip) = p.ip.as_ref() else {
        // `pkthdr` takes any packet; one without IP only when the rule names no address or port.
        return r.proto == Proto::Pkthdr && r.src.is_any() && r.dst.is_any() && r.sport.is_any() && r.dport.is_any();
    };
    let proto_ok = match r.proto {
        Proto::Tcp => p.tcp.is_some(),
        Proto::Udp => p.udp.is_some(),
        Proto::Icmp => p.icmp.is_some(),
        Proto::Ip | Proto::Pkthdr => true,
    };
    if !proto_ok {
        return false;
    }
    let ports_any = r.sport.is_any() && r.dport.is_any();
    let (sp, dp) = match (ports(p), r.proto) {
        (_, Proto::Icmp) => (None, None),
        (Some((s, d)), _) => (Some(s), Some(d)),
        (None, _) => (None, None),
    };
    let port_ok = |spec: &super::addr::PortSpec, port: Option<u16>| match port {
        Some(x) => spec.matches(x),
        // ICMP rules ignore ports; other portless packets only match `any`.
        None => r.proto == Proto::Icmp || spec.is_any(),
    };
    let forward = r.src.matches(ip.src)
        && r.dst.matches(ip.dst)
        && (ports_any || (port_ok(&r.sport, sp) && port_ok(&r.dport, dp)));
    if forward || !r.bidirectional {
        return forward;
    }
    r.src.matches(ip.dst) && r.dst.matches(ip.src) && (ports_any || (port_ok(&r.sport, dp) && port_ok(&r.dport, sp)))
}

fn options_match(r: &Rule, p: &Packet, view: Option<FlowView>, dsize: u32) -> bool {
    if let Some(f) = r.flags {
        match p.tcp {
            Some(t) if f.matches(t.flags) => {}
            _ => return false,
        }
    }
    if let Some(d) = r.dsize {
        if !d.matches(dsize) {
            return false;
        }
    }
    if r.decode_event.is_some() && super::decode_event::DecodeEvent::of(p) != r.decode_event {
        return false;
    }
    if let Some(f) = r.flow {
        let needs_view = f.to_server.is_some() || matches!(f.state, FlowState::Established | FlowState::NotEstablished);
        if needs_view {
            let Some(v) = view else {
                return false;
            };
            if f.to_server.is_some_and(|ts| ts != v.to_server) {
                return false;
            }
            match f.state {
                FlowState::Established if !v.established => return false,
                FlowState::NotEstablished if v.established => return false,
                _ => {}
            }
        }
    }
    true
}

/// The transport payload size from the IP lengths (the whole payload, not just the captured
/// prefix); the captured length when the packet has no IP lengths.
pub fn payload_size(p: &Packet) -> u32 {
    let Some(ip) = p.ip.as_ref() else {
        return p.payload.len() as u32;
    };
    if ip.total_len == 0 {
        return p.payload.len() as u32;
    }
    let l4_hdr = if let Some(t) = p.tcp {
        t.hdr_len as u32
    } else if p.udp.is_some() || p.icmp.is_some() {
        8
    } else {
        0
    };
    (ip.total_len as u32).saturating_sub(ip.hdr_len as u32).saturating_sub(l4_hdr)
}

/// The evidence of each non-negated item's hit in `buf`.
fn evidence_of<'a>(items: &'a [PayloadItem], buf: &'a [u8], hits: &'a [(u32, u32)]) -> impl Iterator<Item = Evidence> + 'a {
    let keywords = items.iter().filter(|i| !i.is_negated()).map(|i| match i {
        PayloadItem::Content(_) => "content",
        PayloadItem::Pcre(_) => "pcre",
    });
    keywords.zip(hits).map(|(keyword, &(s, e))| Evidence { keyword, buffer: None, offset: s, bytes: buf[s as usize..e as usize].to_vec() })
}

fn sig_match(r: &Rule, payload: &[u8], hits: &[(u32, u32)]) -> SigMatch {
    SigMatch::of(r, r.action, evidence_of(&r.payload, payload, hits).collect())
}

impl SigMatch {
    /// A match of `rule`, alerting with `action` (the rule's, or a rate filter's), with no flow.
    fn of(rule: &Rule, action: RuleAction, evidence: Vec<Evidence>) -> SigMatch {
        SigMatch {
            action,
            gid: rule.gid,
            sid: rule.sid,
            rev: rule.rev,
            msg: rule.msg.clone(),
            classtype: rule.classtype.clone(),
            priority: rule.priority,
            evidence,
            flow: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::{load, Vars};

    fn pattern_of(opts: &str) -> Option<Vec<u8>> {
        let l = load(&format!("alert tcp any any -> any any ({opts} sid:1;)"), &Vars::default());
        assert!(l.errors.is_empty() && l.unsupported.is_empty(), "{:?}", l.errors);
        prefilter_pattern(&l.set.rules()[0]).map(|p| p.to_vec())
    }

    #[test]
    fn prefilter_keys_on_fast_pattern_else_the_longest_positive_content() {
        assert_eq!(pattern_of(r#"content:"ab"; content:"abcd"; content:!"abcdefgh";"#).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(pattern_of(r#"content:"ab"; fast_pattern; content:"abcd";"#).as_deref(), Some(&b"ab"[..]));
        assert_eq!(pattern_of(r#"content:"abc"; content:"xyz";"#).as_deref(), Some(&b"abc"[..]));
        assert_eq!(pattern_of(r#"content:!"abc"; pcre:"/x/";"#), None);
    }

    #[test]
    fn rules_without_positive_content_are_always_evaluated() {
        let text = r#"alert tcp any any -> any any (content:"a"; sid:1;)
alert tcp any any -> any any (pcre:"/b/"; sid:2;)
alert tcp any any -> any any (dsize:>0; sid:3;)"#;
        let set = load(text, &Vars::default()).set;
        assert_eq!(set.unfiltered_rules(), 2);
    }
}
