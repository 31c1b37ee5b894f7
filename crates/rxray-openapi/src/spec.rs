//! An OpenAPI 3.0 or 3.1 document, loaded into what the checks need: servers' base paths, path
//! templates, operations with their parameters, request bodies and responses, and compiled schemas.
//!
//! The document is read as plain JSON (see `text`), every local `$ref` is resolved here with cycle
//! detection, 3.0 schemas are rewritten to JSON Schema 2020-12 (`normalize`), and only schemas go to
//! the `jsonschema` validator, which sees the whole normalised document as one registered resource
//! so that `$ref`s between schemas (recursive ones included) resolve as the document wrote them.
use crate::error::SpecError;
use crate::normalize;
use crate::path::{PathTemplate, Server};
use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The URI the normalised document is registered under, for the validator's `$ref`s (never fetched).
const DOC_URI: &str = "https://rxray.invalid/openapi.json";

/// The OpenAPI version family, which decides the schema dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    /// 3.0.x: schemas are OpenAPI's JSON Schema subset (`nullable`, boolean `exclusiveMinimum`).
    V30,
    /// 3.1.x: schemas are JSON Schema 2020-12.
    V31,
}

/// The HTTP methods an OpenAPI path item can hold, in the specification's order.
pub const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Where a parameter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
            Location::Cookie => "cookie",
        }
    }
}

/// A primitive type a parameter value is cast to before its schema is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prim {
    String,
    Integer,
    Number,
    Boolean,
}

/// How a parameter's value is read, from its schema and style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One value, cast to the type.
    Primitive(Prim),
    /// A list of values split by the style's delimiter (or repeated keys for exploded forms).
    Array { item: Prim, delimiter: Option<char> },
    /// Objects, `content` parameters and the styles rxray does not parse: presence only.
    PresenceOnly,
}

#[derive(Debug)]
pub struct Parameter {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub shape: Shape,
    pub(crate) schema: Option<Arc<Validator>>,
}

/// Media types with their schemas (`None`: no schema, or not JSON, so nothing to validate).
#[derive(Debug, Default)]
pub struct Content {
    pub(crate) media: Vec<(String, Option<Arc<Validator>>)>,
}

#[derive(Debug)]
pub struct RequestBody {
    pub required: bool,
    pub content: Content,
}

#[derive(Debug)]
pub struct Operation {
    pub method: &'static str,
    pub parameters: Vec<Parameter>,
    pub request_body: Option<RequestBody>,
    /// Response keys as written (`"200"`, `"2XX"`, `"default"`), with their content.
    pub(crate) responses: Vec<(String, Content)>,
}

#[derive(Debug)]
pub struct PathItem {
    pub template: PathTemplate,
    pub operations: Vec<Operation>,
}

/// A loaded spec.
#[derive(Debug)]
pub struct Spec {
    pub file: String,
    pub version: Version,
    pub(crate) servers: Vec<Server>,
    pub(crate) paths: Vec<PathItem>,
    /// Indexes into `paths` by number of segments, for matching.
    pub(crate) by_len: HashMap<usize, Vec<usize>>,
    /// Distinct compiled schemas (shared between operations that `$ref` the same one).
    pub schemas: usize,
}

/// The default limit on a spec file: 16 MiB (the largest public specs, e.g. GitHub's, are ~10 MB).
pub const DEFAULT_MAX_SPEC_BYTES: u64 = 16 << 20;

impl Spec {
    /// Reads and loads a spec file of at most `limit` bytes.
    pub fn load(path: &std::path::Path, limit: u64) -> Result<Spec, SpecError> {
        let text = crate::read::read_spec_file(path, limit)?;
        Spec::from_text(&path.display().to_string(), &text)
    }

