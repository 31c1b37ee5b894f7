//! The HTTP tracker from crafted TCP segments: expected values are what each test sent.
use rxray_engine::http::endpoints::{is_id, template};
use rxray_engine::http::flags::{FIN, RST, SYN};
use rxray_engine::http::{Direction as Dir, HttpConfig, HttpSnapshot, HttpTracker, TcpSegment};
use std::net::IpAddr;

const ACK: u8 = 0x10;

/// One segment as sent: direction, sequence number, flags, payload, wire length.
#[derive(Clone, Debug)]
struct Seg {
    dir: Dir,
    seq: u32,
    ack: u32,
    flags: u8,
    data: Vec<u8>,
    wire_len: u32,
}

/// A TCP conversation written segment by segment, with the sequence numbers kept.
struct Conv {
    segs: Vec<Seg>,
    seq: [u32; 2],
    mss: usize,
}

impl Conv {
    fn new(mss: usize) -> Self {
        Conv { segs: Vec::new(), seq: [0xffff_ff00, 7], mss }
    }

    fn i(d: Dir) -> usize {
        if d == Dir::ToServer { 0 } else { 1 }
    }

    fn handshake(&mut self) -> &mut Self {
        self.ctl(Dir::ToServer, SYN);
        self.ctl(Dir::ToClient, SYN | ACK);
        self
    }

    fn ctl(&mut self, d: Dir, flags: u8) -> &mut Self {
        let i = Self::i(d);
        let ack = if flags & SYN != 0 && d == Dir::ToServer { 0 } else { self.seq[1 - i] };
        let flags = if ack != 0 { flags | ACK } else { flags };
        self.segs.push(Seg { dir: d, seq: self.seq[i], ack, flags, data: vec![], wire_len: 0 });
        if flags & (SYN | FIN) != 0 {
            self.seq[i] = self.seq[i].wrapping_add(1);
        }
        self
    }

    fn send(&mut self, d: Dir, bytes: &[u8]) -> &mut Self {
        let i = Self::i(d);
        for c in bytes.chunks(self.mss) {
            self.segs.push(Seg { dir: d, seq: self.seq[i], ack: self.seq[1 - i], flags: ACK | 0x08, data: c.to_vec(), wire_len: c.len() as u32 });
            self.seq[i] = self.seq[i].wrapping_add(c.len() as u32);
        }
        self
    }

    fn close(&mut self) -> &mut Self {
        self.ctl(Dir::ToServer, FIN | ACK);
        self.ctl(Dir::ToClient, FIN | ACK)
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Feeds segments with event time 1 ms apart, client 198.18.0.1:40000 (+ `port_off`) → 198.18.0.2:80.
fn feed(t: &mut HttpTracker, segs: &[Seg], t0: u64, port_off: u16) {
    for (n, s) in segs.iter().enumerate() {
        let (c, srv) = (ip("198.18.0.1"), ip("198.18.0.2"));
        let (src, sport, dst, dport) = match s.dir {
            Dir::ToServer => (c, 40000 + port_off, srv, 80),
            Dir::ToClient => (srv, 80, c, 40000 + port_off),
        };
        let ts_ns = t0 + n as u64 * 1_000_000;
        t.segment(&TcpSegment { ts_ns, src, sport, dst, dport, dir: s.dir, seq: s.seq, ack: s.ack, flags: s.flags, payload: &s.data, wire_len: s.wire_len });
    }
}

fn run(segs: &[Seg]) -> HttpSnapshot {
    let mut t = HttpTracker::new(HttpConfig::default());
    feed(&mut t, segs, 1_000_000_000, 0);
    t.finish();
    t.snapshot()
}

fn ep<'a>(s: &'a HttpSnapshot, method: &str, template: &str) -> &'a rxray_engine::http::endpoints::EndpointSnapshot {
    s.endpoints.iter().find(|e| e.method == method && e.template == template).unwrap_or_else(|| panic!("no {method} {template} in {:#?}", s.endpoints))
}

fn resp(status: u16, body: &[u8]) -> Vec<u8> {
    let mut v = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n").into_bytes()
}

