//! The rule-language parser: logical lines (comments, blank lines, `\` continuations), the header
//! `action proto src sport dir dst dport`, and the option list. Each rule either parses into a
//! [`Rule`], is unsupported (valid Suricata that rxray cannot honour, with its sid and reason), or
//! has a syntax error at a line and column. One bad rule never stops the others.
use super::addr::{parse_addr, parse_ports, Vars};
use super::classtype::default_priority;
use super::pcre::{translate, PcreError};
use super::rule::*;

/// A rule rxray skipped: valid Suricata it cannot honour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub sid: u32,
    pub line: usize,
    pub reason: String,
}

/// A rule that does not parse: where (1-based line and column in the rule text) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for RuleError {}

/// Something the loader wants the user to know about a rule it did load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub sid: u32,
    pub line: usize,
    pub note: String,
}

pub enum Outcome {
    Loaded(Box<Rule>, Vec<String>),
    Unsupported(Unsupported),
    Error(RuleError),
}

/// One rule's text after joining continuation lines, and where each piece came from.
pub struct Logical {
    pub text: String,
    /// (char index in `text` where the piece starts, physical line, char column of the piece's start).
    pieces: Vec<(usize, usize, usize)>,
    /// Chars in `text` so far: kept, so joining a continuation never recounts the whole rule
    /// (recounting made 100k continuation lines quadratic).
    chars: usize,
}

impl Logical {
    /// 1-based (line, column) of char index `at` in `text`.
    pub fn position(&self, at: usize) -> (usize, usize) {
        let i = self.pieces.partition_point(|(s, _, _)| *s <= at).saturating_sub(1);
        let (start, line, col0) = self.pieces[i];
        (line, col0 + (at - start) + 1)
    }
    pub fn first_line(&self) -> usize {
        self.pieces[0].1
    }
}

/// Splits rule text into logical rules: skips blank lines and `#` comments, joins lines that end
/// in `\` with the next one (as Suricata does, without adding a space).
pub fn logical_lines(text: &str) -> Vec<Logical> {
    let mut out = Vec::new();
    let mut cur: Option<Logical> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let continued = line.ends_with('\\');
        let body = if continued { &line[..line.len() - 1] } else { line };
        match cur.as_mut() {
            Some(l) => {
                l.pieces.push((l.chars, n + 1, 0));
                l.text.push_str(body);
                l.chars += body.chars().count();
            }
            None => {
                let t = body.trim_start();
                if t.is_empty() && !continued || t.starts_with('#') {
                    continue;
                }
                cur = Some(Logical { text: body.to_string(), pieces: vec![(0, n + 1, 0)], chars: body.chars().count() });
            }
        }
        if !continued {
            if let Some(l) = cur.take() {
                if !l.text.trim().is_empty() {
                    out.push(l);
                }
            }
        }
    }
    if let Some(l) = cur.take() {
        if !l.text.trim().is_empty() {
            out.push(l);
        }
    }
    out
}

/// (char index into the logical rule, message).
type PErr = (usize, String);

/// Parses one logical rule.
pub fn parse_rule(l: &Logical, vars: &Vars) -> Outcome {
    let chars: Vec<char> = l.text.chars().collect();
    let mut p = RuleParser { c: &chars, i: 0, vars, unsupported: None, notes: Vec::new(), sticky: Buffer::Payload, tags: Vec::new() };
    match p.rule(l.first_line()) {
        Ok(rule) => match p.unsupported.take() {
            Some(reason) => Outcome::Unsupported(Unsupported { sid: rule.sid, line: rule.line, reason }),
            None => Outcome::Loaded(Box::new(rule), p.notes),
        },
        Err((at, message)) => {
            let (line, column) = l.position(at);
            Outcome::Error(RuleError { line, column, message })
        }
    }
}

