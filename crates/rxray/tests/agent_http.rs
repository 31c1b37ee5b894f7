//! The agent's HTTP view (`[http] enabled = true`), in a lab: nginx in the agent's namespace, curl
//! with known requests from the other; the agent's /metrics counts exactly what curl reported, per
//! method, endpoint template and status class, with a duration histogram per endpoint, and promtool
//! accepts the scrape.
mod common;

use common::web::{self, Calls};
use common::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

fn in_ns(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip").args(["netns", "exec", ns]).args(args).output().expect("ip netns exec")
}

/// `name{labels} value` lines of one family, as (labels text, value).
fn series(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k[name.len()..].to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_agents_http_view_counts_what_curl_sent_in_its_metrics() {
    let tmp = TempDir::new();
    let Some((lab, _nginx, b)) = web::lab_with_nginx(&tmp) else { return };
    let (ns, iface) = (lab.ns_b().to_string(), lab.if_b().to_string());
    let cfg = tmp.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!("host = \"http-lab\"\ninterfaces = [\"{iface}\"]\n[metrics]\nlisten = \"127.0.0.1:19467\"\n[snapshot]\ninterval_ms = 200\n[store]\nenabled = false\n[detect]\nenabled = false\n[http]\nenabled = true\nports = [8080]\n"),
    )
    .unwrap();
    let mut agent = Running::start_netns(&ns, &["agent", "--config", cfg.to_str().unwrap()]);
    agent.wait_stderr("SIGHUP reloads", Duration::from_secs(30));
    assert!(agent.stderr.iter().any(|l| l.contains("HTTP view on ports 8080")), "{:?}", agent.stderr);
    // `rxray http` joins the agent (it owns the interface) and counts from the moment it joined.
    let mut joined = Running::start_netns(&ns, &["http", "-i", &iface, "--json", "--port", "8080", "--interval", "0.5"]);
    joined.wait_stderr("joined the agent of http-lab", Duration::from_secs(10));
    // Ports the agent does not watch: refused, with the ports it does.
    let (code, _, err) = rxray_in(&ns, &["http", "-i", &iface, "--json", "--port", "8080,9999"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("watches ports 8080") && err.contains("9999"), "{err}");

    let ng = |p: &str| format!("http://{b}:8080{p}");
    let mut sent = Calls::new();
    let mut run = |method: &str, extra: &[&str], urls: Vec<String>| {
        let codes = web::curl(&lab, lab.ns_a(), extra, &urls);
        web::record(&mut sent, method, &urls, &codes);
    };
    run("GET", &[], (1..=25).map(|i| ng(&format!("/api/items/{i}"))).collect());
    run("HEAD", &["-I"], (0..5).map(|_| ng("/index.html")).collect());
    run("POST", &["-d", "name=x"], (0..4).map(|_| ng("/api/items")).collect());
    // What curl reported, as the metric's labels: (method, template, status class) -> requests.
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    let mut answered: BTreeMap<String, f64> = BTreeMap::new();
    for ((m, t), (_, statuses)) in &sent {
        for (code, n) in statuses {
            *want.entry(format!("{{host=\"http-lab\",method=\"{m}\",template=\"{t}\",status_class=\"{}xx\"}}", code / 100)).or_default() += *n as f64;
            *answered.entry(format!("{{host=\"http-lab\",method=\"{m}\",template=\"{t}\"}}")).or_default() += *n as f64;
        }
    }
    assert!(want.keys().any(|k| k.contains("4xx")) && want.keys().any(|k| k.contains("2xx")), "curl saw both classes: {want:?}");

    // The metrics catch up within a few snapshots.
    let mut text = String::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let o = in_ns(&ns, &["curl", "-sf", "--max-time", "3", "http://127.0.0.1:19467/metrics"]);
        text = String::from_utf8_lossy(&o.stdout).into_owned();
        let got: BTreeMap<String, f64> = series(&text, "rxray_http_requests_total").into_iter().collect();
        if got == want {
            break;
        }
    }
    let got: BTreeMap<String, f64> = series(&text, "rxray_http_requests_total").into_iter().collect();
    assert_eq!(got, want, "rxray_http_requests_total against curl; agent: {:?}", agent.stderr);
    // One duration histogram per endpoint, counting its answered requests; +Inf holds them all.
    let counts: BTreeMap<String, f64> = series(&text, "rxray_http_request_duration_seconds_count").into_iter().collect();
    assert_eq!(counts, answered, "{text}");
    for (labels, n) in &answered {
        let inf = format!("{},le=\"+Inf\"}}", labels.trim_end_matches('}'));
        let b = series(&text, "rxray_http_request_duration_seconds_bucket");
        assert!(b.iter().any(|(k, v)| *k == inf && v == n), "no {inf} = {n} in {b:?}");
    }
    if have("promtool") {
        let mut p = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(&mut p.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(), "promtool: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }
    // The joined `rxray http`: a snapshot every 0.5 s, and its final one counts exactly what curl sent.
    assert!(joined.wait_lines(2, Duration::from_secs(5)), "no snapshots from the joined rxray http");
    let (code, out, err) = joined.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let last: serde_json::Value = out.iter().rev().find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().filter(|v| v["final"] == true)).unwrap_or_else(|| panic!("no final snapshot: {out:?} {err:?}"));
    assert_eq!(web::rxray_calls(&last), sent, "joined rxray http against curl");
    assert_eq!(last["kernel"]["records_lost"].as_u64(), Some(0), "{}", last["kernel"]);
    assert!(out.len() >= 3, "snapshots every 0.5 s before the final one: {}", out.len());
    // The agent follows the namespace's TCP connections (`[conns]`, on by default): at least
    // curl's three, with no event lost.
    let o = Command::new(rxray_bin()).args(["--netns", &ns, "status", "--json"]).output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &st["connections"];
    assert!(c["enabled"] == true && c["new"].as_u64().unwrap() >= 3 && c["events_lost"] == 0, "{st}");
    // No HTTP records lost: the window says so.
    assert!(text.contains("rxray_window_samples_dropped{host=\"http-lab\"} 0"), "{text}");
}
