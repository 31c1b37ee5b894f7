//! Hostile input, tried as an attacker would (issue 22): each case runs the real binary with a
//! time bound and a memory bound (RLIMIT_DATA, so a regression fails inside the child instead of
//! taking the machine) and asserts on the peak RSS the kernel measured (wait4's ru_maxrss).
//! No case here attaches anything: where a command would attach, its interface does not exist.
mod common;
use common::*;
use rxray_lab::testing::{run_bounded, BoundedRun};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `rxray ARGS` with a time bound (s) and a data-segment limit (MiB).
fn rxray(args: &[&str], secs: f64, data_mib: u64) -> BoundedRun {
    let mut c = Command::new(rxray_bin());
    c.args(args);
    let r = run_bounded(c, secs, data_mib);
    assert!(!r.timed_out, "rxray {args:?} ran past {secs} s: {r:?}");
    r
}

/// Asserts a failed run whose error names `what`, within `rss_mib` of peak memory.
fn fails_naming(r: &BoundedRun, what: &str, rss_mib: u64) {
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains(what), "the error does not name {what:?}: {}", r.stderr);
    assert!(r.max_rss_kib < rss_mib << 10, "peak RSS {} KiB over {rss_mib} MiB: {}", r.max_rss_kib, r.stderr);
}

fn write(path: &Path, body: &[u8]) -> PathBuf {
    std::fs::write(path, body).unwrap();
    path.to_path_buf()
}

/// An empty classic pcap: a capture for `analyze --alerts` to read while the loaders are tested.
fn empty_pcap(dir: &Path) -> String {
    write(&dir.join("empty.pcap"), &rxray_lab::pcap::pcap_bytes(&[])).display().to_string()
}

struct Fifo(PathBuf);
impl Drop for Fifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fifo(dir: &Path) -> Fifo {
    let p = dir.join("fifo");
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo: {}", std::io::Error::last_os_error());
    Fifo(p)
}

#[test]
fn files_that_never_end_are_refused_at_once_naming_them() {
    let dir = TempDir::new();
    let cap = empty_pcap(dir.path());
    let f = fifo(dir.path());
    let fifo = f.0.display().to_string();
    let d = dir.path().display().to_string();
    for bad in ["/dev/zero", "/dev/urandom", fifo.as_str(), d.as_str()] {
        // Each of the loaders, as the attacker tried them.
        let threat = format!("bad={bad}");
        for args in [
            vec!["analyze", "--alerts", "--detect-config", bad, &cap],
            vec!["analyze", "--alerts", "--threat-list", &threat, &cap],
            vec!["analyze", "--alerts", "--signatures", bad, &cap],
            vec!["firewall", "check", bad],
        ] {
            let r = rxray(&args, 10.0, 512);
            fails_naming(&r, &format!("{bad}: is a"), 32);
            assert!(r.stderr.contains("not a regular file"), "{args:?}: {}", r.stderr);
        }
        // A blocklist named by a rules file (relative to it, as users write them).
        let rules = write(&dir.path().join("rules.toml"), format!("[[rule]]\naction = \"deny\"\nsrc_list = \"{bad}\"\n").as_bytes());
        let r = rxray(&["firewall", "check", rules.to_str().unwrap()], 10.0, 512);
        fails_naming(&r, &format!("{bad}: is a"), 32);
        assert!(r.stderr.contains("rules.toml:3:"), "the rule's line: {}", r.stderr);
    }
}

/// 10 million garbage lines (130 MB), as in the report: once 1 GB of memory to reject.
fn garbage_list(path: &Path) -> PathBuf {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    // Three addresses that parse, as the report's file had, then garbage.
    w.write_all(b"1.1.1.1\n2.2.2.2\n3.3.3.3\n").unwrap();
    for i in 0..10_000_000u32 {
        writeln!(w, "gb{:08x}.zz", i).unwrap();
    }
    w.flush().unwrap();
    path.to_path_buf()
}

