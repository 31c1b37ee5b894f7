//! Embeds the committed eBPF objects, refusing them when the sources they were built from changed:
//! bpf/obj/SOURCES.sha256 must equal `sha256sum` of bpf/build.sh, bpf/include/*.h and bpf/*.bpf.c.
use sha2::{Digest, Sha256};
use std::{fs, path::Path};

fn main() {
    let bpf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let mut sources = vec!["bpf/build.sh".to_string()];
    for (dir, pred) in [("include", ".h"), ("", ".bpf.c")] {
        let d = bpf.join(dir);
        for ent in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let name = ent.expect("dir entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(pred) {
                let rel = if dir.is_empty() { format!("bpf/{name}") } else { format!("bpf/{dir}/{name}") };
                sources.push(rel);
            }
        }
    }
    // `LC_ALL=C sort` order, as bpf/build.sh writes it.
    sources.sort();
    let mut record = String::new();
    for rel in &sources {
        let path = bpf.join("..").join(rel);
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        record.push_str(&format!("{hex}  {rel}\n"));
    }
    let rec_path = bpf.join("obj/SOURCES.sha256");
    println!("cargo:rerun-if-changed={}", rec_path.display());
    let recorded = fs::read_to_string(&rec_path).unwrap_or_default();
    if recorded != record {
        panic!(
            "\n\nrxray: the committed eBPF objects in bpf/obj/ are stale: bpf/obj/SOURCES.sha256 does not \
             match the sources in bpf/.\nRebuild them with `bpf/build.sh` (needs clang, llvm and libbpf-dev: \
             apt-get install clang llvm libbpf-dev) and commit bpf/obj/.\n\nrecorded:\n{recorded}\nsources now:\n{record}\n"
        );
    }
    for obj in fs::read_dir(bpf.join("obj")).expect("bpf/obj") {
        println!("cargo:rerun-if-changed={}", obj.expect("entry").path().display());
    }
}
