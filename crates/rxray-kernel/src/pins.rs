//! Maps pinned by another rxray: before a program is loaded over a pin directory (an observer
//! adopting the firewall's program, or the firewall's own commands), every pinned map the object
//! names must have the type, key size and value size this build's object gives it. A firewall
//! installed by an older rxray whose map changed shape (for example the flow table, a per-CPU
//! hash before and a plain hash with its counters inline now) is named as such, with its fix,
//! instead of failing later with a map error or reading counters of another layout.

use crate::KernelError;
use aya::maps::MapData;
use std::path::Path;

/// One map's shape: (type, key size, value size).
type Shape = (u32, u32, u32);

/// The pinned maps under `root` that `obj` also defines, whose shape differs from `obj`'s:
/// (name, pinned shape, object's shape). Maps `obj` does not pin, and pins `obj` does not name,
/// are left alone (the missing ones are the caller's to report).
pub(crate) fn mismatched(root: &Path, obj: &[u8]) -> Result<Vec<(String, Shape, Shape)>, KernelError> {
    let parsed = aya_obj::Object::parse(obj).map_err(|e| KernelError::Load(format!("parsing the committed BPF object: {e}")))?;
    let mut names: Vec<&String> = parsed.maps.keys().collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let m = &parsed.maps[name];
        if m.pinning() != aya_obj::maps::PinningType::ByName {
            continue;
        }
        let path = root.join(name);
        if !path.exists() {
            continue;
        }
        let md = MapData::from_pin(&path).map_err(|e| KernelError::Map { map: "pinned map", detail: format!("{}: {e}", path.display()) })?;
        let info = md.info().map_err(|e| KernelError::Map { map: "pinned map", detail: format!("{}: {e}", path.display()) })?;
        let pinned_type = info.map_type().map(|t| t as u32).unwrap_or(u32::MAX);
        let pinned = (pinned_type, info.key_size(), info.value_size());
        let want = (m.map_type(), m.key_size(), m.value_size());
        if pinned != want {
            out.push((name.clone(), pinned, want));
        }
    }
    Ok(out)
}

/// Err naming the first map pinned under `root` (the firewall's, on `iface`) whose shape is not
/// `obj`'s: the firewall was installed by an older (or newer) rxray, and is replaced by turning it
/// off and applying the rules again.
pub(crate) fn check(root: &Path, obj: &[u8], iface: &str) -> Result<(), KernelError> {
    match mismatched(root, obj)?.into_iter().next() {
        None => Ok(()),
        Some((name, (pt, pk, pv), (wt, wk, wv))) => Err(KernelError::Load(format!(
            "the firewall on {iface} was installed by another rxray version (its map {name} is a {} with {pk}-byte keys \
             and {pv}-byte values; this rxray's is a {} with {wk}-byte keys and {wv}-byte values): remove it with \
             `rxray firewall off -i {iface}`, then apply the rules again",
            type_name(pt),
            type_name(wt)
        ))),
    }
}

/// A map type's name as aya spells it (`PerCpuHash`), or its number when aya does not know it.
fn type_name(t: u32) -> String {
    aya_obj::generated::bpf_map_type::try_from(t)
        .ok()
        .and_then(|b| aya::maps::MapType::try_from(b).ok())
        .map_or_else(|| format!("map of type {t}"), |m| format!("{m:?}"))
}