#[test]
fn a_huge_garbage_list_is_rejected_in_bounded_memory() {
    let dir = TempDir::new();
    let cap = empty_pcap(dir.path());
    let list = garbage_list(&dir.path().join("garbage.netset"));
    let size = std::fs::metadata(&list).unwrap().len();
    assert!(size > 128 << 20, "{size}");
    let l = list.display().to_string();
    let threat = format!("bad={l}");
    // Over the default limit (64 MiB): refused before reading, naming the file and the flag.
    let r = rxray(&["analyze", "--alerts", "--threat-list", &threat, &cap], 10.0, 512);
    fails_naming(&r, &format!("{l}: {size} bytes is over the limit of 64 MiB"), 32);
    assert!(r.stderr.contains("--max-file-size"), "{}", r.stderr);
    // Allowed in, it is read once (the text, about 130 MB) and rejected with the count and the
    // first bad line, not loaded as "3 prefixes".
    let r = rxray(&["analyze", "--alerts", "--max-file-size", "256MiB", "--threat-list", &threat, &cap], 30.0, 1024);
    fails_naming(&r, "10000000 of 10000003 lines are bad", 400);
    assert!(r.stderr.contains("line 4, column 1"), "{}", r.stderr);
    eprintln!("threat list of {size} bytes rejected in {:.2} s, peak RSS {} MiB", r.secs, r.max_rss_kib >> 10);
    // As a firewall blocklist (any bad line fails it): the same bound.
    let rules = write(&dir.path().join("rules.toml"), b"[[rule]]\naction = \"deny\"\nsrc_list = \"garbage.netset\"\n");
    let r = rxray(&["firewall", "check", "--max-file-size", "256MiB", rules.to_str().unwrap()], 30.0, 1024);
    fails_naming(&r, "garbage.netset:4:1:", 400);
    eprintln!("blocklist of {size} bytes rejected in {:.2} s, peak RSS {} MiB", r.secs, r.max_rss_kib >> 10);
}

#[test]
fn the_size_limit_is_one_flag_for_every_loader() {
    let dir = TempDir::new();
    let cap = empty_pcap(dir.path());
    // A good list of 1938 KiB (131,072 prefixes).
    let mut text = String::new();
    for i in 0..131_072u32 {
        text.push_str(&format!("10.{}.{}.0/24\n", i >> 8 & 0xff, i & 0xff));
    }
    let list = write(&dir.path().join("big.netset"), text.as_bytes());
    let threat = format!("big={}", list.display());
    let r = rxray(&["analyze", "--alerts", "--max-file-size", "1MiB", "--threat-list", &threat, &cap], 10.0, 512);
    fails_naming(&r, "big.netset: 1938 KiB is over the limit of 1 MiB", 32);
    let r = rxray(&["analyze", "--alerts", "--max-file-size", "4MiB", "--threat-list", &threat, &cap], 10.0, 512);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("threat list big: "), "{}", r.stderr);
    let rules = write(&dir.path().join("rules.toml"), b"[[rule]]\naction = \"deny\"\nsrc_list = \"big.netset\"\n");
    let r = rxray(&["firewall", "check", "--max-file-size", "1MiB", rules.to_str().unwrap()], 10.0, 512);
    fails_naming(&r, "big.netset: 1938 KiB is over the limit of 1 MiB", 32);
    let r = rxray(&["firewall", "check", "--max-file-size", "4MiB", rules.to_str().unwrap()], 10.0, 512);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // The signatures and detector config files go through the same reader.
    let sigs = write(&dir.path().join("big.rules"), &vec![b'#'; 2 << 20]);
    let r = rxray(&["analyze", "--alerts", "--max-file-size", "1MiB", "--signatures", sigs.to_str().unwrap(), &cap], 10.0, 512);
    fails_naming(&r, "big.rules: 2 MiB is over the limit of 1 MiB", 32);
    let cfg = write(&dir.path().join("big.json"), format!("{{{}}}", " ".repeat(2 << 20)).as_bytes());
    let r = rxray(&["analyze", "--alerts", "--max-file-size", "1MiB", "--detect-config", cfg.to_str().unwrap(), &cap], 10.0, 512);
    fails_naming(&r, "big.json: 2097154 bytes is over the limit of 1 MiB", 32);
}