    /// Loads a spec from its text; `file` names it in errors.
    pub fn from_text(file: &str, text: &str) -> Result<Spec, SpecError> {
        let doc = crate::text::parse(text).map_err(|e| SpecError {
            file: file.into(),
            pointer: None,
            line: e.pos.map(|p| p.line),
            col: e.pos.map(|p| p.col),
            message: e.message,
        })?;
        Loader { file, doc: &doc }.load().map_err(|e| e.located(text))
    }

    /// Every path template in the spec, in document order.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(|p| p.template.text.as_str())
    }

    /// Number of operations (method + template pairs).
    pub fn operations(&self) -> usize {
        self.paths.iter().map(|p| p.operations.len()).sum()
    }
}

struct Loader<'a> {
    file: &'a str,
    doc: &'a Value,
}

/// Escapes one JSON pointer token.
pub(crate) fn escape_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The JSON pointer a local `$ref` names (`#/a/b%7Bc%7D` is `/a/b{c}`), or why it is not one.
fn ref_pointer(r: &str) -> Result<String, String> {
    let Some(frag) = r.strip_prefix('#') else {
        return Err(format!("$ref {r:?} is not local to this document (rxray resolves only `#/...` references)"));
    };
    let decoded = percent_encoding::percent_decode_str(frag).decode_utf8().map_err(|_| format!("$ref {r:?} is not UTF-8 once decoded"))?;
    if !decoded.is_empty() && !decoded.starts_with('/') {
        return Err(format!("$ref {r:?} names an anchor; rxray resolves only JSON pointer references"));
    }
    Ok(decoded.into_owned())
}

impl<'a> Loader<'a> {
    fn err(&self, pointer: &str, message: impl Into<String>) -> SpecError {
        SpecError::at(self.file, pointer, message)
    }

