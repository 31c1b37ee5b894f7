//! Spec text to a JSON value: JSON through serde_json, YAML through saphyr-parser's event stream,
//! and the line of any JSON pointer in either (for errors that name a place in the document).
//!
//! Why events and not a YAML serde crate: the events carry a position for every node, so an error
//! found later (a broken `$ref`, a wrong type) can still name its line. Nesting depth and alias
//! expansion are bounded here, so later recursive walks and the validator cannot overflow the stack.
use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Deepest nesting accepted (serde_json's own recursion limit is 128 too).
pub const MAX_DEPTH: usize = 128;
/// Most nodes one YAML document may expand to, aliases included (a "billion laughs" stops here).
pub const MAX_NODES: usize = 4_000_000;

/// A place in the text: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// The text could not be read as JSON or YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Whether the text is JSON (its first non-blank character opens an object).
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}').starts_with('{')
}

/// Parses a spec document: JSON when it starts with `{`, YAML otherwise.
pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    if looks_like_json(text) {
        serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| SyntaxError {
            pos: (e.line() > 0).then(|| Pos { line: e.line(), col: e.column() }),
            message: format!("invalid JSON: {e}"),
        })
    } else {
        Yaml::new(None).run(text).map(|(v, _)| v)
    }
}

/// The position of the node at `pointer` (RFC 6901, "" is the root), if the text parses and has it.
pub fn locate(text: &str, pointer: &str) -> Option<Pos> {
    let tokens = pointer_tokens(pointer)?;
    Yaml::new(Some(tokens)).run(text).ok().and_then(|(_, p)| p)
}

/// The reference tokens of a JSON pointer, unescaped (`~1` is `/`, `~0` is `~`).
pub fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

enum Open {
    Seq(Vec<Value>),
    Map { map: Map<String, Value>, key: Option<String> },
}

struct Frame {
    open: Open,
    anchor: usize,
    start_nodes: usize,
}

struct Yaml {
    target: Option<Vec<String>>,
    found: Option<Pos>,
    stack: Vec<Frame>,
    /// The path to the node being built, as tokens (kept only while locating).
    path: Vec<String>,
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    root: Option<Value>,
}

fn err(m: saphyr_parser::Marker, message: impl Into<String>) -> SyntaxError {
    SyntaxError { pos: Some(Pos { line: m.line(), col: m.col() + 1 }), message: message.into() }
}

impl Yaml {
    fn new(target: Option<Vec<String>>) -> Self {
        Yaml { target, found: None, stack: Vec::new(), path: Vec::new(), anchors: HashMap::new(), nodes: 0, root: None }
    }

    fn run(mut self, text: &str) -> Result<(Value, Option<Pos>), SyntaxError> {
        let mut docs = 0;
        for ev in Parser::new_from_str(text) {
            let (ev, span) = ev.map_err(|e| err(*e.marker(), format!("invalid YAML: {}", e.info())))?;
            let m = span.start;
            match ev {
                Event::DocumentStart(_) => {
                    docs += 1;
                    if docs > 1 {
                        return Err(err(m, "more than one YAML document in the file"));
                    }
                }
                Event::Scalar(s, style, anchor, tag) => {
                    let plain = style == ScalarStyle::Plain && tag.as_ref().is_none_or(|t| t.suffix != "str");
                    if self.expecting_key() {
                        self.key(s.into_owned(), m)?;
                        continue;
                    }
                    self.at_node(m);
                    let v = if plain { resolve_plain(&s) } else { Value::String(s.into_owned()) };
                    self.count(1, m)?;
                    if anchor > 0 {
                        self.anchors.insert(anchor, (v.clone(), 1));
                    }
                    self.push(v, m)?;
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    if self.expecting_key() {
                        return Err(err(m, "a mapping key must be a plain value, not a list or a mapping"));
                    }
                    self.at_node(m);
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(err(m, format!("nested deeper than {MAX_DEPTH} levels")));
                    }
                    self.count(1, m)?;
                    let open = if matches!(ev, Event::SequenceStart(..)) {
                        Open::Seq(Vec::new())
                    } else {
                        Open::Map { map: Map::new(), key: None }
                    };
                    self.stack.push(Frame { open, anchor, start_nodes: self.nodes });
                    if let Some(Open::Seq(_)) = self.stack.last().map(|f| &f.open) {
                        self.path.push("0".into());
                    }
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let Some(f) = self.stack.pop() else { return Err(err(m, "unbalanced YAML structure")) };
                    let v = match f.open {
                        Open::Seq(v) => {
                            self.path.pop();
                            Value::Array(v)
                        }
                        Open::Map { map, .. } => Value::Object(merge_keys(map)),
                    };
                    if f.anchor > 0 {
                        self.anchors.insert(f.anchor, (v.clone(), self.nodes - f.start_nodes + 1));
                    }
                    self.push(v, m)?;
                }
                Event::Alias(id) => {
                    if self.expecting_key() {
                        return Err(err(m, "an alias cannot be a mapping key here"));
                    }
                    self.at_node(m);
                    let Some((v, n)) = self.anchors.get(&id).cloned() else {
                        return Err(err(m, "alias to an unknown anchor"));
                    };
                    self.count(n, m)?;
                    self.push(v, m)?;
                }
                Event::StreamEnd => break,
                _ => {}
            }
        }
        let root = self.root.take().unwrap_or(Value::Null);
        Ok((root, self.found))
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame { open: Open::Map { key: None, .. }, .. }))
    }

    fn count(&mut self, n: usize, m: saphyr_parser::Marker) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(err(m, format!("expands to more than {MAX_NODES} nodes (aliases included)")));
        }
        Ok(())
    }

    fn key(&mut self, k: String, m: saphyr_parser::Marker) -> Result<(), SyntaxError> {
        if let Some(Frame { open: Open::Map { map, key }, .. }) = self.stack.last_mut() {
            if map.contains_key(&k) {
                return Err(err(m, format!("duplicate key {k:?}")));
            }
            if self.target.is_some() {
                self.path.push(k.clone());
            }
            *key = Some(k);
        }
        Ok(())
    }

    /// A node starts here: note its position when it is the one being located.
    fn at_node(&mut self, m: saphyr_parser::Marker) {
        if self.found.is_none() && self.target.as_deref() == Some(&self.path[..]) {
            self.found = Some(Pos { line: m.line(), col: m.col() + 1 });
        }
    }

    fn push(&mut self, v: Value, m: saphyr_parser::Marker) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => {
                if self.root.is_some() {
                    return Err(err(m, "more than one root value"));
                }
                self.root = Some(v);
            }
            Some(Frame { open: Open::Seq(items), .. }) => {
                items.push(v);
                if let Some(last) = self.path.last_mut() {
                    *last = items.len().to_string();
                }
            }
            Some(Frame { open: Open::Map { map, key }, .. }) => {
                if let Some(k) = key.take() {
                    map.insert(k, v);
                    if self.target.is_some() {
                        self.path.pop();
                    }
                }
            }
        }
        Ok(())
    }
}

