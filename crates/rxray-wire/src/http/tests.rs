//! HTTP/1.x heads and chunked framing from crafted bytes; expected values are what the bytes say.
use super::*;

#[test]
fn request_head_with_length_and_expect() {
    let b = b"POST /api/v1/items?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello";
    let Head::Complete(h) = parse_request(b) else { panic!("{:?}", parse_request(b)) };
    assert_eq!((h.method, h.target, h.minor), ("POST", "/api/v1/items?x=1", 1));
    assert_eq!(h.head_len, b.len() - 5);
    assert_eq!(h.body, BodyFraming::Length(5));
    assert!(h.expect_continue && !h.close);
}

#[test]
fn request_without_length_has_no_body_and_http10_closes() {
    let Head::Complete(h) = parse_request(b"GET / HTTP/1.0\r\n\r\n") else { panic!() };
    assert_eq!((h.body, h.close), (BodyFraming::None, true));
    let Head::Complete(h) = parse_request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") else { panic!() };
    assert!(!h.close);
    let Head::Complete(h) = parse_request(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n") else { panic!() };
    assert!(h.close);
}

#[test]
fn chunked_wins_over_length() {
    let Head::Complete(h) = parse_request(b"POST /u HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") else { panic!() };
    assert_eq!(h.body, BodyFraming::Chunked);
}

#[test]
fn partial_and_invalid_heads() {
    assert_eq!(parse_request(b"GET /index.ht"), Head::Partial);
    assert_eq!(parse_request(b""), Head::Partial);
    assert!(matches!(parse_request(b"G(T / HTTP/1.1\r\n\r\n"), Head::Invalid(_)));
    assert_eq!(parse_request(b"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"), Head::Invalid(HeadError::BadContentLength));
    assert_eq!(parse_request(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), Head::Invalid(HeadError::BadContentLength));
    let Head::Complete(h) = parse_request(b"GET / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n") else { panic!() };
    assert_eq!(h.body, BodyFraming::Length(7));
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..MAX_HEADERS + 1 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(parse_request(&many), Head::Invalid(HeadError::Syntax("too_many_headers")));
}

#[test]
fn response_framing_rules() {
    let r = |b: &[u8]| match parse_response(b) {
        Head::Complete(h) => h,
        other => panic!("{other:?}"),
    };
    assert_eq!(r(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").body, BodyFraming::Length(12));
    assert_eq!(r(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").body, BodyFraming::Chunked);
    assert_eq!(r(b"HTTP/1.1 200 OK\r\n\r\n").body, BodyFraming::UntilClose);
    assert_eq!(r(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").body, BodyFraming::None);
    assert_eq!(r(b"HTTP/1.1 304 Not Modified\r\n\r\n").body, BodyFraming::None);
    let c = r(b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!((c.status, c.body), (100, BodyFraming::None));
    let h = r(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
    assert_eq!(response_framing(&h, "HEAD"), BodyFraming::None);
    assert_eq!(response_framing(&h, "GET"), BodyFraming::Length(9));
    let h = r(b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\n");
    assert_eq!((h.status, h.minor, h.close), (404, 0, true));
    assert_eq!(parse_response(b"HTTP/1.1 2"), Head::Partial);
    assert!(matches!(parse_response(b"HTTX/1.1 200 OK\r\n\r\n"), Head::Invalid(_)));
}

#[test]
fn resync_detectors() {
    assert!(starts_request(b"GET /a HTTP/1.1\r\nHost: x\r\n"));
    assert!(starts_request(b"DELETE /a/b?c HTTP/1.0\n"));
    assert!(starts_request(b"GET /a HTTP/1.1"), "a segment may end inside the request line");
    assert!(starts_request(b"GET /a/very/long/pa"));
    assert!(starts_request(b"GET /a HTTP/1.1\r"));
    assert!(!starts_request(b"GET "), "too little to tell");
    assert!(!starts_request(b"GET /a HTTP/2.0\r\n"));
    assert!(!starts_request(b"GET /a HTTP/1.1 extra\r\n"));
    assert!(!starts_request(b"WORD word"));
    assert!(!starts_request(b"get /a HTTP/1.1\r\n"));
    assert!(!starts_request(b"{\"json\": \"GET / HTTP/1.1\"}\r\n"));
    assert!(!starts_request(b"\x00\x01binary\r\n"));
    assert!(starts_response(b"HTTP/1.1 200 OK\r\n"));
    assert!(!starts_response(b"HTTP/1.1 2xx OK\r\n"));
    assert!(!starts_response(b"<html>"));
}

/// Walks `body` through a chunked walker in pieces of `step` bytes; returns the bytes consumed.
fn walk(body: &[u8], step: usize) -> Result<(usize, bool), ChunkError> {
    let mut c = Chunked::default();
    let mut used = 0;
    for piece in body.chunks(step) {
        let n = c.feed(piece)?;
        used += n;
        if n < piece.len() {
            break;
        }
    }
    Ok((used, c.is_done()))
}

#[test]
fn chunked_body_in_any_split_ends_exactly() {
    let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: y\r\n\r\nGET /next";
    let end = body.len() - b"GET /next".len();
    for step in 1..body.len() {
        assert_eq!(walk(body, step), Ok((end, true)), "step {step}");
    }
    assert_eq!(walk(b"0\r\n\r\n", 100), Ok((5, true)));
    assert_eq!(walk(b"3\r\nabc\r\n", 100), Ok((8, false)));
}

#[test]
fn chunked_errors() {
    assert_eq!(walk(b"zz\r\n", 10), Err(ChunkError));
    assert_eq!(walk(b"3\r\nabcX", 10), Err(ChunkError));
    assert_eq!(walk(b"ffffffffffffffff\r\n", 10), Err(ChunkError));
    assert_eq!(walk(b"\r\n", 10), Err(ChunkError));
}

#[test]
fn chunked_skip_only_inside_data() {
    let mut c = Chunked::default();
    assert_eq!(c.feed(b"a\r\nab"), Ok(5));
    assert!(c.skip(6), "6 of the 8 data bytes left");
    assert!(!c.skip(3), "only 2 left: the gap covers framing");
    let mut c = Chunked::default();
    assert_eq!(c.feed(b"a\r\nab"), Ok(5));
    assert!(c.skip(8));
    assert_eq!(c.feed(b"\r\n0\r\n\r\n"), Ok(7));
    assert!(c.is_done());
    assert!(!Chunked::default().skip(1));
}

#[test]
fn request_line_for_display() {
    assert_eq!(request_line(b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n").as_deref(), Some("GET /a?b HTTP/1.1"));
    assert_eq!(request_line(b"POST /very/long/pa").as_deref(), Some("POST /very/long/pa..."));
    assert_eq!(request_line(b"HTTP/1.1 200 OK\r\n"), None);
    assert_eq!(request_line(b"\x16\x03\x01"), None);
}