    fn load(&self) -> Result<Spec, SpecError> {
        let Value::Object(root) = self.doc else {
            return Err(self.err("", format!("an OpenAPI document is an object, not {}", type_name(self.doc))));
        };
        let version = match root.get("openapi") {
            Some(Value::String(v)) if v.starts_with("3.0") => Version::V30,
            Some(Value::String(v)) if v.starts_with("3.1") => Version::V31,
            Some(Value::String(v)) => return Err(self.err("/openapi", format!("OpenAPI version {v:?} is not supported (3.0.x or 3.1.x)"))),
            Some(v) => return Err(self.err("/openapi", format!("`openapi` must be a version string, not {}", type_name(v)))),
            None if root.contains_key("swagger") => return Err(self.err("/swagger", "Swagger 2.0 is not supported (OpenAPI 3.0.x or 3.1.x)")),
            None => return Err(self.err("", "no `openapi` version field: not an OpenAPI 3 document")),
        };
        self.check_refs(self.doc, &mut String::new())?;

        let mut norm = self.doc.clone();
        if version == Version::V30 {
            normalize::document(&mut norm);
        }
        let registry = Registry::new()
            .add(DOC_URI, Draft::Draft202012.create_resource(norm.clone()))
            .and_then(|b| b.prepare())
            .map_err(|e| self.err("", format!("the document's schemas cannot be indexed: {e}")))?;
        let mut schemas = Schemas { reg: &registry, doc: &norm, cache: HashMap::new(), by_text: HashMap::new(), loader: self };

        if let Some(Value::Object(m)) = norm.pointer("/components/schemas") {
            for (k, v) in m {
                schemas.meta_check(v, &format!("/components/schemas/{}", escape_token(k)))?;
            }
        }
        let servers = self.servers(root.get("servers"), "/servers")?;
        let paths_v = root.get("paths");
        let mut paths = Vec::new();
        match paths_v {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (tpl, item) in m {
                    let ptr = format!("/paths/{}", escape_token(tpl));
                    if tpl.starts_with("x-") {
                        continue;
                    }
                    let template = PathTemplate::parse(tpl).map_err(|e| self.err(&ptr, e))?;
                    let (item, iptr) = self.deref(item, &ptr)?;
                    let Value::Object(im) = item else {
                        return Err(self.err(&iptr, format!("a path item is an object, not {}", type_name(item))));
                    };
                    let common = self.params(im.get("parameters"), &format!("{iptr}/parameters"), &mut schemas)?;
                    let mut operations = Vec::new();
                    for &method in METHODS.iter() {
                        let Some(op) = im.get(method) else { continue };
                        let optr = format!("{iptr}/{method}");
                        operations.push(self.operation(method, op, &optr, &common, &mut schemas)?);
                    }
                    paths.push(PathItem { template, operations });
                }
            }
            Some(v) => return Err(self.err("/paths", format!("`paths` is an object, not {}", type_name(v)))),
        }
        let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, p) in paths.iter().enumerate() {
            by_len.entry(p.template.segments.len()).or_default().push(i);
        }
        let n = schemas.by_text.len();
        Ok(Spec { file: self.file.into(), version, servers, paths, by_len, schemas: n })
    }

    /// Every `$ref` string in the document must name a node that exists.
    fn check_refs(&self, v: &Value, at: &mut String) -> Result<(), SpecError> {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let here = format!("{at}/$ref");
                    let p = ref_pointer(r).map_err(|e| self.err(&here, e))?;
                    if self.doc.pointer(&p).is_none() {
                        return Err(self.err(&here, format!("broken $ref: {r:?} names nothing in this document")));
                    }
                }
                for (k, c) in m {
                    let len = at.len();
                    at.push('/');
                    at.push_str(&escape_token(k));
                    self.check_refs(c, at)?;
                    at.truncate(len);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("/{i}"));
                    self.check_refs(c, at)?;
                    at.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Follows `$ref`s from a non-schema object (parameter, body, response, path item) to the object
    /// itself, with its pointer; a cycle is an error.
    fn deref(&self, mut v: &'a Value, at: &str) -> Result<(&'a Value, String), SpecError> {
        let mut ptr = at.to_owned();
        let mut seen = HashSet::new();
        while let Some(Value::String(r)) = v.get("$ref") {
            let p = ref_pointer(r).map_err(|e| self.err(&format!("{ptr}/$ref"), e))?;
            if !seen.insert(p.clone()) {
                return Err(self.err(&format!("{ptr}/$ref"), format!("$ref cycle through {r:?}")));
            }
            v = self.doc.pointer(&p).ok_or_else(|| self.err(&format!("{ptr}/$ref"), format!("broken $ref: {r:?}")))?;
            ptr = p;
        }
        Ok((v, ptr))
    }

    fn servers(&self, v: Option<&Value>, at: &str) -> Result<Vec<Server>, SpecError> {
        let mut out = Vec::new();
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for (i, s) in a.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    let url = match s.get("url") {
                        Some(Value::String(u)) => u,
                        Some(x) => return Err(self.err(&format!("{p}/url"), format!("a server url is a string, not {}", type_name(x)))),
                        None => return Err(self.err(&p, "a server has no `url`")),
                    };
                    out.push(Server::parse(url));
                }
            }
            Some(x) => return Err(self.err(at, format!("`servers` is a list, not {}", type_name(x)))),
        }
        if out.is_empty() {
            out.push(Server::parse("/"));
        }
        Ok(out)
    }

    fn params(&self, v: Option<&'a Value>, at: &str, schemas: &mut Schemas<'_>) -> Result<Vec<Parameter>, SpecError> {
        let mut out: Vec<Parameter> = Vec::new();
        let list = match v {
            None | Some(Value::Null) => return Ok(out),
            Some(Value::Array(a)) => a,
            Some(x) => return Err(self.err(at, format!("`parameters` is a list, not {}", type_name(x)))),
        };
        for (i, p) in list.iter().enumerate() {
            let (p, pp) = self.deref(p, &format!("{at}/{i}"))?;
            let Value::Object(pm) = p else {
                return Err(self.err(&pp, format!("a parameter is an object, not {}", type_name(p))));
            };
            let name = match pm.get("name") {
                Some(Value::String(n)) => n.clone(),
                _ => return Err(self.err(&pp, "a parameter needs a string `name`")),
            };
            let location = match pm.get("in").and_then(Value::as_str) {
                Some("path") => Location::Path,
                Some("query") => Location::Query,
                Some("header") => Location::Header,
                Some("cookie") => Location::Cookie,
                _ => return Err(self.err(&format!("{pp}/in"), "a parameter's `in` is path, query, header or cookie")),
            };
            // The specification: these header parameters are ignored (other fields describe them).
            if location == Location::Header && ["accept", "content-type", "authorization"].contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            let required = match pm.get("required") {
                None => location == Location::Path,
                Some(Value::Bool(b)) => *b,
                Some(x) => return Err(self.err(&format!("{pp}/required"), format!("`required` is a boolean, not {}", type_name(x)))),
            };
            let default_style = match location {
                Location::Query | Location::Cookie => "form",
                Location::Path | Location::Header => "simple",
            };
            let style = match pm.get("style") {
                None => default_style,
                Some(Value::String(s)) => s.as_str(),
                Some(x) => return Err(self.err(&format!("{pp}/style"), format!("`style` is a string, not {}", type_name(x)))),
            };
            let explode = match pm.get("explode") {
                None => style == "form",
                Some(Value::Bool(b)) => *b,
                Some(x) => return Err(self.err(&format!("{pp}/explode"), format!("`explode` is a boolean, not {}", type_name(x)))),
            };
            let (shape, schema) = match pm.get("schema") {
                Some(s) => {
                    let sp = format!("{pp}/schema");
                    let shape = self.shape(s, &sp, style, explode)?;
                    let validator = if shape == Shape::PresenceOnly { None } else { Some(schemas.compile(&sp)?) };
                    (shape, validator)
                }
                None => (Shape::PresenceOnly, None),
            };
            let param = Parameter { name, location, required, shape, schema };
            // An operation's parameter overrides the path item's one with the same name and place.
            if let Some(old) = out.iter_mut().find(|o| o.name == param.name && o.location == param.location) {
                *old = param;
            } else {
                out.push(param);
            }
        }
        Ok(out)
    }

    /// The shape of a parameter from its (dereferenced) schema, its style and explode.
    fn shape(&self, s: &'a Value, at: &str, style: &str, explode: bool) -> Result<Shape, SpecError> {
        let (s, sp) = self.deref(s, at)?;
        let ty = self.prim_or_container(s, &sp)?;
        Ok(match ty {
            Some(Ok(p)) if matches!(style, "form" | "simple") => Shape::Primitive(p),
            Some(Err(true)) => {
                let items = s.get("items").map(|i| self.deref(i, &format!("{sp}/items"))).transpose()?;
                let item = match items {
                    Some((i, ip)) => match self.prim_or_container(i, &ip)? {
                        Some(Ok(p)) => p,
                        None => Prim::String,
                        Some(Err(_)) => return Ok(Shape::PresenceOnly),
                    },
                    None => Prim::String,
                };
                let delimiter = match (style, explode) {
                    ("form", true) => None,
                    ("form", false) | ("simple", _) => Some(','),
                    ("spaceDelimited", _) => Some(' '),
                    ("pipeDelimited", _) => Some('|'),
                    _ => return Ok(Shape::PresenceOnly),
                };
                Shape::Array { item, delimiter }
            }
            None if matches!(style, "form" | "simple") => Shape::Primitive(Prim::String),
            _ => Shape::PresenceOnly,
        })
    }

    /// `Some(Ok(prim))`, `Some(Err(true))` for an array, `Some(Err(false))` for an object, `None`
    /// when the schema names no type.
    fn prim_or_container(&self, s: &Value, at: &str) -> Result<Option<Result<Prim, bool>>, SpecError> {
        let t = match s.get("type") {
            None => return Ok(None),
            Some(Value::String(t)) => t.as_str(),
            // 3.1: a type list; the first one that is not null decides the cast.
            Some(Value::Array(a)) => match a.iter().filter_map(Value::as_str).find(|t| *t != "null") {
                Some(t) => t,
                None => return Ok(None),
            },
            Some(x) => return Err(self.err(&format!("{at}/type"), format!("`type` is a string, not {}", type_name(x)))),
        };
        Ok(Some(match t {
            "string" => Ok(Prim::String),
            "integer" => Ok(Prim::Integer),
            "number" => Ok(Prim::Number),
            "boolean" => Ok(Prim::Boolean),
            "array" => Err(true),
            "object" => Err(false),
            other => return Err(self.err(&format!("{at}/type"), format!("unknown schema type {other:?}"))),
        }))
    }

    fn content(&self, v: Option<&'a Value>, at: &str, schemas: &mut Schemas<'_>) -> Result<Content, SpecError> {
        let mut media = Vec::new();
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (mt, obj) in m {
                    let mp = format!("{at}/{}", escape_token(mt));
                    let Value::Object(om) = obj else {
                        return Err(self.err(&mp, format!("a media type is an object, not {}", type_name(obj))));
                    };
                    let validator = match om.get("schema") {
                        Some(_) if is_json(mt) => Some(schemas.compile(&format!("{mp}/schema"))?),
                        _ => None,
                    };
                    media.push((mt.to_ascii_lowercase(), validator));
                }
            }
            Some(x) => return Err(self.err(at, format!("`content` is an object, not {}", type_name(x)))),
        }
        Ok(Content { media })
    }

    fn operation(&self, method: &'static str, op: &'a Value, at: &str, common: &[Parameter], schemas: &mut Schemas<'_>) -> Result<Operation, SpecError> {
        let Value::Object(om) = op else {
            return Err(self.err(at, format!("an operation is an object, not {}", type_name(op))));
        };
        let own = self.params(om.get("parameters"), &format!("{at}/parameters"), schemas)?;
        let mut parameters: Vec<Parameter> = Vec::new();
        for c in common {
            if !own.iter().any(|o| o.name == c.name && o.location == c.location) {
                parameters.push(Parameter { name: c.name.clone(), location: c.location, required: c.required, shape: c.shape, schema: c.schema.clone() });
            }
        }
        parameters.extend(own);
        let request_body = match om.get("requestBody") {
            None => None,
            Some(b) => {
                let (b, bp) = self.deref(b, &format!("{at}/requestBody"))?;
                let required = match b.get("required") {
                    None => false,
                    Some(Value::Bool(r)) => *r,
                    Some(x) => return Err(self.err(&format!("{bp}/required"), format!("`required` is a boolean, not {}", type_name(x)))),
                };
                Some(RequestBody { required, content: self.content(b.get("content"), &format!("{bp}/content"), schemas)? })
            }
        };
        let mut responses = Vec::new();
        match om.get("responses") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (code, r) in m {
                    if code.starts_with("x-") {
                        continue;
                    }
                    let rp = format!("{at}/responses/{}", escape_token(code));
                    if !valid_status_key(code) {
                        return Err(self.err(&rp, format!("response key {code:?} is not a status code, a range like 2XX, or default")));
                    }
                    let (r, rp) = self.deref(r, &rp)?;
                    let Value::Object(_) = r else {
                        return Err(self.err(&rp, format!("a response is an object, not {}", type_name(r))));
                    };
                    responses.push((code.to_ascii_uppercase().replace("DEFAULT", "default"), self.content(r.get("content"), &format!("{rp}/content"), schemas)?));
                }
            }
            Some(x) => return Err(self.err(&format!("{at}/responses"), format!("`responses` is an object, not {}", type_name(x)))),
        }
        Ok(Operation { method, parameters, request_body, responses })
    }
}

