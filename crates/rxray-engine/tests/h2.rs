//! HTTP/2 and TLS in the tracker from crafted segments: frames written here (header blocks by
//! loona-hpack's encoder), expected values are what each test sent.
use rxray_engine::http::flags::{FIN, SYN};
use rxray_engine::http::{Direction as Dir, HttpConfig, HttpSnapshot, HttpTracker, TcpSegment};
use std::net::IpAddr;

const ACK: u8 = 0x10;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.extend_from_slice(&[kind, flags]);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn grpc_msg(n: usize) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&(n as u32).to_be_bytes());
    v.extend(std::iter::repeat_n(7u8, n));
    v
}

/// A conversation on one connection: both directions' bytes in order, cut into segments of `mss`.
struct Wire {
    segs: Vec<(Dir, u32, u8, Vec<u8>)>,
    seq: [u32; 2],
    mss: usize,
}

impl Wire {
    fn new(mss: usize, syn: bool) -> Self {
        let mut w = Wire { segs: Vec::new(), seq: [1000, 5000], mss };
        if syn {
            w.segs.push((Dir::ToServer, 999, SYN, vec![]));
            w.segs.push((Dir::ToClient, 4999, SYN | ACK, vec![]));
        }
        w
    }
    fn send(&mut self, d: Dir, b: &[u8]) -> &mut Self {
        let i = usize::from(d == Dir::ToClient);
        for c in b.chunks(self.mss) {
            self.segs.push((d, self.seq[i], ACK, c.to_vec()));
            self.seq[i] = self.seq[i].wrapping_add(c.len() as u32);
        }
        self
    }
    fn fin(&mut self) -> &mut Self {
        for (d, i) in [(Dir::ToServer, 0), (Dir::ToClient, 1)] {
            self.segs.push((d, self.seq[i], FIN | ACK, vec![]));
        }
        self
    }
    fn run(&self, port: u16, tls: &[u16]) -> HttpSnapshot {
        let mut t = HttpTracker::new(HttpConfig::default()).with_tls_ports(tls).with_client_counts(100);
        let (c, s): (IpAddr, IpAddr) = ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
        for (n, (d, seq, flags, data)) in self.segs.iter().enumerate() {
            let (src, sport, dst, dport) = if *d == Dir::ToServer { (c, 40000, s, port) } else { (s, port, c, 40000) };
            t.segment(&TcpSegment { ts_ns: 1_000_000_000 + n as u64 * 1_000_000, src, sport, dst, dport, dir: *d, seq: *seq, ack: 0, flags: *flags, payload: data, wire_len: data.len() as u32 });
        }
        t.finish();
        let snap = t.snapshot();
        // Every call is in the split by client too, with the same sums as its endpoint.
        let split = t.take_client_counts();
        for e in &snap.endpoints {
            let mine: Vec<_> = split.iter().filter(|(x, _, _)| x.method == e.method && x.template == e.template && x.protocol == e.protocol).collect();
            assert!(mine.iter().all(|(_, k, _)| k.peers.is_some_and(|p| p.client == c && p.server == s && p.server_port == port)));
            let sum = |f: &dyn Fn(&rxray_engine::http::clients::ClientCounts) -> u64| mine.iter().map(|(_, _, x)| f(x)).sum::<u64>();
            assert_eq!(
                (sum(&|x| x.requests), sum(&|x| x.statuses.values().sum()), sum(&|x| x.unanswered), sum(&|x| x.request_bytes), sum(&|x| x.response_bytes)),
                (e.requests, e.statuses.values().sum(), e.unanswered, e.request_bytes, e.response_bytes),
                "{} {}",
                e.method,
                e.template
            );
        }
        snap
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn req(enc: &mut loona_hpack::Encoder<'_>, stream: u32, method: &str, path: &str, grpc: bool, end: bool) -> Vec<u8> {
    let mut h: Vec<(&[u8], &[u8])> = vec![(b":method", method.as_bytes()), (b":scheme", b"http"), (b":path", path.as_bytes()), (b":authority", b"lab")];
    if grpc {
        h.push((b"content-type", b"application/grpc"));
    }
    frame(1, 4 | u8::from(end), stream, &enc.encode(h))
}

fn resp(enc: &mut loona_hpack::Encoder<'_>, stream: u32, status: &str, end: bool) -> Vec<u8> {
    frame(1, 4 | u8::from(end), stream, &enc.encode([(&b":status"[..], status.as_bytes())]))
}

/// Two connections' worth of calls: GETs on interleaved streams, a reset, a GOAWAY.
#[test]
fn h2c_prior_knowledge_streams_resets_and_goaway() {
    let (mut ce, mut se) = (loona_hpack::Encoder::new(), loona_hpack::Encoder::new());
    let mut w = Wire::new(100, true);
    let mut c = PREFACE.to_vec();
    c.extend(frame(4, 0, 0, &[]));
    // Frames read past: an empty one of an unknown type (extensions may send them), WINDOW_UPDATE, PING.
    c.extend(frame(0xfa, 0, 0, &[]));
    c.extend(frame(8, 0, 0, &[0, 0, 1, 0]));
    c.extend(frame(6, 0, 0, &[1; 8]));
    for s in [1, 3, 5, 7] {
        c.extend(req(&mut ce, s, "GET", &format!("/items/{s}"), false, true));
    }
    w.send(Dir::ToServer, &c);
    let mut sv = frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    sv.extend(frame(4, 1, 0, &[]));
    sv.extend(resp(&mut se, 3, "200", false));
    sv.extend(resp(&mut se, 1, "404", false));
    sv.extend(frame(0, 0, 3, &[b'x'; 300]));
    sv.extend(frame(0, 1, 1, b"nope"));
    sv.extend(frame(0, 9, 3, &[3, b'a', b'b', 0, 0, 0])); // padded, END_STREAM
    sv.extend(frame(3, 0, 5, &8u32.to_be_bytes())); // RST_STREAM(CANCEL) on 5
    sv.extend(frame(7, 0, 0, &[0, 0, 0, 5, 0, 0, 0, 0])); // GOAWAY last=5: 7 refused
    w.send(Dir::ToClient, &sv).fin();
    let s = w.run(80, &[]);
    assert_eq!(s.totals.h2_connections, 1);
    assert_eq!(s.totals.requests, 4);
    assert_eq!(s.totals.responses, 2);
    assert_eq!(s.totals.resets, 1);
    assert_eq!(s.totals.goaways, 1);
    assert_eq!(s.endpoints.len(), 1);
    let e = &s.endpoints[0];
    assert_eq!((e.protocol, e.method.as_str(), e.template.as_str()), ("h2c", "GET", "/items/{id}"));
    assert_eq!(e.statuses.get(&200), Some(&1));
    assert_eq!(e.statuses.get(&404), Some(&1));
    assert_eq!(e.resets, 1);
    assert_eq!(e.goaways, 1, "stream 7 was open at the GOAWAY");
    assert_eq!(e.unanswered, 1, "stream 7 was refused");
    assert_eq!(s.completeness.h2_decoding_lost, 0);
    assert_eq!(s.completeness.parse_errors, 0);
}

#[test]
fn grpc_statuses_and_streaming_message_counts() {
    let (mut ce, mut se) = (loona_hpack::Encoder::new(), loona_hpack::Encoder::new());
    let mut w = Wire::new(37, true);
    let mut c = PREFACE.to_vec();
    c.extend(frame(4, 0, 0, &[]));
    c.extend(req(&mut ce, 1, "POST", "/lab.Echo/Unary", true, false));
    c.extend(frame(0, 1, 1, &grpc_msg(10)));
    c.extend(req(&mut ce, 3, "POST", "/lab.Echo/Stream", true, false));
    let mut three = grpc_msg(1);
    three.extend(grpc_msg(0));
    three.extend(grpc_msg(70));
    c.extend(frame(0, 0, 3, &three[..20]));
    c.extend(frame(0, 1, 3, &three[20..]));
    w.send(Dir::ToServer, &c);
    let mut sv = frame(4, 0, 0, &[]);
    sv.extend(resp(&mut se, 1, "200", false));
    sv.extend(frame(0, 0, 1, &grpc_msg(4)));
    sv.extend(frame(1, 5, 1, &se.encode([(&b"grpc-status"[..], &b"0"[..])])));
    // Trailers-only error answer to the stream call.
    sv.extend(frame(1, 5, 3, &se.encode([(&b":status"[..], &b"200"[..]), (b"content-type", b"application/grpc"), (b"grpc-status", b"5")])));
    w.send(Dir::ToClient, &sv).fin();
    let s = w.run(50051, &[]);
    let unary = s.endpoints.iter().find(|e| e.template == "lab.Echo/Unary").expect("unary");
    let stream = s.endpoints.iter().find(|e| e.template == "lab.Echo/Stream").expect("stream");
    assert_eq!(unary.protocol, "grpc");
    let (ug, sg) = (unary.grpc.as_ref().unwrap(), stream.grpc.as_ref().unwrap());
    assert_eq!((ug.statuses.get(&0), ug.request_messages, ug.response_messages), (Some(&1), 1, 1));
    assert_eq!((sg.statuses.get(&5), sg.request_messages, sg.response_messages), (Some(&1), 3, 0));
    assert_eq!(stream.statuses.get(&200), Some(&1));
}

#[test]
fn upgrade_h2c_answers_the_upgrade_request_on_stream_1() {
    let (mut ce, mut se) = (loona_hpack::Encoder::new(), loona_hpack::Encoder::new());
    let mut w = Wire::new(64, true);
    w.send(Dir::ToServer, b"GET /up HTTP/1.1\r\nHost: lab\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n");
    let mut sv = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    sv.extend(frame(4, 0, 0, &[]));
    sv.extend(resp(&mut se, 1, "200", false));
    sv.extend(frame(0, 1, 1, b"hello"));
    w.send(Dir::ToClient, &sv);
    let mut c = PREFACE.to_vec();
    c.extend(frame(4, 0, 0, &[]));
    c.extend(req(&mut ce, 3, "GET", "/next", false, true));
    w.send(Dir::ToServer, &c);
    w.send(Dir::ToClient, &resp(&mut se, 3, "204", true)).fin();
    let s = w.run(80, &[]);
    assert_eq!(s.totals.h2_connections, 1);
    assert_eq!((s.totals.requests, s.totals.responses, s.totals.interim_responses), (2, 2, 1));
    let up = s.endpoints.iter().find(|e| e.template == "/up").unwrap();
    assert_eq!((up.protocol, up.statuses.get(&200)), ("http/1.1", Some(&1)));
    let next = s.endpoints.iter().find(|e| e.template == "/next").unwrap();
    assert_eq!((next.protocol, next.statuses.get(&204)), ("h2c", Some(&1)));
}

#[test]
fn a_connection_picked_up_mid_way_is_not_decodable_and_not_misread() {
    let (mut ce, mut se) = (loona_hpack::Encoder::new(), loona_hpack::Encoder::new());
    // The start (preface, SETTINGS, a first block that filled the dynamic tables) is not seen.
    let _ = req(&mut ce, 1, "GET", "/first", false, true);
    let _ = resp(&mut se, 1, "200", true);
    let mut w = Wire::new(1000, false);
    w.send(Dir::ToServer, &req(&mut ce, 3, "GET", "/second", false, true));
    w.send(Dir::ToClient, &resp(&mut se, 3, "200", true)).fin();
    let s = w.run(80, &[]);
    assert_eq!(s.completeness.h2_not_decodable, 1);
    assert_eq!(s.totals.requests, 0);
    assert_eq!(s.totals.responses, 0);
    assert!(s.endpoints.is_empty());
}

#[test]
fn a_lost_header_frame_stops_the_reading_and_is_counted() {
    let (mut ce, mut se) = (loona_hpack::Encoder::new(), loona_hpack::Encoder::new());
    let mut c = PREFACE.to_vec();
    c.extend(frame(4, 0, 0, &[]));
    c.extend(req(&mut ce, 1, "GET", "/a", false, true));
    let mut w = Wire::new(1000, true);
    w.send(Dir::ToServer, &c);
    let mut sv = frame(4, 0, 0, &[]);
    sv.extend(resp(&mut se, 1, "200", true));
    w.send(Dir::ToClient, &sv);
    // A request block that never arrives (a hole), then one that depends on its table entries.
    let lost = req(&mut ce, 3, "GET", "/b", false, true);
    w.seq[0] = w.seq[0].wrapping_add(lost.len() as u32);
    w.send(Dir::ToServer, &req(&mut ce, 5, "GET", "/b", false, true)).fin();
    let s = w.run(80, &[]);
    assert_eq!(s.totals.requests, 1);
    assert_eq!(s.completeness.h2_decoding_lost, 1);
    assert_eq!(s.completeness.gaps, 1);
}

/// A TLS handshake on 8443: ClientHello with SNI and ALPN, ServerHello choosing TLS 1.2 and h2,
/// the client's ChangeCipherSpec and Finished, then application data each way.
#[test]
fn tls_hellos_give_the_facts_and_encrypted_bytes_are_counted() {
    fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = kind.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }
    fn hs(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }
    fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }
    let mut ch = vec![3, 3];
    ch.extend_from_slice(&[1; 32]);
    ch.extend_from_slice(&[0, 0, 4, 0x13, 0x01, 0xc0, 0x2f, 1, 0]);
    let exts = [ext(0, &[0, 11, 0, 0, 8, b'l', b'a', b'b', b'.', b't', b'e', b's', b't']), ext(0x10, &[0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1'])].concat();
    ch.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    ch.extend_from_slice(&exts);
    let ch = hs(1, &ch);
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[2; 32]);
    sh.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
    let sexts = ext(0x10, &[0, 3, 2, b'h', b'2']);
    sh.extend_from_slice(&(sexts.len() as u16).to_be_bytes());
    sh.extend_from_slice(&sexts);
    let sh = hs(2, &sh);
    let mut w = Wire::new(40, true);
    // The ClientHello split over two records and several segments.
    w.send(Dir::ToServer, &[record(22, &ch[..30]), record(22, &ch[30..])].concat());
    w.send(Dir::ToClient, &[record(22, &sh), record(22, &[11, 0, 0, 3, 0, 0, 0])].concat());
    w.send(Dir::ToServer, &[record(22, &[16, 0, 0, 2, 9, 9]), record(20, &[1]), record(22, &[0; 40])].concat());
    w.send(Dir::ToClient, &[record(20, &[1]), record(22, &[0; 40])].concat());
    w.send(Dir::ToServer, &record(23, &[7; 100]));
    w.send(Dir::ToClient, &record(23, &[7; 300])).fin();
    let s = w.run(8443, &[8443]);
    let t = &s.tls.as_ref().expect("tls").connections;
    assert_eq!(t.len(), 1);
    let f = &t[0];
    assert_eq!(f.sni.as_deref(), Some("lab.test"));
    assert_eq!(f.alpn_offered, vec!["h2".to_string(), "http/1.1".to_string()]);
    assert_eq!((f.alpn.as_deref(), f.version.as_deref(), f.client_version.as_deref()), (Some("h2"), Some("1.2"), Some("1.2")));
    assert_eq!((f.client_encrypted_bytes, f.server_encrypted_bytes), (105, 305));
    assert!(f.ja4.as_deref().is_some_and(|j| j.starts_with("t12d0202h2_")), "{:?}", f.ja4);
    assert!(f.handshake_ms.is_some_and(|m| m > 0.0), "{f:?}");
    assert!(f.error.is_none(), "{f:?}");
    assert!(s.endpoints.is_empty(), "TLS bytes are never parsed as HTTP");
}

proptest::proptest! {
    /// Any bytes after a preface, or on a TLS port, are counted and never panic the reader.
    #[test]
    fn random_frames_and_records_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000), cut in 1usize..200) {
        let mut w = Wire::new(cut, true);
        let mut c = PREFACE.to_vec();
        c.extend(frame(4, 0, 0, &[]));
        c.extend_from_slice(&data);
        w.send(Dir::ToServer, &c);
        w.send(Dir::ToClient, &data).fin();
        let _ = w.run(80, &[]);
        let mut w = Wire::new(cut, true);
        w.send(Dir::ToServer, &data);
        w.send(Dir::ToClient, &data).fin();
        let _ = w.run(443, &[443]);
    }

