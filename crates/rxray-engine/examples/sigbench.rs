//! Signature matching throughput on one core: packets/s with no rules, the default rules and
//! 1,000 generated rules, each beside the naive peer (every rule evaluated on every packet, no
//! prefilter) in the same run. Run by scripts/bench-signatures.
//!
//! The stream cycles through a pool of distinct packets (2,500 TCP flows: handshake, then HTTP-like
//! requests with varied paths, parameters and headers); about 3% of requests carry a generated
//! rule's content and 1% a web attack from the default rules' families.
use rxray_engine::event::Packet;
use rxray_engine::signatures::{load, SignatureSet, Vars};
use rxray_lab::frames::{self as f, ipproto, tcp_flags as tf, Eth, L4};
use rxray_lab::testing::{generated_rules, word, Rng};
use rxray_wire::{dissect, LinkType};
use std::net::Ipv4Addr;
use std::time::Instant;

const FLOWS: usize = 2_500;
const DATA_PER_FLOW: usize = 8;

const ATTACKS: &[&str] = &[
    "/items?id=1%20UNION%20SELECT%20name,pass%20FROM%20users",
    "/search?q=<script>alert(1)</script>",
    "/download?file=../../../../etc/passwd",
    "/ping?host=127.0.0.1;cat%20/etc/hosts",
    "/x?cmd=$(id)",
];

fn request(rng: &mut Rng, words: &[String]) -> Vec<u8> {
    let methods = ["GET", "GET", "GET", "POST", "PUT"];
    let m = rng.pick(&methods);
    let path = match rng.below(100) {
        0 => ATTACKS[rng.below(ATTACKS.len())].to_string(),
        1..=3 => format!("/api/{}?q={}&v={}", word(rng, 3, 8), words[rng.below(words.len())], rng.below(1000)),
        _ => format!("/{}/{}?id={}&page={}", word(rng, 3, 10), word(rng, 3, 10), rng.below(100_000), rng.below(50)),
    };
    let mut s = format!(
        "{m} {path} HTTP/1.1\r\nHost: {}.example:8080\r\nUser-Agent: bench/{}\r\nAccept: application/json\r\n",
        word(rng, 4, 10),
        rng.below(10)
    );
    if m != "GET" {
        let body = format!("{{\"name\":\"{}\",\"qty\":{}}}", word(rng, 3, 12), rng.below(100));
        s.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        s.push_str("\r\n");
    }
    s.into_bytes()
}

fn packet(src: Ipv4Addr, sport: u16, flags: u8, payload: &[u8], ts_ns: u64) -> Packet {
    let eth = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
    let l3 = f::plain_ip(src.into(), Ipv4Addr::new(198, 18, 0, 2).into(), ipproto::TCP);
    let l4 = L4::Tcp(f::Tcp { sport, dport: 8080, seq: 1, ack: 1, flags, window: 512, urgent: 0, options: vec![] });
    let fr = f::frame(&eth, &[], l3, l4, payload);
    dissect(&fr, LinkType::ETHERNET, ts_ns, fr.len() as u32, "bench", 256)
}

/// The pool: per flow a SYN, the handshake's ACK, then data packets (incoming view of a server).
fn packet_pool(rng: &mut Rng, words: &[String]) -> Vec<Packet> {
    let mut pool = Vec::with_capacity(FLOWS * (DATA_PER_FLOW + 2));
    let mut ts = 1_700_000_000_000_000_000u64;
    for i in 0..FLOWS {
        let src = Ipv4Addr::new(198, 18, 1 + (i / 250) as u8, (i % 250) as u8 + 1);
        let sport = 20_000 + i as u16;
        pool.push(packet(src, sport, tf::SYN, b"", ts));
        pool.push(packet(src, sport, tf::ACK, b"", ts + 1_000));
        for k in 0..DATA_PER_FLOW {
            ts += 10_000;
            pool.push(packet(src, sport, tf::ACK | tf::PSH, &request(rng, words), ts + k as u64));
        }
    }
    pool
}