fn valid_status_key(k: &str) -> bool {
    let b = k.as_bytes();
    k == "default"
        || (b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && ((b[1].is_ascii_digit() && b[2].is_ascii_digit()) || (b[1..].eq_ignore_ascii_case(b"XX"))))
}

/// Media types whose bodies are JSON: `application/json` and any `+json` suffix (and `*/*` ones
/// whose schema is given, which the validator can only check as JSON).
pub(crate) fn is_json(media: &str) -> bool {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    m == "application/json" || m.ends_with("+json") || m == "*/*" || m == "application/*"
}

/// Compiled validators, one per distinct schema node (after following a bare `$ref`).
struct Schemas<'r> {
    reg: &'r Registry<'r>,
    doc: &'r Value,
    cache: HashMap<String, Arc<Validator>>,
    by_text: HashMap<String, Arc<Validator>>,
    loader: &'r Loader<'r>,
}

/// A JSON pointer as a URI fragment: every byte outside the unreserved set and `/` is escaped.
fn fragment(pointer: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(pointer, SET).to_string()
}

impl Schemas<'_> {
    /// A schema must be a valid JSON Schema 2020-12 (after 3.0 normalisation): a wrong type for a
    /// keyword is an error at its pointer.
    fn meta_check(&self, node: &Value, ptr: &str) -> Result<(), SpecError> {
        jsonschema::draft202012::meta::validate(node).map_err(|e| {
            let inner = e.instance_path().as_str();
            self.loader.err(&format!("{ptr}{inner}"), format!("invalid schema: {e}"))
        })
    }

    fn compile(&mut self, at: &str) -> Result<Arc<Validator>, SpecError> {
        // Follow a bare `$ref` (nothing else beside it), so operations sharing a component share its
        // validator. A schema with siblings next to `$ref` is compiled where it is (2020-12 applies both).
        let mut ptr = at.to_owned();
        let mut seen = HashSet::new();
        loop {
            let Some(node) = self.doc.pointer(&ptr) else {
                return Err(self.loader.err(&ptr, "broken $ref"));
            };
            match node.as_object() {
                Some(m) if m.len() == 1 => match m.get("$ref") {
                    Some(Value::String(r)) => {
                        let p = ref_pointer(r).map_err(|e| self.loader.err(&format!("{ptr}/$ref"), e))?;
                        if !seen.insert(p.clone()) {
                            return Err(self.loader.err(&format!("{ptr}/$ref"), format!("$ref cycle through {r:?}")));
                        }
                        ptr = p;
                    }
                    _ => break,
                },
                _ => break,
            }
        }
        if let Some(v) = self.cache.get(&ptr) {
            return Ok(v.clone());
        }
        // Identical schema text means the identical schema (every `$ref` here is document-absolute),
        // so the many inline `{type: integer}` parameters share one validator.
        let text = self.doc.pointer(&ptr).map(Value::to_string).unwrap_or_default();
        if let Some(v) = self.by_text.get(&text) {
            let v = v.clone();
            self.cache.insert(ptr, v.clone());
            return Ok(v);
        }
        if let Some(node) = self.doc.pointer(&ptr) {
            self.meta_check(node, &ptr)?;
        }
        let wrapper = serde_json::json!({ "$ref": format!("{DOC_URI}#{}", fragment(&ptr)) });
        let v = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(self.reg)
            .should_validate_formats(true)
            .build(&wrapper)
            .map_err(|e| {
                let inner = e.instance_path().as_str();
                let p = if inner.is_empty() { ptr.clone() } else { format!("{ptr}{inner}") };
                self.loader.err(&p, format!("invalid schema: {e}"))
            })?;
        let v = Arc::new(v);
        self.cache.insert(ptr, v.clone());
        self.by_text.insert(text, v.clone());
        Ok(v)
    }
}
