//! Exchanges built to be wrong in known ways, checked against the test API written as OpenAPI 3.0
//! (YAML) and as 3.1 (JSON): every exchange gives exactly the kinds it was built to provoke, and
//! the aggregated counts are the tallies of what was sent.
mod common;
use common::{exchanges, sorted};
use rxray_openapi::{CheckLimits, Checker, Kind, Spec, Version};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn load(name: &str) -> Arc<Spec> {
    Arc::new(Spec::load(&data(name), rxray_openapi::DEFAULT_MAX_SPEC_BYTES).unwrap_or_else(|e| panic!("{e}")))
}

fn run(spec: &Arc<Spec>) {
    let mut c = Checker::new(spec.clone(), CheckLimits::default());
    let sent = exchanges();
    let mut expected: BTreeMap<(Kind, String, String, Option<u16>), u64> = BTreeMap::new();
    for (i, s) in sent.iter().enumerate() {
        let h = s.headers();
        let got = c.check(&s.exchange(&h, 1_000 + i as u64));
        assert_eq!(sorted(got.kinds.clone()), sorted(s.expect.clone()), "exchange {i}: {} {} -> {}", s.method, s.target, s.status);
        for k in &s.expect {
            let template = got.template.clone().unwrap_or_else(|| s.target.split('?').next().unwrap().to_owned());
            let status = match k {
                Kind::UndocumentedStatus => Some(s.status),
                // A response body's violation is keyed by status; the request body's is not.
                Kind::SchemaViolation if s.method == "GET" => Some(s.status),
                _ => None,
            };
            *expected.entry((*k, s.method.to_owned(), template, status)).or_default() += 1;
        }
    }
    let got: BTreeMap<_, _> = c
        .findings()
        .into_iter()
        .map(|f| ((f.kind, f.method.clone(), f.template.clone().unwrap_or_else(|| f.path.split('?').next().unwrap().to_owned()), f.status), f.count))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(c.counters.exchanges, sent.len() as u64);
    assert_eq!(c.counters.overflow, 0);
}

#[test]
fn openapi_3_0_yaml_findings_are_exact() {
    let spec = load("petstore-3.0.yaml");
    assert_eq!(spec.version, Version::V30);
    run(&spec);
}

#[test]
fn openapi_3_1_json_findings_are_exact() {
    let spec = load("petstore-3.1.json");
    assert_eq!(spec.version, Version::V31);
    run(&spec);
}

#[test]
fn findings_carry_template_example_and_detail() {
    let spec = load("petstore-3.0.yaml");
    let mut c = Checker::new(spec.clone(), CheckLimits::default());
    let sent = exchanges();
    for (i, s) in sent.iter().enumerate() {
        let h = s.headers();
        c.check(&s.exchange(&h, 5_000 + i as u64));
    }
    let f = c.findings();
    let missing = f.iter().find(|f| f.kind == Kind::MissingParameter).unwrap();
    assert_eq!(missing.template.as_deref(), Some("/pets"));
    assert_eq!(missing.count, 5);
    assert_eq!(missing.detail.location, "header parameter X-Request-Id");
    // The example is the first exchange that showed it.
    let first = sent.iter().position(|s| s.expect.contains(&Kind::MissingParameter)).unwrap();
    assert_eq!(missing.example.request_line, format!("GET {}", sent[first].target));
    assert_eq!(missing.example.time_ns, 5_000 + first as u64);
    let resp = f.iter().find(|f| f.kind == Kind::SchemaViolation && f.template.as_deref() == Some("/pets/{petId}")).unwrap();
    assert_eq!(resp.detail.location, "response body");
    assert_eq!(resp.detail.pointer.as_deref(), Some("/owner/pets/0/name"));
    assert_eq!(resp.detail.keyword.as_deref(), Some("minLength"));
    // The request body's finding keeps its first example's detail: {"name": 5}.
    let req = f.iter().find(|f| f.kind == Kind::SchemaViolation && f.method == "POST").unwrap();
    assert_eq!((req.detail.location.as_str(), req.detail.pointer.as_deref(), req.detail.keyword.as_deref()), ("request body", Some("/name"), Some("type")));
    assert_eq!(req.count, 4);
    // 3.0's boolean exclusiveMinimum, normalised: age 0 fails with the 2020-12 keyword.
    let mut one = Checker::new(spec.clone(), CheckLimits::default());
    let s = sent.iter().find(|s| s.request_body.contains("\"age\": 0")).unwrap();
    let h = s.headers();
    one.check(&s.exchange(&h, 0));
    let f = one.findings();
    assert_eq!((f[0].detail.pointer.as_deref(), f[0].detail.keyword.as_deref()), (Some("/age"), Some("exclusiveMinimum")));
    let json = serde_json::to_value(missing).unwrap();
    for k in ["kind", "method", "path", "template", "count", "example", "detail"] {
        assert!(json.get(k).is_some(), "{k} missing from {json}");
    }
    assert_eq!(json["kind"], "missing_parameter");
}

