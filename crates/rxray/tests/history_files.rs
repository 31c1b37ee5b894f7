//! `rxray history` and `rxray investigate` on a store file that is not theirs to read: a corrupt
//! file and a foreign SQLite file (made by Python's sqlite3) each give a clear error naming the
//! file, a non-zero exit, and are left byte for byte untouched. No root needed.
mod common;

use common::*;
use std::process::Command;

fn rx(args: &[&str]) -> (bool, String) {
    let o = Command::new(rxray_bin()).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn history_and_investigate_refuse_a_corrupt_and_a_foreign_file_and_leave_them_untouched() {
    let dir = TempDir::new();
    let corrupt = dir.path().join("corrupt");
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(corrupt.join("rxray.db"), b"not a database, just text that an editor saved here\n".repeat(100)).unwrap();
    let py = Command::new("python3")
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE invoices (id INTEGER, total REAL)'); c.execute('INSERT INTO invoices VALUES (1, 9.5)'); c.commit()"])
        .arg(foreign.join("rxray.db"))
        .status()
        .unwrap();
    assert!(py.success());
    for (d, want) in [(&corrupt, "not an SQLite database, or damaged"), (&foreign, "not an rxray store")] {
        let file = d.join("rxray.db");
        let before = std::fs::read(&file).unwrap();
        let ds = d.to_str().unwrap();
        for args in [vec!["history", "--store", ds], vec!["history", "--store", ds, "--addr", "198.18.0.1", "--json"], vec!["investigate", "198.18.0.1", "--store", ds, "--json"]] {
            let (ok, err) = rx(&args);
            assert!(!ok, "{args:?} succeeded");
            assert!(err.contains(want) && err.contains(file.to_str().unwrap()) && err.contains("untouched"), "{args:?}: {err}");
        }
        assert_eq!(std::fs::read(&file).unwrap(), before, "{} was changed", file.display());
        let names: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["rxray.db"], "nothing made beside it");
    }
}
