//! Rule header addresses and ports: `any`, IPs, CIDRs, `[a,b]` lists, `!` negation, `$VAR`s and
//! port ranges, parsed once into small trees that are evaluated per packet without allocation.
use std::collections::BTreeMap;
use std::net::IpAddr;

/// An address or port expression. A list matches when any of its positive members matches (or it
/// has none) and none of its negated members matches: Suricata's reading of `[a,b,!c]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec<T> {
    Any,
    One(T),
    Not(Box<Spec<T>>),
    List(Vec<Spec<T>>),
}

/// One network: an address and a prefix length (32/128 for a single host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(n: &[u8], a: &[u8], prefix: u8) -> bool {
    let full = prefix as usize / 8;
    if n[..full] != a[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || (n[full] ^ a[full]) & (0xffu8 << (8 - rest)) == 0
}

/// An inclusive port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

pub type AddrSpec = Spec<Net>;
pub type PortSpec = Spec<PortRange>;

impl AddrSpec {
    pub fn matches(&self, a: IpAddr) -> bool {
        self.eval(&|n: &Net| n.contains(a))
    }
}

impl PortSpec {
    pub fn matches(&self, p: u16) -> bool {
        self.eval(&|r: &PortRange| r.lo <= p && p <= r.hi)
    }
}

impl<T> Spec<T> {
    fn eval(&self, one: &dyn Fn(&T) -> bool) -> bool {
        match self {
            Spec::Any => true,
            Spec::One(x) => one(x),
            Spec::Not(s) => !s.eval(one),
            Spec::List(items) => {
                let mut positive = false;
                let mut any_pos = false;
                for it in items {
                    if let Spec::Not(inner) = it {
                        if inner.eval(one) {
                            return false;
                        }
                    } else {
                        positive = true;
                        any_pos = any_pos || it.eval(one);
                    }
                }
                !positive || any_pos
            }
        }
    }

    pub fn is_any(&self) -> bool {
        matches!(self, Spec::Any)
    }
}

/// `HOME_NET` in Suricata's default suricata.yaml.
pub const DEFAULT_HOME_NET: &str = "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]";

/// Rule variables (`$HOME_NET`, `$HTTP_PORTS`, ...): name without `$` → expression text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vars(pub BTreeMap<String, String>);

impl Default for Vars {
    /// The address and port groups of Suricata's default suricata.yaml: `HOME_NET` is the private
    /// ranges `[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]`, `EXTERNAL_NET` is `!$HOME_NET`, the
    /// server groups are `$HOME_NET`. Set `HOME_NET` to this host's networks (`--home-net`, or
    /// `--set vars.address-groups.HOME_NET=...`). Set to `any`, `EXTERNAL_NET` stays `any` too (see
    /// [`Vars::lookup`]): Suricata's docs call `!any` an invalid setting.
    fn default() -> Self {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("HOME_NET", DEFAULT_HOME_NET),
            ("EXTERNAL_NET", "!$HOME_NET"),
            ("HTTP_SERVERS", "$HOME_NET"),
            ("SMTP_SERVERS", "$HOME_NET"),
            ("SQL_SERVERS", "$HOME_NET"),
            ("DNS_SERVERS", "$HOME_NET"),
            ("TELNET_SERVERS", "$HOME_NET"),
            ("AIM_SERVERS", "$EXTERNAL_NET"),
            ("DC_SERVERS", "$HOME_NET"),
            ("DNP3_SERVER", "$HOME_NET"),
            ("DNP3_CLIENT", "$HOME_NET"),
            ("MODBUS_CLIENT", "$HOME_NET"),
            ("MODBUS_SERVER", "$HOME_NET"),
            ("ENIP_CLIENT", "$HOME_NET"),
            ("ENIP_SERVER", "$HOME_NET"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
            ("SIP_PORTS", "[5060,5061]"),
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
        ] {
            m.insert(k.to_string(), v.to_string());
        }
        Vars(m)
    }
}