#[test]
fn signature_loading_is_linear_in_content_and_continuations() {
    let dir = TempDir::new();
    let cap = empty_pcap(dir.path());
    // A content of 1 MB (10k bytes took 0.35 s and 100k took 35 s; 1 MB never finished).
    let big = format!("alert tcp any any -> any any (msg:\"big\"; content:\"{}\"; sid:1;)\n", "ab".repeat(1 << 19));
    let p = write(&dir.path().join("content.rules"), big.as_bytes());
    let r = rxray(&["analyze", "--alerts", "--signatures", p.to_str().unwrap(), &cap], 10.0, 1024);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("signatures: 1 rules loaded"), "{}", r.stderr);
    assert!(r.max_rss_kib < 128 << 10, "peak RSS {} KiB", r.max_rss_kib);
    eprintln!("1 MB content: loaded in {:.2} s, peak RSS {} MiB", r.secs, r.max_rss_kib >> 10);
    // 100k lines joined by continuations (once 7 s; one line of that length took 0.04 s).
    let mut t = String::from("alert tcp any any -> any any (msg:\"long\"; \\\n");
    for _ in 0..100_000 {
        t.push_str("  \\\n");
    }
    t.push_str("content:\"x\"; sid:2;)\n");
    let p = write(&dir.path().join("cont.rules"), t.as_bytes());
    let r = rxray(&["analyze", "--alerts", "--signatures", p.to_str().unwrap(), &cap], 10.0, 1024);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("signatures: 1 rules loaded"), "{}", r.stderr);
    assert!(r.max_rss_kib < 128 << 10, "peak RSS {} KiB", r.max_rss_kib);
    eprintln!("100k continuation lines: loaded in {:.2} s, peak RSS {} MiB", r.secs, r.max_rss_kib >> 10);
    // An error on the last continued line still points at that physical line.
    let bad = t.replace("content:\"x\"", "content:\"\"");
    let p = write(&dir.path().join("bad.rules"), bad.as_bytes());
    let r = rxray(&["analyze", "--alerts", "--signatures", p.to_str().unwrap(), &cap], 10.0, 1024);
    assert!(r.stderr.contains("bad.rules:100002:9: content is empty"), "{}", r.stderr);
}

/// A pcapng with one interface at if_tsresol `resol` and one packet at `ts`; the packet's byte offset.
fn pcapng_one_packet(resol: u8, ts: u64) -> (Vec<u8>, u64) {
    let block = |ty: u32, body: &[u8]| {
        let mut body = body.to_vec();
        body.resize(body.len().div_ceil(4) * 4, 0);
        let n = 12 + body.len() as u32;
        let mut b = ty.to_le_bytes().to_vec();
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(&body);
        b.extend_from_slice(&n.to_le_bytes());
        b
    };
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&[0xff; 8]);
    let mut idb = vec![1, 0, 0, 0, 0, 0, 0, 0];
    idb.extend_from_slice(&[9, 0, 1, 0, resol, 0, 0, 0, 0, 0, 0, 0]);
    let mut f = block(0x0A0D_0D0A, &shb);
    f.extend(block(1, &idb));
    let at = f.len() as u64;
    let mut epb = 0u32.to_le_bytes().to_vec();
    epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    epb.extend_from_slice(&(ts as u32).to_le_bytes());
    epb.extend_from_slice(&[14, 0, 0, 0, 14, 0, 0, 0]);
    epb.extend_from_slice(&[0xff; 14]);
    f.extend(block(6, &epb));
    (f, at)
}

