//! API calls from the wire: nginx and Python's http.server in a lab namespace, curl with known
//! requests, tcpdump in the server's namespace; `rxray analyze --http` on the capture must count what
//! curl sent and what tshark's HTTP dissector finds in the same file.
mod common;

use common::web::{self, Calls, Nginx};
use common::{have, need_root, rxray_bin, skip_or_fail, Dump, TempDir};
use rxray_lab::Lab;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn tools() -> bool {
    for t in ["nginx", "curl", "tcpdump", "tshark", "python3"] {
        if !have(t) {
            skip_or_fail(&format!("{t} is not installed"));
            return false;
        }
    }
    true
}

/// Drives the known requests from namespace a to b's nginx (8080) and python (8000); returns what
/// was sent with curl's statuses.
pub fn drive(lab: &Lab, b: &str) -> Calls {
    let mut calls = Calls::new();
    let ng = |p: &str| format!("http://{b}:8080{p}");
    let py = |p: &str| format!("http://{b}:8000{p}");
    let mut run = |method: &str, extra: &[&str], urls: Vec<String>| {
        let codes = web::curl(lab, lab.ns_a(), extra, &urls);
        web::record(&mut calls, method, &urls, &codes);
    };
    run("GET", &[], (1..=30).map(|i| ng(&format!("/api/items/{i}"))).collect());
    run("GET", &[], (1..=30).map(|i| ng(&format!("/api/items/{i}?q={i}"))).collect());
    run("HEAD", &["-I"], (0..5).map(|_| ng("/index.html")).collect());
    run("POST", &["-d", "name=x"], (0..4).map(|_| ng("/api/items")).collect());
    run("GET", &[], (0..3).map(|_| ng("/big.bin")).collect());
    run("GET", &[], (1..=10).map(|i| py(&format!("/files/{i}"))).collect());
    run("GET", &[], [50, 50, 50, 20, 20, 20].iter().map(|ms| py(&format!("/slow/{ms}"))).collect());
    calls
}