impl Vars {
    /// Sets a variable (name without `$`), e.g. `vars.set("HOME_NET", "[198.18.0.0/15]")`.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.trim_start_matches('$').to_string(), value.to_string());
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        if name == "EXTERNAL_NET"
            && self.0.get(name).map(|s| s.trim()) == Some("!$HOME_NET")
            && self.0.get("HOME_NET").map(|s| s.trim()) == Some("any")
        {
            return Some("any");
        }
        self.0.get(name).map(|s| s.as_str())
    }
}

/// Where in the text a problem is (0-based char index into the parsed text) and what it is.
pub type SpecError = (usize, String);

/// Variables may refer to other variables; this bounds the nesting (and breaks cycles).
const MAX_VAR_DEPTH: usize = 8;
const MAX_LIST_DEPTH: usize = 16;

pub fn parse_addr(text: &str, vars: &Vars) -> Result<AddrSpec, SpecError> {
    SpecParser { s: text.chars().collect(), i: 0, vars, depth: 0, var_depth: 0, one: &parse_net, what: "address" }.whole()
}

pub fn parse_ports(text: &str, vars: &Vars) -> Result<PortSpec, SpecError> {
    SpecParser { s: text.chars().collect(), i: 0, vars, depth: 0, var_depth: 0, one: &parse_port_range, what: "port" }
        .whole()
}

struct SpecParser<'a, T> {
    s: Vec<char>,
    i: usize,
    vars: &'a Vars,
    depth: usize,
    var_depth: usize,
    one: &'a dyn Fn(&str) -> Result<T, String>,
    what: &'static str,
}

impl<T> SpecParser<'_, T> {
    fn whole(mut self) -> Result<Spec<T>, SpecError> {
        let spec = self.item()?;
        self.skip_ws();
        if self.i < self.s.len() {
            return Err((self.i, format!("unexpected '{}' after the {}", self.s[self.i], self.what)));
        }
        Ok(spec)
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_whitespace() {
            self.i += 1;
        }
    }

    fn item(&mut self) -> Result<Spec<T>, SpecError> {
        self.skip_ws();
        let start = self.i;
        match self.s.get(self.i) {
            None => Err((start, format!("missing {}", self.what))),
            Some('!') => {
                self.i += 1;
                let inner = self.item()?;
                if inner.is_any() {
                    return Err((start, format!("'!any' matches no {}", self.what)));
                }
                Ok(Spec::Not(Box::new(inner)))
            }
            Some('[') => {
                if self.depth >= MAX_LIST_DEPTH {
                    return Err((start, "lists nested too deeply".into()));
                }
                self.depth += 1;
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    items.push(self.item()?);
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(',') => self.i += 1,
                        Some(']') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) => return Err((self.i, format!("expected ',' or ']' in the {} list, found '{c}'", self.what))),
                        None => return Err((start, format!("unclosed '[' in the {} list", self.what))),
                    }
                }
                self.depth -= 1;
                // `[any, !x]` is "anything but x"; a positive `any` otherwise makes the list any.
                let has_any = items.iter().any(|s| s.is_any());
                if has_any {
                    let neg: Vec<_> = items.into_iter().filter(|s| matches!(s, Spec::Not(_))).collect();
                    return Ok(if neg.is_empty() { Spec::Any } else { Spec::List(neg) });
                }
                Ok(Spec::List(items))
            }
            Some(_) => {
                while self.i < self.s.len() && !matches!(self.s[self.i], ',' | ']' | '[' | '!') && !self.s[self.i].is_whitespace() {
                    self.i += 1;
                }
                let word: String = self.s[start..self.i].iter().collect();
                if word.is_empty() {
                    return Err((start, format!("expected a {} here", self.what)));
                }
                if word.eq_ignore_ascii_case("any") {
                    return Ok(Spec::Any);
                }
                if let Some(name) = word.strip_prefix('$') {
                    return self.var(name, start);
                }
                (self.one)(&word).map(Spec::One).map_err(|m| (start, m))
            }
        }
    }

    fn var(&mut self, name: &str, at: usize) -> Result<Spec<T>, SpecError> {
        let Some(value) = self.vars.lookup(name) else {
            return Err((at, format!("unknown variable ${name} (set it in the rule variables)")));
        };
        if self.var_depth >= MAX_VAR_DEPTH {
            return Err((at, format!("variable ${name} nests too deeply (a cycle?)")));
        }
        let sub = SpecParser {
            s: value.chars().collect(),
            i: 0,
            vars: self.vars,
            depth: self.depth,
            var_depth: self.var_depth + 1,
            one: self.one,
            what: self.what,
        };
        sub.whole().map_err(|(_, m)| (at, format!("in ${name} = {value:?}: {m}")))
    }
}