#[test]
fn pcapng_times_that_overflow_are_errors_at_their_byte_offset() {
    let dir = TempDir::new();
    // 2^-0 s binary resolution: 2^40+3 s was printed as the year 2323, 2^63 s as 1970.
    for (resol, ts) in [(0x80u8, (1u64 << 40) + 3), (0x80, 1 << 63), (0, u64::MAX)] {
        let (bytes, at) = pcapng_one_packet(resol, ts);
        let p = write(&dir.path().join("t.pcapng"), &bytes);
        let r = rxray(&["analyze", p.to_str().unwrap()], 10.0, 512);
        fails_naming(&r, &format!("timestamp {ts} "), 32);
        assert!(r.stderr.contains(&format!("at byte offset {at}")), "{}", r.stderr);
        assert!(r.stderr.contains("t.pcapng"), "{}", r.stderr);
    }
}

#[test]
fn an_unknown_detector_name_is_an_error_at_its_line() {
    let dir = TempDir::new();
    let cap = empty_pcap(dir.path());
    let cfg = write(&dir.path().join("d.json"), b"{\"policy\": {\"detectors\": {\n  \"nosuch\": {\"response\": \"block\"}}}}\n");
    let r = rxray(&["analyze", "--alerts", "--detect-config", cfg.to_str().unwrap(), &cap], 10.0, 512);
    fails_naming(&r, "unknown detector name \"nosuch\"", 32);
    assert!(r.stderr.contains("d.json") && r.stderr.contains("line 2, column 10"), "{}", r.stderr);
}

#[test]
fn capture_opens_its_output_before_attaching_and_names_it() {
    let dir = TempDir::new();
    // The interface does not exist: were the output opened after attaching, the error would be
    // about the interface instead.
    let r = rxray(&["capture", "-i", "rxt-nosuch0", "-w", "/proc/version"], 10.0, 512);
    fails_naming(&r, "/proc/version", 32);
    assert!(!r.stderr.contains("rxt-nosuch0"), "{}", r.stderr);
    let d = dir.path().display().to_string();
    let r = rxray(&["capture", "-i", "rxt-nosuch0", "-w", &d], 10.0, 512);
    fails_naming(&r, &format!("creating {d}: Is a directory"), 32);
}

#[test]
fn ring_size_has_one_rule_in_every_command() {
    // A namespace that does not exist: were a bad size accepted, the command would stop there,
    // with nothing attached anywhere.
    let commands: [&[&str]; 5] = [
        &["--netns", "rxt-nosuch-ns", "watch", "-i", "rxt-nosuch0", "--ring-size"],
        &["--netns", "rxt-nosuch-ns", "capture", "-i", "rxt-nosuch0", "-w", "/dev/null", "--ring-size"],
        &["--netns", "rxt-nosuch-ns", "drops", "-i", "rxt-nosuch0", "--ring-size"],
        &["--netns", "rxt-nosuch-ns", "conns", "--ring-size"],
        &["--netns", "rxt-nosuch-ns", "flows", "-i", "rxt-nosuch0", "--drop-ring-size"],
    ];
    for cmd in commands {
        for bad in ["0", "3", "5000", "2048", "2GiB", "lots"] {
            let mut args = cmd.to_vec();
            args.push(bad);
            let r = rxray(&args, 10.0, 512);
            assert_eq!(r.code, Some(2), "{args:?} must be refused while parsing: {r:?}");
            let why = if bad == "lots" { "does not start with a number" } else { "is not a power of two from 4096 (4 KiB) to 1073741824 (1 GiB)" };
            assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains(&format!("invalid value '{bad}'")), "{args:?}: {}", r.stderr);
        }
    }
}

