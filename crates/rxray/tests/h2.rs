//! HTTP/2, gRPC and TLS on the wire: nghttpd with nghttp (Upgrade: h2c) and h2load (prior
//! knowledge), a Python gRPC server and client, nginx over TLS called by curl. Counts come from what
//! the clients sent and from tshark's HTTP/2 dissector on the same capture; the JA4 of curl's
//! ClientHello from an independent Python implementation over the captured bytes.
mod common;

use common::web::{wait_listen, Nginx};
use common::{have, need_root, rxray_bin, skip_or_fail, Dump, Running, TempDir};
use rxray_lab::Lab;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn tools(list: &[&str]) -> bool {
    for t in list {
        if !have(t) {
            skip_or_fail(&format!("{t} is not installed"));
            return false;
        }
    }
    true
}

/// A child process stopped on Drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn analyze(file: &Path, ports: &str, tls: &str) -> Value {
    let out = Command::new(rxray_bin()).args(["analyze", "--http", "--json", "--port", ports, "--tls-port", tls]).arg(file).output().expect("rxray analyze");
    assert!(out.status.success(), "rxray analyze: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).expect("analyze JSON")["http"].clone()
}

fn final_snapshot(stdout: &[String]) -> Value {
    let v = common::json_lines(stdout);
    let last = v.last().cloned().unwrap_or_else(|| panic!("no snapshot printed: {stdout:?}"));
    assert_eq!(last["final"], true);
    last
}

/// (protocol, method, template) → (requests, statuses) from a snapshot.
type Eps = BTreeMap<(String, String, String), (u64, BTreeMap<String, u64>)>;

fn endpoints(http: &Value) -> Eps {
    let mut m = Eps::new();
    for e in http["endpoints"].as_array().expect("endpoints") {
        let st = e["statuses"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
        m.insert((e["protocol"].as_str().unwrap().into(), e["method"].as_str().unwrap().into(), e["template"].as_str().unwrap().into()), (e["requests"].as_u64().unwrap(), st));
    }
    m
}

fn key(p: &str, m: &str, t: &str) -> (String, String, String) {
    (p.into(), m.into(), t.into())
}

/// tshark's HTTP/2 dissector over the capture: `:path` of every request and `:status` of every
/// response (HEADERS with several blocks give comma-separated values).
fn tshark_h2(file: &Path, port: u16) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(file)
        .args(["-d", &format!("tcp.port=={port},http2"), "-Y", "http2.type == 1", "-T", "fields", "-e", "http2.headers.path", "-e", "http2.headers.status"])
        .output()
        .expect("tshark");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let (mut paths, mut statuses) = (BTreeMap::new(), BTreeMap::new());
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = l.split('\t');
        for (col, map) in [(f.next(), &mut paths), (f.next(), &mut statuses)] {
            for v in col.unwrap_or("").split(',').filter(|v| !v.is_empty()) {
                *map.entry(v.to_string()).or_insert(0u64) += 1;
            }
        }
    }
    (paths, statuses)
}

