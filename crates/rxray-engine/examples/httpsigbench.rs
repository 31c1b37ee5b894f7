//! HTTP signature throughput on one core, from a capture: a pcap of HTTP/1.1 calls (handshake,
//! request, response, FINs; one in four requests split across two segments) is written, then read
//! back and run through the alert pipeline's HTTP side (reassembly, pairing, Suricata's buffers,
//! the HTTP rules). Requests/s with no rules (reassembly and pairing alone), the default rules and
//! 1,000 generated rules on http.uri, each beside the naive peer (every HTTP rule evaluated on every
//! request, no prefilter) in the same run. Run by scripts/bench-signatures.
use rxray_engine::detect::{DetectConfig, Detectors};
use rxray_engine::http::HttpConfig;
use rxray_engine::inspect::Inspector;
use rxray_engine::inspect_http::HttpInspector;
use rxray_engine::signatures::{load, Vars};
use rxray_engine::source::Frame;
use rxray_lab::frames::{self as f, ipproto, tcp_flags as tf, Eth, L3, L4};
use rxray_lab::testing::{generated_rules, word, Rng};
use rxray_wire::LinkType;
use std::net::Ipv4Addr;
use std::time::Instant;

const ATTACKS: &[&str] = &[
    "/items?id=1%20UNION%20SELECT%20name,pass%20FROM%20users",
    "/search?q=<script>alert(1)</script>",
    "/download?file=../../../../etc/passwd",
    "/ping?host=127.0.0.1;cat%20/etc/hosts",
    "/login?user=admin'%20OR%201=1",
];

fn seg(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
    let ip = f::Ipv4 { src, dst, ttl: 64, tos: 0, id: 1, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::TCP };
    f::frame(&eth, &[], L3::Ipv4(ip), L4::Tcp(f::Tcp { sport, dport, seq, ack, flags, window: 512, urgent: 0, options: vec![] }), payload)
}

/// One call's frames on its own connection.
fn call(rng: &mut Rng, words: &[String], i: usize, out: &mut Vec<Vec<u8>>) {
    let client = Ipv4Addr::new(198, 18, 1 + (i / 250 % 200) as u8, (i % 250) as u8 + 1);
    let server = Ipv4Addr::new(198, 18, 0, 2);
    let sport = 10_000 + (i % 50_000) as u16;
    let path = match rng.below(100) {
        0 => ATTACKS[rng.below(ATTACKS.len())].to_string(),
        1..=3 => format!("/api/{}?q={}&v={}", word(rng, 3, 8), words[rng.below(words.len())], rng.below(1000)),
        _ => format!("/{}/{}?id={}&page={}", word(rng, 3, 10), word(rng, 3, 10), rng.below(100_000), rng.below(50)),
    };
    let post = rng.below(4) == 0;
    let mut req = format!("{} {path} HTTP/1.1\r\nHost: {}.example:8080\r\nUser-Agent: bench/{}\r\nAccept: application/json\r\n", if post { "POST" } else { "GET" }, word(rng, 4, 10), rng.below(10));
    if post {
        let body = format!("{{\"name\":\"{}\",\"qty\":{}}}", word(rng, 3, 12), rng.below(100));
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        req.push_str("\r\n");
    }
    let body = format!("{{\"ok\":true,\"id\":{}}}", rng.below(1_000_000));
    let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (req, resp) = (req.into_bytes(), resp.into_bytes());
    let (c, s) = (1000u32, 9000u32);
    out.push(seg(client, server, sport, 8080, c, 0, tf::SYN, b""));
    out.push(seg(server, client, 8080, sport, s, c + 1, tf::SYN | tf::ACK, b""));
    // One request in four arrives in two segments.
    let cut = if rng.below(4) == 0 { req.len() / 2 } else { req.len() };
    out.push(seg(client, server, sport, 8080, c + 1, s + 1, tf::PSH | tf::ACK, &req[..cut]));
    if cut < req.len() {
        out.push(seg(client, server, sport, 8080, c + 1 + cut as u32, s + 1, tf::PSH | tf::ACK, &req[cut..]));
    }
    let c2 = c + 1 + req.len() as u32;
    out.push(seg(server, client, 8080, sport, s + 1, c2, tf::PSH | tf::ACK, &resp));
    let s2 = s + 1 + resp.len() as u32;
    out.push(seg(client, server, sport, 8080, c2, s2, tf::FIN | tf::ACK, b""));
    out.push(seg(server, client, 8080, sport, s2, c2 + 1, tf::FIN | tf::ACK, b""));
}

