//! rxray against an independent oracle: PyPI's openapi-core (in a venv that
//! scripts/openapi-oracle-venv makes) validates the same exchanges against the same specs, and the
//! finding kinds must agree exchange by exchange, so count by count. The exchanges go to it as the
//! JSON file this test writes; scripts/openapi-oracle.py maps its error classes to rxray's kinds.
mod common;
use common::{exchanges, sorted};
use rxray_openapi::{CheckLimits, Checker, Kind, Spec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn oracle_python() -> String {
    let out = Command::new(root().join("scripts/openapi-oracle-venv")).output().expect("run scripts/openapi-oracle-venv");
    assert!(out.status.success(), "the openapi-core venv could not be made: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn rxray_agrees_with_openapi_core_kind_by_kind() {
    let python = oracle_python();
    let sent = exchanges();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("openapi-oracle-exchanges-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&sent).unwrap()).unwrap();
    for name in ["petstore-3.0.yaml", "petstore-3.1.json"] {
        let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
        let out = Command::new(&python).arg(root().join("scripts/openapi-oracle.py")).arg(&spec_path).arg(&file).output().unwrap();
        assert!(out.status.success(), "{name}: openapi-core failed: {}", String::from_utf8_lossy(&out.stderr));
        let theirs: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(theirs.len(), sent.len());

        let spec = std::sync::Arc::new(Spec::load(&spec_path, 1 << 20).unwrap());
        let mut c = Checker::new(spec.clone(), CheckLimits::default());
        let mut ours_total: BTreeMap<String, u64> = BTreeMap::new();
        let mut theirs_total: BTreeMap<String, u64> = BTreeMap::new();
        for (i, s) in sent.iter().enumerate() {
            let h = s.headers();
            let mut ours: Vec<String> = sorted(c.check(&s.exchange(&h, i as u64)).kinds).iter().map(|k| k.as_str().to_owned()).collect();
            ours.sort();
            assert_eq!(ours, theirs[i], "{name}: exchange {i}: {} {} -> {}", s.method, s.target, s.status);
            for k in ours {
                *ours_total.entry(k).or_default() += 1;
            }
            for k in &theirs[i] {
                *theirs_total.entry(k.clone()).or_default() += 1;
            }
        }
        assert_eq!(ours_total, theirs_total, "{name}");
        // Every kind was provoked, so the agreement covers each one.
        for k in Kind::ALL {
            assert!(theirs_total.get(k.as_str()).copied().unwrap_or(0) > 0, "{name}: openapi-core saw no {}", k.as_str());
        }
    }
    let _ = std::fs::remove_file(&file);
}
