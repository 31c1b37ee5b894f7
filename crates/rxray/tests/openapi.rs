//! OpenAPI conformance of real traffic: a server in a lab namespace answers curl as the test
//! scripts it, some calls agreeing with the document and some not, each kind a known number of
//! times. `rxray http --openapi` (live) and `rxray analyze --openapi` over a tcpdump capture of the
//! same calls must both report exactly those findings, count by count. A broken document stops
//! both commands with its place.
mod common;

use common::curl_log::{parse_trace, CurlLog, Logged};
use common::*;
use rxray_lab::Lab;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rxray-openapi/tests/data/petstore-3.0.yaml");

/// Answers by method and path, as the test needs (the document's base path is /api/v1).
const SERVER: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, code, body, ctype="application/json"):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/api/v1/pets": self.answer(200, '[{"id": 1, "name": "rex"}]')
        elif p == "/api/v1/pets/mine": self.answer(200, '[]')
        elif p == "/api/v1/pets/7": self.answer(200, '{"id": 7, "name": ""}')
        elif p == "/api/v1/health": self.answer(200, 'ok', "text/plain")
        else: self.answer(404, '{"code": 404, "message": "no"}')
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0")); self.rfile.read(n)
        self.answer(201, '{"id": 2, "name": "kit"}')
    def do_DELETE(self):
        self.answer(500, '{"code": 500, "message": "boom"}')
    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0")); self.rfile.read(n)
        self.answer(405, '{"code": 405, "message": "no"}')
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer((sys.argv[1], 8080), H)
print("ready", flush=True)
s.serve_forever()
"#;

/// (kind, method, status) -> count, from a snapshot's findings.
fn kinds(findings: &Value) -> BTreeMap<(String, String, Option<u64>), u64> {
    let mut m = BTreeMap::new();
    for f in findings.as_array().unwrap_or_else(|| panic!("no findings: {findings}")) {
        let k = (f["kind"].as_str().unwrap().to_string(), f["method"].as_str().unwrap().to_string(), f["status"].as_u64());
        *m.entry(k).or_default() += f["count"].as_u64().unwrap();
    }
    m
}

const ID: [&str; 2] = ["-H", "X-Request-Id: t"];

