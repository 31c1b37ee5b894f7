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
    analyze_ports(file, "8080,8000")
}

fn analyze_ports(file: &Path, ports: &str) -> Value {
    let out = Command::new(rxray_bin()).args(["analyze", "--http", "--json", "--port", ports]).arg(file).output().expect("rxray analyze");
    assert!(out.status.success(), "rxray analyze: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("analyze JSON")
}

/// An endpoint's latency against nginx's `$request_time` (ms resolution) for the same requests: the
/// medians within 1 ms, and rxray's maximum not below nginx's by more than 1 ms. rxray measures at
/// the interface, so its figures also hold the time nginx waited to be scheduled: on a loaded
/// machine its maximum may be well above nginx's, never below.
fn agrees_with_nginx(e: &Value, log: &[(String, String, u16, f64)], prefix: &str) {
    let mut t: Vec<f64> = log.iter().filter(|l| l.1.starts_with(prefix)).map(|l| l.3).collect();
    assert!(!t.is_empty(), "nginx logged no {prefix} request");
    t.sort_by(f64::total_cmp);
    let (median, max) = (t[(t.len() - 1) / 2], t[t.len() - 1]);
    let (p50, rx_max) = (e["latency_ms"]["p50"].as_f64().unwrap(), e["latency_ms"]["max"].as_f64().unwrap());
    assert!((p50 - median).abs() <= 1.0, "rxray p50 {p50} ms vs nginx $request_time median {median} ms");
    assert!(rx_max + 1.0 >= max, "rxray max {rx_max} ms vs nginx $request_time max {max} ms");
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
    let log = nginx.access_log();
    agrees_with_nginx(&ep("GET", "/api/items/{id}"), &log, "/api/items/");
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
    assert_eq!(live["completeness"]["bodies_truncated"], 3, "the three big.bin bodies");
    assert_eq!(live["completeness"]["gaps"], 0, "{}", live["completeness"]);
    // The same run from tcpdump's capture, offline: the same calls.
    let offline = analyze(&file);
    assert_eq!(web::rxray_calls(&offline["http"]), sent, "rxray analyze --http on tcpdump's capture");
    // Latency on kernel timestamps against the capture's (same packets, other clock): p50 within 1 ms
    // on the slow endpoint, and against nginx's $request_time.
    let ep = |v: &Value, t: &str| v["endpoints"].as_array().unwrap().iter().find(|e| e["template"] == t).cloned().unwrap();
    let lp = ep(&live, "/slow/{id}")["latency_ms"]["p50"].as_f64().unwrap();
    let op = ep(&offline["http"], "/slow/{id}")["latency_ms"]["p50"].as_f64().unwrap();
    assert!((lp - op).abs() <= 1.0, "live p50 {lp} ms, capture p50 {op} ms");
    agrees_with_nginx(&ep(&live, "/api/items/{id}"), &nginx.access_log(), "/api/items/");
}

/// A crafted HTTP conversation between 198.19.77.1:41000 and 198.19.77.2:80 (addresses no lab
/// namespace owns, so no kernel answers them), as Ethernet frames with out-of-order, duplicated and
/// missing segments; returns the frames and the calls that must be counted: every call but the one
/// whose request head is missing (call 7). The missing body segment of call 4's response lies inside
/// its Content-Length, so call 4 still counts.
fn crafted() -> (Vec<Vec<u8>>, Calls) {
    use rxray_lab::frames::{self as f, ipproto, tcp_flags as tf, Eth, Ipv4, L3, L4};
    let (c, s): (std::net::Ipv4Addr, std::net::Ipv4Addr) = ("198.19.77.1".parse().unwrap(), "198.19.77.2".parse().unwrap());
    let eth_cs = Eth { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1] };
    let eth_sc = Eth { dst: [2, 0, 0, 0, 0, 1], src: [2, 0, 0, 0, 0, 2] };
    let mut seq = [1_000u32, 900_000u32];
    // (to_server, seq, ack, flags, payload, tag): the tag names a segment the perturbation picks.
    let mut segs: Vec<(bool, u32, u32, u8, Vec<u8>, String)> = Vec::new();
    let push = |segs: &mut Vec<(bool, u32, u32, u8, Vec<u8>, String)>, seq: &mut [u32; 2], up: bool, flags: u8, data: &[u8], tag: String| {
        let (i, o) = if up { (0, 1) } else { (1, 0) };
        let ack = if flags & tf::SYN != 0 && up { 0 } else { seq[o] };
        let flags = if ack != 0 { flags | tf::ACK } else { flags };
        segs.push((up, seq[i], ack, flags, data.to_vec(), tag));
        seq[i] = seq[i].wrapping_add(data.len() as u32 + u32::from(flags & (tf::SYN | tf::FIN) != 0));
    };
    push(&mut segs, &mut seq, true, tf::SYN, b"", "syn".into());
    push(&mut segs, &mut seq, false, tf::SYN, b"", "synack".into());
    push(&mut segs, &mut seq, true, 0, b"", "ack".into());
    let mut calls = Calls::new();
    for k in 0..12u32 {
        let (method, path, body, status, resp_body) = if k % 3 == 2 {
            ("POST", "/orders".to_string(), vec![b'p'; 2500], 201, vec![b'c'; 20])
        } else if k % 4 == 1 {
            ("GET", format!("/orders/{}", 100 + k), vec![], 404, vec![b'n'; 9])
        } else {
            ("GET", format!("/orders/{}", 100 + k), vec![], 200, vec![b'o'; 3000])
        };
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: shop\r\n").into_bytes();
        if !body.is_empty() {
            req.extend(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        req.extend(b"\r\n");
        req.extend(&body);
        let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n", resp_body.len()).into_bytes();
        resp.extend(&resp_body);
        for (n, ch) in req.chunks(1000).enumerate() {
            push(&mut segs, &mut seq, true, tf::PSH, ch, format!("req{k}.{n}"));
        }
        for (n, ch) in resp.chunks(1000).enumerate() {
            push(&mut segs, &mut seq, false, tf::PSH, ch, format!("resp{k}.{n}"));
        }
        push(&mut segs, &mut seq, true, 0, b"", format!("ack{k}"));
        if k != 7 {
            let e = calls.entry((method.to_string(), web::expected_template(&path))).or_default();
            e.0 += 1;
            *e.1.entry(status).or_default() += 1;
        }
    }
    push(&mut segs, &mut seq, true, tf::FIN, b"", "fin".into());
    push(&mut segs, &mut seq, false, tf::FIN, b"", "finack".into());
    // Perturb: swap each response's second and third segments, send every request's first
    // segment twice, lose call 4's second response segment and call 7's request head.
    let mut out = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        let tag = segs[i].5.clone();
        if tag == "resp4.1" || tag == "req7.0" {
            i += 1;
            continue;
        }
        if tag.starts_with("resp") && tag.ends_with(".1") && segs.get(i + 1).is_some_and(|n| n.5.ends_with(".2") && !n.0) {
            out.push(segs[i + 1].clone());
            out.push(segs[i].clone());
            i += 2;
            continue;
        }
        out.push(segs[i].clone());
        if tag.starts_with("req") && tag.ends_with(".0") {
            out.push(segs[i].clone());
        }
        i += 1;
    }
    let frames = out
        .into_iter()
        .map(|(up, seq, ack, flags, data, _)| {
            let (src, dst, sp, dp, e) = if up { (c, s, 41000, 80, eth_cs) } else { (s, c, 80, 41000, eth_sc) };
            let ip = Ipv4 { src, dst, ttl: 64, tos: 0, id: 0, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::TCP };
            let t = f::Tcp { sport: sp, dport: dp, seq, ack, flags, window: 1000, urgent: 0, options: vec![] };
            f::frame(&e, &[], L3::Ipv4(ip), L4::Tcp(t), &data)
        })
        .collect();
    (frames, calls)
}

#[test]
fn analyze_http_reassembles_crafted_out_of_order_duplicated_and_missing_segments() {
    use rxray_io::{LinkType, PcapWriter};
    let (frames, want) = crafted();
    let tmp = TempDir::new();
    let file = tmp.path().join("crafted.pcap");
    let mut w = PcapWriter::new(std::io::BufWriter::new(std::fs::File::create(&file).unwrap()), LinkType::ETHERNET, 262144).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        w.write_packet(1_700_000_000_000_000_000 + i as u64 * 100_000, fr.len() as u32, fr).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let v = analyze_ports(&file, "80");
    let h = &v["http"];
    assert_eq!(web::rxray_calls(h), want);
    assert_eq!((h["totals"]["unpaired_responses"].as_u64(), h["completeness"]["request_gaps"].as_u64()), (Some(1), Some(1)), "{h}");
    assert_eq!(h["completeness"]["gaps"], 2, "call 4's body segment and call 7's head");
    assert!(h["completeness"]["duplicate_bytes"].as_u64().unwrap() > 0);
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn live_http_reassembles_crafted_out_of_order_duplicated_and_missing_segments() {
    if !need_root() || !tools() {
        return;
    }
    let (frames, want) = crafted();
    let lab = Lab::pair("rxhttpcraft").expect("lab");
    let mut rx = common::Running::start(lab.ns_b(), &["http", "-i", lab.if_b(), "--json", "--port", "80", "--interval", "0.5"]);
    rx.wait_stderr("Ctrl-C to stop", std::time::Duration::from_secs(20));
    rxray_lab::send_frames_paced(lab.ns_a(), lab.if_a(), &frames, std::time::Duration::from_micros(200)).expect("send");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, stdout, stderr) = rx.interrupt();
    assert_eq!(code, Some(0), "rxray http: {stderr:?}");
    let live = final_snapshot(&stdout);
    assert_eq!(web::rxray_calls(&live), want);
    assert_eq!((live["totals"]["unpaired_responses"].as_u64(), live["completeness"]["gaps"].as_u64()), (Some(1), Some(2)), "{live}");
    assert_eq!(live["kernel"]["records_lost"], 0);
}

/// wrk's summary: (requests, p50 ms) from `wrk --latency` output.
fn wrk_summary(out: &str) -> (u64, f64) {
    let reqs = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no request count in wrk's output: {out}"));
    let p50 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%").map(|v| v.trim().to_string()))
        .and_then(|v| {
            let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
            let x: f64 = num.parse().ok()?;
            Some(match unit {
                "us" => x / 1000.0,
                "ms" => x,
                "s" => x * 1000.0,
                _ => return None,
            })
        })
        .unwrap_or_else(|| panic!("no 50% latency in wrk's output: {out}"));
    (reqs, p50)
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn live_http_counts_wrk_requests() {
    if !need_root() || !tools() || !have("wrk") {
        if !have("wrk") {
            skip_or_fail("wrk is not installed");
        }
        return;
    }
    let tmp = TempDir::new();
    let (www, _) = web::web_roots(&tmp);
    let lab = Lab::pair("rxhttpwrk").expect("lab");
    let b = lab.addr4_b().to_string();
    let _nginx = Nginx::start(&lab, lab.ns_b(), &b, 8080, &www, tmp.path());
    let mut rx = common::Running::start(lab.ns_b(), &["http", "-i", lab.if_b(), "--json", "--port", "8080", "--interval", "0.5"]);
    rx.wait_stderr("Ctrl-C to stop", std::time::Duration::from_secs(20));
    let conns = 8u64;
    let out = lab
        .exec(lab.ns_a(), ["wrk", "-t2", &format!("-c{conns}"), "-d3s", "--latency", &format!("http://{b}:8080/api/items/7")])
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk: {text} {}", String::from_utf8_lossy(&out.stderr));
    let (wrk_reqs, wrk_p50) = wrk_summary(&text);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, stdout, stderr) = rx.interrupt();
    assert_eq!(code, Some(0), "rxray http: {stderr:?}");
    let live = final_snapshot(&stdout);
    let e = live["endpoints"].as_array().unwrap().iter().find(|e| e["template"] == "/api/items/{id}").cloned().expect("the endpoint");
    let n = e["requests"].as_u64().unwrap();
    // wrk does not count requests still in flight at its deadline: at most one per connection.
    assert!((wrk_reqs..=wrk_reqs + conns).contains(&n), "rxray counted {n}, wrk {wrk_reqs} over {conns} connections");
    assert_eq!(e["statuses"]["200"].as_u64().unwrap() + e["unanswered"].as_u64().unwrap(), n, "{e}");
    assert_eq!(live["kernel"]["records_lost"], 0, "{}", live["kernel"]);
    // Server-side latency (first request byte to first response byte at the server's interface)
    // cannot exceed wrk's client-side one by more than scheduling noise.
    let p50 = e["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 <= wrk_p50 + 0.5, "rxray p50 {p50} ms, wrk p50 {wrk_p50} ms");
    eprintln!("wrk {wrk_reqs} requests (p50 {wrk_p50} ms); rxray {n} (p50 {p50} ms)");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn watch_and_capture_show_the_request_line() {
    if !need_root() || !tools() {
        return;
    }
    let tmp = TempDir::new();
    let (www, _) = web::web_roots(&tmp);
    let lab = Lab::pair("rxhttpwatch").expect("lab");
    let b = lab.addr4_b().to_string();
    let _nginx = Nginx::start(&lab, lab.ns_b(), &b, 8080, &www, tmp.path());
    let file = tmp.path().join("c.pcapng");
    let mut w = common::Running::start(lab.ns_b(), &["watch", "-i", lab.if_b(), "--", "tcp", "dst", "port", "8080"]);
    w.wait_stderr("Ctrl-C to stop", std::time::Duration::from_secs(20));
    let urls: Vec<String> = (1..=3).map(|i| format!("http://{b}:8080/api/items/{i}?x=y")).collect();
    web::curl(&lab, lab.ns_a(), &[], &urls);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (_, out, _) = w.interrupt();
    for i in 1..=3 {
        let want = format!("HTTP \"GET /api/items/{i}?x=y HTTP/1.1\"");
        assert_eq!(out.iter().filter(|l| l.contains(&want)).count(), 1, "{want} in {out:#?}");
    }
    assert_eq!(out.iter().filter(|l| l.contains(" HTTP \"")).count(), 3, "only where requests start");

    let mut c = common::Running::start(lab.ns_b(), &["capture", "-i", lab.if_b(), "-w", file.to_str().unwrap(), "tcp", "dst", "port", "8080"]);
    c.wait_stderr("Ctrl-C to stop", std::time::Duration::from_secs(20));
    web::curl(&lab, lab.ns_a(), &["-X", "DELETE"], &urls[..1]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, _, err) = c.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let shark = Command::new("tshark").arg("-r").arg(&file).args(["-T", "fields", "-e", "frame.comment"]).output().expect("tshark");
    let comments = String::from_utf8_lossy(&shark.stdout).into_owned();
    assert_eq!(comments.lines().filter(|l| l.contains("http=DELETE /api/items/1?x=y HTTP/1.1")).count(), 1, "{comments}");
    assert_eq!(comments.lines().filter(|l| l.contains("http=")).count(), 1, "{comments}");
}
