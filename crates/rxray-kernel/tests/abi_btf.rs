//! The Rust ABI mirrors must match the C structs exactly: size and every field offset, read from
//! the BTF of the committed object (via `bpftool -j btf dump file`).
use rxray_kernel::abi;
use std::process::Command;

/// Every object whose structs cross the boundary.
const OBJECTS: &[&str] = &["xdp_ingress.bpf.o", "kernel.bpf.o"];

fn obj_path(name: &str) -> String {
    format!("{}/../../bpf/obj/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The BTF types of an object (`bpftool -j btf dump file`); `None` when bpftool cannot run
/// outside CI (under CI=true that fails the test).
fn btf_types(obj: &str) -> Option<Vec<serde_json::Value>> {
    let out = match Command::new("bpftool").args(["-j", "btf", "dump", "file", &obj_path(obj)]).output() {
        Ok(o) if o.status.success() => o,
        other => {
            let why = format!("bpftool could not dump the BTF of {obj}: {other:?}");
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why} (CI=true: install bpftool)");
            }
            eprintln!("SKIP: {why}");
            return None;
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    Some(v["types"].as_array().expect("types array").clone())
}

#[test]
fn rust_mirrors_match_btf() {
    let mut types = Vec::new();
    for obj in OBJECTS {
        let Some(t) = btf_types(obj) else { return };
        types.extend(t);
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

/// Every integer constant of abi.rs, by its Rust name (the C enumerator is `RXRAY_` + the name).
macro_rules! abi_consts {
    ($($n:ident),* $(,)?) => { &[$((stringify!($n), abi::$n as i64)),*] };
}
const ABI_CONSTS: &[(&str, i64)] = abi_consts!(
    PAYLOAD_MAX, PAYLOAD_DEFAULT, MAX_VLANS, MAX_IPV6_EXT, FEAT_EVENTS, FEAT_FLOWS, FEAT_FILTER, FEAT_CAPTURE,
    FEAT_FIREWALL, FEAT_FW_DRYRUN, CAP_CHUNK, CAP_SNAP_MAX, FLOW_HIST, FK_FLOW, FK_FRAGS, P_COUNT, L_ETH, L_VLAN,
    L_QINQ, L_ARP, L_IPV4, L_IPV6, L_IP_OPTS, L_FRAG, L_TCP, L_UDP, L_ICMP, L_ICMPV6, L_FRAG_PORTS, FRAG_DF, FRAG_MF,
    TCPOPT_MSS, TCPOPT_WSCALE, TCPOPT_SACK_OK, TCPOPT_SACK, TCPOPT_TS, MAL_NONE, MAL_ETH_TRUNC, MAL_VLAN_TRUNC,
    MAL_VLAN_DEPTH, MAL_ARP_TRUNC, MAL_IPV4_TRUNC, MAL_IPV4_HDR, MAL_IPV6_TRUNC, MAL_IPV6_HDR, MAL_IPV6_EXT_TRUNC,
    MAL_IPV6_EXT_CHAIN, MAL_TCP_TRUNC, MAL_TCP_HDR, MAL_TCP_OPT, MAL_UDP_TRUNC, MAL_UDP_LEN, MAL_ICMP_TRUNC, MAL_COUNT, C_PACKETS, C_BYTES, C_EVENTS,
    C_LOST, C_MALFORMED, C_FLOW_FAIL, C_FRAG_BUCKET, C_IFACE_FAIL, C_MAL_BASE, C_FILTERED, C_CAP_PACKETS, C_CAP_LOST,
    C_FW_DROPPED, C_FW_WOULD, C_COUNT, FILTER_MAX, FILTER_ACCEPT, FILTER_REJECT, FF_L3, FF_IP, FF_V6EXT, FF_FRAG_OFF,
    FF_SPORT, FF_DPORT, FF_TCP_FLAGS, FF_WIRE_LEN, FF_VLAN_COUNT, FF_VID0, FF_VID1, FF_SADDR, FF_DADDR, FC_EQ, FC_GT,
    FC_GE, DROP_REASONS, DROP_IFACES_MAX, DROPF_IFACES, DROPF_COUNT_ONLY, DC_DROPS, DC_EVENTS, DC_LOST, DC_NO_NETNS,
    DC_COUNT, CONNS_MAX, CONN_PATH, CC_NEW, CC_EVENTS, CC_LOST, CC_INSERT_FAIL, CC_UNTRACKED, CC_RST_TX_NOSOCK,
    CC_CLOSED, CC_COUNT, CONNF_PASSIVE, CONNF_FIN_RX, CONNF_LATE, FW_RULES, FW_SLOTS, FW_C_DEFAULT, FW_C_BLOCKS,
    FW_CLASSES, FW_DEEP, FW_V4_WORDS, FW_LENS, FW_V6_BITS, FW_V6_WORDS, FW_V6_REST, FW_V6_MIN, FW_V6_MUL, FW_PSLOTS, FW_PROBES, FW_GROUP, FW_TAG_GROUP, IFACE_SLOTS, FWA_ALLOW, FWA_DENY, FWA_LIMIT, FWL_RULE, FWL_SRC, FWL_DPORT,
    FWV_NONE, FWV_DROP, FWV_WOULD, FWF_SRC, FWF_DST, FEAT_LATENCY, LAT_ARRIVALS_MAX, LAT_FLOWS_MAX, LAT_PROCS_MAX, LAT_PROBES, LAT_REF_FREE, LAT_REF_BUSY, LAT_REF_READY,
    LAT_SUB_BITS, LAT_BUCKETS, LC_STAMPED, LC_QUEUED, LC_READ, LC_FLOW_FAIL, LC_PROC_FAIL, LC_COUNT,
    CONN_CFG_READERS, READERS_MAX, HC_SEGMENTS, HC_RECORDS, HC_BYTES_COPIED, HC_BYTES_BUDGET, HC_RECORDS_LOST,
    HC_BYTES_LOST, HC_UNPARSED, HC_BYTES_UNWALKED, HC_COUNT, FEAT_HTTP, HTTP_CHUNK, HTTP_MAX_PORTS, HTTP_MAX_PAYLOAD,
);

/// abi.rs constants whose C side is still a #define (no BTF): none since the HTTP block became
/// enum rxray_http_limit; a new one would have to say why here.
const STILL_DEFINES: &[&str] = &[];

/// The enumerators of every `rxray_*` enum in the BTF of xdp_ingress.bpf.o (struct
/// rxray_abi_enums names them all), by name; `None` when bpftool cannot run outside CI.
fn btf_enumerators() -> Option<std::collections::HashMap<String, i64>> {
    let mut m = std::collections::HashMap::new();
    for t in btf_types("xdp_ingress.bpf.o")? {
        if t["kind"] != "ENUM" || !t["name"].as_str().unwrap_or("").starts_with("rxray_") {
            continue;
        }
        for e in t["values"].as_array().expect("enum values") {
            m.insert(e["name"].as_str().expect("name").to_string(), e["val"].as_i64().expect("value"));
        }
    }
    Some(m)
}

#[test]
fn rust_constants_match_the_enums_in_btf() {
    let Some(c) = btf_enumerators() else { return };
    assert!(c.len() > 100, "struct rxray_abi_enums should bring every enum of rxray.h into the BTF: {} enumerators", c.len());
    let mut bad = Vec::new();
    for (name, v) in ABI_CONSTS {
        match c.get(&format!("RXRAY_{name}")) {
            Some(cv) if cv == v => {}
            Some(cv) => bad.push(format!("abi::{name} = {v}, rxray.h says {cv}")),
            None => bad.push(format!("abi::{name}: no RXRAY_{name} enumerator in the BTF (a #define? make it an enum)")),
        }
    }
    // The engine's compiled firewall is sized for the kernel's tables: its limits, against rxray.h.
    use rxray_engine::firewall::compile;
    for (name, v, cname) in [
        ("compile::CLASSES", compile::CLASSES as i64, "RXRAY_FW_CLASSES"),
        ("compile::DEEP", compile::DEEP as i64, "RXRAY_FW_DEEP"),
        ("compile::MAX_LENS", compile::MAX_LENS as i64, "RXRAY_FW_LENS"),
        // 2^24 /24 slots x 2 generations, one byte each, in 64-bit words.
        ("compile::V4_SLOTS", (compile::V4_SLOTS * 2 / 8) as i64, "RXRAY_FW_V4_WORDS"),
        ("compile::V6_SLOTS", (compile::V6_SLOTS * 2 / 8) as i64, "RXRAY_FW_V6_WORDS"),
        ("compile::V6_BITS", compile::V6_BITS as i64, "RXRAY_FW_V6_BITS"),
        ("compile::V6_REST", compile::V6_REST as i64, "RXRAY_FW_V6_REST"),
        ("compile::V6_MIN", compile::V6_MIN as i64, "RXRAY_FW_V6_MIN"),
        ("compile::V6_MUL", compile::V6_MUL as i64, "RXRAY_FW_V6_MUL"),
        ("ptable::PSLOTS", rxray_engine::firewall::ptable::PSLOTS as i64, "RXRAY_FW_PSLOTS"),
        ("ptable::PROBES", rxray_engine::firewall::ptable::PROBES as i64, "RXRAY_FW_PROBES"),
        ("ptable::TAG_GROUP", rxray_engine::firewall::ptable::TAG_GROUP as i64, "RXRAY_FW_TAG_GROUP"),
        ("compile::GROUP", compile::GROUP as i64, "RXRAY_FW_GROUP"),
    ] {
        if c.get(cname) != Some(&v) {
            bad.push(format!("{name} ({v}) does not match {cname} ({:?})", c.get(cname)));
        }
    }
    assert!(bad.is_empty(), "Rust and rxray.h disagree:\n{}", bad.join("\n"));
}

/// `pub const NAME: TYPE` lines of a source file whose type is an integer: their names.
fn integer_consts(src: &str) -> Vec<String> {
    let ints = ["u8", "u16", "u32", "u64", "usize", "i32", "i64"];
    src.lines()
        .filter_map(|l| l.strip_prefix("pub const ")?.split_once(':'))
        .filter(|(_, ty)| ints.contains(&ty.trim().split(|c: char| c == ' ' || c == '=').next().unwrap_or("")))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn every_integer_constant_of_abi_rs_is_checked() {
    // The list above is written by hand: this reads abi.rs, and the rxray-wire files whose
    // constants abi.rs re-exports (wire owns the flat record's), so a new one cannot be left out.
    let read = |p: &str| std::fs::read_to_string(format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{p}: {e}"));
    let abi = read("src/abi.rs");
    let mut names = integer_consts(&abi);
    let wire: Vec<String> = [read("../rxray-wire/src/flat.rs"), read("../rxray-wire/src/lib.rs")].iter().flat_map(|s| integer_consts(s)).collect();
    // The rxray.h ones of wire: its flat record's flags and the malformed categories (the rest of
    // wire's constants, such as protocol numbers, are not the ABI's).
    let shared = |n: &str| ["L_", "FRAG_", "TCPOPT_", "MAL_"].iter().any(|p| n.starts_with(p)) || ["PAYLOAD_MAX", "MAX_VLANS", "MAX_IPV6_EXT"].contains(&n);
    let mut not_reexported = Vec::new();
    for n in wire.iter().filter(|n| shared(n)) {
        if !abi.contains(&format!(" {n},")) && !abi.contains(&format!(" {n}\n")) {
            not_reexported.push(n.clone());
        }
        names.push(n.clone());
    }
    assert!(not_reexported.is_empty(), "re-export these rxray-wire constants in abi.rs: {not_reexported:?}");
    assert!(names.iter().any(|n| n == "MAL_ICMP_TRUNC") && names.iter().any(|n| n == "L_FRAG_PORTS"), "the walk found wire's constants: {names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| !ABI_CONSTS.iter().any(|(c, _)| c == n) && !STILL_DEFINES.contains(&n.as_str())).collect();
    assert!(missing.is_empty(), "add to ABI_CONSTS in tests/abi_btf.rs: {missing:?}");
}
