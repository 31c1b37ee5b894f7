//! OpenAPI findings as alerts: calls written as TCP segments go through the HTTP side of the
//! inspector; each occurrence is submitted, and the detectors' suppression lets one alert out per
//! (kind, method, template) and window, the next one carrying the repeats held back.
use rxray_engine::alert::Alert;
use rxray_engine::detect::{DetectConfig, Detectors};
use rxray_engine::http::{Direction as Dir, HttpConfig, TcpSegment};
use rxray_engine::inspect::Inspector;
use rxray_engine::inspect_http::HttpInspector;
use std::net::IpAddr;
use std::sync::Arc;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rxray-openapi/tests/data/petstore-3.0.yaml");

/// One call on its own connection (client port `port`), at `t` ns: handshake, request, response, FIN.
fn call(insp: &mut Inspector, out: &mut Vec<Alert>, t: u64, port: u16, req: &str, resp: &str) {
    let (c, s): (IpAddr, IpAddr) = ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
    let (syn, ack, psh, fin) = (0x02u8, 0x10u8, 0x08u8, 0x01u8);
    let (cs, ss) = (1000u32, 5000u32);
    let (rq, rs) = (req.len() as u32, resp.len() as u32);
    let segs: [(Dir, u32, u32, u8, &[u8]); 6] = [
        (Dir::ToServer, cs, 0, syn, b""),
        (Dir::ToClient, ss, cs + 1, syn | ack, b""),
        (Dir::ToServer, cs + 1, ss + 1, ack | psh, req.as_bytes()),
        (Dir::ToClient, ss + 1, cs + 1 + rq, ack | psh, resp.as_bytes()),
        (Dir::ToServer, cs + 1 + rq, ss + 1 + rs, ack | fin, b""),
        (Dir::ToClient, ss + 1 + rs, cs + 2 + rq, ack | fin, b""),
    ];
    for (n, (dir, seq, ackn, flags, data)) in segs.into_iter().enumerate() {
        let (src, sport, dst, dport) = if dir == Dir::ToServer { (c, port, s, 8080) } else { (s, 8080, c, port) };
        let seg = TcpSegment { ts_ns: t + n as u64 * 1000, src, sport, dst, dport, dir, seq, ack: ackn, flags, payload: data, wire_len: data.len() as u32 };
        insp.on_segment(&seg, out);
    }
}

const NOPE: &str = "GET /api/v1/nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: t\r\n\r\n";
const NO_ID: &str = "GET /api/v1/pets HTTP/1.1\r\nHost: x\r\n\r\n";
const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{\"code\": 404, \"message\": \"no\"}";
const PETS: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]";

fn ev<'a>(a: &'a Alert, k: &str) -> &'a serde_json::Value {
    &a.evidence[k]
}

#[test]
fn one_alert_per_kind_method_and_template_per_window_with_the_repeats_counted() {
    let spec = Arc::new(rxray_openapi::Spec::load(SPEC.as_ref(), 1 << 20).unwrap());
    let cfg = DetectConfig { suppress_window_s: 1, ..DetectConfig::default() };
    let det = Detectors::new(cfg, &[]).unwrap();
    let mut insp = Inspector::new(det, None).with_http(HttpInspector::new(HttpConfig::default(), &[8080], Some(spec)));
    let mut out = Vec::new();
    let t0 = 1_700_000_000_000_000_000u64;
    for i in 0..3 {
        call(&mut insp, &mut out, t0 + i * 10_000_000, 40000 + i as u16, NOPE, NOT_FOUND);
    }
    call(&mut insp, &mut out, t0 + 50_000_000, 40010, NO_ID, PETS);
    // Three undocumented-path calls, one missing parameter: one alert each, the first occurrences.
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!((ev(&out[0], "kind").as_str(), ev(&out[0], "template").as_str()), (Some("undocumented_path"), Some("/api/v1/nope")));
    assert_eq!((ev(&out[0], "count").as_u64(), ev(&out[0], "first").as_bool(), out[0].suppressed), (Some(1), Some(true), 0));
    assert_eq!((out[0].sig.detector, out[0].sig.sid, out[0].dest_port, out[0].src_port), ("openapi", 11, Some(8080), Some(40000)));
    assert_eq!(ev(&out[1], "kind").as_str(), Some("missing_parameter"));
    assert_eq!(out[1].sig.sid, 14);
    assert_eq!(insp.detectors.stats().suppressed, 2);

    // After the window, the next occurrence alerts again with the repeats held back and the total.
    out.clear();
    call(&mut insp, &mut out, t0 + 2_000_000_000, 40020, NOPE, NOT_FOUND);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((ev(&out[0], "count").as_u64(), ev(&out[0], "first").as_bool(), out[0].suppressed), (Some(4), Some(false), 2));
    // The EVE record carries the evidence and rxray's detector name.
    let eve = out[0].to_eve();
    assert_eq!(eve["rxray"]["detector"], "openapi");
    assert_eq!(eve["rxray"]["evidence"]["example"]["request_line"], "GET /api/v1/nope");
}