struct RuleParser<'a> {
    c: &'a [char],
    i: usize,
    vars: &'a Vars,
    /// The first reason this rule cannot be honoured; parsing goes on to find its sid.
    unsupported: Option<String>,
    notes: Vec<String>,
    /// The sticky buffer in force (`http.uri;` ...), and the buffer of each payload item so far.
    sticky: Buffer,
    tags: Vec<Buffer>,
}

/// Keywords that modify the preceding content.
const CONTENT_MODIFIERS: &[&str] = &["nocase", "offset", "depth", "distance", "within", "fast_pattern", "startswith", "endswith"];

impl RuleParser<'_> {
    fn unsupported(&mut self, reason: impl Into<String>) {
        if self.unsupported.is_none() {
            self.unsupported = Some(reason.into());
        }
    }

    fn skip_ws(&mut self) {
        while self.i < self.c.len() && self.c[self.i].is_whitespace() {
            self.i += 1;
        }
    }

    /// A header field: up to whitespace, but a `[...]` list may contain spaces.
    fn field(&mut self, what: &str) -> Result<(String, usize), PErr> {
        self.skip_ws();
        let start = self.i;
        let mut depth = 0i32;
        while self.i < self.c.len() {
            let ch = self.c[self.i];
            if ch == '[' {
                depth += 1;
            } else if ch == ']' {
                depth -= 1;
            } else if depth <= 0 && (ch.is_whitespace() || ch == '(') {
                break;
            }
            self.i += 1;
        }
        if start == self.i {
            let found = self.c.get(self.i).map(|c| format!("'{c}'")).unwrap_or_else(|| "the end of the rule".into());
            return Err((start, format!("expected {what}, found {found}")));
        }
        Ok((self.c[start..self.i].iter().collect(), start))
    }

    fn rule(&mut self, line: usize) -> Result<Rule, PErr> {
        let (action_word, at) = self.field("an action (alert)")?;
        let action = match RuleAction::parse(&action_word) {
            Some(a) => a,
            // Suricata 8's firewall rules (`accept:hook`, `drop:flow`): a mode rxray does not have.
            None if action_word.split_once(':').is_some_and(|(a, _)| a == "accept" || RuleAction::parse(a).is_some()) => {
                self.unsupported(format!("firewall rule action '{action_word}' is not supported (Suricata's firewall mode)"));
                RuleAction::Alert
            }
            None => return Err((at, format!("unknown action '{action_word}' (expected alert, drop, pass or reject)"))),
        };
        let (proto_field, at) = self.field("a protocol")?;
        // `proto:hook` (Suricata 8): the protocol, and the state the rule is hooked to.
        let (proto_word, hook) = match proto_field.split_once(':') {
            Some((p, h)) if super::hook::valid(p, h) => (p.to_string(), Some(h.to_string())),
            Some((p, h)) => return Err((at, format!("'{h}' is not a hook of protocol '{p}' ({})", super::hook::known(p)))),
            None => (proto_field.clone(), None),
        };
        let proto = match proto_word.to_ascii_lowercase().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            "ip" => Proto::Ip,
            // Without HTTP buffers such a rule matches packets (a note says so, below).
            "http" | "http1" => Proto::Tcp,
            // DNS messages over UDP and TCP, TLS handshakes (signatures/app.rs), any packet.
            "dns" => Proto::Ip,
            "tls" => Proto::Tcp,
            "pkthdr" => Proto::Pkthdr,
            w if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
                self.unsupported(format!("protocol '{proto_word}' is not supported (tcp, udp, icmp, ip, http, dns, tls, pkthdr)"));
                Proto::Ip
            }
            _ => return Err((at, format!("'{proto_word}' is not a protocol"))),
        };
        let (src_t, src_at) = self.field("a source address")?;
        let src = parse_addr(&src_t, self.vars).map_err(|(o, m)| (src_at + o, m))?;
        let (sp_t, sp_at) = self.field("a source port")?;
        let sport = parse_ports(&sp_t, self.vars).map_err(|(o, m)| (sp_at + o, m))?;
        let (dir, dir_at) = self.field("a direction (-> or <>)")?;
        let (bidirectional, transactional) = match dir.as_str() {
            "->" => (false, false),
            "<>" => (true, false),
            "=>" => (false, true),
            "<-" => return Err((dir_at, "'<-' is not a direction: write '->' with source and destination swapped".into())),
            _ => return Err((dir_at, format!("expected a direction (->, <> or =>), found '{dir}'"))),
        };
        let (dst_t, dst_at) = self.field("a destination address")?;
        let dst = parse_addr(&dst_t, self.vars).map_err(|(o, m)| (dst_at + o, m))?;
        let (dp_t, dp_at) = self.field("a destination port")?;
        let dport = parse_ports(&dp_t, self.vars).map_err(|(o, m)| (dp_at + o, m))?;
        self.skip_ws();
        if self.c.get(self.i) != Some(&'(') {
            return Err((self.i, "expected '(' to start the rule options".into()));
        }
        let open = self.i;
        let Some(close) = self.c.iter().rposition(|&c| c == ')').filter(|&p| p > open) else {
            return Err((open, "the options have no closing ')'".into()));
        };
        if let Some(extra) = (close + 1..self.c.len()).find(|&k| !self.c[k].is_whitespace()) {
            return Err((extra, "unexpected text after the closing ')'".into()));
        }
        let mut rule = Rule {
            action,
            gid: 1,
            sid: 0,
            rev: 0,
            msg: String::new(),
            classtype: None,
            priority: 3,
            line,
            proto,
            src,
            sport,
            dst,
            dport,
            bidirectional,
            transactional,
            hook,
            payload: Vec::new(),
            http: Vec::new(),
            to_client: false,
            flow: None,
            flags: None,
            dsize: None,
            decode_event: None,
            threshold: None,
            detection_filter: None,
            references: Vec::new(),
            app: Default::default(),
        };
        let mut sid_seen = false;
        let mut priority: Option<u8> = None;
        self.i = open + 1;
        while let Some((name, name_at, value)) = self.option(close)? {
            self.apply(&mut rule, &name, name_at, value, &mut sid_seen, &mut priority)?;
        }
        if !sid_seen {
            return Err((open, "the rule has no sid".into()));
        }
        for item in &mut rule.payload {
            if let PayloadItem::Content(c) = item {
                c.finish();
            }
        }
        self.split_buffers(&mut rule, open)?;
        if transactional && !rule.is_http() {
            self.unsupported("the '=>' direction (a transactional rule) needs an app-layer transaction; rxray has HTTP ones only");
        }
        if let Some(why) = super::app::finish(&mut rule, &proto_word) {
            self.unsupported(why);
        }
        if (proto_word.eq_ignore_ascii_case("http") || proto_word.eq_ignore_ascii_case("http1")) && !rule.is_http() {
            self.notes.push(
                "protocol 'http' without HTTP buffers is matched as tcp: contents are searched in each packet's payload".into(),
            );
        }
        rule.priority = priority.unwrap_or_else(|| rule.classtype.as_deref().map_or(3, default_priority));
        Ok(rule)
    }

    /// The next `name[:value];` before `close`: (name, its position, (raw value, its position)).
    #[allow(clippy::type_complexity)]
    fn option(&mut self, close: usize) -> Result<Option<(String, usize, Option<(String, usize)>)>, PErr> {
        while self.i < close && (self.c[self.i].is_whitespace() || self.c[self.i] == ';') {
            if self.c[self.i] == ';' {
                return Err((self.i, "empty option (stray ';')".into()));
            }
            self.i += 1;
        }
        if self.i >= close {
            return Ok(None);
        }
        let name_at = self.i;
        while self.i < close && !matches!(self.c[self.i], ':' | ';') && !self.c[self.i].is_whitespace() {
            self.i += 1;
        }
        let name: String = self.c[name_at..self.i].iter().collect();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
            return Err((name_at, format!("'{name}' is not an option keyword")));
        }
        self.skip_ws();
        let mut value = None;
        if self.i < close && self.c[self.i] == ':' {
            self.i += 1;
            let v_at = self.i;
            let mut quoted = false;
            let mut end = None;
            while self.i < close {
                match self.c[self.i] {
                    '\\' => self.i += 1,
                    '"' => quoted = !quoted,
                    ';' if !quoted => {
                        end = Some(self.i);
                        break;
                    }
                    _ => {}
                }
                self.i += 1;
            }
            if quoted {
                return Err((v_at, format!("unterminated quoted value for '{name}'")));
            }
            let end = end.unwrap_or(close.min(self.i));
            value = Some((self.c[v_at..end].iter().collect::<String>(), v_at));
            self.i = end;
        }
        self.skip_ws();
        if self.i < close {
            if self.c[self.i] != ';' {
                return Err((self.i, format!("expected ';' after option '{name}'")));
            }
            self.i += 1;
        }
        Ok(Some((name, name_at, value)))
    }

    fn apply(
        &mut self,
        rule: &mut Rule,
        name: &str,
        at: usize,
        value: Option<(String, usize)>,
        sid_seen: &mut bool,
        priority: &mut Option<u8>,
    ) -> Result<(), PErr> {
        let need = |v: &Option<(String, usize)>| -> Result<(String, usize), PErr> {
            v.clone().ok_or((at, format!("'{name}' needs a value ({name}:...)")))
        };
        let no_value = |v: &Option<(String, usize)>| -> Result<(), PErr> {
            match v {
                Some((_, vat)) => Err((*vat, format!("'{name}' takes no value"))),
                None => Ok(()),
            }
        };
        match name {
            "msg" => {
                let (v, vat) = need(&value)?;
                let bytes = quoted_text(&v, vat, false)?.0;
                rule.msg = String::from_utf8_lossy(&bytes).into_owned();
            }
            "sid" | "rev" => {
                let (v, vat) = need(&value)?;
                let n = number::<u32>(&v, vat, name)?;
                if name == "sid" {
                    if n == 0 {
                        return Err((vat, "sid must be 1 or more".into()));
                    }
                    rule.sid = n;
                    *sid_seen = true;
                } else {
                    rule.rev = n;
                }
            }
            "priority" => {
                let (v, vat) = need(&value)?;
                let n = number::<u8>(&v, vat, name)?;
                if n == 0 {
                    return Err((vat, "priority must be 1..255".into()));
                }
                *priority = Some(n);
            }
            "classtype" => {
                let (v, vat) = need(&value)?;
                let t = v.trim();
                if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err((vat, format!("'{t}' is not a classtype name")));
                }
                rule.classtype = Some(t.to_string());
            }
            "reference" => rule.references.push(need(&value)?.0.trim().to_string()),
            "metadata" => {}
            "gid" => {
                let (v, vat) = need(&value)?;
                rule.gid = number::<u32>(&v, vat, name)?;
            }
            "content" => {
                let (v, vat) = need(&value)?;
                let (bytes, negated) = quoted_text(&v, vat, true)?;
                if bytes.is_empty() {
                    return Err((vat, "content is empty".into()));
                }
                rule.payload.push(PayloadItem::Content(Content::new(bytes, negated)));
                self.tags.push(self.sticky);
            }
            "pcre" => {
                let (v, vat) = need(&value)?;
                let t = v.trim();
                let lead = v.len() - v.trim_start().len();
                let (negated, t) = match t.strip_prefix('!') {
                    Some(r) => (true, r.trim_start()),
                    None => (false, t),
                };
                // Suricata also takes the pattern unquoted (`pcre:/x/U;`).
                let (body, quote) = match t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(b) => (b, 1),
                    None if t.starts_with('/') => (t, 0),
                    None => return Err((vat + lead, "pcre needs a \"/pattern/flags\" (quoted or not)".into())),
                };
                let body_at = vat + lead + (v.trim().chars().count() - t.chars().count()) + quote;
                match translate(body) {
                    Ok(tr) => {
                        rule.payload.push(PayloadItem::Pcre(Pcre { source: body.to_string(), regex: tr.regex, negated, relative: tr.relative }));
                        self.tags.push(tr.buffer.map_or(self.sticky, Buffer::of_flag));
                    }
                    Err(PcreError::Syntax(o, m)) => return Err((body_at + body.get(..o).map_or(0, |s| s.chars().count()), m)),
                    Err(PcreError::Unsupported(m)) => self.unsupported(m),
                }
            }
            m if CONTENT_MODIFIERS.contains(&m) => {
                let Some(PayloadItem::Content(c)) = rule.payload.last_mut() else {
                    let what = if rule.payload.is_empty() { "no content before it" } else { "it follows a pcre, not a content" };
                    return Err((at, format!("'{m}' modifies the previous content, but there is {what}")));
                };
                content_modifier(c, m, at, &value)?;
            }
            "flow" => {
                let (v, vat) = need(&value)?;
                if rule.flow.is_some() {
                    return Err((at, "flow given twice".into()));
                }
                rule.flow = Some(self.flow(&v, vat)?);
            }
            "flags" => {
                let (v, vat) = need(&value)?;
                rule.flags = Some(flags(&v, vat)?);
            }
            "dsize" => {
                let (v, vat) = need(&value)?;
                rule.dsize = Some(dsize(&v, vat)?);
            }
            "threshold" | "detection_filter" => {
                let (v, vat) = need(&value)?;
                let detection = name == "detection_filter";
                let slot = if detection { &mut rule.detection_filter } else { &mut rule.threshold };
                if slot.is_some() {
                    return Err((at, format!("'{name}' given twice")));
                }
                match super::threshold::parse(&v, detection) {
                    Ok(super::threshold::Parsed::Ok(t)) => *slot = Some(t),
                    Ok(super::threshold::Parsed::Unsupported(r)) => self.unsupported(r),
                    Err((o, m)) => return Err((vat + o, m)),
                }
            }
            "rawbytes" => no_value(&value)?,
            "decode-event" => {
                let (v, vat) = need(&value)?;
                let name = v.trim();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-') {
                    return Err((vat, format!("'{name}' is not a decoder event name (such as tcp.pkt_too_small)")));
                }
                match super::decode_event::DecodeEvent::parse(name) {
                    Some(e) => rule.decode_event = Some(e),
                    None => self.unsupported(format!("decode-event '{name}' is not supported (rxray derives {})", super::decode_event::SUPPORTED)),
                }
            }
            k if super::app::is_keyword(k) => {
                let (v, vat) = need(&value)?;
                super::app::keyword(rule, k, &v, vat)?;
            }
            b if Buffer::sticky(b).is_some() => {
                no_value(&value)?;
                self.sticky = Buffer::sticky(b).unwrap_or(Buffer::Payload);
            }
            b if Buffer::modifier(b).is_some() => {
                no_value(&value)?;
                let to = Buffer::modifier(b).unwrap_or(Buffer::Payload);
                match (rule.payload.last(), self.tags.last_mut()) {
                    (Some(PayloadItem::Content(_)), Some(t)) if *t == Buffer::Payload => *t = to,
                    (Some(PayloadItem::Content(_)), Some(t)) => {
                        return Err((at, format!("'{b}' moves the previous content to {}, but it is already in {}", to.name(), t.name())))
                    }
                    _ => return Err((at, format!("'{b}' modifies the previous content, but there is none"))),
                }
            }
            _ => {
                let what = if value.is_none() && name.contains('.') {
                    format!("sticky buffer '{name}' is not supported (rxray matches the packet payload only)")
                } else if name.starts_with("http_") || name.starts_with("http.") || name.starts_with("tls") || name.starts_with("dns") {
                    format!("keyword '{name}' needs an app-layer buffer, which rxray signatures do not have")
                } else {
                    format!("keyword '{name}' is not supported")
                };
                self.unsupported(what);
            }
        }
        Ok(())
    }

    /// Moves the items of HTTP buffers out of `rule.payload` into `rule.http`, grouped by buffer in
    /// first-use order, and decides which side of the call the rule inspects.
    fn split_buffers(&mut self, rule: &mut Rule, at: usize) -> Result<(), PErr> {
        if self.tags.iter().all(|t| *t == Buffer::Payload) {
            return Ok(());
        }
        let items = std::mem::take(&mut rule.payload);
        for (item, tag) in items.into_iter().zip(self.tags.drain(..)) {
            if tag == Buffer::Payload {
                rule.payload.push(item);
                continue;
            }
            match rule.http.iter_mut().find(|(b, _)| *b == tag) {
                Some((_, v)) => v.push(item),
                None => rule.http.push((tag, vec![item])),
            }
        }
        let response = rule.http.iter().any(|(b, _)| b.response_only());
        let request = rule.http.iter().any(|(b, _)| b.request_only());
        if rule.transactional {
            // `=>`: one transaction, both sides: evaluated on the paired call.
            rule.to_client = true;
            return Ok(());
        }
        let flow_to_server = rule.flow.and_then(|f| f.to_server);
        rule.to_client = match flow_to_server {
            Some(ts) => !ts,
            None => response,
        };
        if response && request {
            // Suricata inspects a transaction's request and response buffers together; rxray's
            // HTTP rules look at one side of the call.
            self.unsupported("the rule uses request and response buffers together (rxray inspects one side of a call per rule)");
        } else if (rule.to_client && request) || (!rule.to_client && response) {
            return Err((at, "the flow direction and the HTTP buffers disagree (a request buffer with to_client, or a response buffer with to_server)".into()));
        }
        Ok(())
    }

    fn flow(&mut self, v: &str, vat: usize) -> Result<FlowOpt, PErr> {
        let mut f = FlowOpt::default();
        for (word, wat) in split_list(v, vat) {
            let dir = match word.as_str() {
                "to_server" | "from_client" => Some(true),
                "to_client" | "from_server" => Some(false),
                _ => None,
            };
            if let Some(d) = dir {
                if f.to_server.is_some_and(|x| x != d) {
                    return Err((wat, "flow gives both directions".into()));
                }
                f.to_server = Some(d);
                continue;
            }
            let state = match word.as_str() {
                "established" => FlowState::Established,
                "not_established" => FlowState::NotEstablished,
                "stateless" => FlowState::Stateless,
                "only_stream" | "no_stream" | "only_frag" | "no_frag" => {
                    self.unsupported(format!("flow option '{word}' is not supported"));
                    continue;
                }
                _ => return Err((wat, format!("unknown flow option '{word}'"))),
            };
            if f.state != FlowState::Any && f.state != state {
                return Err((wat, "flow gives two states".into()));
            }
            f.state = state;
        }
        Ok(f)
    }
}