fn h2load_done(out: &str) -> u64 {
    // "requests: 300 total, 300 started, 300 done, 300 succeeded, 0 failed, ..."
    let l = out.lines().find(|l| l.starts_with("requests:")).unwrap_or_else(|| panic!("h2load printed no requests line: {out}"));
    l.split(", ").find_map(|p| p.strip_suffix(" succeeded")).and_then(|n| n.trim().parse().ok()).expect("succeeded count")
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn h2c_from_nghttp_and_h2load_live_and_from_the_capture() {
    if !need_root() || !tools(&["nghttpd", "nghttp", "h2load", "tcpdump", "tshark"]) {
        return;
    }
    let tmp = TempDir::new();
    let www = tmp.path().join("www");
    std::fs::create_dir_all(www.join("api")).unwrap();
    std::fs::write(www.join("index.html"), "<p>lab</p>\n".repeat(50)).unwrap();
    std::fs::write(www.join("api/7"), "seven").unwrap();
    std::fs::write(www.join("big.bin"), vec![b'b'; 300_000]).unwrap();
    let lab = Lab::pair("rxh2c").expect("lab");
    let b = lab.addr4_b().to_string();
    // nghttpd (8082) answers HTTP/2 only; nghttpx (8080) in front of it also takes `Upgrade: h2c`
    // (its calls to nghttpd stay inside b's namespace, off the watched interface).
    let _srv = Proc(lab.exec(lab.ns_b(), ["nghttpd", "--no-tls", "-a", &b, "-d"]).arg(&www).arg("8082").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nghttpd"));
    wait_listen(lab.ns_b(), 8082);
    let log = tmp.path().join("nghttpx.log");
    let _proxy = Proc(
        lab.exec(lab.ns_b(), ["nghttpx", &format!("--frontend={b},8080;no-tls"), &format!("--backend={b},8082;;proto=h2"), "--workers=1", "--conf=/dev/null", "--accesslog-file=/dev/null"])
            .arg(format!("--errorlog-file={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nghttpx"),
    );
    wait_listen(lab.ns_b(), 8080);
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", tmp.path(), "h2c", 0);
    let mut rx = Running::start(lab.ns_b(), &["http", "-i", lab.if_b(), "--json", "--port", "8080,8082", "--interval", "0.5"]);
    rx.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));

    let up = |p: &str| format!("http://{b}:8080{p}");
    let url = |p: &str| format!("http://{b}:8082{p}");
    // nghttp -u: the first URL is the HTTP/1.1 upgrade request, the rest go as HTTP/2 streams.
    let out = lab.exec(lab.ns_a(), ["nghttp", "-u", "-n", "-s"]).args([up("/index.html"), up("/api/7"), up("/missing"), up("/big.bin")]).output().expect("nghttp");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.lines().filter(|l| l.contains(" 200 ") || l.contains(" 404 ")).count() == 4, "nghttp -u: {said} {}", String::from_utf8_lossy(&out.stderr));
    // Prior knowledge, several streams in flight on several connections.
    let out = lab.exec(lab.ns_a(), ["h2load", "-n", "400", "-c", "4", "-m", "10"]).arg(url("/index.html")).output().expect("h2load");
    let h2load_ok = h2load_done(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(h2load_ok, 400, "{}", String::from_utf8_lossy(&out.stdout));
    let out = lab.exec(lab.ns_a(), ["h2load", "-n", "60", "-c", "2", "-m", "4"]).arg(url("/api/7")).output().expect("h2load");
    assert_eq!(h2load_done(&String::from_utf8_lossy(&out.stdout)), 60);
    let out = lab.exec(lab.ns_a(), ["h2load", "-n", "30", "-c", "1"]).arg(url("/nothing/here")).output().expect("h2load");
    assert!(String::from_utf8_lossy(&out.stdout).contains("30 done"), "{}", String::from_utf8_lossy(&out.stdout));
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = rx.interrupt();
    assert_eq!(code, Some(0), "rxray http: {stderr:?}");
    let (file, _) = dump.stop();

    let mut want = Eps::new();
    let st = |c: &str, n: u64| BTreeMap::from([(c.to_string(), n)]);
    want.insert(key("http/1.1", "GET", "/index.html"), (1, st("200", 1)));
    want.insert(key("h2c", "GET", "/index.html"), (400, st("200", 400)));
    want.insert(key("h2c", "GET", "/api/{id}"), (61, st("200", 61)));
    want.insert(key("h2c", "GET", "/missing"), (1, st("404", 1)));
    want.insert(key("h2c", "GET", "/big.bin"), (1, st("200", 1)));
    want.insert(key("h2c", "GET", "/nothing/here"), (30, st("404", 30)));
    // tshark on the same capture agrees with what the clients sent (it follows the upgrade on
    // 8080 itself: the upgrade request is HTTP/1.1, its answer HTTP/2 on stream 1).
    let (paths, statuses) = tshark_h2(&file, 8082);
    let s = |v: &[(&str, u64)]| v.iter().map(|(k, n)| (k.to_string(), *n)).collect::<BTreeMap<String, u64>>();
    assert_eq!(paths, s(&[("/index.html", 400), ("/api/7", 61), ("/missing", 1), ("/big.bin", 1), ("/nothing/here", 30)]), "tshark's :path counts");
    assert_eq!(statuses, s(&[("200", 1 + 400 + 61 + 1), ("404", 31)]), "tshark's :status counts");

    let live = final_snapshot(&stdout);
    assert_eq!(endpoints(&live), want, "rxray http (live)");
    assert_eq!(live["totals"]["h2_connections"], 1 + 4 + 2 + 1);
    assert_eq!(live["totals"]["unanswered"], 0);
    assert_eq!(live["completeness"]["h2_decoding_lost"], 0, "{}", live["completeness"]);
    assert_eq!(live["completeness"]["h2_not_decodable"], 0);
    let k = &live["kernel"];
    assert_eq!((k["records_lost"].as_u64(), k["bytes_over_budget"].as_u64()), (Some(0), Some(0)), "HTTP/2 flows are copied whole: {k}");
    let big = live["endpoints"].as_array().unwrap().iter().find(|e| e["template"] == "/big.bin").unwrap();
    assert!(big["response_bytes"].as_u64().unwrap() > 300_000, "{big}");

    let offline = analyze(&file, "8080,8082", "8443");
    assert_eq!(endpoints(&offline), want, "rxray analyze --http on tcpdump's capture");
    assert_eq!(offline["totals"]["h2_connections"], 8);
}

/// The gRPC server and client: service lab.Echo with Unary (NOT_FOUND for "missing"), Stream
/// (server streaming: N answers) and Collect (client streaming), through a generic handler (no
/// code generation); messages are raw bytes.
const GRPC: &str = r#"
import sys, grpc
from concurrent import futures
addr, role = sys.argv[1], sys.argv[2]
if role == "server":
    def unary(req, ctx):
        if req == b"missing":
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b"echo:" + req
    def stream(req, ctx):
        for i in range(int(req)):
            yield b"part%d" % i
    def collect(it, ctx):
        return b"%d" % sum(1 for _ in it)
    h = grpc.method_handlers_generic_handler("lab.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Collect": grpc.stream_unary_rpc_method_handler(collect),
    })
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    s.add_generic_rpc_handlers((h,))
    s.add_insecure_port(addr)
    s.start()
    print("ready", flush=True)
    s.wait_for_termination(60)
