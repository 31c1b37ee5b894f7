//! `dist/rxray.service` passes `systemd-analyze verify` (PID 1 is not systemd here, so the unit is
//! checked, not started), on a copy whose ExecStart points at the binary this build made. Any
//! warning fails the test too: systemd ignores a bad directive with only a warning.
mod common;

use common::*;
use std::process::Command;

fn verify(unit_text: &str, dir: &std::path::Path) -> (bool, String) {
    let unit = dir.join("rxray.service");
    std::fs::write(&unit, unit_text).unwrap();
    let o = Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("systemd-analyze");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)).trim().to_string())
}

#[test]
fn the_unit_verifies_with_hardening_and_no_warning() {
    if !have("systemd-analyze") {
        skip_or_fail("systemd-analyze (Debian's systemd package) is not installed");
        return;
    }
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/rxray.service")).unwrap();
    for key in ["CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON", "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "ExecReload=/bin/kill -HUP $MAINPID"] {
        assert!(text.contains(key), "the unit lacks {key}");
    }
    let dir = TempDir::new();
    let ours = text.replace("/usr/local/bin/rxray", rxray_bin());
    let (ok, said) = verify(&ours, dir.path());
    assert!(ok && said.is_empty(), "systemd-analyze verify: {said}");
    // The check can fail: a misspelt value is reported.
    let (_, said) = verify(&ours.replace("ProtectHome=yes", "ProtectHome=maybe"), dir.path());
    assert!(said.contains("ProtectHome") || said.contains("protect home"), "a bad value went unreported: {said:?}");
}