fn content_modifier(c: &mut Content, m: &str, at: usize, value: &Option<(String, usize)>) -> Result<(), PErr> {
    let val = |what: &str| -> Result<(String, usize), PErr> { value.clone().ok_or((at, format!("'{what}' needs a value"))) };
    let dup = |set: bool| -> Result<(), PErr> { if set { Err((at, format!("'{m}' given twice for one content"))) } else { Ok(()) } };
    let len = c.bytes.len() as u64;
    match m {
        "nocase" | "fast_pattern" => {
            if let Some((_, vat)) = value {
                if m != "fast_pattern" {
                    return Err((*vat, format!("'{m}' takes no value")));
                }
            }
            if m == "nocase" {
                dup(c.nocase)?;
                c.nocase = true;
            } else if m == "fast_pattern" {
                c.fast_pattern = true;
            }
        }
        "offset" | "depth" => {
            let (v, vat) = val(m)?;
            if c.is_relative() {
                return Err((at, format!("'{m}' cannot be mixed with distance/within on one content")));
            }
            let n = number::<u32>(&v, vat, m)?;
            if m == "offset" {
                dup(c.offset.is_some())?;
                c.offset = Some(n);
            } else {
                dup(c.depth.is_some())?;
                if (n as u64) < len {
                    return Err((vat, format!("depth {n} is shorter than the content ({len} bytes)")));
                }
                c.depth = Some(n);
            }
        }
        "distance" | "within" => {
            let (v, vat) = val(m)?;
            if c.offset.is_some() || c.depth.is_some() {
                return Err((at, format!("'{m}' cannot be mixed with offset/depth on one content")));
            }
            if m == "distance" {
                dup(c.distance.is_some())?;
                c.distance = Some(number::<i32>(&v, vat, m)?);
            } else {
                dup(c.within.is_some())?;
                let n = number::<u32>(&v, vat, m)?;
                if (n as u64) < len {
                    return Err((vat, format!("within {n} is shorter than the content ({len} bytes)")));
                }
                c.within = Some(n);
            }
        }
        // `startswith` is `offset:0; depth:<length>` (Suricata's own definition of it).
        "startswith" => {
            if let Some((_, vat)) = value {
                return Err((*vat, "'startswith' takes no value".into()));
            }
            if c.is_relative() || c.offset.is_some() || c.depth.is_some() {
                return Err((at, "'startswith' cannot be mixed with offset, depth, distance or within".into()));
            }
            c.offset = Some(0);
            c.depth = Some(len as u32);
        }
        "endswith" => {
            if let Some((_, vat)) = value {
                return Err((*vat, "'endswith' takes no value".into()));
            }
            dup(c.endswith)?;
            c.endswith = true;
        }
        _ => unreachable!("CONTENT_MODIFIERS lists only these"),
    }
    Ok(())
}

