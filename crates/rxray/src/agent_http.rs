//! The agent's HTTP view (`[http] enabled = true`): the same kernel copies and engine tracker as
//! `rxray http`, run inside the agent for its metrics (`rxray_http_requests_total`,
//! `rxray_http_request_duration_seconds`) and for `rxray http` clients that join it.
use anyhow::{Context, Result};
use aya::maps::{MapData, RingBuf};
use rxray_agent::metrics::{Hist, Snapshot};
use rxray_engine::http::{HttpConfig, HttpTracker, TcpSegment};
use rxray_kernel::Ingress;
use std::os::fd::{AsRawFd, RawFd};

/// Upper bounds of the request-duration histogram, in seconds.
pub const DURATION_BOUNDS_S: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The HTTP ring's size (as `rxray http --ring-size`'s default).
pub const RING_BYTES: u32 = 16 << 20;

/// Body bytes copied per message (as `rxray http --body-max`'s default).
pub const BODY_MAX: u32 = 64 << 10;

/// With the store on: (endpoint, client, server) entries kept between two snapshots (the agent
/// takes them each snapshot); the calls of more go to their endpoint's `other` entry.
pub const CLIENT_ENTRIES: usize = 10_000;

pub struct HttpView {
    /// Each HTTP ring, with the interface its program is attached to.
    rings: Vec<(String, RingBuf<MapData>)>,
    pub tracker: HttpTracker,
    pub ports: Vec<u16>,
    /// Ring records that made no sense (skipped).
    pub bad: u64,
}

impl HttpView {
    /// Turns HTTP copies on for `ports` on each ingress (its TC egress program attached) and takes
    /// their rings.
    pub fn start<'a>(ingresses: impl Iterator<Item = &'a mut Ingress>, ports: &[u16]) -> Result<HttpView> {
        let mut rings = Vec::new();
        for ing in ingresses {
            let names: Vec<String> = ing.attached().iter().map(|a| a.iface.clone()).collect();
            ing.enable_http(ports, BODY_MAX).with_context(|| format!("turning on HTTP copies (TC egress) on {}", names.join(", ")))?;
            let ring = ing.take_http_ring().context("the HTTP ring is missing from the object")?;
            rings.push((names.first().cloned().unwrap_or_default(), ring));
        }
        Ok(HttpView { rings, tracker: HttpTracker::new(HttpConfig::default()), ports: ports.to_vec(), bad: 0 })
    }

    pub fn poll_fds(&self) -> Vec<RawFd> {
        self.rings.iter().map(|(_, r)| r.as_raw_fd()).collect()
    }

    /// Feeds what the rings hold to the tracker (at most `max` records per ring), and each
    /// segment, with its interface, to `also` (the joined `http` clients).
    pub fn pump(&mut self, max: usize, mut also: impl FnMut(&str, &TcpSegment)) {
        for (iface, ring) in self.rings.iter_mut() {
            for _ in 0..max {
                let Some(item) = ring.next() else { break };
                match rxray_kernel::http::segment_of(&item, &self.ports) {
                    Some((_, seg)) => {
                        self.tracker.segment(&seg);
                        also(iface, &seg);
                    }
                    None => self.bad += 1,
                }
            }
        }
    }

    /// Ages idle connections out (the tracker runs on kernel time).
    pub fn advance(&mut self) {
        self.tracker.advance(rxray_kernel::monotonic_ns());
    }

    /// The HTTP families of the metrics snapshot, and the records the kernel could not copy
    /// (as samples dropped). `kernel_lost`: the HTTP rings' lost records, summed.
    pub fn fill(&self, s: &mut Snapshot, kernel_lost: u64) {
        let bounds_ns: Vec<u64> = DURATION_BOUNDS_S.iter().map(|b| (b * 1e9) as u64).collect();
        for e in self.tracker.endpoint_list() {
            for (code, n) in &e.statuses {
                *s.http_requests.entry((e.method.clone(), e.template.clone(), format!("{}xx", code / 100))).or_default() += n;
            }
            if e.unanswered > 0 {
                *s.http_requests.entry((e.method.clone(), e.template.clone(), "none".into())).or_default() += e.unanswered;
            }
            let h = &e.latency;
            let cum = h.cumulative(&bounds_ns);
            s.http_duration.insert(
                (e.method.clone(), e.template.clone()),
                Hist { buckets: DURATION_BOUNDS_S.iter().copied().zip(cum).collect(), sum_seconds: h.sum_ns as f64 / 1e9, count: h.count },
            );
        }
        s.samples_dropped += kernel_lost;
    }
}
