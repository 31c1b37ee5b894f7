//! A test's own client log: every call made with curl is recorded from curl's `--trace` (the bytes
//! curl sent and received), so oracles judge what really went over the wire, not what the test
//! meant to send.
use rxray_lab::Lab;
use std::path::{Path, PathBuf};

/// One call as the client saw it. Serialises as scripts/openapi-oracle.py reads exchanges.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Logged {
    pub method: String,
    pub target: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    pub status: u16,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
}

/// Runs curl in a namespace and keeps the log of every call.
pub struct CurlLog<'a> {
    lab: &'a Lab,
    ns: String,
    dir: PathBuf,
    pub log: Vec<Logged>,
}

impl<'a> CurlLog<'a> {
    pub fn new(lab: &'a Lab, ns: &str, dir: &Path) -> Self {
        CurlLog { lab, ns: ns.to_string(), dir: dir.to_path_buf(), log: Vec::new() }
    }

    /// `curl ARGS` `n` times (each must succeed); each call is logged from its trace.
    pub fn call(&mut self, n: usize, args: &[&str]) {
        for _ in 0..n {
            let trace = self.dir.join(format!("curl-{}.trace", self.log.len()));
            let mut a: Vec<String> = ["curl", "-s", "-o", "/dev/null", "--max-time", "5", "--trace"].iter().map(|s| s.to_string()).collect();
            a.push(trace.display().to_string());
            a.extend(args.iter().map(|s| s.to_string()));
            let o = self.lab.exec(&self.ns, &a).output().unwrap();
            assert!(o.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
            let text = std::fs::read_to_string(&trace).unwrap_or_else(|e| panic!("{}: {e}", trace.display()));
            self.log.push(parse_trace(&text).unwrap_or_else(|e| panic!("{}: {e}", trace.display())));
        }
    }
}

/// The bytes of each block of a `curl --trace` file, by its title ("Send header", "Recv data", ...).
fn blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out: Vec<(String, Vec<u8>, usize)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("=> ").or_else(|| line.strip_prefix("<= ")) {
            // "Send header, 118 bytes (0x76)"
            let (title, n) = rest.split_once(", ").ok_or(format!("block title {line:?}"))?;
            let n: usize = n.split(' ').next().and_then(|n| n.parse().ok()).ok_or(format!("block size {line:?}"))?;
            out.push((title.to_string(), Vec::with_capacity(n), n));
        } else if let (Some((off, rest)), Some(b)) = (line.split_once(": "), out.last_mut()) {
            if off.len() < 4 || !off.chars().all(|c| c.is_ascii_hexdigit()) {
                continue;
            }
            // 16 columns of "xx " (blank when the line is short), then the text.
            let hex = &rest[..rest.len().min(48)];
            for h in hex.split_whitespace() {
                if b.1.len() < b.2 {
                    b.1.push(u8::from_str_radix(h, 16).map_err(|e| format!("{line:?}: {e}"))?);
                }
            }
        }
    }
    for (t, b, n) in &out {
        if b.len() != *n {
            return Err(format!("block {t}: {} of {n} bytes", b.len()));
        }
    }
    Ok(out.into_iter().map(|(t, b, _)| (t, b)).collect())
}

fn headers(lines: &[&str]) -> Vec<(String, String)> {
    lines.iter().filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect()
}

/// One call from its trace: the request head and body curl sent, the final response's head and body.
pub fn parse_trace(text: &str) -> Result<Logged, String> {
    let (mut sent_head, mut sent_body, mut got_head, mut got_body) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (t, b) in blocks(text)? {
        match t.as_str() {
            "Send header" => sent_head.extend(b),
            "Send data" => sent_body.extend(b),
            "Recv header" => {
                // A new status line starts a new head (after an interim 1xx answer).
                if b.starts_with(b"HTTP/") {
                    got_head.clear();
                }
                got_head.extend(b)
            }
            "Recv data" => got_body.extend(b),
            _ => {}
        }
    }
    let req = String::from_utf8(sent_head).map_err(|e| e.to_string())?;
    let resp = String::from_utf8(got_head).map_err(|e| e.to_string())?;
    let req_lines: Vec<&str> = req.split("\r\n").filter(|l| !l.is_empty()).collect();
    let resp_lines: Vec<&str> = resp.split("\r\n").filter(|l| !l.is_empty()).collect();
    let mut rl = req_lines.first().ok_or("no request line")?.split(' ');
    let (method, target) = (rl.next().ok_or("no method")?.to_string(), rl.next().ok_or("no target")?.to_string());
    let status: u16 = resp_lines.first().ok_or("no status line")?.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    Ok(Logged {
        method,
        target,
        request_headers: headers(&req_lines[1..]),
        request_body: String::from_utf8_lossy(&sent_body).into_owned(),
        status,
        response_headers: headers(&resp_lines[1..]),
        response_body: String::from_utf8_lossy(&got_body).into_owned(),
    })
}