/// The calls both lab tests make: some agree with the document, and each kind of finding is
/// provoked a known number of times (`want`).
fn provoke(c: &mut CurlLog<'_>, server: &str) {
    let base = format!("http://{server}:8080/api/v1");
    let url = |p: &str| format!("{base}{p}");
    let json = ["-H", "Content-Type: application/json"];
    // Calls that agree with the document: no finding.
    c.call(3, &[ID[0], ID[1], &url("/pets?limit=5")]);
    c.call(2, &[ID[0], ID[1], &url("/pets/mine")]);
    c.call(1, &[ID[0], ID[1], &url("/health")]);
    c.call(2, &[ID[0], ID[1], "-X", "POST", json[0], json[1], "-d", r#"{"name": "kit"}"#, &url("/pets")]);
    // Each kind, a known number of times.
    c.call(3, &[ID[0], ID[1], &url("/nope")]); // undocumented_path
    c.call(2, &[ID[0], ID[1], "-X", "PUT", "-d", "x", &url("/pets/3")]); // undocumented_method
    c.call(4, &[ID[0], ID[1], "-X", "DELETE", &url("/pets/3")]); // undocumented_status (500)
    c.call(2, &[ID[0], ID[1], &url("/pets?limit=abc")]); // wrong_type (query)
    c.call(3, &[ID[0], ID[1], &url("/pets/7")]); // schema_violation (response: name too short)
    c.call(2, &[ID[0], ID[1], "-X", "POST", json[0], json[1], "-d", r#"{"name": 5}"#, &url("/pets")]); // schema_violation (request)
    c.call(5, &[&url("/pets")]); // missing_parameter: the required X-Request-Id header left out
}

/// (kind, method, status) -> count that `provoke` was written to give.
fn want() -> BTreeMap<(String, String, Option<u64>), u64> {
    [
        (("undocumented_path", "GET", None), 3),
        (("undocumented_method", "PUT", None), 2),
        (("undocumented_status", "DELETE", Some(500)), 4),
        (("wrong_type", "GET", None), 2),
        (("schema_violation", "GET", Some(200)), 3),
        (("schema_violation", "POST", None), 2),
        (("missing_parameter", "GET", None), 5),
    ]
    .into_iter()
    .map(|((k, m, s), n)| ((k.to_string(), m.to_string(), s), n))
    .collect()
}

/// Counts per kind alone.
fn per_kind(m: &BTreeMap<(String, String, Option<u64>), u64>) -> BTreeMap<String, u64> {
    let mut o = BTreeMap::new();
    for ((k, _, _), n) in m {
        *o.entry(k.clone()).or_default() += n;
    }
    o
}

/// openapi-core (PyPI, in the venv scripts/openapi-oracle-venv makes) on the client's own log:
/// the kinds its errors map to (scripts/openapi-oracle.py), counted per kind over the calls.
fn oracle_per_kind(log: &[Logged], dir: &std::path::Path) -> BTreeMap<String, u64> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::process::Command::new(root.join("scripts/openapi-oracle-venv")).output().expect("scripts/openapi-oracle-venv");
    assert!(venv.status.success(), "the openapi-core venv could not be made: {}", String::from_utf8_lossy(&venv.stderr));
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_owned();
    let file = dir.join("client-log.json");
    std::fs::write(&file, serde_json::to_vec(log).unwrap()).unwrap();
    let o = std::process::Command::new(python).arg(root.join("scripts/openapi-oracle.py")).arg(SPEC).arg(&file).output().unwrap();
    assert!(o.status.success(), "openapi-core failed: {}", String::from_utf8_lossy(&o.stderr));
    let theirs: Vec<Vec<String>> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(theirs.len(), log.len());
    let mut m = BTreeMap::new();
    for k in theirs.into_iter().flatten() {
        *m.entry(k).or_default() += 1;
    }
    m
}

fn lab_tools() -> bool {
    if !need_root() {
        return false;
    }
    for t in ["curl", "tcpdump", "python3"] {
        if !have(t) {
            skip_or_fail(&format!("{t} is not installed (scripts/test installs it)"));
            return false;
        }
    }
    true
}

/// One lab run: the test server in b, tcpdump on b's interface, `rxray ARGS` in b (the args get
/// b's interface and the test's directory), and the client in a making `provoke`'s calls.
struct Provoked {
    lab: Lab,
    dir: TempDir,
    server: String,
    capture: std::path::PathBuf,
    out: Vec<String>,
    err: Vec<String>,
    log: Vec<Logged>,
}

fn provoked(args: impl Fn(&str, &std::path::Path) -> Vec<String>) -> Provoked {
    let lab = Lab::pair(&unique_name()).expect("lab");
    let dir = TempDir::new();
    let b = lab.addr4_b().to_string();
    let mut server = Kid::python(&lab, lab.ns_b(), SERVER, &[b.clone()]);
    assert_eq!(server.line(), "ready");
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", dir.path(), "calls", 0);
    let a = args(lab.if_b(), dir.path());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut live = Running::start(lab.ns_b(), &a);
    live.wait_stderr("Ctrl-C to stop", Duration::from_secs(60));
    let mut client = CurlLog::new(&lab, lab.ns_a(), dir.path());
    provoke(&mut client, &b);
    let log = std::mem::take(&mut client.log);
    std::thread::sleep(Duration::from_millis(600));
    let (code, out, err) = live.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let (capture, _) = dump.stop();
    drop(server);
    Provoked { lab, dir, server: b, capture, out, err, log }
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn findings_live_and_from_the_capture_are_exactly_what_the_calls_provoked() {
    if !lab_tools() {
        return;
    }
    let p = provoked(|iface, _| ["http", "-i", iface, "--json", "--port", "8080", "--interval", "0.5", "--openapi", SPEC].map(String::from).to_vec());
    let (out, capture, client, dir) = (&p.out, &p.capture, &p.log, &p.dir);

    let want = want();
    let last: Value = serde_json::from_str(out.last().map(String::as_str).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(last["final"], true);
    assert_eq!(kinds(&last["findings"]), want, "live findings: {}", last["findings"]);
    assert_eq!(last["openapi"]["exchanges"], client.len(), "{}", last["openapi"]);
    // Templates come from the document: the literal /pets/mine is its own endpoint.
    let templates: Vec<&str> = last["endpoints"].as_array().unwrap().iter().map(|e| e["template"].as_str().unwrap()).collect();
    assert!(templates.iter().any(|t| t.ends_with("/pets/mine")) && templates.iter().any(|t| t.ends_with("/pets/{petId}")), "{templates:?}");
    // The schema violation names the failing pointer and keyword.
    let sv = last["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "schema_violation" && f["method"] == "GET").unwrap();
    assert_eq!(sv["detail"]["keyword"], "minLength", "{sv}");

    // The same from the capture, offline.
    let o = std::process::Command::new(rxray_bin()).args(["analyze", "--json", "--port", "8080", "--openapi", SPEC]).arg(capture).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let offline = kinds(&doc["http"]["findings"]);
    assert_eq!(offline, want, "capture findings: {}", doc["http"]["findings"]);

    // The independent oracle, on what the client logged it sent and got: kind by kind, count by count.
    let theirs = oracle_per_kind(client, dir.path());
    assert_eq!(per_kind(&kinds(&last["findings"])), theirs, "live findings against openapi-core");
    assert_eq!(per_kind(&offline), theirs, "capture findings against openapi-core");

    // The text table lists the findings after the endpoints.
    let o = std::process::Command::new(rxray_bin()).args(["analyze", "--port", "8080", "--openapi", SPEC]).arg(capture).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("undocumented_status") && text.contains("OpenAPI"), "{text}");
}

/// The OpenAPI alerts of an EVE stream: (kind, method, template) -> alerts, and the alerts.
fn openapi_alerts(lines: &[Value]) -> (BTreeMap<(String, String, String), u64>, Vec<Value>) {
    let mut m = BTreeMap::new();
    let mut v = Vec::new();
    for a in lines.iter().filter(|a| a["rxray"]["detector"] == "openapi") {
        let e = &a["rxray"]["evidence"];
        let k = (e["kind"].as_str().unwrap().to_string(), e["method"].as_str().unwrap().to_string(), e["template"].as_str().unwrap().to_string());
        *m.entry(k).or_default() += 1;
        v.push(a.clone());
    }
    (m, v)
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn alerts_rise_once_per_kind_method_and_template_live_and_from_the_capture() {
    if !lab_tools() {
        return;
    }
    let p = provoked(|iface, dir| {
        let eve = dir.join("eve.json").display().to_string();
        ["alerts", "-i", iface, "--signatures", "none", "--no-conns", "--openapi", SPEC, "--port", "8080", "--eve", &eve].map(String::from).to_vec()
    });
    let (lab, b, err, capture, eve) = (&p.lab, &p.server, &p.err, &p.capture, p.dir.path().join("eve.json"));

    let want = want();
    let occurrences: u64 = want.values().sum();
    let check = |what: &str, lines: &[Value], stderr: &str| {
        let (by_key, alerts) = openapi_alerts(lines);
        assert_eq!(alerts.len(), lines.len(), "{what}: only OpenAPI alerts in quiet traffic: {lines:?}");
        // One alert per (kind, method, template); every (kind, method, status) the calls provoked.
        assert!(by_key.values().all(|&n| n == 1), "{what}: {by_key:?}");
        let mut seen: BTreeMap<(String, String, Option<u64>), u64> = BTreeMap::new();
        for a in &alerts {
            let e = &a["rxray"]["evidence"];
            // The first occurrence raised it (the repeats are suppressed within the window).
            assert_eq!((e["count"].as_u64(), e["first"].as_bool(), a["rxray"]["suppressed"].as_u64()), (Some(1), Some(true), Some(0)), "{what}: {a}");
            assert_eq!((a["src_ip"].as_str(), a["dest_ip"].as_str(), a["dest_port"].as_u64()), (Some(lab.addr4_a().to_string().as_str()), Some(b.as_str()), Some(8080)), "{what}: {a}");
            assert_eq!(a["alert"]["gid"], 9000);
            let k = (e["kind"].as_str().unwrap().to_string(), e["method"].as_str().unwrap().to_string(), e["status"].as_u64());
            *seen.entry(k).or_default() += 1;
        }
        assert_eq!(seen, want.iter().map(|(k, _)| (k.clone(), 1)).collect(), "{what}");
        // Every other occurrence was held back by the suppression, and counted.
        let held = format!("({} repeats suppressed)", occurrences - alerts.len() as u64);
        assert!(stderr.contains(&held), "{what}: expected {held} in {stderr}");
        by_key
    };
    let text = std::fs::read_to_string(&eve).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let live_keys = check("live", &lines, &err.join("\n"));

    // The same loop over the capture.
    let o = std::process::Command::new(rxray_bin())
        .args(["analyze", "--alerts", "--signatures", "none", "--port", "8080", "--openapi", SPEC])
        .arg(capture)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let offline_keys = check("capture", &lines, &String::from_utf8_lossy(&o.stderr));
    assert_eq!(live_keys, offline_keys);

    // openapi-core on the client's log finds the same kinds, as often as the calls provoked them.
    assert_eq!(oracle_per_kind(&p.log, p.dir.path()), per_kind(&want));
}

#[test]
fn a_broken_document_stops_the_command_with_its_place() {
    let dir = TempDir::new();
    let cap = dir.path().join("empty.pcap");
    // A valid, empty capture: 24-byte classic pcap header.
    let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&cap, h).unwrap();
    for (name, want) in [("broken-ref.yaml", "broken $ref"), ("not-yaml.yaml", "invalid YAML")] {
        let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../rxray-openapi/tests/data/").to_string() + name;
        let o = std::process::Command::new(rxray_bin()).args(["analyze", "--openapi", &spec]).arg(&cap).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(name) && err.contains(want), "{err}");
        // file:line:col
        let at = err.split(name).nth(1).unwrap_or_default();
        assert!(at.starts_with(':') && at[1..].split(':').next().unwrap().parse::<u32>().is_ok(), "{err}");
        assert!(o.stdout.is_empty(), "nothing starts: {}", String::from_utf8_lossy(&o.stdout));
    }
}

#[test]
fn a_trace_gives_the_call_back() {
    let t = "== Info: Connected\n=> Send header, 40 bytes (0x28)\n0000: 50 4f 53 54 20 2f 61 3f 62 3d 31 20 48 54 54 50 POST /a?b=1 HTTP\n0010: 2f 31 2e 31 0d 0a 48 6f 73 74 3a 20 78 0d 0a 58 /1.1..Host: x..X\n0020: 3a 20 31 0d 0a 0d 0a 7b                         : 1....{\n=> Send data, 2 bytes (0x2)\n0000: 7b 7d                                           {}\n<= Recv header, 17 bytes (0x11)\n0000: 48 54 54 50 2f 31 2e 30 20 32 30 31 20 4f 4b 0d HTTP/1.0 201 OK.\n0010: 0a                                              .\n<= Recv data, 3 bytes (0x3)\n0000: 61 62 63                                        abc\n";
    // The header block is 40 bytes: the last byte of its third line is past its size and ignored.
    let t = t.replace("40 bytes (0x28)", "39 bytes (0x27)");
    let l = parse_trace(&t).unwrap();
    assert_eq!((l.method.as_str(), l.target.as_str(), l.status), ("POST", "/a?b=1", 201));
    assert_eq!(l.request_headers, vec![("Host".to_string(), "x".to_string()), ("X".to_string(), "1".to_string())]);
    assert_eq!((l.request_body.as_str(), l.response_body.as_str()), ("{}", "abc"));
}
