//! The Rust ABI mirrors must match the C structs exactly: size and every field offset, read from
//! the BTF of the committed object (via `bpftool -j btf dump file`).
use rxray_kernel::abi;
use std::process::Command;

/// Every object whose structs cross the boundary.
const OBJECTS: &[&str] = &["xdp_ingress.bpf.o", "kernel.bpf.o"];

fn obj_path(name: &str) -> String {
    format!("{}/../../bpf/obj/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn rust_mirrors_match_btf() {
    let mut types = Vec::new();
    for obj in OBJECTS {
        let out = match Command::new("bpftool").args(["-j", "btf", "dump", "file", &obj_path(obj)]).output() {
            Ok(o) if o.status.success() => o,
            other => {
                let why = format!("bpftool could not dump the BTF of {obj}: {other:?}");
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{why} (CI=true: install bpftool)");
                }
                eprintln!("SKIP: {why}");
                return;
            }
        };
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
        types.extend(v["types"].as_array().expect("types array").iter().cloned());
    }
    for (name, size, fields) in abi::layouts() {
        let t = types
            .iter()
            .find(|t| t["kind"] == "STRUCT" && t["name"] == name)
            .unwrap_or_else(|| panic!("struct {name} not in the BTF of {OBJECTS:?}"));
        assert_eq!(t["size"].as_u64(), Some(size as u64), "size of struct {name}");
        let members = t["members"].as_array().expect("members");
        assert_eq!(members.len(), fields.len(), "field count of struct {name}");
        for (m, (fname, off)) in members.iter().zip(fields.iter()) {
            assert_eq!(m["name"].as_str(), Some(*fname), "field order in struct {name}");
            assert_eq!(m["bits_offset"].as_u64(), Some(*off as u64 * 8), "offset of {name}.{fname}");
        }
    }
}