fn number<T: std::str::FromStr>(v: &str, vat: usize, what: &str) -> Result<T, PErr> {
    let t = v.trim();
    let lead = v.len() - v.trim_start().len();
    t.parse::<T>().map_err(|_| (vat + lead, format!("{what}: '{t}' is not a valid number")))
}

/// Comma-separated parts with their positions, trimmed.
fn split_list(v: &str, vat: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut at = vat;
    for part in v.split(',') {
        let lead = part.chars().take_while(|c| c.is_whitespace()).count();
        out.push((part.trim().to_string(), at + lead));
        at += part.chars().count() + 1;
    }
    out
}

/// A quoted value (`"..."`, with `!` before it when `allow_neg`): `\"` `\;` `\\` `\:` escapes,
/// and, for contents, `|41 42|` hex bytes. Returns the bytes and whether it was negated.
fn quoted_text(v: &str, vat: usize, content: bool) -> Result<(Vec<u8>, bool), PErr> {
    let chars: Vec<char> = v.chars().collect();
    let mut i = 0;
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    let mut negated = false;
    if content && chars.get(i) == Some(&'!') {
        negated = true;
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
    }
    if chars.get(i) != Some(&'"') {
        return Err((vat + i, "expected a quoted string".into()));
    }
    let open = i;
    i += 1;
    let mut out = Vec::new();
    let mut hex: Option<usize> = None;
    let mut nibble: Option<u8> = None;
    loop {
        let Some(&ch) = chars.get(i) else {
            return Err((vat + open, "unterminated string".into()));
        };
        if let Some(hex_at) = hex {
            match ch {
                '|' => {
                    if nibble.is_some() {
                        return Err((vat + i, "odd number of hex digits".into()));
                    }
                    if i == hex_at + 1 {
                        return Err((vat + hex_at, "empty |hex| block".into()));
                    }
                    hex = None;
                }
                c if c.is_ascii_hexdigit() => {
                    let d = c.to_digit(16).unwrap_or(0) as u8;
                    match nibble.take() {
                        Some(h) => out.push(h << 4 | d),
                        None => nibble = Some(d),
                    }
                }
                ' ' | '\t' => {}
                '"' => return Err((vat + hex_at, "unclosed |hex| block".into())),
                c => return Err((vat + i, format!("'{c}' is not a hex digit"))),
            }
            i += 1;
            continue;
        }
        match ch {
            '"' => {
                i += 1;
                break;
            }
            '\\' => match chars.get(i + 1) {
                Some(&e @ ('"' | ';' | '\\' | ':' | '|')) => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(e.encode_utf8(&mut b).as_bytes());
                    i += 2;
                }
                Some(e) => return Err((vat + i, format!("unknown escape '\\{e}' (use \\\" \\; \\\\ or |hex|)"))),
                None => return Err((vat + open, "unterminated string".into())),
            },
            '|' if content => {
                hex = Some(i);
                i += 1;
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                i += 1;
            }
        }
    }
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    if i < chars.len() {
        return Err((vat + i, "unexpected text after the closing quote".into()));
    }
    Ok((out, negated))
}

