//! OpenAPI conformance on HTTP/2 in clear text (h2c, prior knowledge): nghttpd serves the test
//! petstore's files, curl calls it over HTTP/2, some calls agreeing with the document and some
//! not, each kind a known number of times. `rxray http --openapi` live and `rxray analyze
//! --openapi` over tcpdump's capture must both report exactly those findings.
mod common;

use common::web::wait_listen;
use common::{need_root, rxray_bin, skip_or_fail, Dump, Running, TempDir};
use rxray_lab::Lab;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rxray-openapi/tests/data/petstore-3.0.yaml");

struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (kind, method) -> count, from a snapshot's findings.
fn kinds(findings: &Value) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for f in findings.as_array().unwrap_or_else(|| panic!("no findings: {findings}")) {
        *m.entry((f["kind"].as_str().unwrap().to_string(), f["method"].as_str().unwrap().to_string())).or_default() += f["count"].as_u64().unwrap();
    }
    m
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn openapi_findings_on_h2c_calls_live_and_from_the_capture() {
    if !need_root() {
        return;
    }
    for t in ["nghttpd", "curl", "tcpdump"] {
        let ok = Command::new("sh").arg("-c").arg(format!("command -v {t}")).output().is_ok_and(|o| o.status.success());
        if !ok {
            skip_or_fail(&format!("{t} is not installed (scripts/test installs it)"));
            return;
        }
    }
    let tmp = TempDir::new();
    let www = tmp.path().join("www");
    std::fs::create_dir_all(www.join("api/v1")).unwrap();
    std::fs::write(www.join("api/v1/pets"), r#"[{"id": 1, "name": "rex"}]"#).unwrap();
    std::fs::write(www.join("api/v1/health"), "ok").unwrap();
    let lab = Lab::pair("rxoah2").expect("lab");
    let b = lab.addr4_b().to_string();
    let _srv = Proc(lab.exec(lab.ns_b(), ["nghttpd", "--no-tls", "-a", &b, "-d"]).arg(&www).arg("8080").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nghttpd"));
    wait_listen(lab.ns_b(), 8080);
    let dump = Dump::start_snap(lab.ns_b(), lab.if_b(), "inout", tmp.path(), "h2c", 0);
    let mut rx = Running::start(lab.ns_b(), &["http", "-i", lab.if_b(), "--json", "--port", "8080", "--interval", "0.5", "--openapi", SPEC]);
    rx.wait_stderr("Ctrl-C to stop", Duration::from_secs(30));
    let call = |n: usize, args: &[&str], path: &str| {
        for _ in 0..n {
            let out = lab
                .exec(lab.ns_a(), ["curl", "-s", "--http2-prior-knowledge", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_version}"])
                .args(args)
                .arg(format!("http://{b}:8080/api/v1{path}"))
                .output()
                .expect("curl");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "2", "curl over HTTP/2 {path}");
        }
    };
    let id = ["-H", "X-Request-Id: t"];
    call(3, &id, "/pets?limit=5"); // agrees with the document
    call(1, &id, "/health"); // agrees
    call(3, &id, "/nope"); // undocumented_path (nghttpd answers 404)
    call(2, &id, "/pets?limit=abc"); // wrong_type (query)
    call(4, &[], "/pets"); // missing_parameter: the required X-Request-Id header left out
    let want: BTreeMap<(String, String), u64> =
        [("undocumented_path", 3), ("wrong_type", 2), ("missing_parameter", 4)].into_iter().map(|(k, n)| ((k.to_string(), "GET".to_string()), n)).collect();
    std::thread::sleep(Duration::from_millis(800));
    let (code, out, err) = rx.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let (capture, _) = dump.stop();
    let last: Value = serde_json::from_str(out.last().map(String::as_str).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(kinds(&last["findings"]), want, "live: {}", last["findings"]);
    assert_eq!(last["openapi"]["exchanges"], 13, "{}", last["openapi"]);
    assert!(last["endpoints"].as_array().unwrap().iter().all(|e| e["protocol"] == "h2c"), "{}", last["endpoints"]);
    let o = Command::new(rxray_bin()).args(["analyze", "--json", "--port", "8080", "--openapi", SPEC]).arg(&capture).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(kinds(&doc["http"]["findings"]), want, "offline: {}", doc["http"]["findings"]);
}