else:
    ch = grpc.insecure_channel(addr)
    u = ch.unary_unary("/lab.Echo/Unary")
    st = ch.unary_stream("/lab.Echo/Stream")
    co = ch.stream_unary("/lab.Echo/Collect")
    ok = bad = 0
    for i in range(7):
        assert u(b"hi%d" % i, timeout=10) == b"echo:hi%d" % i
        ok += 1
    for i in range(3):
        try:
            u(b"missing", timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
            bad += 1
    got = [len(list(st(b"4", timeout=10))) for _ in range(2)]
    assert got == [4, 4], got
    for _ in range(2):
        assert co(iter([b"a", b"b", b"c"]), timeout=10) == b"3"
    print("done", ok, bad, flush=True)
"#;

fn grpc_python() -> Option<&'static str> {
    let ok = |p: &str| Command::new(p).args(["-c", "import grpc"]).output().is_ok_and(|o| o.status.success());
    // Debian's python3-grpcio is for the system interpreter.
    ["/usr/bin/python3", "python3"].into_iter().find(|p| ok(p))
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn grpc_unary_and_streaming_calls_with_their_statuses() {
    if !need_root() || !tools(&["tcpdump"]) {
        return;
    }
    let Some(py) = grpc_python() else {
        skip_or_fail("python3-grpcio is not installed");
        return;
    };
    let tmp = TempDir::new();
    let lab = Lab::pair("rxgrpc").expect("lab");
    let addr = format!("{}:50051", lab.addr4_b());
    let mut srv = Proc(lab.exec(lab.ns_b(), [py, "-u", "-c", GRPC, &addr, "server"]).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("grpc server"));
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(srv.0.stdout.as_mut().unwrap()).read_line(&mut line).expect("server output");
        assert_eq!(line.trim(), "ready");
    }
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", tmp.path(), "grpc", 0);
    let mut rx = Running::start(lab.ns_b(), &["http", "-i", lab.if_b(), "--json", "--port", "50051", "--interval", "0.5"]);
    rx.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    let out = lab.exec(lab.ns_a(), [py, "-u", "-c", GRPC, &addr, "client"]).output().expect("grpc client");
    assert!(out.status.success(), "grpc client: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done 7 3");
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = rx.interrupt();
    assert_eq!(code, Some(0), "rxray http: {stderr:?}");
    let (file, _) = dump.stop();

    let check = |http: &Value, what: &str| {
        let ep = |t: &str| http["endpoints"].as_array().unwrap().iter().find(|e| e["template"] == t).cloned().unwrap_or_else(|| panic!("{what}: no {t} in {http}"));
        let (u, s, c) = (ep("lab.Echo/Unary"), ep("lab.Echo/Stream"), ep("lab.Echo/Collect"));
        for e in [&u, &s, &c] {
            assert_eq!((e["protocol"].as_str(), e["method"].as_str()), (Some("grpc"), Some("POST")), "{what}: {e}");
        }
        assert_eq!(u["requests"], 10, "{what}: {u}");
        assert_eq!(u["statuses"]["200"], 10, "{what}: gRPC errors still answer HTTP 200: {u}");
        assert_eq!(u["grpc"]["statuses"], serde_json::json!({"0": 7, "5": 3}), "{what}: {u}");
        assert_eq!((u["grpc"]["request_messages"].as_u64(), u["grpc"]["response_messages"].as_u64()), (Some(10), Some(7)), "{what}: {u}");
        assert_eq!(s["grpc"]["statuses"], serde_json::json!({"0": 2}), "{what}: {s}");
        assert_eq!((s["grpc"]["request_messages"].as_u64(), s["grpc"]["response_messages"].as_u64()), (Some(2), Some(8)), "{what}: {s}");
        assert_eq!(c["grpc"]["statuses"], serde_json::json!({"0": 2}), "{what}: {c}");
        assert_eq!((c["grpc"]["request_messages"].as_u64(), c["grpc"]["response_messages"].as_u64()), (Some(6), Some(2)), "{what}: {c}");
        assert_eq!(http["totals"]["requests"], 14, "{what}");
        assert_eq!(http["completeness"]["h2_decoding_lost"], 0, "{what}");
    };
    check(&final_snapshot(&stdout), "rxray http (live)");
    check(&analyze(&file, "50051", "8443"), "rxray analyze --http on tcpdump's capture");
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn tls_facts_of_curl_against_nginx_with_ja4_checked_independently() {
    if !need_root() || !tools(&["nginx", "curl", "openssl", "tcpdump", "python3"]) {
        return;
    }
    let tmp = TempDir::new();
    let lab = Lab::pair("rxtls").expect("lab");
    let b = lab.addr4_b().to_string();
    let (key_f, cert_f) = (tmp.path().join("key.pem"), tmp.path().join("cert.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=lab.test", "-keyout"])
        .arg(&key_f)
        .arg("-out")
        .arg(&cert_f)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let www = tmp.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "tls lab\n").unwrap();
    let _nginx = Nginx::start_tls(&lab, lab.ns_b(), &b, 8443, &www, tmp.path(), &cert_f, &key_f);
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", tmp.path(), "tls", 0);
    let mut rx = Running::start(lab.ns_b(), &["http", "-i", lab.if_b(), "--json", "--port", "8080", "--tls-port", "8443", "--interval", "0.5"]);
    rx.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    // `rxray flows` on the client's side of the pair: the same facts on each flow.
    let mut flows = Running::start(lab.ns_a(), &["flows", "-i", lab.if_a(), "--json", "--no-context", "--tls-port", "8443", "--interval", "0.5"]);
    flows.wait_stderr("Ctrl-C to stop", Duration::from_secs(20));
    // One connection per run, in this order (client ports rise with each new connection is not
    // assumed: runs are told apart by their facts).
    let runs: [&[&str]; 3] = [&["--http1.1"], &["--http2"], &["--http2", "--tls-max", "1.2"]];
    for extra in runs {
        let out = lab
            .exec(lab.ns_a(), ["curl", "-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{http_version}\\n", "--resolve", &format!("lab.test:8443:{b}")])
            .args(extra)
            .arg("https://lab.test:8443/index.html")
            .output()
            .expect("curl");
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let want = if extra[0] == "--http1.1" { "200 1.1" } else { "200 2" };
        assert_eq!(got, want, "curl {extra:?}");
    }
    std::thread::sleep(Duration::from_millis(1200));
    let (code, stdout, stderr) = rx.interrupt();
    assert_eq!(code, Some(0), "rxray http: {stderr:?}");
    let (fcode, fout, ferr) = flows.interrupt();
    assert_eq!(fcode, Some(0), "rxray flows: {ferr:?}");
    let (file, _) = dump.stop();

    let py = Command::new("python3").args(["-c", common::JA4_PY]).arg(&file).arg("8443").output().expect("python3");
    assert!(py.status.success(), "JA4 in Python: {}", String::from_utf8_lossy(&py.stderr));
    let ja4: BTreeMap<u64, String> = String::from_utf8_lossy(&py.stdout)
        .lines()
        .map(|l| {
            let (p, j) = l.split_once(' ').unwrap();
            (p.parse().unwrap(), j.to_string())
        })
        .collect();
    assert_eq!(ja4.len(), 3, "three ClientHellos in the capture: {ja4:?}");

    let check = |http: &Value, what: &str| {
        let conns = http["tls"]["connections"].as_array().unwrap_or_else(|| panic!("{what}: no tls in {http}"));
        assert_eq!(conns.len(), 3, "{what}: {conns:?}");
        let mut seen = Vec::new();
        for c in conns {
            assert_eq!(c["sni"], "lab.test", "{what}: {c}");
            assert_eq!(c["server_port"], 8443);
            let port = c["client_port"].as_u64().unwrap();
            assert_eq!(c["ja4"].as_str(), ja4.get(&port).map(String::as_str), "{what}: JA4 of the connection from port {port}");
            let hs = c["handshake_ms"].as_f64().unwrap_or_else(|| panic!("{what}: no handshake time: {c}"));
            assert!(hs > 0.0 && hs < 5000.0, "{what}: {c}");
            assert!(c["client_encrypted_bytes"].as_u64().unwrap() > 0 && c["server_encrypted_bytes"].as_u64().unwrap() > 0, "{what}: {c}");
            let offered: Vec<&str> = c["alpn_offered"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            seen.push((offered.join(","), c["version"].as_str().unwrap_or("-").to_string(), c["alpn"].as_str().unwrap_or("-").to_string()));
            assert!(c.get("error").is_none(), "{what}: {c}");
        }
        seen.sort();
        // TLS 1.3 carries the chosen ALPN in encrypted extensions: only the 1.2 run shows it.
        let want = vec![
            ("h2,http/1.1".to_string(), "1.2".to_string(), "h2".to_string()),
            ("h2,http/1.1".to_string(), "1.3".to_string(), "-".to_string()),
            ("http/1.1".to_string(), "1.3".to_string(), "-".to_string()),
        ];
        assert_eq!(seen, want, "{what}");
    };
    check(&final_snapshot(&stdout), "rxray http (live)");
    check(&analyze(&file, "8080", "8443"), "rxray analyze --http on tcpdump's capture");

    // rxray flows --json (flows are counted where packets arrive: on the client's side, the
    // server's direction of each of the three connections) carries each connection's facts.
    let last = common::json_lines(&fout).pop().unwrap_or_else(|| panic!("rxray flows printed nothing: {ferr:?}"));
    let mut with_tls = 0;
    for f in last["flows"].as_array().unwrap() {
        let Some(t) = f.get("tls") else { continue };
        with_tls += 1;
        let port = t["client_port"].as_u64().unwrap();
        assert!(f["sport"] == port || f["dport"] == port, "{f}");
        assert_eq!(t["ja4"].as_str(), ja4.get(&port).map(String::as_str), "rxray flows: {f}");
        assert_eq!(t["sni"], "lab.test");
    }
    assert_eq!(with_tls, 3, "rxray flows: {last}");
}

/// `rxray alerts` on h2c: a request rule (the default rules' UNION SELECT on `http.uri`) fires on
/// an HTTP/2 request, and an API limit counts HTTP/2 requests (nghttp and h2load against nghttpd).
/// Suricata's HTTP/2 keywords: "http.uri ... works on HTTP/2 as well" (its http2 docs map the
/// `:path` pseudo-header to the URI buffers).
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn h2c_requests_raise_request_rules_and_count_against_api_limits() {
    if !need_root() || !tools(&["nghttpd", "nghttp", "h2load"]) {
        return;
    }
    let tmp = TempDir::new();
    let www = tmp.path().join("www");
    std::fs::create_dir_all(www.join("api")).unwrap();
    std::fs::write(www.join("api/7"), "seven").unwrap();
    let limits = tmp.path().join("limits.toml");
    std::fs::write(&limits, "[[api_limit]]\nendpoint = \"GET /api/{id}\"\nrate = \"2/m\"\naction = \"alert\"\n").unwrap();
    let lab = Lab::pair("rxh2a").expect("lab");
    let b = lab.addr4_b().to_string();
    let _srv = Proc(lab.exec(lab.ns_b(), ["nghttpd", "--no-tls", "-a", &b, "-d"]).arg(&www).arg("8082").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nghttpd"));
    wait_listen(lab.ns_b(), 8082);
    let mut rx = Running::start(lab.ns_b(), &["alerts", "-i", lab.if_b(), "--port", "8082", "--standalone", "--api-limits", limits.to_str().unwrap()]);
    rx.wait_stderr("Ctrl-C to stop", Duration::from_secs(30));
    let url = |p: &str| format!("http://{b}:8082{p}");
    let attack = "/items?id=1%20UNION%20SELECT%20username,password%20FROM%20users";
    let out = lab.exec(lab.ns_a(), ["nghttp", "-n", "-s"]).args([url(attack), url("/items?q=trade+union+selection")]).output().expect("nghttp");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.lines().filter(|l| l.contains(" 404 ")).count(), 2, "nghttp: {said} {}", String::from_utf8_lossy(&out.stderr));
    let out = lab.exec(lab.ns_a(), ["h2load", "-n", "10", "-c", "1"]).arg(url("/api/7")).output().expect("h2load");
    assert!(String::from_utf8_lossy(&out.stdout).contains("10 succeeded"), "{}", String::from_utf8_lossy(&out.stdout));
    rx.wait_lines(2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    let (code, out, err) = rx.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let eve: Vec<Value> = out.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    // The UNION SELECT request is the one signature alert; h2load's 10 requests against 2/m raise
    // api_limit alerts.
    common::expect_one_signature_and_api_limits(&eve, 9000001, &lab.addr4_a().to_string(), "GET /api/{id}", &err);
}