    /// Well-framed frames of every type with random flags, streams and payloads (header blocks of
    /// random bytes): the reader stops or goes on, never panics.
    #[test]
    fn random_well_framed_frames_never_panic(frames in proptest::collection::vec((0u8..11, proptest::prelude::any::<u8>(), 0u32..6, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)), 0..40), cut in 1usize..100) {
        let mut w = Wire::new(cut, true);
        let mut c = PREFACE.to_vec();
        c.extend(frame(4, 0, 0, &[]));
        let mut s = frame(4, 0, 0, &[]);
        for (i, (kind, flags, stream, payload)) in frames.iter().enumerate() {
            let f = frame(*kind, *flags, *stream, payload);
            if i % 2 == 0 { c.extend(f) } else { s.extend(f) }
        }
        w.send(Dir::ToServer, &c);
        w.send(Dir::ToClient, &s).fin();
        let snap = w.run(80, &[]);
        proptest::prop_assert!(snap.totals.responses <= snap.totals.requests + snap.totals.unpaired_responses);
    }
}

/// HTTP/2 requests reach request-side inspection as HTTP/1.x ones do: each request alone as soon as
/// it is whole (its END_STREAM), then the paired call. So an HTTP rule on the request fires once
/// per attack request, and an API limit counts every request (both saw only paired calls before,
/// where request rules do not look, so neither fired on HTTP/2).
#[test]
fn h2_requests_are_inspected_alone_when_whole_for_request_rules_and_api_limits() {
    use rxray_engine::detect::api_limit::{ApiGuard, ApiLimits};
    use rxray_engine::signatures::{load, Vars};
    let (mut ce, mut se) = (loona_hpack::Encoder::new(), loona_hpack::Encoder::new());
    let mut w = Wire::new(100, true);
    let mut c = PREFACE.to_vec();
    c.extend(frame(4, 0, 0, &[]));
    let attack = "/items/1?id=1%20UNION%20SELECT%20username,password%20FROM%20users";
    // Five GETs on streams 1..9; stream 3 carries the attack; stream 9's request never ends.
    for (s, path) in [(1, "/items/1"), (3, attack), (5, "/items/2"), (7, "/items/3")] {
        c.extend(req(&mut ce, s, "GET", path, false, true));
    }
    c.extend(req(&mut ce, 9, "GET", "/items/4", false, false));
    w.send(Dir::ToServer, &c);
    let mut sv = frame(4, 0, 0, &[]);
    for s in [1, 3, 5, 7] {
        sv.extend(resp(&mut se, s, "200", true));
    }
    w.send(Dir::ToClient, &sv).fin();
    let mut t = HttpTracker::new(HttpConfig::default()).with_calls();
    let (cl, sr): (IpAddr, IpAddr) = ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
    for (n, (d, seq, flags, data)) in w.segs.iter().enumerate() {
        let (src, sport, dst, dport) = if *d == Dir::ToServer { (cl, 40000, sr, 80) } else { (sr, 80, cl, 40000) };
        t.segment(&TcpSegment { ts_ns: 1_000_000_000 + n as u64 * 1_000_000, src, sport, dst, dport, dir: *d, seq: *seq, ack: 0, flags: *flags, payload: data, wire_len: data.len() as u32 });
    }
    t.finish();
    let calls = t.take_calls();
    let alone: Vec<&str> = calls.iter().filter(|c| c.is_request_only()).map(|c| std::str::from_utf8(&c.request.head).unwrap().lines().next().unwrap()).collect();
    let want: Vec<String> = ["/items/1", attack, "/items/2", "/items/3"].iter().map(|p| format!("GET {p} HTTP/1.1")).collect();
    assert_eq!(alone, want, "one request alone per ended request stream, in order");
    assert_eq!(calls.iter().filter(|c| !c.is_request_only() && c.status == 200).count(), 4, "and the four paired calls");
    // The default rules: the UNION SELECT request fires sid 9000001 once; the others nothing.
    let l = load(include_str!("../../../rules/default.rules"), &Vars::default());
    let mut set = l.set;
    let mut m = Vec::new();
    for c in &calls {
        set.match_call_into(c, &mut m);
    }
    assert_eq!(m.iter().map(|x| x.m.sid).collect::<Vec<_>>(), vec![9000001]);
    // An API limit of 2 a minute with no burst on GET /items/{id}: 4 requests 1 ms apart, 3 over.
    let limits = ApiLimits::parse("t.toml", "[[api_limit]]\nendpoint = \"GET /items/{id}\"\nrate = \"2/m\"\naction = \"alert\"\n").unwrap();
    let mut g = ApiGuard::new(limits);
    let mut out = Vec::new();
    for c in &calls {
        g.on_call(c, &mut out);
    }
    assert_eq!(out.len(), 3, "rate 2/m, burst 0: the 2nd, 3rd and 4th request come early");
    assert!(out.iter().all(|a| a.sig.detector == "api_limit" && a.src_ip == Some(cl)));
}