#[test]
fn keep_alive_gets_pair_with_statuses_latency_bytes() {
    let mut c = Conv::new(1460);
    c.handshake();
    let (r1, r2, r3) = (get("/users/123"), get("/users/456?x=1"), get("/items"));
    let (a1, a2, a3) = (resp(200, b"hello"), resp(404, b""), resp(200, &[b'x'; 3000]));
    c.send(Dir::ToServer, &r1).send(Dir::ToClient, &a1);
    c.send(Dir::ToServer, &r2).send(Dir::ToClient, &a2);
    c.send(Dir::ToServer, &r3).send(Dir::ToClient, &a3).close();
    let s = run(&c.segs);
    let u = ep(&s, "GET", "/users/{id}");
    assert_eq!(u.requests, 2);
    assert_eq!(u.statuses.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), vec![(200, 1), (404, 1)]);
    assert_eq!(u.request_bytes, (r1.len() + r2.len()) as u64);
    assert_eq!(u.response_bytes, (a1.len() + a2.len()) as u64);
    // Request at segment 2, response at segment 3: 1 ms apart (segments are fed 1 ms apart).
    // Percentiles are read from a histogram (within 3%); the maximum is exact.
    let l = u.latency_ms.unwrap();
    assert!((l.p50 - 1.0).abs() <= 0.03 && l.max == 1.0, "{l:?}");
    let i = ep(&s, "GET", "/items");
    assert_eq!((i.requests, i.response_bytes, i.clients), (1, a3.len() as u64, 1));
    assert_eq!((s.totals.requests, s.totals.responses, s.totals.unanswered, s.totals.connections), (3, 3, 0, 1));
    assert_eq!(s.endpoints[0].template, "/users/{id}", "sorted by requests");
    let c = s.completeness;
    assert_eq!((c.gaps, c.messages_cut, c.parse_errors, c.bytes_not_copied), (0, 0, 0, 0));
}

