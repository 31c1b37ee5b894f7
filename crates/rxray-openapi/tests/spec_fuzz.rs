//! Property tests: arbitrary bytes, arbitrary YAML-ish text and mutated real specs never panic
//! the loader, and a spec that loads never panics the checker.
use proptest::prelude::*;
use rxray_openapi::{CheckLimits, Checker, Exchange, Spec};
use std::sync::Arc;

const SPEC: &str = include_str!("data/petstore-3.0.yaml");

fn check_all(spec: &Arc<Spec>, target: &str, body: &[u8]) {
    let mut c = Checker::new(spec.clone(), CheckLimits { max_findings: 8 });
    for m in ["GET", "POST", "PUT"] {
        c.check(&Exchange {
            request_headers: &[("content-type", b"application/json"), ("x-request-id", b"1")],
            request_body: body,
            status: Some(200),
            response_headers: &[("content-type", b"application/json")],
            response_body: body,
            ..Exchange::new(m, target)
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&b);
        let _ = Spec::from_text("fuzz", &text);
    }

    #[test]
    fn yamlish_text_never_panics(t in "[a-z{}\\[\\]:,'\"&*!|>#/$ \n-]{0,200}") {
        let _ = Spec::from_text("fuzz", &format!("openapi: 3.0.0\npaths:\n{t}"));
    }

    #[test]
    fn mutated_specs_never_panic(at in 0usize..SPEC.len(), len in 0usize..40, with in "[a-z{}\\[\\]:'\"$#/ \n-]{0,12}") {
        let at = (0..=at).rev().find(|i| SPEC.is_char_boundary(*i)).unwrap_or(0);
        let end = (at + len).min(SPEC.len());
        let end = (end..=SPEC.len()).find(|i| SPEC.is_char_boundary(*i)).unwrap_or(SPEC.len());
        let text = format!("{}{}{}", &SPEC[..at], with, &SPEC[end..]);
        if let Ok(spec) = Spec::from_text("fuzz", &text) {
            check_all(&Arc::new(spec), "/api/v1/pets/1?limit=2", b"{\"name\": \"x\"}");
        }
    }

    #[test]
    fn arbitrary_exchanges_never_panic(target in "[/a-z0-9?=&%{}.+]{0,60}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let spec = Arc::new(Spec::from_text("t", SPEC).unwrap());
        check_all(&spec, &target, &body);
    }
}
