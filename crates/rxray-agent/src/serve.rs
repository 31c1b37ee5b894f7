//! The agent's `/metrics` endpoint: a small HTTP server on its own thread that renders the latest
//! snapshot at every scrape. A scrape never waits for the packet path: it reads a copy under a
//! mutex the agent holds only to swap in a new snapshot.
use crate::metrics::{self, Snapshot, Window};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// What the agent publishes for scrapers: the latest snapshot, and the one the previous scrape
/// saw (for the window's completeness figures).
#[derive(Default)]
pub struct Published {
    pub latest: Snapshot,
    prev: Option<(Snapshot, Instant)>,
}

/// The shared handle the agent writes and the server reads.
pub type Shared = Arc<Mutex<Published>>;

/// A running metrics server.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` and serves `/metrics` from `shared`, each label capped at `cap` values.
    pub fn start(addr: SocketAddr, shared: Shared, cap: usize) -> Result<MetricsServer, String> {
        let server = Arc::new(tiny_http::Server::http(addr).map_err(|e| format!("serving metrics on {addr}: {e}"))?);
        let bound = server.server_addr().to_ip().ok_or_else(|| format!("serving metrics on {addr}: not an IP socket"))?;
        let s = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("rxray-metrics".into())
            .spawn(move || {
                for req in s.incoming_requests() {
                    let (status, body, ctype) = if req.url() == "/metrics" || req.url().starts_with("/metrics?") {
                        (200, scrape(&shared, cap), metrics::CONTENT_TYPE)
                    } else {
                        (404, "rxray: the metrics are at /metrics\n".to_string(), "text/plain; charset=utf-8")
                    };
                    let header = tiny_http::Header::from_bytes("Content-Type", ctype).expect("a valid header");
                    let _ = req.respond(tiny_http::Response::from_string(body).with_status_code(status).with_header(header));
                }
            })
            .map_err(|e| format!("starting the metrics thread: {e}"))?;
        Ok(MetricsServer { server, thread: Some(thread), addr: bound })
    }
}

/// Renders the latest snapshot with the window since the previous scrape.
pub fn scrape(shared: &Shared, cap: usize) -> String {
    let mut p = shared.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let w = match &p.prev {
        Some((s, t)) => Window::between(s, &p.latest, now.duration_since(*t).as_secs_f64()),
        None => Window::default(),
    };
    let text = metrics::render(&p.latest, &w, cap);
    p.prev = Some((p.latest.clone(), now));
    text
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn metrics_are_served_over_http_on_loopback_and_windows_follow_scrapes() {
        let shared: Shared = Arc::default();
        shared.lock().unwrap().latest.host = "t".into();
        shared.lock().unwrap().latest.events_lost = 5;
        let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&shared), 10).unwrap();
        let r = get(srv.addr, "/metrics");
        assert!(r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"), "{r}");
        assert!(r.contains("text/plain; version=0.0.4"), "{r}");
        assert!(r.contains("rxray_events_lost_total{host=\"t\"} 5"), "{r}");
        // The second scrape's window holds what was lost since the first.
        shared.lock().unwrap().latest.events_lost = 9;
        let r = get(srv.addr, "/metrics");
        assert!(r.contains("rxray_window_events_lost{host=\"t\"} 4"), "{r}");
        assert!(get(srv.addr, "/nope").contains(" 404 "));
    }
}