#[test]
fn pipelined_requests_pair_in_order_with_chunked_and_head() {
    let mut c = Conv::new(7);
    c.handshake();
    let mut reqs = get("/a/1");
    reqs.extend(b"HEAD /b HTTP/1.1\r\nHost: a\r\n\r\n");
    reqs.extend(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n");
    c.send(Dir::ToServer, &reqs);
    let mut resps = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec();
    // A response to HEAD announces a length but carries no body.
    resps.extend(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    resps.extend(resp(201, b"ok"));
    c.send(Dir::ToClient, &resps).close();
    let s = run(&c.segs);
    assert_eq!(ep(&s, "GET", "/a/{id}").statuses.get(&200), Some(&1));
    assert_eq!(ep(&s, "HEAD", "/b").statuses.get(&200), Some(&1));
    assert_eq!(ep(&s, "POST", "/c").statuses.get(&201), Some(&1));
    assert_eq!((s.totals.requests, s.totals.responses, s.totals.unpaired_responses), (3, 3, 0));
    assert_eq!(s.totals.request_bytes, reqs.len() as u64);
    assert_eq!(s.totals.response_bytes, resps.len() as u64);
    assert_eq!(s.completeness.messages_cut, 0);
}

#[test]
fn expect_100_continue() {
    let mut c = Conv::new(1460);
    c.handshake();
    c.send(Dir::ToServer, b"PUT /files/5 HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    c.send(Dir::ToClient, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(Dir::ToServer, b"data");
    c.send(Dir::ToClient, &resp(204, b"")).close();
    let s = run(&c.segs);
    let e = ep(&s, "PUT", "/files/{id}");
    assert_eq!((e.requests, e.statuses.get(&204).copied()), (1, Some(1)));
    assert_eq!((s.totals.interim_responses, s.totals.responses), (1, 1));
    // Latency to the final response (segment 5) from the request (segment 2).
    assert_eq!(e.latency_ms.unwrap().max, 3.0);
}

#[test]
fn reordered_and_duplicated_segments_give_the_in_order_result() {
    let mut c = Conv::new(10);
    c.handshake();
    for i in 0..5 {
        c.send(Dir::ToServer, &get(&format!("/n/{i}"))).send(Dir::ToClient, &resp(200 + i, b"body body body"));
    }
    c.close();
    let want = run(&c.segs);
    // Swap every pair of same-direction neighbours and send every third segment twice.
    let mut segs = c.segs.clone();
    let mut i = 2;
    while i + 1 < segs.len() {
        if segs[i].dir == segs[i + 1].dir {
            segs.swap(i, i + 1);
        }
        i += 2;
    }
    let mut out = Vec::new();
    for (n, s) in segs.into_iter().enumerate() {
        if n % 3 == 0 {
            out.push(s.clone());
        }
        out.push(s);
    }
    let mut got = run(&out);
    assert!(got.completeness.duplicate_bytes > 0);
    assert_eq!(got.completeness.gaps, 0);
    got.completeness.duplicate_bytes = 0;
    // Latency differs (times moved); counts must not.
    let strip = |s: &HttpSnapshot| s.endpoints.iter().map(|e| (e.template.clone(), e.requests, e.statuses.clone(), e.request_bytes, e.response_bytes)).collect::<Vec<_>>();
    assert_eq!(strip(&got), strip(&want));
    assert_eq!(got.totals.requests, 5);
}

#[test]
fn overlapping_retransmission_is_trimmed() {
    let mut c = Conv::new(1460);
    c.handshake();
    let r = get("/x");
    c.send(Dir::ToServer, &r);
    // A retransmission that overlaps the end of the request and carries the next one.
    let r2 = get("/y");
    let mut over = r[r.len() - 5..].to_vec();
    over.extend(&r2);
    let seq = c.seq[0].wrapping_sub(5);
    c.segs.push(Seg { dir: Dir::ToServer, seq, ack: c.seq[1], flags: ACK, data: over.clone(), wire_len: over.len() as u32 });
    c.seq[0] = c.seq[0].wrapping_add(r2.len() as u32);
    c.send(Dir::ToClient, &resp(200, b"")).send(Dir::ToClient, &resp(200, b"")).close();
    let s = run(&c.segs);
    assert_eq!((ep(&s, "GET", "/x").requests, ep(&s, "GET", "/y").requests), (1, 1));
    assert_eq!(s.completeness.duplicate_bytes, 5);
}

#[test]
fn snapped_capture_counts_requests_whose_heads_fit() {
    // Segments cut to their first 40 bytes, as a snap length would: each request's head fits,
    // the bodies do not; Content-Length carries the parser over the missing bytes.
    let mut c = Conv::new(1460);
    c.handshake();
    for i in 0..3 {
        c.send(Dir::ToServer, b"POST /u HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
        c.send(Dir::ToServer, &[b'z'; 100]);
        c.send(Dir::ToClient, &resp(200 + i, &[b'y'; 500]));
    }
    c.close();
    for s in &mut c.segs {
        if s.dir == Dir::ToClient && s.data.len() > 60 {
            s.data.truncate(60);
        } else if s.dir == Dir::ToServer && s.data.len() == 100 {
            s.data.truncate(10);
        }
    }
    let s = run(&c.segs);
    let e = ep(&s, "POST", "/u");
    assert_eq!((e.requests, e.statuses.len()), (3, 3));
    assert_eq!(s.completeness.bytes_not_copied, 3 * 90 + 3 * (resp(200, &[b'y'; 500]).len() as u64 - 60));
    assert_eq!(s.completeness.bodies_truncated, 6, "3 request and 3 response bodies");
    assert_eq!(s.completeness.messages_cut, 0);
}

#[test]
fn gap_in_chunked_framing_cuts_the_message_and_the_next_request_parses() {
    let mut c = Conv::new(16);
    c.handshake();
    c.send(Dir::ToServer, b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(Dir::ToServer, b"10\r\nGET /fake HTTP/1.1\r\n\r\n0\r\n\r\n");
    c.send(Dir::ToClient, &resp(200, b""));
    c.send(Dir::ToServer, &get("/real/7")).send(Dir::ToClient, &resp(200, b"")).close();
    // Drop the chunk-size segment: the framing is lost.
    let i = c.segs.iter().position(|s| s.data.starts_with(b"10\r\n")).unwrap();
    c.segs.remove(i);
    let s = run(&c.segs);
    assert_eq!(ep(&s, "POST", "/up").requests, 1);
    assert_eq!(ep(&s, "GET", "/real/{id}").requests, 1);
    assert!(s.endpoints.iter().all(|e| e.template != "/fake"), "body bytes must not parse as a request");
    assert_eq!(s.totals.requests, 2);
    assert!(s.completeness.gaps >= 1 && s.completeness.messages_cut >= 1);
}

#[test]
fn lost_request_head_leaves_its_response_unpaired_not_misattributed() {
    let mut c = Conv::new(1460);
    c.handshake();
    c.send(Dir::ToServer, &get("/lost")).send(Dir::ToClient, &resp(500, b""));
    c.send(Dir::ToServer, &get("/kept")).send(Dir::ToClient, &resp(200, b"")).close();
    let i = c.segs.iter().position(|s| s.data.starts_with(b"GET /lost")).unwrap();
    c.segs.remove(i);
    let s = run(&c.segs);
    let k = ep(&s, "GET", "/kept");
    assert_eq!((k.requests, k.statuses.get(&200).copied(), k.statuses.get(&500)), (1, Some(1), None));
    assert_eq!((s.totals.requests, s.totals.unpaired_responses, s.completeness.request_gaps), (1, 1, 1));
}

#[test]
fn lost_response_head_pairs_the_next_response_by_time() {
    let mut c = Conv::new(1460);
    c.handshake();
    c.send(Dir::ToServer, &get("/one")).send(Dir::ToClient, &resp(500, b""));
    c.send(Dir::ToServer, &get("/two")).send(Dir::ToClient, &resp(201, b"")).close();
    let i = c.segs.iter().position(|s| s.data.starts_with(b"HTTP/1.1 500")).unwrap();
    c.segs.remove(i);
    let s = run(&c.segs);
    assert_eq!(ep(&s, "GET", "/two").statuses.get(&201), Some(&1));
    assert_eq!(ep(&s, "GET", "/one").unanswered, 1);
}

#[test]
fn picked_up_mid_body_does_not_parse_body_as_request() {
    let mut c = Conv::new(20);
    c.handshake();
    c.send(Dir::ToServer, b"POST /p HTTP/1.1\r\nContent-Length: 40\r\n\r\n");
    c.send(Dir::ToServer, b"GET /evil HTTP/1.1\r\n\r\naaaaaaaaaaaaaaaaaa");
    c.send(Dir::ToClient, &resp(200, b""));
    c.send(Dir::ToServer, &get("/after")).send(Dir::ToClient, &resp(200, b""));
    // Start the capture at the second body segment.
    let i = c.segs.iter().position(|s| s.data.starts_with(b"aaaa") || s.data.ends_with(b"aaaa")).unwrap();
    let s = run(&c.segs[i..]);
    assert!(s.endpoints.iter().all(|e| e.template != "/evil"), "{:?}", s.endpoints);
    assert_eq!(ep(&s, "GET", "/after").statuses.get(&200), Some(&1));
}

#[test]
fn upgrade_101_stops_parsing() {
    let mut c = Conv::new(1460);
    c.handshake();
    c.send(Dir::ToServer, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    c.send(Dir::ToClient, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    c.send(Dir::ToServer, b"GET /not-http HTTP/1.1\r\n\r\n").close();
    let s = run(&c.segs);
    assert_eq!(ep(&s, "GET", "/ws").statuses.get(&101), Some(&1));
    assert_eq!(s.totals.requests, 1);
    assert!(s.completeness.unparsed_bytes > 0);
}

#[test]
fn reset_and_end_leave_waiting_requests_unanswered() {
    let mut c = Conv::new(1460);
    c.handshake();
    c.send(Dir::ToServer, &get("/slow")).ctl(Dir::ToClient, RST);
    let s = run(&c.segs);
    assert_eq!((ep(&s, "GET", "/slow").unanswered, s.totals.unanswered), (1, 1));
}

#[test]
fn endpoint_cap_sends_the_rest_to_other() {
    let mut t = HttpTracker::new(HttpConfig { max_endpoints: 3, ..HttpConfig::default() });
    let mut c = Conv::new(1460);
    c.handshake();
    for p in ["/a", "/b", "/c", "/d", "/e", "/a"] {
        c.send(Dir::ToServer, &get(p)).send(Dir::ToClient, &resp(200, b""));
    }
    feed(&mut t, &c.segs, 0, 0);
    t.finish();
    let s = t.snapshot();
    assert_eq!(ep(&s, "*", "other").requests, 2);
    assert_eq!(ep(&s, "GET", "/a").requests, 2);
    assert_eq!((s.totals.other_requests, s.totals.endpoints), (2, 4));
}

#[test]
fn out_of_order_buffer_bound_forces_a_counted_gap() {
    let mut t = HttpTracker::new(HttpConfig { max_buffered_per_stream: 100, ..HttpConfig::default() });
    let mut c = Conv::new(50);
    c.handshake();
    c.send(Dir::ToServer, b"POST /big HTTP/1.1\r\nContent-Length: 400\r\n\r\n");
    c.send(Dir::ToServer, &[b'q'; 400]);
    c.send(Dir::ToServer, &get("/next"));
    c.send(Dir::ToClient, &resp(200, b"")).send(Dir::ToClient, &resp(200, b""));
    // Lose the first body segment: the rest waits out of order until the 100-byte bound.
    let i = c.segs.iter().position(|s| s.data.first() == Some(&b'q')).unwrap();
    c.segs.remove(i);
    feed(&mut t, &c.segs, 0, 0);
    t.finish();
    let s = t.snapshot();
    assert!(s.completeness.buffer_overflow_gaps >= 1);
    assert_eq!(s.completeness.gap_bytes, 50);
    // The gap lies inside a known-length body: both requests and responses still count.
    assert_eq!((ep(&s, "POST", "/big").requests, ep(&s, "GET", "/next").requests, s.totals.responses), (1, 1, 2));
}

#[test]
fn connection_cap_and_idle_timeout_are_counted() {
    let mut t = HttpTracker::new(HttpConfig { max_connections: 1, idle_timeout_ns: 5_000_000_000, ..HttpConfig::default() });
    let mut c = Conv::new(1460);
    c.handshake().send(Dir::ToServer, &get("/1"));
    feed(&mut t, &c.segs, 0, 0);
    feed(&mut t, &c.segs, 1_000_000, 1);
    assert_eq!(t.snapshot().completeness.streams_dropped, 1);
    t.advance(10_000_000_000);
    assert_eq!(t.connections(), 0);
    let s = t.snapshot();
    assert_eq!((s.completeness.streams_idle_expired, s.totals.unanswered, s.totals.requests), (1, 1, 1));
}

#[test]
fn hole_timeout_skips_a_hole_on_event_time() {
    let mut t = HttpTracker::new(HttpConfig { hole_timeout_ns: 10_000_000, ..HttpConfig::default() });
    let mut c = Conv::new(20);
    c.handshake();
    let r = resp(200, &[b'b'; 60]);
    c.send(Dir::ToServer, &get("/h")).send(Dir::ToClient, &r);
    // Lose the response's third segment (body bytes); nothing acknowledges it afterwards.
    let first = c.segs.iter().position(|s| s.data.starts_with(b"HTTP/1.1")).unwrap();
    let mut segs = c.segs.clone();
    segs.remove(first + 2);
    feed(&mut t, &segs, 0, 0);
    let s = t.snapshot();
    assert_eq!((s.totals.responses, s.totals.response_bytes, s.completeness.gaps), (1, 40, 0), "held behind the hole");
    t.advance(1_000_000_000);
    let s = t.snapshot();
    assert_eq!((s.totals.response_bytes, s.completeness.gaps, s.completeness.gap_bytes), (r.len() as u64, 1, 20));
}

#[test]
fn templates_fold_identifiers() {
    let mut s = String::new();
    for (t, want) in [
        ("/users/123/orders/550e8400-e29b-41d4-a716-446655440000", "/users/{id}/orders/{id}"),
        ("/blob/deadbeefdeadbeef01?x=1#f", "/blob/{id}"),
        ("/v1/items/abc", "/v1/items/abc"),
        ("http://host:8080/a/42", "/a/{id}"),
        ("http://host", "/"),
        ("*", "*"),
        ("host:443", "{authority}"),
        ("/", "/"),
        ("/a//b/", "/a//b/"),
    ] {
        template(t, &mut s);
        assert_eq!(s, want, "{t}");
    }
    assert!(is_id("0") && !is_id("") && !is_id("deadbeef") && !is_id("v2"));
    template(&format!("/{}", "seg/".repeat(100)), &mut s);
    assert!(s.len() <= 204 && s.ends_with("/..."));
}

#[test]
fn snapshot_json_shape() {
    let mut c = Conv::new(1460);
    c.handshake().send(Dir::ToServer, &get("/j/1")).send(Dir::ToClient, &resp(200, b"")).close();
    let v = serde_json::to_value(run(&c.segs)).unwrap();
    let e = &v["endpoints"][0];
    assert_eq!(e["statuses"], serde_json::json!({"200": 1}));
    for k in ["method", "template", "requests", "latency_ms", "request_bytes", "response_bytes", "clients"] {
        assert!(e.get(k).is_some(), "{k}");
    }
    for k in ["p50", "p95", "p99", "max"] {
        assert!(e["latency_ms"].get(k).is_some(), "{k}");
    }
    assert!(v["totals"]["requests"].is_u64() && v["completeness"]["gaps"].is_u64());
}

// Property tests: a random sequential conversation (request, response, ...), cut into segments of a
// random size, delivered with random neighbour swaps, duplicates and (in the second) drops. Bodies
// are made of text that looks like requests and responses, to catch a parser that resyncs on it.
mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    struct Call {
        method: &'static str,
        path: String,
        template: &'static str,
        req_body: usize,
        req_chunked: bool,
        status: u16,
        resp_body: usize,
        resp_chunked: bool,
    }

    const DECOY: &[u8] = b"GET /evil HTTP/1.1\r\n\r\nHTTP/1.1 299 Evil\r\n\r\n";

    fn body(n: usize) -> Vec<u8> {
        DECOY.iter().copied().cycle().take(n).collect()
    }

    fn framed(head: String, b: &[u8], chunked: bool) -> Vec<u8> {
        let mut v = head.into_bytes();
        if chunked {
            v.extend(b"Transfer-Encoding: chunked\r\n\r\n");
            for c in b.chunks(37) {
                v.extend(format!("{:x}\r\n", c.len()).as_bytes());
                v.extend(c);
                v.extend(b"\r\n");
            }
            v.extend(b"0\r\n\r\n");
        } else {
            v.extend(format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes());
            v.extend(b);
        }
        v
    }

    impl Call {
        fn request(&self) -> Vec<u8> {
            framed(format!("{} {} HTTP/1.1\r\nHost: h\r\n", self.method, self.path), &body(self.req_body), self.req_chunked)
        }
        fn response(&self) -> Vec<u8> {
            framed(format!("HTTP/1.1 {} S\r\n", self.status), &body(self.resp_body), self.resp_chunked)
        }
    }

    fn call() -> impl Strategy<Value = Call> {
        (0usize..4, 0u32..100000, 0usize..400, any::<bool>(), prop::sample::select(vec![200u16, 201, 404, 500]), 0usize..3000, any::<bool>()).prop_map(
            |(p, id, req_body, req_chunked, status, resp_body, resp_chunked)| {
                let (method, path, template) = match p {
                    0 => ("GET", format!("/users/{id}"), "/users/{id}"),
                    1 => ("POST", "/users".to_string(), "/users"),
                    2 => ("PUT", format!("/users/{id}/name"), "/users/{id}/name"),
                    _ => ("DELETE", format!("/items/{:032x}", id), "/items/{id}"),
                };
                Call { method, path, template, req_body, req_chunked, status, resp_body, resp_chunked }
            },
        )
    }

    /// The conversation as segments, then perturbed: `ops` picks per segment 0 keep, 1 swap with the
    /// next same-direction segment, 2 duplicate, 3 drop (only when `drops`).
    fn segments(calls: &[Call], mss: usize, ops: &[u8], drops: bool) -> Vec<Seg> {
        let mut c = Conv::new(mss);
        c.handshake();
        for k in calls {
            c.send(Dir::ToServer, &k.request()).send(Dir::ToClient, &k.response());
        }
        c.close();
        let mut segs = c.segs;
        let mut out = Vec::new();
        let mut i = 0;
        while i < segs.len() {
            let op = ops.get(i % ops.len().max(1)).copied().unwrap_or(0) % if drops { 4 } else { 3 };
            match op {
                1 if i + 1 < segs.len() && segs[i].dir == segs[i + 1].dir && i >= 2 => {
                    segs.swap(i, i + 1);
                    out.push(segs[i].clone());
                }
                2 => {
                    out.push(segs[i].clone());
                    out.push(segs[i].clone());
                }
                3 if i >= 2 => {}
                _ => out.push(segs[i].clone()),
            }
            i += 1;
        }
        out
    }

    type Counts = BTreeMap<(String, String), (u64, BTreeMap<u16, u64>)>;

    fn expected(calls: &[Call]) -> Counts {
        let mut m = Counts::new();
        for k in calls {
            let e = m.entry((k.method.to_string(), k.template.to_string())).or_default();
            e.0 += 1;
            *e.1.entry(k.status).or_default() += 1;
        }
        m
    }

    fn got(s: &HttpSnapshot) -> Counts {
        s.endpoints.iter().map(|e| ((e.method.clone(), e.template.clone()), (e.requests, e.statuses.clone()))).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn reordered_duplicated_segments_count_every_call(calls in prop::collection::vec(call(), 1..8), mss in 1usize..700, ops in prop::collection::vec(0u8..3, 1..50)) {
            let s = run(&segments(&calls, mss, &ops, false));
            prop_assert_eq!(got(&s), expected(&calls));
            prop_assert_eq!(s.totals.request_bytes, calls.iter().map(|k| k.request().len() as u64).sum::<u64>());
            prop_assert_eq!(s.totals.response_bytes, calls.iter().map(|k| k.response().len() as u64).sum::<u64>());
            let c = s.completeness;
            prop_assert_eq!((c.gaps, c.messages_cut, c.parse_errors, s.totals.unanswered, s.totals.unpaired_responses), (0, 0, 0, 0, 0));
        }

        #[test]
        fn dropped_segments_never_invent_calls(calls in prop::collection::vec(call(), 1..8), mss in 1usize..700, ops in prop::collection::vec(0u8..4, 1..50)) {
            let s = run(&segments(&calls, mss, &ops, true));
            let want = expected(&calls);
            for ((m, t), (n, st)) in got(&s) {
                let Some((wn, wst)) = want.get(&(m.clone(), t.clone())) else {
                    return Err(TestCaseError::fail(format!("invented endpoint {m} {t}")));
                };
                prop_assert!(n <= *wn, "{} {}: {} requests, {} sent", m, t, n, wn);
                for (code, k) in st {
                    prop_assert!(k <= wst.get(&code).copied().unwrap_or(0), "{} {}: status {} x{} not sent so", m, t, code, k);
                }
            }
            prop_assert!(s.totals.requests <= calls.len() as u64);
        }
    }
}

// The reassembler alone: any order, duplicates and drops of the segments of a random stream give
// back the stream, bytes at their offsets, with every dropped byte reported as a gap.
mod stream_props {
    use proptest::prelude::*;
    use rxray_engine::http::reassembly::{Piece, Stream, FIN, SYN};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        #[test]
        fn any_order_gives_back_the_stream(
            data in prop::collection::vec(any::<u8>(), 1..3000),
            mss in 1usize..300,
            isn in any::<u32>(),
            order in prop::collection::vec(any::<u32>(), 1..64),
            dup in prop::collection::vec(any::<bool>(), 1..64),
            drop in prop::collection::vec(0u8..10, 1..64),
            bound in prop::sample::select(vec![64usize, 1 << 20]),
        ) {
            let segs: Vec<(u32, &[u8])> = data.chunks(mss).enumerate().map(|(i, c)| (isn.wrapping_add(1 + (i * mss) as u32), c)).collect();
            // A random permutation (sort by key), some sent twice, some (10%) never.
            let mut idx: Vec<usize> = (0..segs.len()).collect();
            idx.sort_by_key(|i| (order[i % order.len()].wrapping_mul(*i as u32 + 1), *i));
            let mut out = vec![None; data.len()];
            let (mut pos, mut gap_bytes, mut ended) = (0usize, 0u64, false);
            let mut sink = |p: Piece<'_>| match p {
                Piece::Data { bytes, .. } => {
                    for b in bytes {
                        assert!(out[pos].is_none());
                        out[pos] = Some(*b);
                        pos += 1;
                    }
                }
                Piece::Gap { len, .. } => {
                    pos += len as usize;
                    gap_bytes += len;
                }
                Piece::End { .. } => ended = true,
            };
            let mut st = Stream::default();
            st.push(isn, SYN, &[], 0, 0, bound, &mut sink);
            let mut dropped = 0;
            for (n, &i) in idx.iter().enumerate() {
                let (seq, c) = segs[i];
                if drop[n % drop.len()] == 0 && i + 1 != segs.len() {
                    dropped += c.len();
                    continue;
                }
                let fl = if i + 1 == segs.len() { FIN } else { 0 };
                st.push(seq, fl, c, c.len() as u32, n as u64, bound, &mut sink);
                if dup[n % dup.len()] {
                    st.push(seq, fl, c, c.len() as u32, n as u64, bound, &mut sink);
                }
            }
            st.finish(1000, &mut sink);
            prop_assert!(ended);
            prop_assert_eq!(pos, data.len());
            let lost = out.iter().filter(|b| b.is_none()).count();
            prop_assert_eq!(lost as u64, gap_bytes);
            // With a large buffer only the dropped bytes are lost; with a small one, skipped holes
            // may also turn late arrivals into duplicates, never into wrong bytes.
            if bound > data.len() {
                prop_assert_eq!(lost, dropped);
            }
            for (o, d) in out.iter().zip(&data) {
                if let Some(b) = o {
                    prop_assert_eq!(b, d);
                }
            }
        }
    }
}

#[test]
fn a_head_sent_one_byte_per_segment_is_parsed_in_linear_time() {
    // Adversarial input: a 60 KiB head in 1-byte segments. Re-parsing the held head on every piece
    // would take ~2e9 byte scans; the bound below holds only when pieces without a line end are
    // appended, not parsed.
    let mut req = b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: ".to_vec();
    req.extend(std::iter::repeat_n(b'p', 60 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    let mut c = Conv::new(1);
    c.handshake().send(Dir::ToServer, &req);
    c.mss = 1460;
    c.send(Dir::ToClient, &resp(200, b"ok")).close();
    let start = std::time::Instant::now();
    let s = run(&c.segs);
    let took = start.elapsed();
    assert_eq!(ep(&s, "GET", "/slow").requests, 1);
    assert_eq!(ep(&s, "GET", "/slow").statuses.get(&200), Some(&1));
    assert!(took < std::time::Duration::from_secs(20), "60 KiB head in 1-byte pieces took {took:?}");
}

#[test]
fn pipelined_calls_are_checked_whole_each_body_with_its_own_request() {
    let spec = rxray_openapi::Spec::load(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../rxray-openapi/tests/data/petstore-3.0.yaml")),
        rxray_openapi::DEFAULT_MAX_SPEC_BYTES,
    )
    .unwrap();
    let post = |body: &str| format!("POST /api/v1/pets HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes();
    let json = |status: u16, body: &str| format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes();
    let chunked = |status: u16, body: &str| {
        let (a, b) = body.split_at(body.len() / 2);
        format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len()).into_bytes()
    };
    // Three pipelined requests: a good POST, a bad POST (name not a string), a GET whose chunked
    // answer breaks the schema; the answers come after all three, small segments throughout.
    let mut c = Conv::new(7);
    c.handshake();
    let mut reqs = post(r#"{"name": "kit"}"#);
    reqs.extend(post(r#"{"name": 5}"#));
    reqs.extend(b"GET /api/v1/pets/7 HTTP/1.1\r\nHost: a\r\n\r\n");
    c.send(Dir::ToServer, &reqs);
    let mut resps = json(201, r#"{"id": 1, "name": "kit"}"#);
    resps.extend(json(201, r#"{"id": 2, "name": "kat"}"#));
    resps.extend(chunked(200, r#"{"id": 7, "name": ""}"#));
    c.send(Dir::ToClient, &resps).close();
    let mut t = HttpTracker::new(HttpConfig::default()).with_openapi(std::sync::Arc::new(spec));
    feed(&mut t, &c.segs, 1_000_000_000, 0);
    t.finish();
    let s = t.snapshot();
    let f = s.findings.as_ref().unwrap();
    let got: Vec<(String, String, Option<u16>, u64)> = f.iter().map(|x| (x.kind.as_str().to_string(), x.method.clone(), x.status, x.count)).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&("schema_violation".into(), "POST".into(), None, 1)), "the second POST's body: {got:?}");
    assert!(got.contains(&("schema_violation".into(), "GET".into(), Some(200), 1)), "the de-chunked answer: {got:?}");
    assert_eq!(s.openapi.as_ref().unwrap().counters.exchanges, 3);
    assert_eq!(ep(&s, "GET", "/pets/{petId}").requests, 1, "templates from the document");
}

/// Feeds `segs` as client `client`:`cport` → 198.18.0.2:80.
fn feed_from(t: &mut HttpTracker, segs: &[Seg], t0: u64, client: &str, cport: u16) {
    for (n, s) in segs.iter().enumerate() {
        let (c, srv) = (ip(client), ip("198.18.0.2"));
        let (src, sport, dst, dport) = match s.dir {
            Dir::ToServer => (c, cport, srv, 80),
            Dir::ToClient => (srv, 80, c, cport),
        };
        t.segment(&TcpSegment { ts_ns: t0 + n as u64 * 1_000_000, src, sport, dst, dport, dir: s.dir, seq: s.seq, ack: s.ack, flags: s.flags, payload: &s.data, wire_len: s.wire_len });
    }
}

/// Per (method, template, client): requests, statuses, unanswered, request and response bytes,
/// latency count, as `take_client_counts` gives them.
type ByClient = std::collections::BTreeMap<(String, String, Option<IpAddr>), (u64, Vec<(u16, u64)>, u64, u64, u64, u64)>;

fn by_client(t: &mut HttpTracker) -> ByClient {
    let mut m = ByClient::new();
    for (e, k, c) in t.take_client_counts() {
        if let Some(p) = k.peers {
            assert_eq!((p.server, p.server_port), (ip("198.18.0.2"), 80));
        }
        let v = m.entry((e.method.clone(), e.template.clone(), k.peers.map(|p| p.client))).or_default();
        v.0 += c.requests;
        for (s, n) in c.statuses {
            v.1.push((s, n));
        }
        v.1.sort();
        v.2 += c.unanswered;
        v.3 += c.request_bytes;
        v.4 += c.response_bytes;
        v.5 += c.latency.count;
    }
    m
}

#[test]
fn calls_split_by_client_sum_exactly_to_the_endpoints_and_the_cap_fills_other() {
    // Client .1: two GETs of /users/{id} (200, 404); client .9: one GET /users/{id} (200) and a
    // GET /slow the server resets.
    let (r1, r2, r3) = (get("/users/1"), get("/users/2"), get("/users/3"));
    let (a1, a2, a3) = (resp(200, b"one"), resp(404, b""), resp(200, b"three!"));
    let mut c1 = Conv::new(1460);
    c1.handshake();
    c1.send(Dir::ToServer, &r1).send(Dir::ToClient, &a1).send(Dir::ToServer, &r2).send(Dir::ToClient, &a2).close();
    let mut c9 = Conv::new(5);
    c9.handshake();
    c9.send(Dir::ToServer, &r3).send(Dir::ToClient, &a3).send(Dir::ToServer, &get("/slow")).ctl(Dir::ToClient, RST);
    let mut t = HttpTracker::new(HttpConfig::default()).with_client_counts(100);
    feed_from(&mut t, &c1.segs, 1_000_000_000, "198.18.0.1", 40000);
    feed_from(&mut t, &c9.segs, 2_000_000_000, "198.18.0.9", 40001);
    t.finish();
    let got = by_client(&mut t);
    let users = |c: &str| got[&("GET".to_string(), "/users/{id}".to_string(), Some(ip(c)))].clone();
    assert_eq!(users("198.18.0.1"), (2, vec![(200, 1), (404, 1)], 0, (r1.len() + r2.len()) as u64, (a1.len() + a2.len()) as u64, 2));
    assert_eq!(users("198.18.0.9"), (1, vec![(200, 1)], 0, r3.len() as u64, a3.len() as u64, 1));
    let slow = &got[&("GET".to_string(), "/slow".to_string(), Some(ip("198.18.0.9")))];
    assert_eq!((slow.0, slow.2, slow.5), (1, 1, 0));
    assert_eq!(got.len(), 3, "{got:?}");
    // The sums over clients are the endpoints' own counts.
    let s = t.snapshot();
    for e in &s.endpoints {
        let mine: Vec<_> = got.iter().filter(|(k, _)| k.0 == e.method && k.1 == e.template).map(|(_, v)| v).collect();
        let st: u64 = mine.iter().flat_map(|v| v.1.iter().map(|x| x.1)).sum();
        assert_eq!(
            (mine.iter().map(|v| v.0).sum::<u64>(), st, mine.iter().map(|v| v.2).sum::<u64>(), mine.iter().map(|v| v.3).sum::<u64>(), mine.iter().map(|v| v.4).sum::<u64>()),
            (e.requests, e.statuses.values().sum(), e.unanswered, e.request_bytes, e.response_bytes),
            "{} {}",
            e.method,
            e.template
        );
    }
    // Taken: the table starts again empty.
    assert!(t.take_client_counts().is_empty());

    // A cap of 2 (endpoint, client) entries per take: the third client's calls go to `other`, counted.
    let mut t = HttpTracker::new(HttpConfig::default()).with_client_counts(2);
    for (i, client) in ["198.18.0.1", "198.18.0.2", "198.18.0.3"].iter().enumerate() {
        let mut c = Conv::new(1460);
        c.handshake();
        c.send(Dir::ToServer, &get("/x")).send(Dir::ToClient, &resp(200, b"")).close();
        feed_from(&mut t, &c.segs, 1_000_000_000 * (i as u64 + 1), client, 40000);
    }
    t.finish();
    let got = by_client(&mut t);
    let x = |c: Option<&str>| got.get(&("GET".to_string(), "/x".to_string(), c.map(ip))).map(|v| (v.0, v.5));
    assert_eq!((x(Some("198.18.0.1")), x(Some("198.18.0.2")), x(Some("198.18.0.3")), x(None)), (Some((1, 1)), Some((1, 1)), None, Some((1, 1))));
    // Without the split, nothing is kept.
    let mut t = HttpTracker::new(HttpConfig::default());
    feed_from(&mut t, &c1.segs, 1_000_000_000, "198.18.0.1", 40000);
    assert!(t.take_client_counts().is_empty());
}