/// A classic pcap of `n` UDP packets, each its own flow (source address and port vary).
fn many_flows_pcap(path: &Path, n: u32) {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut hdr = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    hdr.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]);
    w.write_all(&hdr).unwrap();
    for i in 0..n {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        // IPv4, 20 + 8 + 4 bytes, UDP, 198.18.x.y (x.y from i) -> 198.19.0.1.
        f.extend_from_slice(&[0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[198, 18 | (i >> 24) as u8 & 1, (i >> 16) as u8, (i >> 8) as u8]);
        f.extend_from_slice(&[198, 19, 0, 1]);
        f.extend_from_slice(&(1024 + (i & 0xff) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 53, 0, 12, 0, 0, b'd', b'a', b't', b'a']);
        w.write_all(&(i / 1_000_000).to_le_bytes()).unwrap();
        w.write_all(&(i % 1_000_000).to_le_bytes()).unwrap();
        w.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
        w.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
        w.write_all(&f).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn analyze_memory_is_bounded_with_a_million_flows() {
    let dir = TempDir::new();
    let p = dir.path().join("flows.pcap");
    many_flows_pcap(&p, 1_000_000);
    let file = p.to_str().unwrap();
    // The default cap (262,144 flows); 1,000,000 flows once took 1.08 GB in every mode.
    for json in [false, true] {
        let mut args = vec!["analyze", file];
        if json {
            args.push("--json");
        }
        let r = rxray(&args, 60.0, 2048);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert!(r.max_rss_kib < 400 << 10, "peak RSS {} MiB with the default cap (json: {json})", r.max_rss_kib >> 10);
        eprintln!("1M flows, default cap, json {json}: {:.2} s, peak RSS {} MiB", r.secs, r.max_rss_kib >> 10);
        if json {
            let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            let rep = &v["report"];
            assert_eq!(rep["totals"]["packets"], 1_000_000);
            let other = &rep["other"];
            let folded = other["flows"].as_u64().unwrap();
            let kept = rep["flow_count"].as_u64().unwrap();
            // Every flow is a flow shown, or one folded into `other`; every packet is in one of them.
            assert_eq!(folded + kept, 1_000_000, "{other}");
            assert!(kept <= 262_144 && folded > 0, "{kept} {folded}");
            assert_eq!(other["packets"].as_u64().unwrap() + kept, 1_000_000);
            assert_eq!(other["bytes"].as_u64().unwrap(), folded * 46);
            assert!(rep["conversations"]["udp"].as_array().unwrap().len() <= 262_144);
        } else {
            assert!(r.stdout.contains("flows folded past --max-flows 262144"), "{}", &r.stdout[..2000.min(r.stdout.len())]);
        }
    }
    // A smaller cap: a smaller bound.
    let r = rxray(&["analyze", file, "--max-flows", "10000", "--json"], 60.0, 1024);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.max_rss_kib < 64 << 10, "peak RSS {} MiB with --max-flows 10000", r.max_rss_kib >> 10);
    eprintln!("1M flows, --max-flows 10000: {:.2} s, peak RSS {} MiB", r.secs, r.max_rss_kib >> 10);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["report"]["other"]["flows"].as_u64().unwrap() + v["report"]["flow_count"].as_u64().unwrap(), 1_000_000);
}

#[test]
fn intervals_are_checked_while_parsing() {
    // `inf` once reached Duration::from_secs_f64 after attaching, and panicked there.
    let commands: [&[&str]; 6] = [
        &["--netns", "rxt-nosuch-ns", "flows", "-i", "rxt-nosuch0", "--interval"],
        &["--netns", "rxt-nosuch-ns", "drops", "--interval"],
        &["--netns", "rxt-nosuch-ns", "conns", "--interval"],
        &["--netns", "rxt-nosuch-ns", "latency", "--interval"],
        &["--netns", "rxt-nosuch-ns", "latency", "-d"],
        &["--netns", "rxt-nosuch-ns", "alerts", "-i", "rxt-nosuch0", "--recorder-seconds"],
    ];
    for cmd in commands {
        for bad in ["inf", "1e300", "NaN", "x"] {
            let mut args = cmd.to_vec();
            args.push(bad);
            let r = rxray(&args, 10.0, 512);
            assert_eq!(r.code, Some(2), "{args:?} must be refused while parsing: {r:?}");
            assert!(r.stderr.contains(&format!("invalid value '{bad}'")), "{args:?}: {}", r.stderr);
        }
    }
}
