//! A generated corpus of Suricata rules in the proportions of issue 23 (what rxray refused most
//! often in Suricata's regression tests, the syntax it reported as errors, and ordinary
//! content/pcre/flow rules): the share that loads, per kind of rule, and the time to load 10,000.
//! Run by scripts/bench-suricata-rules. Suricata itself cannot be installed here: no peer figure.
use rxray_engine::signatures::{load, Vars};
use rxray_lab::testing::{word, Rng};
use std::collections::BTreeMap;
use std::time::Instant;

/// (kind, weight, template): `{w}` becomes a random word, `{sid}` the rule's sid. Weights are the
/// issue's test counts; the syntax items and thresholds, whose counts it does not give, 20 each;
/// ordinary rules make up the rest of a 2,000-weight whole.
const KINDS: &[(&str, u32, &str)] = &[
    ("file_data", 513, r#"alert http any any -> any any (msg:"fd"; flow:established,to_client; file_data; content:"{w}"; sid:{sid}; rev:1;)"#),
    ("drop", 73, r#"drop tcp $HOME_NET any -> $EXTERNAL_NET any (msg:"drop"; flow:established,to_server; content:"{w}"; sid:{sid}; rev:1;)"#),
    ("pass", 58, r#"pass ip 198.18.0.0/15 any -> any any (msg:"pass"; sid:{sid}; rev:1;)"#),
    ("dns", 50, r#"alert dns any any -> any any (msg:"dns"; dns.query; content:"{w}"; nocase; sid:{sid}; rev:1;)"#),
    // `pkthdr` is a rule protocol (Suricata's decoder-events.rules: `alert pkthdr any any -> any any`).
    ("pkthdr", 39, r#"alert pkthdr any any -> any any (msg:"pkthdr {w}"; dsize:>0; sid:{sid}; rev:1;)"#),
    ("tls", 37, r#"alert tls any any -> any any (msg:"tls"; tls.sni; content:"{w}"; sid:{sid}; rev:1;)"#),
    ("http.uri", 34, r#"alert http any any -> any any (msg:"uri"; flow:established,to_server; http.uri; content:"/{w}"; sid:{sid}; rev:1;)"#),
    ("sip", 25, r#"alert sip any any -> any any (msg:"sip"; sip.method; content:"INVITE"; sid:{sid}; rev:1;)"#),
    ("smtp", 24, r#"alert smtp any any -> any any (msg:"smtp"; smtp.helo; content:"{w}"; sid:{sid}; rev:1;)"#),
    ("smb", 23, r#"alert smb any any -> any any (msg:"smb"; smb.share; content:"{w}"; sid:{sid}; rev:1;)"#),
    ("pcre unquoted", 20, r#"alert http any any -> any any (msg:"pcre"; pcre:/\/{w}/U; sid:{sid}; rev:1;)"#),
    ("=> direction", 20, r#"alert http any any => any any (msg:"tx"; http.uri; content:"/{w}"; http.stat_code; content:"200"; sid:{sid}; rev:1;)"#),
    ("threshold backoff", 20, r#"alert tcp any any -> any any (msg:"backoff"; content:"{w}"; threshold: type backoff, track by_flow, count 1, multiplier 10; sid:{sid}; rev:1;)"#),
    ("hook tls", 10, r#"alert tls:client_hello_done any any -> any any (msg:"hook"; tls.sni; content:"{w}"; sid:{sid}; rev:1;)"#),
    ("hook http1", 10, r#"alert http1:request_complete any any -> any any (msg:"hook"; http.uri; content:"/{w}"; sid:{sid}; rev:1;)"#),
    ("threshold", 20, r#"alert tcp any any -> any any (msg:"th"; content:"{w}"; threshold: type limit, track by_rule, count 1, seconds 60; sid:{sid}; rev:1;)"#),
    ("detection_filter", 20, r#"alert tcp any any -> any any (msg:"df"; content:"{w}"; detection_filter: track by_src, count 5, seconds 60; sid:{sid}; rev:1;)"#),
    ("content+flow", 600, r#"alert tcp $EXTERNAL_NET any -> $HOME_NET any (msg:"c"; flow:established,to_server; content:"{w}"; nocase; offset:0; depth:64; sid:{sid}; rev:1;)"#),
    ("pcre", 300, r#"alert tcp any any -> any any (msg:"p"; content:"{w}"; pcre:"/{w}[0-9]+/i"; sid:{sid}; rev:1;)"#),
    ("flags/dsize", 104, r#"alert tcp any any -> any any (msg:"f"; flags:S,12; dsize:0; sid:{sid}; rev:1;)"#),
];

fn corpus(n: usize, rng: &mut Rng) -> (String, Vec<&'static str>) {
    let total: u32 = KINDS.iter().map(|k| k.1).sum();
    let mut text = String::new();
    let mut kinds = Vec::new();
    for i in 0..n {
        // Deterministic proportions: rule i takes the kind whose cumulative weight covers it.
        let slot = (i as u64 * total as u64 / n as u64) as u32;
        let mut acc = 0;
        let k = KINDS.iter().find(|k| {
            acc += k.1;
            slot < acc
        });
        let (kind, _, tpl) = k.unwrap_or(&KINDS[0]);
        let w = word(rng, 5, 12);
        text.push_str(&tpl.replace("{w}", &w).replace("{sid}", &(i + 1).to_string()));
        text.push('\n');
        kinds.push(*kind);
    }
    (text, kinds)
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut rng = Rng(0x5ec_2023);
    let (text, kinds) = corpus(n, &mut rng);
    let vars = Vars::default();
    let l = load(&text, &vars);
    // Per kind: rules, loaded, and the first reason of each failure.
    let mut by: BTreeMap<&str, (u32, u32, BTreeMap<String, u32>)> = BTreeMap::new();
    for k in &kinds {
        by.entry(k).or_default().0 += 1;
    }
    let loaded: std::collections::HashSet<u32> = l.set.rules().iter().map(|r| r.sid).collect();
    for (i, k) in kinds.iter().enumerate() {
        if loaded.contains(&(i as u32 + 1)) {
            by.entry(k).or_default().1 += 1;
        }
    }
    for u in &l.unsupported {
        let k = kinds[u.sid as usize - 1];
        *by.entry(k).or_default().2.entry(u.reason.clone()).or_default() += 1;
    }
    for e in &l.errors {
        let k = kinds[e.line - 1];
        *by.entry(k).or_default().2.entry(format!("syntax error: {}", e.message)).or_default() += 1;
    }
    println!("generated corpus: {n} rules in issue 23's proportions");
    println!("{:<20} {:>6} {:>7} {:>6}  first reason of the failures", "kind", "rules", "loaded", "share");
    for (k, (total, ok, why)) in &by {
        let reason = why.iter().max_by_key(|(_, c)| **c).map(|(r, c)| format!("{c}x {r}")).unwrap_or_default();
        println!("{k:<20} {total:>6} {ok:>7} {:>5.1}%  {reason}", 100.0 * *ok as f64 / *total as f64);
    }
    println!(
        "loaded: {} of {n} ({:.1}%); unsupported {}, syntax errors {}",
        l.set.len(),
        100.0 * l.set.len() as f64 / n as f64,
        l.unsupported.len(),
        l.errors.len()
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let l = load(&text, &vars);
        std::hint::black_box(l.set.len());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!("load time for {n} rules (parse, compile pcre, build the prefilter): median {:.1} ms, min {:.1} ms over 5 runs", times[2], times[0]);
    println!("peer: none (Suricata cannot be installed on this machine); rxray's figure alone");
}