fn parse_net(w: &str) -> Result<Net, String> {
    let (a, p) = match w.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (w, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| format!("'{w}' is not an IP address or CIDR"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("'{w}': prefix length must be 0..={max}")),
        },
    };
    Ok(Net { addr, prefix })
}

fn parse_port_range(w: &str) -> Result<PortRange, String> {
    let num = |s: &str| s.parse::<u16>().map_err(|_| format!("'{s}' in '{w}' is not a port number 0..65535"));
    match w.split_once(':') {
        None => {
            let p = num(w)?;
            Ok(PortRange { lo: p, hi: p })
        }
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { num(a)? };
            let hi = if b.is_empty() { 65535 } else { num(b)? };
            if a.is_empty() && b.is_empty() {
                return Err("':' needs a start or an end port".into());
            }
            if lo > hi {
                return Err(format!("port range '{w}' is empty (start > end)"));
            }
            Ok(PortRange { lo, hi })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_lists_and_negation() {
        let v = Vars::default();
        let s = parse_addr("[10.0.0.0/8, !10.1.0.0/16, 2001:db8::/32]", &v).unwrap();
        assert!(s.matches(a("10.2.3.4")));
        assert!(!s.matches(a("10.1.3.4")));
        assert!(s.matches(a("2001:db8::1")));
        assert!(!s.matches(a("192.0.2.1")));
        let s = parse_addr("!192.0.2.0/25", &v).unwrap();
        assert!(s.matches(a("192.0.2.200")) && !s.matches(a("192.0.2.1")));
        let s = parse_addr("[any,!192.0.2.1]", &v).unwrap();
        assert!(s.matches(a("192.0.2.2")) && !s.matches(a("192.0.2.1")));
    }

    #[test]
    fn variables_and_external_net_default() {
        let mut v = Vars::default();
        assert!(parse_addr("$EXTERNAL_NET", &v).unwrap().matches(a("192.0.2.1")));
        v.set("HOME_NET", "[198.18.0.0/15]");
        let ext = parse_addr("$EXTERNAL_NET", &v).unwrap();
        assert!(ext.matches(a("192.0.2.1")) && !ext.matches(a("198.19.0.1")));
        v.set("A", "$B");
        v.set("B", "$A");
        assert!(parse_addr("$A", &v).unwrap_err().1.contains("nests too deeply"));
        assert!(parse_addr("$NOPE", &v).unwrap_err().1.contains("unknown variable"));
    }

    #[test]
    fn ports() {
        let v = Vars::default();
        let s = parse_ports("[80,8000:8100,!8080]", &v).unwrap();
        assert!(s.matches(80) && s.matches(8001) && !s.matches(8080) && !s.matches(81));
        assert!(parse_ports("1024:", &v).unwrap().matches(65535));
        assert!(!parse_ports(":1023", &v).unwrap().matches(1024));
        assert_eq!(parse_ports("[80,x]", &v).unwrap_err().0, 4);
        assert!(parse_ports("90:80", &v).is_err());
        assert!(parse_ports("!any", &v).is_err());
    }
}