#[test]
fn literal_templates_win_and_bodies_pass() {
    let spec = load("petstore-3.0.yaml");
    assert_eq!(spec.match_path("/api/v1/pets/mine").unwrap().template, "/pets/mine");
    let m = spec.match_path("/api/v1/pets/12").unwrap();
    assert_eq!((m.template, m.params.clone()), ("/pets/{petId}", vec![("petId", "12".to_owned())]));
    assert!(spec.match_path("/pets/12").is_none(), "the server's base path is required");
    assert!(spec.match_path("/api/v1/pets/12/x").is_none());
}

#[test]
fn truncated_bodies_are_not_checked_but_counted() {
    let spec = load("petstore-3.1.json");
    let mut c = Checker::new(spec.clone(), CheckLimits::default());
    let mut s = exchanges().into_iter().find(|s| s.expect == [Kind::SchemaViolation] && s.method == "GET").unwrap();
    s.response_truncated = true;
    let h = s.headers();
    let got = c.check(&s.exchange(&h, 1));
    assert!(got.kinds.is_empty(), "{:?}", got.kinds);
    assert_eq!(c.counters.not_checked, 1);
    assert_eq!(c.counters.bodies_checked, 0);
}

#[test]
fn the_findings_table_is_bounded_with_a_counted_overflow() {
    let spec = load("petstore-3.0.yaml");
    let mut c = Checker::new(spec.clone(), CheckLimits { max_findings: 3 });
    let paths: Vec<String> = (0..10).map(|i| format!("/nowhere/{i}")).collect();
    for p in &paths {
        c.check(&rxray_openapi::Exchange { status: Some(404), ..rxray_openapi::Exchange::new("GET", p) });
    }
    assert_eq!(c.findings().len(), 3);
    assert_eq!(c.counters.overflow, 7);
}

fn get(target: &str) -> rxray_openapi::Exchange<'_> {
    rxray_openapi::Exchange { status: Some(200), ..rxray_openapi::Exchange::new("GET", target) }
}

#[test]
fn booleans_are_true_or_false_only() {
    // openapi-core also takes yes/no/on/off/1/0 (Python's strtobool); rxray takes JSON's literals,
    // which is what OpenAPI's form and simple styles serialise. docs/openapi.md says so.
    let spec = load("petstore-3.0.yaml");
    let mut c = Checker::new(spec.clone(), CheckLimits::default());
    assert!(c.check(&get("/api/v1/owners/bob?verbose=true")).kinds.is_empty());
    assert_eq!(c.check(&get("/api/v1/owners/bob?verbose=yes")).kinds, vec![Kind::WrongType]);
}

#[test]
fn relative_and_templated_servers_and_ranges() {
    let text = r#"
openapi: 3.1.0
info: {title: t, version: "1"}
servers:
  - url: '{scheme}://{host}/api/{version}'
    variables:
      scheme: {default: https}
      host: {default: example.com}
      version: {default: v2}
  - url: /legacy
paths:
  /files/{name}.{ext}:
    get:
      responses:
        2XX: {description: ok}
        default: {description: any}
  /files/readme.txt:
    get:
      responses:
        '200': {description: ok}
"#;
    let spec = Arc::new(Spec::from_text("inline", text).unwrap());
    let m = spec.match_path("/api/v3/files/report.tar.gz").unwrap();
    assert_eq!(m.template, "/files/{name}.{ext}");
    assert_eq!(m.params, vec![("name", "report".to_owned()), ("ext", "tar.gz".to_owned())]);
    assert_eq!(spec.match_path("/legacy/files/readme.txt").unwrap().template, "/files/readme.txt");
    assert!(spec.match_path("/files/readme.txt").is_none());
    let mut c = Checker::new(spec.clone(), CheckLimits::default());
    let mut x = get("/legacy/files/readme.txt");
    x.status = Some(500);
    assert_eq!(c.check(&x).kinds, vec![Kind::UndocumentedStatus]);
    let mut x = get("/legacy/files/a.b");
    x.status = Some(299);
    assert!(c.check(&x).kinds.is_empty(), "2XX covers 299");
    x.status = Some(503);
    assert!(c.check(&x).kinds.is_empty(), "default covers the rest");
}

