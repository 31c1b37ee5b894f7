//! Checking HTTP exchanges against a spec: findings per exchange, aggregated per
//! (kind, method, template or path, status) with counts, in a bounded table.
use crate::path::{decode, split_target};
use crate::spec::{Content, Location, Operation, Prim, Shape, Spec};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One HTTP exchange as the HTTP layer saw it. Header values are raw bytes; names any case.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    pub method: &'a str,
    /// The request-target as sent: origin form with query (`/pets?limit=3`), or absolute form.
    pub target: &'a str,
    pub request_headers: &'a [(&'a str, &'a [u8])],
    pub request_body: &'a [u8],
    /// The request body was cut at the configured size.
    pub request_truncated: bool,
    /// `None` when no response was seen (the connection ended first).
    pub status: Option<u16>,
    pub response_headers: &'a [(&'a str, &'a [u8])],
    pub response_body: &'a [u8],
    pub response_truncated: bool,
    /// When the request started (kernel or capture time, ns since the epoch).
    pub time_ns: u64,
}

impl<'a> Exchange<'a> {
    /// A request with no headers, no body and no response yet; set the rest with `..`.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        Exchange {
            method,
            target,
            request_headers: &[],
            request_body: b"",
            request_truncated: false,
            status: None,
            response_headers: &[],
            response_body: b"",
            response_truncated: false,
            time_ns: 0,
        }
    }
}

/// What kind of disagreement between traffic and spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    UndocumentedPath,
    UndocumentedMethod,
    UndocumentedStatus,
    MissingParameter,
    WrongType,
    SchemaViolation,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::UndocumentedPath, Kind::UndocumentedMethod, Kind::UndocumentedStatus, Kind::MissingParameter, Kind::WrongType, Kind::SchemaViolation];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UndocumentedPath => "undocumented_path",
            Kind::UndocumentedMethod => "undocumented_method",
            Kind::UndocumentedStatus => "undocumented_status",
            Kind::MissingParameter => "missing_parameter",
            Kind::WrongType => "wrong_type",
            Kind::SchemaViolation => "schema_violation",
        }
    }
}

/// What failed, where: `location` is `request body`, `response body`, `query parameter limit`...;
/// `pointer` and `keyword` are the JSON pointer into the value and the JSON Schema keyword that failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Detail {
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    pub message: String,
}

/// The first exchange that produced a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Example {
    pub request_line: String,
    pub status: Option<u16>,
    pub time_ns: u64,
}

/// One aggregated finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Finding {
    pub kind: Kind,
    pub method: String,
    /// The raw path (with query) of the example.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The response status, for findings about the response (undocumented status, response body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub count: u64,
    pub example: Example,
    pub detail: Detail,
}

/// Bounds on the checker's memory.
#[derive(Clone, Copy, Debug)]
pub struct CheckLimits {
    /// Distinct findings kept; later new ones are counted in `overflow`.
    pub max_findings: usize,
}

impl Default for CheckLimits {
    fn default() -> Self {
        CheckLimits { max_findings: 1000 }
    }
}

/// Counters over every exchange checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CheckCounters {
    pub exchanges: u64,
    /// Exchanges matched to an operation.
    pub matched: u64,
    /// Bodies validated against a schema.
    pub bodies_checked: u64,
    /// Bodies that had a schema but were truncated, so not checked.
    pub not_checked: u64,
    /// Finding occurrences whose (kind, method, template, status) was new when the table was full.
    pub overflow: u64,
}

/// What a snapshot shows: the spec, the findings (most frequent first) and the counters.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub spec: String,
    pub findings: Vec<Finding>,
    #[serde(flatten)]
    pub counters: CheckCounters,
}

