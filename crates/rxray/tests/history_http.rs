//! The agent's HTTP view into the store: nginx in the agent's namespace, curl with known requests
//! from the other; `rxray history --endpoint` returns per-minute rows whose requests, 4xx and 5xx
//! answers and latency counts sum exactly to what curl reported for that endpoint; with two clients,
//! `investigate` of each shows exactly its own calls and none of the other's.
mod common;

use common::web::{self, Calls};
use common::*;
use std::process::Command;
use std::time::Duration;

/// The agent on b's side with its HTTP view on port 8080 and its store in `tmp`, started (the store's
/// directory, the agent).
fn http_agent(lab: &rxray_lab::Lab, tmp: &TempDir) -> (std::path::PathBuf, Running) {
    let store = tmp.path().join("store");
    let cfg = tmp.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "interfaces = [\"{}\"]\n[metrics]\nlisten = \"off\"\n[snapshot]\ninterval_ms = 200\n[detect]\nenabled = false\n[http]\nenabled = true\nports = [8080]\n[store]\ndir = \"{}\"\n",
            lab.if_b(),
            store.display()
        ),
    )
    .unwrap();
    let mut agent = Running::start_netns(lab.ns_b(), &["agent", "--config", cfg.to_str().unwrap()]);
    agent.wait_stderr("SIGHUP reloads", Duration::from_secs(60));
    (store, agent)
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_agent_stores_http_endpoints_per_minute_with_exact_counts() {
    let tmp = TempDir::new();
    let Some((lab, _nginx, b)) = web::lab_with_nginx(&tmp) else { return };
    let (store, agent) = http_agent(&lab, &tmp);
    let url = |p: &str| format!("http://{b}:8080{p}");
    let mut sent = Calls::new();
    let mut run = |method: &str, extra: &[&str], urls: Vec<String>| {
        let codes = web::curl(&lab, lab.ns_a(), extra, &urls);
        web::record(&mut sent, method, &urls, &codes);
    };
    run("GET", &[], (1..=25).map(|i| url(&format!("/api/items/{i}"))).collect());
    run("GET", &[], (0..6).map(|i| url(&format!("/missing/{i}"))).collect());
    run("POST", &["-d", "name=x"], (0..4).map(|_| url("/api/items")).collect());
    // The last requests reach a snapshot; then a clean stop writes the minute still open.
    std::thread::sleep(Duration::from_millis(800));
    let (code, _, err) = agent.interrupt();
    assert_eq!(code, Some(0), "{err:?}");

    let store_s = store.to_str().unwrap();
    let all = rx_json(&["history", "--store", store_s, "--json"]);
    let rows = all["records"]["http"].as_array().unwrap();
    let mut got = Calls::new();
    for ((m, t), (n, statuses)) in &sent {
        let endpoint = format!("{m} {t}");
        let h = rx_json(&["history", "--store", store_s, "--endpoint", &endpoint, "--json"]);
        let mine = h["records"]["http"].as_array().unwrap();
        assert!(mine.iter().all(|r| r["endpoint"] == endpoint.as_str() && r["res"] == 60), "{h}");
        assert!(h["records"]["flows"].as_array().unwrap().is_empty() && h["records"]["conns"].as_array().unwrap().is_empty(), "--endpoint selects HTTP rows only: {h}");
        let sum = |k: &str| mine.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
        let c4: u64 = statuses.iter().filter(|(c, _)| (400..500).contains(*c)).map(|(_, n)| n).sum();
        let c5: u64 = statuses.iter().filter(|(c, _)| **c >= 500).map(|(_, n)| n).sum();
        assert_eq!((sum("requests"), sum("client_errors"), sum("server_errors"), sum("unanswered")), (*n, c4, c5, 0), "{endpoint}: {h}");
        let lat: u64 = mine.iter().map(|r| r["latency"]["count"].as_u64().unwrap()).sum();
        assert_eq!(lat, *n, "every answered request timed once: {h}");
        for r in mine {
            let p = |k: &str| r["latency"][k].as_u64().unwrap();
            assert!(p("p50_ns") <= p("p95_ns") && p("p95_ns") <= p("p99_ns") && p("p99_ns") <= p("max_ns") && p("max_ns") < 5_000_000_000, "{r}");
        }
        got.insert((m.clone(), t.clone()), (sum("requests"), statuses.clone()));
    }
    assert_eq!(got.len(), sent.len());
    // Nothing else: every HTTP row is one of the endpoints curl called.
    assert_eq!(rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum::<u64>(), sent.values().map(|v| v.0).sum::<u64>(), "{all}");
    assert!(sent.values().any(|v| v.1.keys().any(|c| (400..500).contains(c))), "curl saw 4xx: {sent:?}");
    // The text view names the endpoint with its error rate.
    let o = Command::new(rxray_bin()).args(["history", "--store", store_s, "--endpoint", "GET /missing/{id}"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    // One line per minute row (the calls may straddle a minute): together they hold what curl got.
    let (n, statuses) = &sent[&("GET".to_string(), "/missing/{id}".to_string())];
    let c4: u64 = statuses.iter().filter(|(c, _)| (400..500).contains(*c)).map(|(_, n)| n).sum();
    let lines: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| l.split_once("http GET /missing/{id} ")?.1.split_once(": ")?.1.split_once(" requests, ").map(|(r, rest)| (r.parse().unwrap(), rest.split(' ').next().unwrap().parse().unwrap())))
        .collect();
    assert_eq!((lines.iter().map(|x| x.0).sum::<u64>(), lines.iter().map(|x| x.1).sum::<u64>()), (*n, c4), "{text}");
    if lines.len() == 1 {
        let want = format!("({:.1}% errors)", 100.0 * c4 as f64 / *n as f64);
        assert!(text.contains(&want), "{want:?} in {text}");
    }
}

/// An address on a's side of the lab beside its own (same /24, last byte `last`).
fn second_client(lab: &rxray_lab::Lab, last: u8) -> String {
    let a = lab.addr4_a().octets();
    let a2 = std::net::Ipv4Addr::new(a[0], a[1], a[2], last).to_string();
    let out = Command::new("ip").args(["-n", lab.ns_a(), "addr", "add", &format!("{a2}/24"), "dev", lab.if_a()]).output().unwrap();
    assert!(out.status.success(), "ip addr add: {}", String::from_utf8_lossy(&out.stderr));
    a2
}

/// Per endpoint: (requests, statuses, latency count) summed over the HTTP rows of `v`; every row's
/// client must be `client`.
fn http_of(v: &serde_json::Value, client: &str) -> Calls {
    let mut got = Calls::new();
    let mut timed = 0;
    for r in v["records"]["http"].as_array().unwrap() {
        assert_eq!(r["client"], client, "a row of another client: {r}");
        let (m, t) = r["endpoint"].as_str().unwrap().split_once(' ').unwrap();
        let e = got.entry((m.to_string(), t.to_string())).or_default();
        e.0 += r["requests"].as_u64().unwrap();
        timed += r["latency"]["count"].as_u64().unwrap();
        for (code, n) in r["statuses"].as_object().unwrap() {
            *e.1.entry(code.parse().unwrap()).or_default() += n.as_u64().unwrap();
        }
    }
    assert_eq!(timed, got.values().map(|e| e.0).sum::<u64>(), "every call answered and timed once: {v}");
    got
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn investigate_shows_each_http_client_its_own_calls_and_none_of_the_others() {
    let tmp = TempDir::new();
    let Some((lab, _nginx, b)) = web::lab_with_nginx(&tmp) else { return };
    let a1 = lab.addr4_a().to_string();
    let a2 = second_client(&lab, 77);
    let (store, agent) = http_agent(&lab, &tmp);
    let url = |p: &str| format!("http://{b}:8080{p}");
    // Client 1: items and missing pages; client 2 (its own address): the index page and POSTs.
    let (mut sent1, mut sent2) = (Calls::new(), Calls::new());
    let run = |sent: &mut Calls, from: &str, method: &str, extra: &[&str], urls: Vec<String>| {
        let mut args = vec!["--interface", from];
        args.extend_from_slice(extra);
        let codes = web::curl(&lab, lab.ns_a(), &args, &urls);
        web::record(sent, method, &urls, &codes);
    };
    run(&mut sent1, &a1, "GET", &[], (1..=7).map(|i| url(&format!("/api/items/{i}"))).collect());
    run(&mut sent1, &a1, "GET", &[], (0..3).map(|i| url(&format!("/missing/{i}"))).collect());
    run(&mut sent2, &a2, "GET", &[], (0..4).map(|_| url("/index.html")).collect());
    run(&mut sent2, &a2, "POST", &["-d", "name=x"], (0..2).map(|_| url("/api/items")).collect());
    std::thread::sleep(Duration::from_millis(800));
    let (code, _, err) = agent.interrupt();
    assert_eq!(code, Some(0), "{err:?}");

    let store_s = store.to_str().unwrap();
    for (me, other, sent) in [(&a1, &a2, &sent1), (&a2, &a1, &sent2)] {
        let inv = rx_json(&["investigate", me, "--store", store_s, "--window", "1h", "--json"]);
        // Exactly its own calls: each endpoint's requests and statuses as curl got them.
        assert_eq!(&http_of(&inv, me), sent, "{me}: {inv}");
        assert!(inv["records"]["http"].as_array().unwrap().iter().all(|r| r["server"] == b.as_str() && r["port"] == 8080), "{inv}");
        assert!(!inv.to_string().contains(other.as_str()), "nothing of {other} in {me}'s investigation: {inv}");
        let lines: Vec<&str> = inv["timeline"].as_array().unwrap().iter().filter_map(|l| l["line"].as_str()).filter(|l| l.contains(" http ")).collect();
        assert!(!lines.is_empty() && lines.iter().all(|l| l.contains(&format!(" {me} > {b}:8080: "))), "{lines:?}");
        // The text form lists the same calls.
        let o = Command::new(rxray_bin()).args(["investigate", me, "--store", store_s, "--window", "1h"]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        for ((m, t), (n, _)) in sent.iter() {
            let want: u64 = text
                .lines()
                .filter_map(|l| l.split_once(&format!(" http {m} {t} {me} > {b}:8080: "))?.1.split_once(" requests")?.0.parse::<u64>().ok())
                .sum();
            assert_eq!(want, *n, "{m} {t} in {text}");
        }
        assert!(!text.contains(other.as_str()), "{text}");
        // history --endpoint E --addr A: that client's calls of that endpoint, exactly.
        for ((m, t), (n, statuses)) in sent.iter() {
            let ep = format!("{m} {t}");
            let h = rx_json(&["history", "--store", store_s, "--endpoint", &ep, "--addr", me, "--json"]);
            let got = http_of(&h, me);
            assert_eq!(got.get(&(m.clone(), t.clone())), Some(&(*n, statuses.clone())), "{ep} {me}: {h}");
            assert_eq!(got.len(), 1, "{h}");
            let none = rx_json(&["history", "--store", store_s, "--endpoint", &ep, "--addr", other, "--json"]);
            assert!(none["records"]["http"].as_array().unwrap().is_empty(), "{ep} was never called by {other}: {none}");
        }
    }
    // The server's address: both clients' calls, all of them.
    let srv = rx_json(&["history", "--store", store_s, "--addr", &b, "--json"]);
    let total: u64 = srv["records"]["http"].as_array().unwrap().iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, sent1.values().chain(sent2.values()).map(|v| v.0).sum::<u64>(), "{srv}");
}