fn flags(v: &str, vat: usize) -> Result<FlagsOpt, PErr> {
    let lead = v.len() - v.trim_start().len();
    let t = v.trim();
    let (main, mask) = match t.split_once(',') {
        Some((a, b)) => (a.trim_end(), Some((b.trim(), vat + lead + a.chars().count() + 1))),
        None => (t, None),
    };
    let mut modifier = None;
    let mut bits = 0u8;
    let mut zero = false;
    for (k, ch) in main.chars().enumerate() {
        let at = vat + lead + k;
        let m = match ch {
            '+' => Some(FlagsMod::All),
            '*' => Some(FlagsMod::AnyOf),
            '!' => Some(FlagsMod::NoneOf),
            _ => None,
        };
        if let Some(m) = m {
            // A modifier comes first or last, once.
            if modifier.is_some() || (k != 0 && k != main.chars().count() - 1) {
                return Err((at, format!("flags modifier '{ch}' must come once, before or after the flags")));
            }
            modifier = Some(m);
            continue;
        }
        if ch == '0' {
            zero = true;
            continue;
        }
        bits |= flag_bit(ch).ok_or((at, format!("'{ch}' is not a TCP flag (F S R P A U C E 1 2 0)")))?;
    }
    if bits == 0 && !zero {
        return Err((vat + lead, "flags needs at least one flag (or 0 for none)".into()));
    }
    let mut ignore = 0u8;
    if let Some((m, mat)) = mask {
        for (k, ch) in m.chars().enumerate() {
            ignore |= flag_bit(ch).ok_or((mat + k, format!("'{ch}' is not a TCP flag in the flags mask")))?;
        }
    }
    Ok(FlagsOpt { bits, modifier: modifier.unwrap_or(FlagsMod::Exact), ignore })
}