/// The result of one `check`: the template for the endpoint metrics, and the findings' keys that
/// were seen for the first time (what an alert engine raises on).
#[derive(Debug, Default)]
pub struct Checked {
    pub template: Option<String>,
    pub kinds: Vec<Kind>,
    pub new: Vec<FindingKey>,
    /// Every finding key of this exchange (new or not), once each, in the order found.
    pub keys: Vec<FindingKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FindingKey {
    pub kind: Kind,
    pub method: String,
    /// The template, or for an undocumented path the path without its query.
    pub template: String,
    pub status: Option<u16>,
}

/// Checks exchanges against one spec and keeps the findings.
pub struct Checker {
    spec: Arc<Spec>,
    limits: CheckLimits,
    findings: HashMap<FindingKey, Finding>,
    pub counters: CheckCounters,
}

struct Found {
    kind: Kind,
    status: Option<u16>,
    detail: Detail,
}

fn header<'a>(headers: &'a [(&'a str, &'a [u8])], name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

fn detail(location: impl Into<String>, message: impl Into<String>) -> Detail {
    Detail { location: location.into(), pointer: None, keyword: None, message: message.into() }
}

impl Checker {
    /// A checker over a shared spec (the live source, the capture source and the alert engine can
    /// hold the same one).
    pub fn new(spec: Arc<Spec>, limits: CheckLimits) -> Self {
        Checker { spec, limits, findings: HashMap::new(), counters: CheckCounters::default() }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Checks one exchange and records its findings; at most one per (kind, status) for it.
    pub fn check(&mut self, x: &Exchange<'_>) -> Checked {
        self.counters.exchanges += 1;
        let (path, query) = split_target(x.target);
        let mut found: Vec<Found> = Vec::new();
        let mut out = Checked::default();
        let key_path;
        // A clone of the handle, so the borrow of the spec does not hold `self`.
        let spec = Arc::clone(&self.spec);
        match spec.match_path(path) {
            None => {
                key_path = path.to_owned();
                found.push(Found { kind: Kind::UndocumentedPath, status: None, detail: detail("path", format!("no path template in {} matches {path}", spec.file)) });
            }
            Some(m) => {
                key_path = m.template.to_owned();
                out.template = Some(m.template.to_owned());
                let item = &spec.paths[m.item];
                match item.operations.iter().find(|o| o.method.eq_ignore_ascii_case(x.method)) {
                    None => {
                        let have: Vec<String> = item.operations.iter().map(|o| o.method.to_ascii_uppercase()).collect();
                        found.push(Found {
                            kind: Kind::UndocumentedMethod,
                            status: None,
                            detail: detail("method", format!("{} is not documented for {} (documented: {})", x.method, m.template, have.join(", "))),
                        });
                    }
                    Some(op) => {
                        self.counters.matched += 1;
                        self.parameters(op, &m.params, query, x, &mut found);
                        self.request_body(op, x, &mut found);
                        if let Some(status) = x.status {
                            self.response(op, status, x, &mut found);
                        }
                    }
                }
            }
        }
        for f in found {
            let key = FindingKey { kind: f.kind, method: x.method.to_owned(), template: key_path.clone(), status: f.status };
            // One exchange counts once per finding key (several bad parameters are one finding).
            if out.keys.contains(&key) {
                continue;
            }
            out.keys.push(key.clone());
            if !out.kinds.contains(&f.kind) {
                out.kinds.push(f.kind);
            }
            if let Some(e) = self.findings.get_mut(&key) {
                e.count += 1;
                continue;
            }
            if self.findings.len() >= self.limits.max_findings {
                self.counters.overflow += 1;
                continue;
            }
            out.new.push(key.clone());
            let request_line = format!("{} {}", x.method, x.target);
            self.findings.insert(
                key,
                Finding {
                    kind: f.kind,
                    method: x.method.to_owned(),
                    path: x.target.to_owned(),
                    template: out.template.clone(),
                    status: f.status,
                    count: 1,
                    example: Example { request_line, status: x.status, time_ns: x.time_ns },
                    detail: f.detail,
                },
            );
        }
        out
    }

    /// The finding kept under `key` (with its count so far), if the table holds it.
    pub fn finding(&self, key: &FindingKey) -> Option<&Finding> {
        self.findings.get(key)
    }

    /// The findings with the counters, as snapshots and reports carry them.
    pub fn report(&self) -> Report {
        Report { spec: self.spec.file.clone(), findings: self.findings(), counters: self.counters.clone() }
    }

    /// Every finding so far, most frequent first (then by kind, method, template, status).
    pub fn findings(&self) -> Vec<Finding> {
        let mut v: Vec<Finding> = self.findings.values().cloned().collect();
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.kind.cmp(&b.kind))
                .then(a.method.cmp(&b.method))
                .then(a.template.as_deref().unwrap_or(&a.path).cmp(b.template.as_deref().unwrap_or(&b.path)))
                .then(a.status.cmp(&b.status))
        });
        v
    }

    fn parameters(&self, op: &Operation, path_params: &[(&str, String)], query: &str, x: &Exchange<'_>, found: &mut Vec<Found>) {
        let mut query_pairs: Option<Vec<(String, String)>> = None;
        let mut cookies: Option<Vec<(String, String)>> = None;
        for p in &op.parameters {
            let values: Vec<String> = match p.location {
                Location::Path => path_params.iter().filter(|(n, _)| *n == p.name).map(|(_, v)| v.clone()).collect(),
                Location::Query => {
                    let q = query_pairs.get_or_insert_with(|| parse_query(query));
                    q.iter().filter(|(n, _)| *n == p.name).map(|(_, v)| v.clone()).collect()
                }
                Location::Header => x
                    .request_headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(&p.name))
                    .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
                    .collect(),
                Location::Cookie => {
                    let c = cookies.get_or_insert_with(|| parse_cookies(header(x.request_headers, "cookie").unwrap_or(b"")));
                    c.iter().filter(|(n, _)| *n == p.name).map(|(_, v)| v.clone()).collect()
                }
            };
            let place = format!("{} parameter {}", p.location.as_str(), p.name);
            if values.is_empty() {
                if p.required {
                    found.push(Found { kind: Kind::MissingParameter, status: None, detail: detail(place, format!("required {} parameter {:?} is missing", p.location.as_str(), p.name)) });
                }
                continue;
            }
            let Some(schema) = &p.schema else { continue };
            let value = match p.shape {
                Shape::PresenceOnly => continue,
                Shape::Primitive(t) => cast(&values[0], t),
                Shape::Array { item, delimiter } => {
                    let parts: Vec<&str> = match delimiter {
                        None => values.iter().map(String::as_str).collect(),
                        Some(d) => values[0].split(d).collect(),
                    };
                    parts.into_iter().map(|v| cast(v, item)).collect::<Result<Vec<_>, _>>().map(Value::Array)
                }
            };
            match value {
                Err(why) => found.push(Found {
                    kind: Kind::WrongType,
                    status: None,
                    detail: Detail { location: place, pointer: Some(String::new()), keyword: Some("type".into()), message: why },
                }),
                Ok(v) => {
                    if let Some((pointer, keyword, message)) = first_error(schema, &v) {
                        found.push(Found {
                            kind: Kind::WrongType,
                            status: None,
                            detail: Detail { location: place, pointer: Some(pointer), keyword: Some(keyword), message },
                        });
                    }
                }
            }
        }
    }

    fn request_body(&mut self, op: &Operation, x: &Exchange<'_>, found: &mut Vec<Found>) {
        let Some(body) = &op.request_body else { return };
        if x.request_body.is_empty() && !x.request_truncated {
            if body.required {
                found.push(Found {
                    kind: Kind::SchemaViolation,
                    status: None,
                    detail: Detail { location: "request body".into(), pointer: None, keyword: Some("required".into()), message: "the request body is required but empty".into() },
                });
            }
            return;
        }
        let ct = header(x.request_headers, "content-type");
        self.body(&body.content, "request body", None, ct, x.request_body, x.request_truncated, found);
    }

    fn response(&mut self, op: &Operation, status: u16, x: &Exchange<'_>, found: &mut Vec<Found>) {
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        let resp = op
            .responses
            .iter()
            .find(|(k, _)| *k == code)
            .or_else(|| op.responses.iter().find(|(k, _)| *k == range))
            .or_else(|| op.responses.iter().find(|(k, _)| k == "default"));
        let Some((_, content)) = resp else {
            let have: Vec<&str> = op.responses.iter().map(|(k, _)| k.as_str()).collect();
            found.push(Found { kind: Kind::UndocumentedStatus, status: Some(status), detail: detail("status", format!("status {status} is not documented (documented: {})", have.join(", "))) });
            return;
        };
        if x.response_body.is_empty() && !x.response_truncated {
            return;
        }
        let ct = header(x.response_headers, "content-type");
        self.body(content, "response body", Some(status), ct, x.response_body, x.response_truncated, found);
    }

    #[allow(clippy::too_many_arguments)]
    fn body(&mut self, content: &Content, place: &str, status: Option<u16>, ct: Option<&[u8]>, bytes: &[u8], truncated: bool, found: &mut Vec<Found>) {
        if content.media.is_empty() {
            return;
        }
        let media = ct.map(|c| String::from_utf8_lossy(c).split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let entry = match &media {
            Some(m) => {
                let wild = m.split('/').next().map(|t| format!("{t}/*"));
                content
                    .media
                    .iter()
                    .find(|(k, _)| k == m)
                    .or_else(|| content.media.iter().find(|(k, _)| Some(k) == wild.as_ref()))
                    .or_else(|| content.media.iter().find(|(k, _)| k == "*/*"))
            }
            None if content.media.len() == 1 => content.media.first(),
            None => None,
        };
        let Some((_, schema)) = entry else {
            let have: Vec<&str> = content.media.iter().map(|(k, _)| k.as_str()).collect();
            found.push(Found {
                kind: Kind::SchemaViolation,
                status,
                detail: Detail {
                    location: place.into(),
                    pointer: None,
                    keyword: Some("content".into()),
                    message: format!("media type {} is not documented (documented: {})", media.as_deref().unwrap_or("(none)"), have.join(", ")),
                },
            });
            return;
        };
        let Some(schema) = schema else { return };
        // A wildcard entry (`*/*`, `application/*`) with a schema is validated only for JSON bodies.
        if media.as_deref().is_some_and(|m| !crate::spec::is_json(m) || m == "*/*" || m == "application/*") {
            return;
        }
        if truncated {
            self.counters.not_checked += 1;
            return;
        }
        self.counters.bodies_checked += 1;
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                found.push(Found {
                    kind: Kind::SchemaViolation,
                    status,
                    detail: Detail { location: place.into(), pointer: None, keyword: Some("json".into()), message: format!("not JSON: {e}") },
                });
                return;
            }
        };
        if let Some((pointer, keyword, message)) = first_error(schema, &value) {
            found.push(Found {
                kind: Kind::SchemaViolation,
                status,
                detail: Detail { location: place.into(), pointer: Some(pointer), keyword: Some(keyword), message },
            });
        }
    }
}

/// The first error of a value against a schema: (JSON pointer into the value, keyword, message).
fn first_error(schema: &jsonschema::Validator, v: &Value) -> Option<(String, String, String)> {
    let e = schema.iter_errors(v).next()?;
    Some((e.instance_path().as_str().to_owned(), e.kind().keyword().to_owned(), e.to_string()))
}

/// A parameter value cast to its schema's type, as OpenAPI's `form`/`simple` styles carry it.
fn cast(v: &str, t: Prim) -> Result<Value, String> {
    match t {
        Prim::String => Ok(Value::String(v.to_owned())),
        Prim::Integer => v.parse::<i64>().map(Value::from).map_err(|_| format!("{v:?} is not an integer")),
        Prim::Number => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{v:?} is not a number")),
        Prim::Boolean => match v {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("{v:?} is not a boolean (true or false)")),
        },
    }
}

/// `a=1&b=x+y&c` as decoded pairs (`+` is a space in a query).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(&k.replace('+', " ")).into_owned(), decode(&v.replace('+', " ")).into_owned())
        })
        .collect()
}

fn parse_cookies(h: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(h)
        .split(';')
        .filter_map(|kv| kv.trim().split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}