#[test]
fn templates_for_the_endpoint_metrics_and_the_report() {
    let spec = load("petstore-3.1.json");
    assert_eq!(spec.template_of("/api/v1/pets/7?x=1"), Some("/pets/{petId}"));
    assert_eq!(spec.template_of("http://localhost:8080/api/v1/pets/mine"), Some("/pets/mine"));
    assert_eq!(spec.template_of("/api/v1/nope"), None);
    let mut c = Checker::new(spec.clone(), CheckLimits::default());
    c.check(&get("/api/v1/nope"));
    let r = serde_json::to_value(c.report()).unwrap();
    assert_eq!(r["findings"][0]["kind"], "undocumented_path");
    assert_eq!(r["findings"][0]["count"], 1);
    assert_eq!(r["exchanges"], 1);
    assert_eq!(r["not_checked"], 0);
}

#[test]
fn parameter_styles_and_cookies() {
    let text = r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /s:
    get:
      parameters:
        - {name: ids, in: query, explode: false, schema: {type: array, items: {type: integer}}}
        - {name: ps, in: query, style: pipeDelimited, schema: {type: array, items: {type: number}}}
        - {name: filter, in: query, style: deepObject, schema: {type: object}}
        - {name: X-Flags, in: header, schema: {type: array, items: {type: boolean}}}
        - {name: session, in: cookie, required: true, schema: {type: integer, minimum: 1}}
        - {name: Accept, in: header, required: true, schema: {type: integer}}
      responses:
        '200': {description: ok}
"#;
    let spec = Arc::new(Spec::from_text("inline", text).unwrap());
    let mut c = Checker::new(spec.clone(), CheckLimits::default());
    let mut kinds = |target: &str, headers: &[(&str, &[u8])]| {
        let x = rxray_openapi::Exchange { request_headers: headers, status: Some(200), ..rxray_openapi::Exchange::new("GET", target) };
        c.check(&x).kinds
    };
    let cookie: &[(&str, &[u8])] = &[("Cookie", b"a=b; session=7")];
    assert_eq!(kinds("/s?ids=1,2,3&ps=1.5|2&filter[x]=y", cookie), vec![]);
    assert_eq!(kinds("/s?ids=1,x", cookie), vec![Kind::WrongType]);
    assert_eq!(kinds("/s?ps=1|z", cookie), vec![Kind::WrongType]);
    assert_eq!(kinds("/s", &[("Cookie", b"session=7"), ("x-flags", b"true,false")]), vec![]);
    assert_eq!(kinds("/s", &[("Cookie", b"session=7"), ("x-flags", b"true,maybe")]), vec![Kind::WrongType]);
    assert_eq!(kinds("/s", &[("Cookie", b"session=0")]), vec![Kind::WrongType], "minimum 1");
    // No cookie: the required session is missing (the required Accept is ignored, as the spec says).
    assert_eq!(kinds("/s", &[]), vec![Kind::MissingParameter]);
    let f = c.findings();
    let missing = f.iter().find(|f| f.kind == Kind::MissingParameter).unwrap();
    assert_eq!(missing.detail.location, "cookie parameter session");
}

#[test]
fn wildcard_media_types_validate_json_bodies_only() {
    let text = r#"
openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /w:
    get:
      responses:
        '200':
          description: ok
          content:
            '*/*':
              schema: {type: object, required: [a]}
"#;
    let spec = Arc::new(Spec::from_text("inline", text).unwrap());
    let mut c = Checker::new(spec, CheckLimits::default());
    let mut kinds = |ct: &'static [u8], body: &'static [u8]| {
        let h = [("Content-Type", ct)];
        let x = rxray_openapi::Exchange { status: Some(200), response_headers: &h, response_body: body, ..rxray_openapi::Exchange::new("GET", "/w") };
        c.check(&x).kinds
    };
    assert_eq!(kinds(b"text/html", b"<html>"), vec![]);
    assert_eq!(kinds(b"application/json", b"{\"a\": 1}"), vec![]);
    assert_eq!(kinds(b"application/problem+json", b"{}"), vec![Kind::SchemaViolation]);
}