/// YAML merge keys (`<<: *defaults`, or a list of aliases), which many specs use although YAML 1.2
/// dropped them: the merged mappings' keys fill in what the mapping does not set itself.
fn merge_keys(mut map: Map<String, Value>) -> Map<String, Value> {
    let from = match map.remove("<<") {
        Some(Value::Object(m)) => vec![m],
        Some(Value::Array(a)) if a.iter().all(Value::is_object) => {
            a.into_iter().filter_map(|v| if let Value::Object(m) = v { Some(m) } else { None }).collect()
        }
        Some(other) => {
            map.insert("<<".into(), other);
            return map;
        }
        None => return map,
    };
    for m in from {
        for (k, v) in m {
            map.entry(k).or_insert(v);
        }
    }
    map
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let b = s.as_bytes();
    let digits = |t: &[u8]| !t.is_empty() && t.iter().all(u8::is_ascii_digit);
    let unsigned = b.strip_prefix(b"-").or_else(|| b.strip_prefix(b"+")).unwrap_or(b);
    if digits(unsigned) {
        if let Ok(i) = s.trim_start_matches('+').parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = s.trim_start_matches('+').parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    if let Some(h) = s.strip_prefix("0x") {
        if let Ok(u) = u64::from_str_radix(h, 16) {
            return Value::Number(u.into());
        }
    }
    if let Some(o) = s.strip_prefix("0o") {
        if let Ok(u) = u64::from_str_radix(o, 8) {
            return Value::Number(u.into());
        }
    }
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let is_float = {
        let (mant, exp) = match unsigned.iter().position(|&c| c == b'e' || c == b'E') {
            Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
            None => (unsigned, None),
        };
        let mant_ok = match mant.iter().position(|&c| c == b'.') {
            Some(i) => (digits(&mant[..i]) || i == 0) && (mant[i + 1..].iter().all(u8::is_ascii_digit)) && mant.len() > 1,
            None => digits(mant),
        };
        let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(b"-").or_else(|| e.strip_prefix(b"+")).unwrap_or(e)));
        mant_ok && exp_ok
    };
    if is_float {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_values_resolve_as_the_core_schema_says() {
        let v = parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: abc\n200:\n  x: [1, \"2\"]\ng: -3\nh: .5\ni: 1e3\n").unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "1", "f": "abc", "200": {"x": [1, "2"]}, "g": -3, "h": 0.5, "i": 1000.0})
        );
    }

    #[test]
    fn aliases_expand_and_are_bounded() {
        let v = parse("a: &x {k: 1}\nb: *x\n").unwrap();
        assert_eq!(v, json!({"a": {"k": 1}, "b": {"k": 1}}));
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            s.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
        }
        let e = parse(&s).unwrap_err();
        assert!(e.message.contains("more than"), "{e:?}");
    }

    #[test]
    fn merge_keys_fill_in() {
        let v = parse("base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\ny:\n  <<: [*b, {c: 4}]\n").unwrap();
        assert_eq!(v["x"], json!({"a": 1, "b": 3}));
        assert_eq!(v["y"], json!({"a": 1, "b": 2, "c": 4}));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.pos.is_some() && e.message.starts_with("invalid YAML"), "{e:?}");
        let e = parse("{\n \"a\": 1,\n \"b\": }\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(3), "{e:?}");
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(2), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let s = "[".repeat(500);
        let e = parse(&s).unwrap_err();
        assert!(e.message.contains("nested deeper") || e.message.contains("recursion"), "{e:?}");
        assert!(parse(&format!("{}{}", "{\"a\":".repeat(300), "1")).is_err());
    }

    #[test]
    fn pointers_locate_in_yaml_and_json() {
        let y = "openapi: 3.0.3\npaths:\n  /a/b:\n    get:\n      responses:\n        '200':\n          $ref: '#/nope'\n";
        assert_eq!(locate(y, "/paths/~1a~1b/get/responses/200/$ref"), Some(Pos { line: 7, col: 17 }));
        assert_eq!(locate(y, "/paths/~1a~1b/get"), Some(Pos { line: 5, col: 7 }));
        let j = "{\n  \"x\": [\n    1,\n    {\"y\": 2}\n  ]\n}";
        assert_eq!(locate(j, "/x/1/y").map(|p| p.line), Some(4));
        assert_eq!(locate(j, "/x/0").map(|p| p.line), Some(3));
        assert_eq!(locate(j, "/z"), None);
    }
}