/// The records of a classic little-endian pcap (what rxray_lab::pcap writes): (ts_ns, frame).
fn read_pcap(b: &[u8]) -> Vec<(u64, &[u8])> {
    let mut v = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let u = |o: usize| u32::from_le_bytes(b[at + o..at + o + 4].try_into().unwrap()) as u64;
        let (sec, usec, incl) = (u(0), u(4), u(8) as usize);
        let data = &b[at + 16..(at + 16 + incl).min(b.len())];
        v.push((1_700_000_000_000_000_000 + sec * 1_000_000_000 + usec * 1000 + v.len() as u64 * 1000, data));
        at += 16 + incl;
    }
    v
}

struct Run {
    rps: f64,
    alerts: usize,
    requests: u64,
}

fn run(rules: Option<&str>, prefilter: bool, recs: &[(u64, &[u8])]) -> Run {
    let sigs = rules.map(|t| {
        let mut s = load(t, &Vars::default()).set;
        s.set_prefilter(prefilter);
        s
    });
    let det = Detectors::new(DetectConfig { suppress_window_s: 1, ..DetectConfig::default() }, &[]).unwrap();
    let mut insp = Inspector::new(det, sigs).with_http(HttpInspector::new(HttpConfig::default(), &[8080], None));
    let mut out = Vec::new();
    let mut alerts = 0;
    let start = Instant::now();
    for (ts, data) in recs {
        let fr = Frame { ts_ns: *ts, ifindex: 0, iface: "", rx_queue: 0, orig_len: data.len() as u32, linktype: LinkType::ETHERNET, data };
        insp.on_frame(&fr, &mut out);
        alerts += out.len();
        out.clear();
    }
    insp.finish(&mut out);
    alerts += out.len();
    let secs = start.elapsed().as_secs_f64();
    let requests = insp.http().map_or(0, |h| h.tracker().snapshot().totals.requests);
    Run { rps: requests as f64 / secs, alerts, requests }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let calls = arg("--calls", 50_000);
    let n_rules = arg("--rules", 1_000);
    let mut rng = Rng(0x4854_5450);
    let (generated, words) = generated_rules(&mut rng, n_rules, 1_000_000);
    // The generated rules, on http.uri (where their words are).
    let generated = generated.replace("alert tcp any any", "alert http any any").replace("(msg:", "(http.uri; msg:");
    let mut frames = Vec::new();
    for i in 0..calls {
        call(&mut rng, &words, i, &mut frames);
    }
    let file = std::env::temp_dir().join(format!("rxray-httpsigbench-{}.pcap", std::process::id()));
    rxray_lab::pcap::write_pcap(&file, &frames).expect("writing the capture");
    let bytes = std::fs::read(&file).expect("reading the capture");
    let _ = std::fs::remove_file(&file);
    let recs = read_pcap(&bytes);
    println!("capture: {calls} HTTP calls, {} frames, {} MB; one core", recs.len(), bytes.len() / 1_000_000);
    println!("{:<22} {:>6} {:>14} {:>12} {:>18} {:>8} {:>8}", "HTTP rules", "rules", "requests/s", "us/request", "naive requests/s", "alerts", "speedup");
    let default_text = include_str!("../../../rules/default.rules");
    let sets: [(&str, Option<&str>); 3] = [("none (reassembly)", None), ("default rules", Some(default_text)), ("generated rules", Some(&generated))];
    for (name, text) in sets {
        let n = text.map_or(0, |t| {
            let l = load(t, &Vars::default());
            assert!(l.errors.is_empty() && l.unsupported.is_empty(), "{name}: {:?} {:?}", l.errors.first(), l.unsupported.first());
            l.set.http_rules()
        });
        let r = run(text, true, &recs);
        assert_eq!(r.requests, calls as u64, "{name}: every request was reassembled");
        let naive = text.map(|_| run(text, false, &recs));
        if let Some(nv) = &naive {
            assert_eq!(nv.alerts, r.alerts, "{name}: prefilter and naive disagree");
        }
        println!(
            "{:<22} {:>6} {:>14.0} {:>12.2} {:>18} {:>8} {:>8}",
            name,
            n,
            r.rps,
            1e6 / r.rps,
            naive.as_ref().map_or("-".into(), |nv| format!("{:.0}", nv.rps)),
            r.alerts,
            naive.as_ref().map_or("-".into(), |nv| format!("{:.1}x", r.rps / nv.rps)),
        );
    }
}
