//! The OpenAPI checking benchmark (run by scripts/bench-openapi): generates a spec with 200 paths
//! (100 resources, each a collection and an item, with query, path and header parameters and JSON
//! bodies through shared component schemas) and exchanges cycling through every operation (one in
//! eight wrong in some way), writes both for the peer, then prints rxray's figures as JSON:
//! load time, heap held by the loaded spec (a counting allocator), and exchanges checked per second.
//!
//! Usage: bench OUT_DIR [ROUNDS]
use rxray_openapi::{CheckLimits, Checker, Exchange, Spec};
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(n, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: p was allocated by System with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const RESOURCES: usize = 100;

type Headers<'a> = Vec<(&'a str, &'a [u8])>;

fn spec() -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for i in 0..RESOURCES {
        let name = format!("Item{i}");
        schemas.insert(
            name.clone(),
            json!({
                "type": "object",
                "required": ["id", "name"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "name": {"type": "string", "minLength": 1, "maxLength": 64},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "price": {"type": "number", "minimum": 0},
                    "status": {"type": "string", "enum": ["active", "retired"]}
                }
            }),
        );
        let r = format!("#/components/schemas/{name}");
        paths.insert(
            format!("/svc{i}/items"),
            json!({
                "get": {
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                        {"name": "X-Tenant", "in": "header", "required": true, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "list", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": r}}}}},
                        "default": {"$ref": "#/components/responses/Error"}
                    }
                },
                "post": {
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": r}}}},
                    "responses": {
                        "201": {"description": "made", "content": {"application/json": {"schema": {"$ref": r}}}},
                        "4XX": {"$ref": "#/components/responses/Error"}
                    }
                }
            }),
        );
        paths.insert(
            format!("/svc{i}/items/{{id}}"),
            json!({
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "get": {"responses": {"200": {"description": "one", "content": {"application/json": {"schema": {"$ref": r}}}}, "404": {"$ref": "#/components/responses/Error"}}},
                "delete": {"responses": {"204": {"description": "gone"}}}
            }),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "bench", "version": "1"},
        "servers": [{"url": "http://localhost:8080/api"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {
                "type": "object", "required": ["code"], "properties": {"code": {"type": "integer"}, "message": {"type": "string", "nullable": true}}
            }}}}}
        }
    })
}

#[derive(serde::Serialize)]
struct X {
    method: &'static str,
    target: String,
    request_headers: Vec<(String, String)>,
    request_body: String,
    status: u16,
    response_headers: Vec<(String, String)>,
    response_body: String,
}

impl X {
    fn exchange<'a>(&'a self, rq: &'a [(&'a str, &'a [u8])], rs: &'a [(&'a str, &'a [u8])], time_ns: u64) -> Exchange<'a> {
        Exchange {
            request_headers: rq,
            request_body: self.request_body.as_bytes(),
            status: Some(self.status),
            response_headers: rs,
            response_body: self.response_body.as_bytes(),
            time_ns,
            ..Exchange::new(self.method, &self.target)
        }
    }
}

