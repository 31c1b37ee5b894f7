//! Specs that cannot be used: each error names the file, the JSON pointer and the line, which the
//! test finds in the file it wrote (the line holding a marker), not from rxray's parser.
use rxray_openapi::{Spec, SpecError};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The 1-based line of the first line containing `marker`.
fn line_of(name: &str, marker: &str) -> usize {
    let text = std::fs::read_to_string(data(name)).unwrap();
    text.lines().position(|l| l.contains(marker)).unwrap() + 1
}

fn fail(name: &str) -> SpecError {
    match Spec::load(&data(name), 1 << 20) {
        Ok(_) => panic!("{name} loaded"),
        Err(e) => e,
    }
}

#[test]
fn a_broken_ref_names_its_pointer_and_line() {
    let e = fail("broken-ref.yaml");
    assert_eq!(e.pointer.as_deref(), Some("/paths/~1pets~1{id}/get/responses/200/content/application~1json/schema/$ref"));
    assert_eq!(e.line, Some(line_of("broken-ref.yaml", "Nope")));
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("{}:{}:", data("broken-ref.yaml").display(), e.line.unwrap())), "{shown}");
    assert!(shown.contains("broken $ref") && shown.contains("#/components/schemas/Nope"), "{shown}");
}

#[test]
fn a_broken_ref_in_json_names_its_line_too() {
    let text = std::fs::read_to_string(data("petstore-3.1.json")).unwrap().replace("#/components/schemas/NewPet", "#/components/schemas/Gone");
    let e = Spec::from_text("x.json", &text).unwrap_err();
    let want = text.lines().position(|l| l.contains("Gone")).unwrap() + 1;
    assert_eq!(e.line, Some(want), "{e}");
    assert_eq!(e.pointer.as_deref(), Some("/paths/~1pets/post/requestBody/content/application~1json/schema/$ref"));
}

#[test]
fn invalid_yaml_names_its_line() {
    let e = fail("not-yaml.yaml");
    assert!(e.message.starts_with("invalid YAML"), "{e}");
    // The flow sequence opened on this line is never closed; the parser notices by the next key.
    let open = line_of("not-yaml.yaml", "[200, 404");
    let line = e.line.expect("a line");
    assert!(line == open || line == open + 1, "{e}");
}

#[test]
fn a_wrong_keyword_type_names_its_pointer() {
    let e = fail("wrong-type.yaml");
    assert_eq!(e.pointer.as_deref(), Some("/paths/~1pets/get/responses/200/content/application~1json/schema/properties/name/minLength"));
    assert_eq!(e.line, Some(line_of("wrong-type.yaml", "minLength: many")));
    assert!(e.message.contains("invalid schema"), "{e}");
}

#[test]
fn a_ref_cycle_is_an_error() {
    let e = fail("ref-cycle.yaml");
    assert!(e.message.contains("cycle"), "{e}");
    assert!(e.pointer.as_deref().is_some_and(|p| p.starts_with("/components/parameters/")), "{e}");
}

#[test]
fn other_broken_documents() {
    let cases: &[(&str, &str, &str)] = &[
        ("", "", "not"),
        ("[]", "", "object"),
        ("openapi: 2.0\n", "/openapi", "version string"),
        ("swagger: '2.0'\n", "/swagger", "Swagger"),
        ("openapi: 3.0.0\npaths: []\n", "/paths", "object"),
        ("openapi: 3.0.0\npaths:\n  pets: {}\n", "/paths/pets", "start with"),
        ("openapi: 3.0.0\npaths:\n  /p:\n    get:\n      parameters: {}\n", "/paths/~1p/get/parameters", "list"),
        ("openapi: 3.0.0\npaths:\n  /p:\n    get:\n      parameters:\n        - {name: a, in: body}\n", "/paths/~1p/get/parameters/0/in", "query"),
        ("openapi: 3.0.0\npaths:\n  /p:\n    get:\n      responses:\n        '999': {}\n", "/paths/~1p/get/responses/999", "status"),
        ("openapi: 3.0.0\npaths:\n  /p:\n    $ref: 'other.yaml#/x'\n", "/paths/~1p/$ref", "not local"),
    ];
    for (text, pointer, words) in cases {
        let e = Spec::from_text("t.yaml", text).unwrap_err();
        assert_eq!(e.pointer.as_deref().unwrap_or(""), *pointer, "{text:?}: {e}");
        assert!(e.message.contains(words), "{text:?}: {e}");
    }
}

#[test]
fn a_file_over_the_limit_is_refused() {
    let e = Spec::load(&data("petstore-3.0.yaml"), 100).unwrap_err();
    assert!(e.message.contains("limit"), "{e}");
    let e = Spec::load(&data("no-such-file.yaml"), 100).unwrap_err();
    assert!(e.message.contains("cannot open"), "{e}");
    let e = Spec::load(&data(""), 100).unwrap_err();
    assert!(e.message.contains("regular file"), "{e}");
}

#[test]
fn a_schema_that_refers_to_itself_in_place_does_not_overflow() {
    let text = r#"
openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /a:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/A'}
      responses:
        '200': {description: ok}
components:
  schemas:
    A:
      allOf:
        - $ref: '#/components/schemas/A'
"#;
    // A is allOf [A]: it constrains nothing, so {} passes; the validator must get there without
    // recursing until the stack overflows.
    let spec = std::sync::Arc::new(Spec::from_text("t", text).unwrap());
    let mut c = rxray_openapi::Checker::new(spec.clone(), Default::default());
    let got = c.check(&rxray_openapi::Exchange {
        request_headers: &[("content-type", b"application/json")],
        request_body: b"{}",
        status: Some(200),
        ..rxray_openapi::Exchange::new("POST", "/a")
    });
    assert!(got.kinds.is_empty(), "{:?}", c.findings());
    assert_eq!(c.counters.bodies_checked, 1);
}
