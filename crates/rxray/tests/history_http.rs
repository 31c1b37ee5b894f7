//! The agent's HTTP view into the store: nginx in the agent's namespace, curl with known requests
//! from the other; `rxray history --endpoint` returns per-minute rows whose requests, 4xx and 5xx
//! answers and latency counts sum exactly to what curl reported for that endpoint.
mod common;

use common::web::{self, Calls};
use common::*;
use std::process::Command;
use std::time::Duration;


#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_agent_stores_http_endpoints_per_minute_with_exact_counts() {
    let tmp = TempDir::new();
    let Some((lab, _nginx, b)) = web::lab_with_nginx(&tmp) else { return };
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let store = tmp.path().join("store");
    let cfg = tmp.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "interfaces = [\"{iface}\"]\n[metrics]\nlisten = \"off\"\n[snapshot]\ninterval_ms = 200\n[detect]\nenabled = false\n[http]\nenabled = true\nports = [8080]\n[store]\ndir = \"{}\"\n",
            store.display()
        ),
    )
    .unwrap();
    let mut agent = Running::start_netns(&ns, &["agent", "--config", cfg.to_str().unwrap()]);
    agent.wait_stderr("SIGHUP reloads", Duration::from_secs(30));
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
        .filter_map(|l| l.split_once("http GET /missing/{id}: ")?.1.split_once(" requests, ").map(|(r, rest)| (r.parse().unwrap(), rest.split(' ').next().unwrap().parse().unwrap())))
        .collect();
    assert_eq!((lines.iter().map(|x| x.0).sum::<u64>(), lines.iter().map(|x| x.1).sum::<u64>()), (*n, c4), "{text}");
    if lines.len() == 1 {
        let want = format!("({:.1}% errors)", 100.0 * c4 as f64 / *n as f64);
        assert!(text.contains(&want), "{want:?} in {text}");
    }
}