struct Run {
    pps: f64,
    packets: usize,
    matches: usize,
    /// Packets with at least one match.
    alerted: usize,
}

/// Feeds `n` packets (cycling through the pool, so every flow is revisited) and drains the matches.
fn run(set: &mut SignatureSet, pool: &[Packet], n: usize) -> Run {
    let mut out = Vec::new();
    let mut matches = 0;
    let mut alerted = 0;
    let start = Instant::now();
    for i in 0..n {
        set.match_packet_into(&pool[i % pool.len()], &mut out);
        matches += out.len();
        alerted += !out.is_empty() as usize;
        out.clear();
    }
    let secs = start.elapsed().as_secs_f64();
    Run { pps: n as f64 / secs, packets: n, matches, alerted }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let packets = arg("--packets", 1_000_000);
    let naive_packets = arg("--naive-packets", packets / 10);
    let n_rules = arg("--rules", 1_000);
    let rounds = arg("--rounds", 3).max(1);
    let mut rng = Rng(0x516_b3e4);
    let (generated, words) = generated_rules(&mut rng, n_rules, 1_000_000);
    let pool = packet_pool(&mut rng, &words);
    let payload_bytes: usize = pool.iter().map(|p| p.payload.len()).sum();
    println!(
        "stream: {packets} packets cycling through {} distinct ({FLOWS} TCP flows, mean payload {} B); naive peer on {naive_packets} packets; median of {rounds} rounds",
        pool.len(),
        payload_bytes / pool.len()
    );
    let default_text = include_str!("../../../rules/default.rules");
    let sets: [(&str, &str); 3] = [("0 rules", ""), ("default rules", default_text), ("generated rules", &generated)];
    println!(
        "{:<26} {:>6} {:>12} {:>10} {:>14} {:>10} {:>8}",
        "rule set", "rules", "packets/s", "ns/packet", "naive pkts/s", "matches", "speedup"
    );
    for (name, text) in sets {
        let l = load(text, &Vars::default());
        assert!(l.errors.is_empty() && l.unsupported.is_empty(), "{name}: {:?} {:?}", l.errors.first(), l.unsupported.first());
        let rules = l.set.len();
        // Rounds alternate prefilter and naive runs, each on a fresh set (same state from the
        // start); the medians are printed, so one disturbed round does not decide the figure.
        let (mut fast_pps, mut naive_pps) = (Vec::new(), Vec::new());
        let mut fast = load(text, &Vars::default()).set;
        let mut r = run(&mut fast, &pool, packets);
        for round in 0..rounds {
            if round > 0 {
                fast = load(text, &Vars::default()).set;
                r = run(&mut fast, &pool, packets);
            }
            fast_pps.push(r.pps);
            let mut naive = load(text, &Vars::default()).set;
            naive.set_prefilter(false);
            let nr = run(&mut naive, &pool, naive_packets);
            naive_pps.push(nr.pps);
            if round == 0 {
                // Same answers: the prefilter's matches over the naive run's packets equal the naive ones.
                let mut check = load(text, &Vars::default()).set;
                let cr = run(&mut check, &pool, naive_packets);
                assert_eq!(cr.matches, nr.matches, "{name}: prefilter and naive disagree");
            }
        }
        let (pps, npps) = (median(&mut fast_pps), median(&mut naive_pps));
        let st = fast.stats();
        println!(
            "{:<26} {:>6} {:>12.0} {:>10.0} {:>14.0} {:>10} {:>8}   ({} rules evaluated per packet, {:.2}% packets alerted)",
            name,
            rules,
            pps,
            1e9 / pps,
            npps,
            r.matches,
            if rules == 0 { "-".to_string() } else { format!("{:.1}x", pps / npps) },
            format_args!("{:.2}", st.evaluated as f64 / r.packets as f64),
            100.0 * r.alerted as f64 / r.packets as f64,
        );
    }
}