fn item(id: usize, bad: bool) -> String {
    if bad {
        format!(r#"{{"id": {id}, "name": "", "tags": ["a", 1], "price": -1}}"#)
    } else {
        format!(r#"{{"id": {id}, "name": "item {id}", "tags": ["a", "b"], "price": 9.5, "status": "active"}}"#)
    }
}

fn exchanges(n: usize) -> Vec<X> {
    let json = || vec![("Content-Type".to_owned(), "application/json".to_owned())];
    (0..n)
        .map(|k| {
            let i = k % RESOURCES;
            let bad = k % 8 == 7;
            let id = k + 1;
            match (k / RESOURCES) % 4 {
                0 => X {
                    method: "GET",
                    target: format!("/api/svc{i}/items?limit={}&offset=0", if bad { 500 } else { 10 }),
                    // Half of the bad ones lose their required header as well.
                    request_headers: if bad && k % 16 == 15 { vec![] } else { vec![("X-Tenant".into(), "t1".into())] },
                    request_body: String::new(),
                    status: 200,
                    response_headers: json(),
                    response_body: format!("[{}, {}]", item(id, false), item(id + 1, false)),
                },
                1 => X {
                    method: "POST",
                    target: format!("/api/svc{i}/items"),
                    request_headers: json(),
                    request_body: item(id, bad),
                    status: 201,
                    response_headers: json(),
                    response_body: item(id, false),
                },
                2 => X {
                    method: "GET",
                    target: format!("/api/svc{i}/items/{id}"),
                    request_headers: vec![],
                    request_body: String::new(),
                    status: if bad { 500 } else { 200 },
                    response_headers: json(),
                    response_body: item(id, false),
                },
                _ => X {
                    method: if bad { "PATCH" } else { "DELETE" },
                    target: if bad && k % 16 == 15 { format!("/api/svc{i}/things/{id}") } else { format!("/api/svc{i}/items/{id}") },
                    request_headers: vec![],
                    request_body: String::new(),
                    status: 204,
                    response_headers: vec![],
                    response_body: String::new(),
                },
            }
        })
        .collect()
}

/// This process's user + system CPU time, from /proc/self/stat (fields 14 and 15, in clock ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // After the command name, field 3 (state) is at 0: utime (14) and stime (15) are at 11 and 12.
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = tick(11) + tick(12);
    ticks as f64 / 100.0
}

/// This process's peak resident set (VmHWM).
fn max_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).unwrap_or(0) * 1024
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: bench OUT_DIR [ROUNDS]"));
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(100);
    std::fs::create_dir_all(&out).unwrap();
    let spec_path = out.join("spec-200.json");
    let text = serde_json::to_string_pretty(&spec()).unwrap();
    std::fs::write(&spec_path, &text).unwrap();
    let xs = exchanges(2000);
    std::fs::write(out.join("exchanges.json"), serde_json::to_vec(&xs).unwrap()).unwrap();

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let t = Instant::now();
    let spec = std::sync::Arc::new(Spec::from_text("spec-200.json", &text).unwrap());
    let load_s = t.elapsed().as_secs_f64();
    let held = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;

    let owned: Vec<(Headers<'_>, Headers<'_>)> = xs
        .iter()
        .map(|x| {
            (
                x.request_headers.iter().map(|(a, b)| (a.as_str(), b.as_bytes())).collect(),
                x.response_headers.iter().map(|(a, b)| (a.as_str(), b.as_bytes())).collect(),
            )
        })
        .collect();
    // One round first, for the findings per kind the peer's counts are set beside.
    let mut one = Checker::new(spec.clone(), CheckLimits::default());
    let mut kinds = std::collections::BTreeMap::<&str, u64>::new();
    for (x, (rq, rs)) in xs.iter().zip(&owned) {
        let got = one.check(&x.exchange(rq, rs, 0));
        for k in got.kinds {
            *kinds.entry(k.as_str()).or_default() += 1;
        }
    }
    let mut c = Checker::new(spec.clone(), CheckLimits::default());
    let cpu = cpu_seconds();
    let t = Instant::now();
    let mut n = 0u64;
    for _ in 0..rounds {
        for (x, (rq, rs)) in xs.iter().zip(&owned) {
            c.check(&x.exchange(rq, rs, n));
            n += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let findings: u64 = c.findings().iter().map(|f| f.count).sum();
    println!(
        "{}",
        json!({
            "paths": spec.templates().count(),
            "operations": spec.operations(),
            "schemas": spec.schemas,
            "spec_bytes": text.len(),
            "load_seconds": load_s,
            "heap_held_bytes": held,
            "max_rss_bytes": max_rss(),
            "heap_peak_while_loading_bytes": peak,
            "exchanges": n,
            "seconds": secs,
            "cpu_seconds": cpu,
            "exchanges_per_second": n as f64 / secs,
            "exchanges_per_cpu_second": n as f64 / cpu,
            "kinds_first_round": kinds,
            "finding_occurrences": findings,
            "distinct_findings": c.findings().len(),
        })
    );
}
