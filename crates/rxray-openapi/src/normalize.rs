//! OpenAPI 3.0 schemas rewritten as JSON Schema 2020-12, so one validator serves 3.0 and 3.1.
//!
//! 3.0's schema object is a JSON Schema draft-4 subset with its own keywords. What changes:
//! - `nullable: true` adds `"null"` to `type` (and `null` to an `enum`); with no `type`, the schema
//!   becomes `anyOf: [schema, {type: null}]`. The validator ignores `nullable` otherwise.
//! - boolean `exclusiveMinimum`/`exclusiveMaximum` (draft 4) become the numeric 2020-12 forms.
//! - a `$ref` hides its siblings in 3.0 (draft 4 rules); in 2020-12 they would apply, so they go.
use serde_json::{Map, Value};

/// Normalises every schema in a 3.0 document: each value under a `schema` key, and each entry of
/// `components/schemas`, with the schemas nested in them.
pub fn document(doc: &mut Value) {
    walk_document(doc, 0);
    if let Some(Value::Object(m)) = doc.pointer_mut("/components/schemas") {
        for s in m.values_mut() {
            schema(s);
        }
    }
}

fn walk_document(v: &mut Value, depth: usize) {
    match v {
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                if k == "schema" && c.is_object() {
                    schema(c);
                } else if depth < crate::text::MAX_DEPTH {
                    walk_document(c, depth + 1);
                }
            }
        }
        Value::Array(a) => {
            for c in a {
                walk_document(c, depth + 1);
            }
        }
        _ => {}
    }
}

/// Keywords whose value is one schema.
const ONE: [&str; 4] = ["items", "not", "additionalProperties", "additionalItems"];
/// Keywords whose value is a list of schemas.
const LIST: [&str; 3] = ["allOf", "anyOf", "oneOf"];
/// Keywords whose value maps names to schemas.
const MAP: [&str; 2] = ["properties", "patternProperties"];

/// Normalises one 3.0 schema and those nested in it.
pub fn schema(v: &mut Value) {
    let Value::Object(m) = v else { return };
    if m.contains_key("$ref") {
        m.retain(|k, _| k == "$ref");
        return;
    }
    for k in ONE {
        if let Some(c) = m.get_mut(k) {
            schema(c);
        }
    }
    for k in LIST {
        if let Some(Value::Array(a)) = m.get_mut(k) {
            a.iter_mut().for_each(schema);
        }
    }
    for k in MAP {
        if let Some(Value::Object(p)) = m.get_mut(k) {
            p.values_mut().for_each(schema);
        }
    }
    exclusive(m, "exclusiveMinimum", "minimum");
    exclusive(m, "exclusiveMaximum", "maximum");
    if let Some(n) = m.remove("nullable") {
        if n == Value::Bool(true) {
            nullable(v);
        }
    }
}

fn exclusive(m: &mut Map<String, Value>, ex: &str, bound: &str) {
    match m.get(ex) {
        Some(Value::Bool(true)) => match m.remove(bound) {
            Some(b) => {
                m.insert(ex.into(), b);
            }
            None => {
                m.remove(ex);
            }
        },
        Some(Value::Bool(false)) => {
            m.remove(ex);
        }
        _ => {}
    }
}

fn nullable(v: &mut Value) {
    let Value::Object(m) = v else { return };
    match m.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            m.insert("type".into(), Value::Array(vec![Value::String(t), Value::String("null".into())]));
            if let Some(Value::Array(e)) = m.get_mut("enum") {
                if !e.contains(&Value::Null) {
                    e.push(Value::Null);
                }
            }
        }
        _ => {
            let inner = std::mem::take(m);
            m.insert("anyOf".into(), Value::Array(vec![Value::Object(inner), serde_json::json!({"type": "null"})]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nullable_and_exclusive_bounds_become_2020_12() {
        let mut s = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": true, "enum": ["x"]},
                "b": {"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false},
                "c": {"allOf": [{"$ref": "#/x"}], "nullable": true},
                "d": {"$ref": "#/x", "description": "ignored in 3.0"},
                "e": {"type": "array", "items": {"type": "number", "nullable": true}}
            }
        });
        schema(&mut s);
        assert_eq!(
            s,
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": ["string", "null"], "enum": ["x", null]},
                    "b": {"type": "integer", "exclusiveMinimum": 0, "maximum": 9},
                    "c": {"anyOf": [{"allOf": [{"$ref": "#/x"}]}, {"type": "null"}]},
                    "d": {"$ref": "#/x"},
                    "e": {"type": "array", "items": {"type": ["number", "null"]}}
                }
            })
        );
    }
}
