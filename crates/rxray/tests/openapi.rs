//! OpenAPI conformance of real traffic: a server in a lab namespace answers curl as the test
//! scripts it, some calls agreeing with the document and some not, each kind a known number of
//! times. `rxray http --openapi` (live) and `rxray analyze --openapi` over a tcpdump capture of the
//! same calls must both report exactly those findings, count by count. A broken document stops
//! both commands with its place.
mod common;

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

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn findings_live_and_from_the_capture_are_exactly_what_the_calls_provoked() {
    if !need_root() {
        return;
    }
    for t in ["curl", "tcpdump", "python3"] {
        if !have(t) {
            skip_or_fail(&format!("{t} is not installed (scripts/test installs it)"));
            return;
        }
    }
    let lab = Lab::pair(&unique_name()).expect("lab");
    let dir = TempDir::new();
    let b = lab.addr4_b().to_string();
    let mut server = Kid::python(&lab, lab.ns_b(), SERVER, &[b.clone()]);
    assert_eq!(server.line(), "ready");
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", dir.path(), "calls", 0);
    let mut live = Running::start(lab.ns_b(), &["http", "-i", lab.if_b(), "--json", "--port", "8080", "--interval", "0.5", "--openapi", SPEC]);
    live.wait_stderr("Ctrl-C to stop", Duration::from_secs(60));
    let base = format!("http://{b}:8080/api/v1");
    let curl = |n: usize, args: &[&str]| {
        for _ in 0..n {
            let mut a = vec!["curl", "-s", "-o", "/dev/null", "--max-time", "5", "-H", "X-Request-Id: t"];
            a.extend_from_slice(args);
            let o = lab.exec(lab.ns_a(), a.clone()).output().unwrap();
            assert!(o.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
    };
    let url = |p: &str| format!("{base}{p}");
    // Calls that agree with the document: no finding.
    curl(3, &[&url("/pets?limit=5")]);
    curl(2, &[&url("/pets/mine")]);
    curl(1, &[&url("/health")]);
    curl(2, &["-X", "POST", "-H", "Content-Type: application/json", "-d", r#"{"name": "kit"}"#, &url("/pets")]);
    // Each kind, a known number of times.
    curl(3, &[&url("/nope")]); // undocumented_path
    curl(2, &["-X", "PUT", "-d", "x", &url("/pets/3")]); // undocumented_method
    curl(4, &["-X", "DELETE", &url("/pets/3")]); // undocumented_status (500)
    curl(2, &[&url("/pets?limit=abc")]); // wrong_type (query)
    curl(3, &[&url("/pets/7")]); // schema_violation (response: name too short)
    curl(2, &["-X", "POST", "-H", "Content-Type: application/json", "-d", r#"{"name": 5}"#, &url("/pets")]); // schema_violation (request)
    for _ in 0..5 {
        // missing_parameter: the required X-Request-Id header left out.
        let o = lab.exec(lab.ns_a(), ["curl", "-s", "-o", "/dev/null", "--max-time", "5", &url("/pets")]).output().unwrap();
        assert!(o.status.success());
    }
    std::thread::sleep(Duration::from_millis(600));
    let (code, out, err) = live.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let (capture, _) = dump.stop();
    drop(server);

    let want: BTreeMap<(String, String, Option<u64>), u64> = [
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
    .collect();

    let last: Value = serde_json::from_str(out.last().map(String::as_str).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(last["final"], true);
    assert_eq!(kinds(&last["findings"]), want, "live findings: {}", last["findings"]);
    let calls = 3 + 2 + 1 + 2 + 3 + 2 + 4 + 2 + 3 + 2 + 5;
    assert_eq!(last["openapi"]["exchanges"], calls, "{}", last["openapi"]);
    // Templates come from the document: the literal /pets/mine is its own endpoint.
    let templates: Vec<&str> = last["endpoints"].as_array().unwrap().iter().map(|e| e["template"].as_str().unwrap()).collect();
    assert!(templates.iter().any(|t| t.ends_with("/pets/mine")) && templates.iter().any(|t| t.ends_with("/pets/{petId}")), "{templates:?}");
    // The schema violation names the failing pointer and keyword.
    let sv = last["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "schema_violation" && f["method"] == "GET").unwrap();
    assert_eq!(sv["detail"]["keyword"], "minLength", "{sv}");

    // The same from the capture, offline.
    let o = std::process::Command::new(rxray_bin()).args(["analyze", "--json", "--port", "8080", "--openapi", SPEC]).arg(&capture).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(kinds(&doc["http"]["findings"]), want, "capture findings: {}", doc["http"]["findings"]);

    // The text table lists the findings after the endpoints.
    let o = std::process::Command::new(rxray_bin()).args(["analyze", "--port", "8080", "--openapi", SPEC]).arg(&capture).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("undocumented_status") && text.contains("OpenAPI"), "{text}");
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