fn flag_bit(ch: char) -> Option<u8> {
    Some(match ch.to_ascii_uppercase() {
        'F' => 0x01,
        'S' => 0x02,
        'R' => 0x04,
        'P' => 0x08,
        'A' => 0x10,
        'U' => 0x20,
        'E' | '2' => 0x40,
        'C' | '1' => 0x80,
        _ => return None,
    })
}

fn dsize(v: &str, vat: usize) -> Result<Dsize, PErr> {
    let lead = v.len() - v.trim_start().len();
    let t = v.trim();
    let at = vat + lead;
    let num = |s: &str, off: usize| -> Result<u32, PErr> {
        s.trim().parse::<u32>().map_err(|_| (at + off, format!("dsize: '{}' is not a number", s.trim())))
    };
    if let Some((a, b)) = t.split_once("<>") {
        let (lo, hi) = (num(a, 0)?, num(b, a.chars().count() + 2)?);
        if hi <= lo + 1 {
            return Err((at, format!("dsize range {lo}<>{hi} is empty (both ends are excluded)")));
        }
        return Ok(Dsize::Range(lo, hi));
    }
    if let Some(r) = t.strip_prefix('<') {
        return Ok(Dsize::Lt(num(r, 1)?));
    }
    if let Some(r) = t.strip_prefix('>') {
        return Ok(Dsize::Gt(num(r, 1)?));
    }
    if let Some(r) = t.strip_prefix('!') {
        return Ok(Dsize::Ne(num(r, 1)?));
    }
    Ok(Dsize::Eq(num(t, 0)?))
}
