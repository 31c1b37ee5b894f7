//! Enum values from kernel BTF (/sys/kernel/btf/vmlinux): names for numbers the kernel reports,
//! such as `enum skb_drop_reason`, taken from the running kernel rather than a table that ages.
//! Hand-written because aya-obj keeps its BTF type accessors crate-private; only the type walk
//! (to skip every kind) and ENUM/ENUM64 bodies are decoded.
use std::{collections::BTreeMap, path::Path};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfReadError {
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("BTF at byte {offset}: {what}")]
    Format { offset: usize, what: String },
    #[error("no enum named {0:?} in the kernel's BTF")]
    NoEnum(String),
}

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_ENUM: u32 = 6;
const KIND_ENUM64: u32 = 19;

fn u32_at(b: &[u8], off: usize) -> Result<u32, BtfReadError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| BtfReadError::Format { offset: off, what: "truncated".into() })
}

fn str_at(strs: &[u8], off: u32) -> Result<String, BtfReadError> {
    let tail = strs
        .get(off as usize..)
        .ok_or_else(|| BtfReadError::Format { offset: off as usize, what: "string offset out of range".into() })?;
    let end = tail.iter().position(|&c| c == 0).unwrap_or(tail.len());
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

/// Bytes that follow the 12-byte common header of a type of `kind` with `vlen` entries.
fn body_len(kind: u32, vlen: usize, off: usize) -> Result<usize, BtfReadError> {
    Ok(match kind {
        1 => 4,                        // INT
        2 | 7..=12 | 16 | 18 => 0,     // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        3 => 12,                       // ARRAY
        4 | 5 => 12 * vlen,            // STRUCT, UNION
        6 => 8 * vlen,                 // ENUM
        13 => 8 * vlen,                // FUNC_PROTO
        14 => 4,                       // VAR
        15 => 12 * vlen,               // DATASEC
        17 => 4,                       // DECL_TAG
        19 => 12 * vlen,               // ENUM64
        k => return Err(BtfReadError::Format { offset: off, what: format!("unknown BTF kind {k}") }),
    })
}

/// The values of the enum `name` in a little-endian BTF blob, by value (names as BTF spells them).
pub fn enum_values(btf: &[u8], name: &str) -> Result<BTreeMap<u64, String>, BtfReadError> {
    let magic = btf.get(0..2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    if magic != Some(BTF_MAGIC) {
        return Err(BtfReadError::Format { offset: 0, what: "not little-endian BTF (bad magic)".into() });
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    let (type_off, type_len) = (u32_at(btf, 8)? as usize, u32_at(btf, 12)? as usize);
    let (str_off, str_len) = (u32_at(btf, 16)? as usize, u32_at(btf, 20)? as usize);
    let types = btf
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .ok_or_else(|| BtfReadError::Format { offset: hdr_len + type_off, what: "type section out of range".into() })?;
    let strs = btf
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or_else(|| BtfReadError::Format { offset: hdr_len + str_off, what: "string section out of range".into() })?;
    let mut off = 0;
    while off + 12 <= types.len() {
        let name_off = u32_at(types, off)?;
        let info = u32_at(types, off + 4)?;
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        let body = off + 12;
        let next = body + body_len(kind, vlen, hdr_len + type_off + off)?;
        if (kind == KIND_ENUM || kind == KIND_ENUM64) && name_off != 0 && str_at(strs, name_off)? == name {
            let mut out = BTreeMap::new();
            let step = if kind == KIND_ENUM { 8 } else { 12 };
            for i in 0..vlen {
                let e = body + i * step;
                let vname = str_at(strs, u32_at(types, e)?)?;
                let lo = u32_at(types, e + 4)? as u64;
                let v = if kind == KIND_ENUM { lo } else { lo | (u32_at(types, e + 8)? as u64) << 32 };
                out.insert(v, vname);
            }
            return Ok(out);
        }
        off = next;
    }
    Err(BtfReadError::NoEnum(name.to_string()))
}

/// Drop-reason names by number, from `enum skb_drop_reason` in `path` (normally [`VMLINUX`]), with
/// the `SKB_DROP_REASON_` prefix removed (`NO_SOCKET`); `SKB_CONSUMED` and friends keep theirs.
pub fn drop_reasons(path: &Path) -> Result<BTreeMap<u64, String>, BtfReadError> {
    let data = std::fs::read(path).map_err(|source| BtfReadError::Io { path: path.display().to_string(), source })?;
    let mut m = enum_values(&data, "skb_drop_reason")?;
    for v in m.values_mut() {
        if let Some(s) = v.strip_prefix("SKB_DROP_REASON_") {
            *v = s.to_string();
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF blob: one ENUM `e { A = 7 }` and one ENUM64 `f { B = 1 << 40 }`, after an INT.
    fn blob() -> Vec<u8> {
        let strs = b"\0int\0e\0A\0f\0B\0".to_vec();
        let mut t = Vec::new();
        let mut push = |w: &[u32]| w.iter().for_each(|x| t.extend_from_slice(&x.to_le_bytes()));
        push(&[1, 1 << 24, 4, 32]); // INT "int", 4 bytes
        push(&[5, (6 << 24) | 1, 4, 7, 7]); // ENUM "e" { "A" = 7 }
        push(&[9, (19 << 24) | 1, 8, 11, 0, 1 << 8]); // ENUM64 "f" { "B" = 1 << 40 }
        let mut b = Vec::new();
        b.extend_from_slice(&0xeb9fu16.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, t.len() as u32, t.len() as u32, strs.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(&strs);
        b
    }

    #[test]
    fn reads_enum_and_enum64_from_a_crafted_blob() {
        let b = blob();
        assert_eq!(enum_values(&b, "e").unwrap(), BTreeMap::from([(7, "A".to_string())]));
        assert_eq!(enum_values(&b, "f").unwrap(), BTreeMap::from([(1 << 40, "B".to_string())]));
        assert!(matches!(enum_values(&b, "g"), Err(BtfReadError::NoEnum(_))));
        assert!(enum_values(&b[..30], "e").is_err(), "a truncated blob is an error, not a panic");
        assert!(enum_values(b"nope", "e").is_err());
    }

    /// Against the running kernel: NO_SOCKET's value must be what bpftool reads from the same BTF.
    #[test]
    fn drop_reasons_of_the_running_kernel_agree_with_bpftool() {
        if !Path::new(VMLINUX).exists() {
            rxray_lab::testing::skip_or_fail("no /sys/kernel/btf/vmlinux (kernel without CONFIG_DEBUG_INFO_BTF)");
            return;
        }
        let m = drop_reasons(Path::new(VMLINUX)).expect("skb_drop_reason in vmlinux BTF");
        let out = match std::process::Command::new("bpftool").args(["btf", "dump", "file", VMLINUX]).output() {
            Ok(o) if o.status.success() => o,
            other => {
                rxray_lab::testing::skip_or_fail(&format!("bpftool could not dump {VMLINUX}: {other:?}"));
                return;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        // bpftool prints the enum's values as lines `\t'SKB_DROP_REASON_NO_SOCKET' val=3`.
        let want = |full: &str| -> u64 {
            let needle = format!("'{full}' val=");
            let line = text.lines().find(|l| l.trim_start().starts_with(&needle)).unwrap_or_else(|| panic!("{full} not in bpftool's dump"));
            line.trim().rsplit('=').next().unwrap().parse().unwrap()
        };
        for (full, short) in [
            ("SKB_DROP_REASON_NO_SOCKET", "NO_SOCKET"),
            ("SKB_DROP_REASON_NETFILTER_DROP", "NETFILTER_DROP"),
            ("SKB_DROP_REASON_TCP_CSUM", "TCP_CSUM"),
            ("SKB_CONSUMED", "SKB_CONSUMED"),
        ] {
            let v = want(full);
            assert_eq!(m.get(&v).map(String::as_str), Some(short), "{full} = {v}");
        }
    }
}
