//! The test exchanges: each built to be wrong in a known way (or right), with what it should give.
#![allow(dead_code)]
use rxray_openapi::{Exchange, Kind};

/// An exchange as the test builds it, owned, with the kinds it was made to provoke.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sent {
    pub method: &'static str,
    pub target: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    pub status: u16,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    #[serde(skip)]
    pub response_truncated: bool,
    #[serde(skip)]
    pub expect: Vec<Kind>,
}

pub struct Borrowed<'a> {
    req_h: Vec<(&'a str, &'a [u8])>,
    resp_h: Vec<(&'a str, &'a [u8])>,
}

impl Sent {
    pub fn headers(&self) -> Borrowed<'_> {
        Borrowed {
            req_h: self.request_headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect(),
            resp_h: self.response_headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect(),
        }
    }

    pub fn exchange<'a>(&'a self, h: &'a Borrowed<'a>, time_ns: u64) -> Exchange<'a> {
        Exchange {
            request_headers: &h.req_h,
            request_body: self.request_body.as_bytes(),
            status: Some(self.status),
            response_headers: &h.resp_h,
            response_body: self.response_body.as_bytes(),
            response_truncated: self.response_truncated,
            time_ns,
            ..Exchange::new(self.method, &self.target)
        }
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn x(method: &'static str, target: &str, req_h: &[(&str, &str)], req_body: &str, status: u16, resp_body: &str, expect: &[Kind]) -> Sent {
    let mut request_headers: Vec<(String, String)> = req_h.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    if !req_body.is_empty() {
        request_headers.push((JSON.0.into(), JSON.1.into()));
    }
    let response_headers = if resp_body.is_empty() { vec![] } else { vec![(JSON.0.into(), JSON.1.into())] };
    Sent {
        method,
        target: target.into(),
        request_headers,
        request_body: req_body.into(),
        status,
        response_headers,
        response_body: resp_body.into(),
        response_truncated: false,
        expect: expect.to_vec(),
    }
}

const ID: (&str, &str) = ("X-Request-Id", "r1");
const PETS: &str = r#"[{"id": 1, "name": "rex", "tag": null}, {"id": 2, "name": "tom", "tag": "cat", "age": 3}]"#;
const PET: &str = r#"{"id": 42, "name": "rex"}"#;
const ERR: &str = r#"{"code": 1, "message": "no"}"#;

/// Every exchange of the conformance tests, with repeats so counts are more than one.
pub fn exchanges() -> Vec<Sent> {
    use Kind::*;
    let mut v = vec![
        // Conforming.
        x("GET", "/api/v1/pets?limit=10", &[ID], "", 200, PETS, &[]),
        x("GET", "/api/v1/pets", &[ID], "", 500, ERR, &[]),
        x("POST", "/api/v1/pets", &[], r#"{"name": "rex", "tag": null}"#, 201, PET, &[]),
        x("POST", "/api/v1/pets", &[], r#"{"name": "rex"}"#, 422, ERR, &[]),
        x("GET", "/api/v1/pets/mine", &[], "", 200, "[]", &[]),
        x("GET", "/api/v1/pets/42", &[], "", 200, r#"{"id": 42, "name": "a", "tag": null}"#, &[]),
        x("DELETE", "/api/v1/pets/7", &[], "", 204, "", &[]),
        x("GET", "/api/v1/pets?tags=a&tags=b", &[ID], "", 200, "[]", &[]),
        x("GET", "/api/v1/owners/bob?verbose=true", &[], "", 200, r#"{"name": "bob", "pets": [{"id": 1, "name": "x"}]}"#, &[]),
        x("GET", "/api/v1/health", &[], "", 200, "", &[]),
        // Parameters.
        x("GET", "/api/v1/pets?limit=10", &[], "", 200, PETS, &[MissingParameter]),
        x("GET", "/api/v1/pets?limit=abc", &[ID], "", 200, PETS, &[WrongType]),
        x("GET", "/api/v1/pets?limit=500", &[ID], "", 200, PETS, &[WrongType]),
        x("GET", "/api/v1/pets/abc", &[], "", 404, ERR, &[WrongType]),
        x("GET", "/api/v1/owners/bob?verbose=maybe", &[], "", 200, r#"{"name": "bob"}"#, &[WrongType]),
        x("GET", "/api/v1/owners/Bob1", &[], "", 200, r#"{"name": "bob"}"#, &[WrongType]),
        // Bodies.
        x("GET", "/api/v1/pets", &[ID], "", 200, r#"[{"id": "x", "name": "a"}]"#, &[SchemaViolation]),
        x("POST", "/api/v1/pets", &[], r#"{"name": 5}"#, 201, PET, &[SchemaViolation]),
        x("POST", "/api/v1/pets", &[], r#"{"name": "rex", "age": 0}"#, 201, PET, &[SchemaViolation]),
        x("GET", "/api/v1/pets/42", &[], "", 200, r#"{"id": 42, "name": "a", "owner": {"name": "o", "pets": [{"id": 1, "name": ""}]}}"#, &[SchemaViolation]),
        x("POST", "/api/v1/pets", &[], "", 400, ERR, &[SchemaViolation]),
        // Undocumented.
        x("POST", "/api/v1/pets", &[], r#"{"name": "rex"}"#, 500, ERR, &[UndocumentedStatus]),
        x("PUT", "/api/v1/pets/42", &[], r#"{"name": "rex"}"#, 200, PET, &[UndocumentedMethod]),
        x("GET", "/api/v1/cats", &[], "", 404, "", &[UndocumentedPath]),
        x("GET", "/api/v2/pets", &[ID], "", 200, PETS, &[UndocumentedPath]),
        // Several at once: a missing header and a wrong type are two findings, a bad request body
        // and an undocumented status two more.
        x("GET", "/api/v1/pets?limit=0", &[], "", 200, PETS, &[MissingParameter, WrongType]),
        x("POST", "/api/v1/pets", &[], r#"{"tag": "x"}"#, 503, ERR, &[SchemaViolation, UndocumentedStatus]),
    ];
    // Repeats, so the counts say something.
    for _ in 0..3 {
        v.push(x("GET", "/api/v1/pets", &[], "", 200, "[]", &[Kind::MissingParameter]));
    }
    for q in ["?a=1", "?a=2"] {
        v.push(x("GET", &format!("/api/v1/cats{q}"), &[], "", 404, "", &[Kind::UndocumentedPath]));
    }
    v
}

/// Kinds in a fixed order, for comparing sets.
pub fn sorted(mut k: Vec<Kind>) -> Vec<Kind> {
    k.sort();
    k.dedup();
    k
}
