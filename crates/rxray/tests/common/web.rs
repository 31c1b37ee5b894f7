//! Web servers and clients for the HTTP tests: Debian's nginx and Python's http.server on known
//! files in a lab namespace, curl with known requests, tshark's HTTP dissector on a capture.
//! Every process is stopped on Drop.
use super::{Kid, TempDir};
use rxray_lab::Lab;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// (method, template) → (requests, statuses).
pub type Calls = BTreeMap<(String, String), (u64, BTreeMap<u16, u64>)>;

/// The template the test expects for a path it sent: numeric segments fold to `{id}` (the only
/// identifiers these tests send), the query goes.
pub fn expected_template(path: &str) -> String {
    let p = path.split('?').next().unwrap_or(path);
    p.split('/').map(|s| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { "{id}" } else { s }).collect::<Vec<_>>().join("/")
}

/// nginx (Debian's binary, one process, our own config) on `addr:port` serving `root`; its access
/// log has `$request_time` per request.
pub struct Nginx {
    child: Child,
    pub dir: PathBuf,
}

/// Waits (bounded) until something listens on TCP `port` in `ns`.
pub fn wait_listen(ns: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("ip").args(["netns", "exec", ns, "ss", "-Hltn", &format!("sport = :{port}")]).output().expect("ss");
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "nothing listens on port {port} in {ns}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Nginx {
    pub fn start(lab: &Lab, ns: &str, addr: &str, port: u16, root: &Path, tmp: &Path) -> Nginx {
        Self::start_with(lab, ns, addr, port, root, tmp, "")
    }

    /// nginx over TLS (HTTP/1.1 and HTTP/2 by ALPN) with the given certificate and key.
    #[allow(clippy::too_many_arguments)]
    pub fn start_tls(lab: &Lab, ns: &str, addr: &str, port: u16, root: &Path, tmp: &Path, cert: &Path, key: &Path) -> Nginx {
        let tls = format!(" ssl http2; ssl_certificate {}; ssl_certificate_key {}; ssl_protocols TLSv1.2 TLSv1.3", cert.display(), key.display());
        Self::start_with(lab, ns, addr, port, root, tmp, &tls)
    }

    /// `listen` takes `tls` after the address (empty for plain HTTP).
    fn start_with(lab: &Lab, ns: &str, addr: &str, port: u16, root: &Path, tmp: &Path, tls: &str) -> Nginx {
        let dir = tmp.join(format!("nginx-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
               log_format rt '$request_method $request_uri $status $request_time';\n\
               access_log {d}/access.log rt;\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               keepalive_requests 1000000;\n\
               server {{ listen {addr}:{port}{tls}; root {}; location / {{ }} }}\n\
             }}\n",
            root.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = lab
            .exec(ns, ["nginx", "-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c", &format!("{d}/nginx.conf")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx");
        wait_listen(ns, port);
        Nginx { child, dir }
    }

    /// (method, uri, status, request_time in ms) per access-log line.
    pub fn access_log(&self) -> Vec<(String, String, u16, f64)> {
        let s = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        s.lines()
            .filter_map(|l| {
                let v: Vec<&str> = l.split(' ').collect();
                Some((v.first()?.to_string(), v.get(1)?.to_string(), v.get(2)?.parse().ok()?, v.get(3)?.parse::<f64>().ok()? * 1000.0))
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Python's http.server (SimpleHTTPRequestHandler, HTTP/1.1 keep-alive) on `addr:port` serving
/// `root`, plus `/slow/N`, which answers after N ms.
pub fn python_server(lab: &Lab, ns: &str, addr: &str, port: u16, root: &Path) -> Kid {
    const SCRIPT: &str = r#"
import sys, os, time, http.server, socketserver
os.chdir(sys.argv[3])
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.startswith("/slow/"):
            time.sleep(int(self.path.split("/")[2]) / 1000)
            body = b"slow"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
s = S((sys.argv[1], int(sys.argv[2])), H)
print("ready", flush=True)
s.serve_forever()
"#;
    let mut k = Kid::python(lab, ns, SCRIPT, &[addr.to_string(), port.to_string(), root.display().to_string()]);
    assert_eq!(k.line(), "ready");
    k
}

/// curl in `ns` fetching `urls` on one connection where it can (curl reuses it between URLs of one
/// invocation); `extra` are curl options (`-I`, `-d x`). Returns the status of each request as curl
/// reports it.
pub fn curl(lab: &Lab, ns: &str, extra: &[&str], urls: &[String]) -> Vec<u16> {
    let mut cmd = lab.exec(ns, ["curl", "-s", "--max-time", "20", "-w", "%{http_code}\\n"]);
    for u in urls {
        // -o pairs with one URL: each gets its own.
        cmd.args(extra).args(["-o", "/dev/null"]).arg(u);
    }
    let out = cmd.output().expect("curl");
    let codes: Vec<u16> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().parse().expect("curl status")).collect();
    assert_eq!(codes.len(), urls.len(), "curl answered {} of {} requests", codes.len(), urls.len());
    codes
}

/// Adds what one curl run sent to `calls`.
pub fn record(calls: &mut Calls, method: &str, urls: &[String], codes: &[u16]) {
    for (u, c) in urls.iter().zip(codes) {
        let path = u.splitn(4, '/').nth(3).map_or("/".to_string(), |p| format!("/{p}"));
        let e = calls.entry((method.to_string(), expected_template(&path))).or_default();
        e.0 += 1;
        *e.1.entry(*c).or_default() += 1;
    }
}

/// tshark's HTTP dissector on a capture (ports given as HTTP): requests (method, template), and
/// each response's status counted to the request it answers (`http.request_in`).
pub fn tshark_calls(file: &Path, ports: &[u16]) -> Calls {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-n", "-o", "tcp.desegment_tcp_streams:TRUE"]);
    for p in ports {
        cmd.args(["-d", &format!("tcp.port=={p},http")]);
    }
    let out = cmd
        .args(["-Y", "http.request || http.response", "-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code", "-e", "http.request_in"])
        .output()
        .expect("tshark");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let mut calls = Calls::new();
    let mut by_frame: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = l.split('|').collect();
        if f.len() < 5 {
            continue;
        }
        // A frame may hold several pipelined messages: fields are comma-joined lists.
        if !f[1].is_empty() {
            for (m, u) in f[1].split(',').zip(f[2].split(',')) {
                let key = (m.to_string(), expected_template(u));
                calls.entry(key.clone()).or_default().0 += 1;
                by_frame.entry(f[0].to_string()).or_default().push(key);
            }
        }
        if !f[3].is_empty() {
            for (code, req) in f[3].split(',').zip(f[4].split(',')) {
                let key = by_frame.get(req).and_then(|v| v.first().cloned()).unwrap_or_else(|| ("?".into(), format!("frame {req}")));
                *calls.entry(key).or_default().1.entry(code.parse().unwrap_or(0)).or_default() += 1;
            }
        }
    }
    calls
}

/// rxray's endpoints from a JSON `http` object, in the same shape.
pub fn rxray_calls(http: &serde_json::Value) -> Calls {
    let mut calls = Calls::new();
    for e in http["endpoints"].as_array().expect("endpoints") {
        let st = e["statuses"].as_object().unwrap().iter().map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap())).collect();
        calls.insert((e["method"].as_str().unwrap().to_string(), e["template"].as_str().unwrap().to_string()), (e["requests"].as_u64().unwrap(), st));
    }
    calls
}

/// The lab the agent's HTTP tests use: root, nginx and curl checked (None when the test cannot
/// run here; under CI=true that fails instead), a pair of namespaces, and nginx serving
/// `web_roots` on b's address, port 8080. Returns the lab, nginx (stopped on drop) and b's address.
pub fn lab_with_nginx(tmp: &TempDir) -> Option<(Lab, Nginx, String)> {
    if !super::need_root() {
        return None;
    }
    for t in ["nginx", "curl"] {
        if !super::have(t) {
            super::skip_or_fail(&format!("{t} is not installed"));
            return None;
        }
    }
    let (www, _) = web_roots(tmp);
    let lab = Lab::pair(&super::unique_name()).expect("lab");
    let b = lab.addr4_b().to_string();
    let nginx = Nginx::start(&lab, lab.ns_b(), &b, 8080, &www, tmp.path());
    Some((lab, nginx, b))
}

/// Known files: nginx's root (`/index.html`, `/api/items/1..=20`, `/big.bin` of 200 KB) and
/// python's (`/files/1..=8`).
pub fn web_roots(tmp: &TempDir) -> (PathBuf, PathBuf) {
    let www = tmp.path().join("www");
    std::fs::create_dir_all(www.join("api/items")).unwrap();
    std::fs::write(www.join("index.html"), "<html>rxray</html>\n").unwrap();
    for i in 1..=20 {
        std::fs::write(www.join(format!("api/items/{i}")), format!("{{\"id\":{i}}}\n").repeat(i)).unwrap();
    }
    std::fs::write(www.join("big.bin"), vec![b'z'; 200_000]).unwrap();
    let py = tmp.path().join("py");
    std::fs::create_dir_all(py.join("files")).unwrap();
    for i in 1..=8 {
        std::fs::write(py.join(format!("files/{i}")), "p".repeat(100 * i)).unwrap();
    }
    (www, py)
}
