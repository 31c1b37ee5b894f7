//! The Rust ABI mirrors must match the C structs exactly: size and every field offset, read from
//! the BTF of the committed object (via `bpftool -j btf dump file`).
use rxray_kernel::abi;
use std::process::Command;

fn obj_path() -> String {
    format!("{}/../../bpf/obj/xdp_ingress.bpf.o", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn rust_mirrors_match_btf() {
    let out = match Command::new("bpftool").args(["-j", "btf", "dump", "file", &obj_path()]).output() {
        Ok(o) if o.status.success() => o,
        other => {
            let why = format!("bpftool could not dump the object's BTF: {other:?}");
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why} (CI=true: install bpftool)");
            }
            eprintln!("SKIP: {why}");
            return;
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    let types = v["types"].as_array().expect("types array");
    for (name, size, fields) in abi::layouts() {
        let t = types
            .iter()
            .find(|t| t["kind"] == "STRUCT" && t["name"] == name)
            .unwrap_or_else(|| panic!("struct {name} not in the object's BTF"));
        assert_eq!(t["size"].as_u64(), Some(size as u64), "size of struct {name}");
        let members = t["members"].as_array().expect("members");
        assert_eq!(members.len(), fields.len(), "field count of struct {name}");
        for (m, (fname, off)) in members.iter().zip(fields.iter()) {
            assert_eq!(m["name"].as_str(), Some(*fname), "field order in struct {name}");
            assert_eq!(m["bits_offset"].as_u64(), Some(*off as u64 * 8), "offset of {name}.{fname}");
        }
    }
}