fn analyze(file: &Path) -> Value {
    let out = Command::new(rxray_bin()).args(["analyze", "--http", "--json", "--port", "8080,8000"]).arg(file).output().expect("rxray analyze");
    assert!(out.status.success(), "rxray analyze: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("analyze JSON")
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn analyze_http_counts_what_curl_sent_and_tshark_sees() {
    if !need_root() || !tools() {
        return;
    }
    let tmp = TempDir::new();
    let (www, py_root) = web::web_roots(&tmp);
    let lab = Lab::pair("rxhttpcap").expect("lab");
    let b = lab.addr4_b().to_string();
    let nginx = Nginx::start(&lab, lab.ns_b(), &b, 8080, &www, tmp.path());
    let _py = web::python_server(&lab, lab.ns_b(), &b, 8000, &py_root);
    let full = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", tmp.path(), "full", 0);
    // tcpdump -s 512: heads fit, large bodies do not.
    let snapped = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", tmp.path(), "snap512", 512);
    let sent = drive(&lab, &b);
    let (full_file, _) = full.stop();
    let (snap_file, _) = snapped.stop();

    let total: u64 = sent.values().map(|v| v.0).sum();
    assert_eq!(total, 30 + 30 + 5 + 4 + 3 + 10 + 6);
    let v = analyze(&full_file);
    let http = &v["http"];
    let shark = web::tshark_calls(&full_file, &[8080, 8000]);
    assert_eq!(shark, sent, "tshark's view of the capture differs from what curl reported");

    assert_eq!(web::rxray_calls(http), sent, "rxray analyze --http");
    assert_eq!(http["totals"]["requests"], total);
    assert_eq!(http["totals"]["unanswered"], 0);
    assert_eq!(http["completeness"]["gaps"], 0);
    assert_eq!(http["completeness"]["bytes_not_copied"], 0);

    // Latency: /slow/N answers after N ms (python sleeps), so p50 lies between N and N + 30 ms.
    let ep = |m: &str, t: &str| http["endpoints"].as_array().unwrap().iter().find(|e| e["method"] == m && e["template"] == t).cloned().unwrap();
    let slow = ep("GET", "/slow/{id}");
    let (p50, max) = (slow["latency_ms"]["p50"].as_f64().unwrap(), slow["latency_ms"]["max"].as_f64().unwrap());
    assert!((20.0..60.0).contains(&p50) && (50.0..80.0).contains(&max), "slow latency {slow}");
    // nginx's $request_time (ms resolution) per endpoint: its max and rxray's agree within 2 ms.
    let log = nginx.access_log();
    let items_max = log.iter().filter(|l| l.1.starts_with("/api/items/")).map(|l| l.3).fold(0.0, f64::max);
    let rx_max = ep("GET", "/api/items/{id}")["latency_ms"]["max"].as_f64().unwrap();
    assert!((rx_max - items_max).abs() <= 2.0, "rxray max {rx_max} ms vs nginx $request_time max {items_max} ms");
    assert_eq!(log.len() as u64, 30 + 30 + 5 + 4 + 3, "nginx logged every request");
    // Bytes: the big file's responses carry it whole three times.
    assert!(ep("GET", "/big.bin")["response_bytes"].as_u64().unwrap() > 3 * 200_000);

    // The snapped capture: every request still counted, with its status.
    let s = analyze(&snap_file);
    assert_eq!(web::rxray_calls(&s["http"]), sent, "rxray analyze --http on a -s 512 capture");
    assert!(s["http"]["completeness"]["bytes_not_copied"].as_u64().unwrap() > 3 * 190_000);
}


/// The final JSON Lines snapshot `rxray http --json` printed.
fn final_snapshot(stdout: &[String]) -> Value {
    let v = common::json_lines(stdout);
    let last = v.last().cloned().unwrap_or_else(|| panic!("no snapshot printed: {stdout:?}"));
    assert_eq!(last["final"], true, "the last line is the final snapshot");
    last
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn live_http_counts_what_curl_sent_and_matches_the_capture() {
    if !need_root() || !tools() {
        return;
    }
    let tmp = TempDir::new();
    let (www, py_root) = web::web_roots(&tmp);
    let lab = Lab::pair("rxhttplive").expect("lab");
    let b = lab.addr4_b().to_string();
    let nginx = Nginx::start(&lab, lab.ns_b(), &b, 8080, &www, tmp.path());
    let _py = web::python_server(&lab, lab.ns_b(), &b, 8000, &py_root);
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", tmp.path(), "live", 0);
    let mut rx = common::Running::start(lab.ns_b(), &["http", "-i", lab.if_b(), "--json", "--port", "8080,8000", "--interval", "0.5"]);
    rx.wait_stderr("Ctrl-C to stop", std::time::Duration::from_secs(20));
    let sent = drive(&lab, &b);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, stdout, stderr) = rx.interrupt();
    assert_eq!(code, Some(0), "rxray http: {stderr:?}");
    let (file, _) = dump.stop();
    let live = final_snapshot(&stdout);
    assert_eq!(web::rxray_calls(&live), sent, "rxray http (live) against curl");
    let k = &live["kernel"];
    assert_eq!((k["records_lost"].as_u64(), k["bytes_lost"].as_u64()), (Some(0), Some(0)), "{k}");
    // Bodies over 64 KiB (big.bin is 200 KB) are cut, counted, and the calls still count.
    assert!(k["bytes_over_budget"].as_u64().unwrap() >= 3 * (200_000 - 65_536 - 16_384), "{k}");
    assert_eq!(live["completeness"]["gaps"], 0, "{}", live["completeness"]);
    // The same run from tcpdump's capture, offline: the same calls.
    let offline = analyze(&file);
    assert_eq!(web::rxray_calls(&offline["http"]), sent, "rxray analyze --http on tcpdump's capture");
    // Latency on kernel timestamps against the capture's (same packets, other clock): p50 within 1 ms
    // on the slow endpoint, and against nginx's $request_time: the maxima within 2 ms.
    let ep = |v: &Value, t: &str| v["endpoints"].as_array().unwrap().iter().find(|e| e["template"] == t).cloned().unwrap();
    let lp = ep(&live, "/slow/{id}")["latency_ms"]["p50"].as_f64().unwrap();
    let op = ep(&offline["http"], "/slow/{id}")["latency_ms"]["p50"].as_f64().unwrap();
    assert!((lp - op).abs() <= 1.0, "live p50 {lp} ms, capture p50 {op} ms");
    let log = nginx.access_log();
    let nginx_max = log.iter().filter(|l| l.1.starts_with("/api/items/")).map(|l| l.3).fold(0.0, f64::max);
    let rx_max = ep(&live, "/api/items/{id}")["latency_ms"]["max"].as_f64().unwrap();
    assert!((rx_max - nginx_max).abs() <= 2.0, "rxray max {rx_max} ms vs nginx $request_time max {nginx_max} ms");
}
