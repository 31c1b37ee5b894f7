//! The live-frames generator of `scripts/bench-drop` and `scripts/bench-burst`: bench_tx (XDP_TX,
//! rotating IPv4 sources over 198.19.0.0/16) run with BPF_PROG_TEST_RUN and
//! BPF_F_TEST_XDP_LIVE_FRAMES on IFACE, in the namespace it is started in (`ip netns exec`). The
//! kernel turns XDP_TX into a redirect to IFACE itself, so on a veth every frame goes through the
//! peer's ndo_xdp_xmit onto the peer's receive ring as an xdp_frame (no skb), as a NIC driver
//! would hand it over. The peer accepts them only when it has an XDP program or GRO on (its NAPI).
//!
//! Sends FRAMES 46-byte UDP frames (198.19.x.y:40000 -> 198.18.0.2:9, to 02:52:58:00:00:0b) on
//! CPUS threads, thread i pinned to CPU i; at RATE frames per second in all (sent in 10 ms slices:
//! each slice sends what the rate owes so far, in batches of 64 frames), or RATE 0 as fast as it
//! can. Stops after 120 s whatever was sent. Prints "frames seconds" on stdout, the seconds counted from
//! when every sender had its program loaded.
//!   live_tx IFACE FRAMES RATE CPUS
use aya::{
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
    EbpfLoader,
};
use rxray_kernel::BENCH_TX_OBJ;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const SRC_BASE: u32 = 0xc613_0000; // 198.19.0.0
const SRC_COUNT: u32 = 65_536;
const BATCH: u32 = 64;
const SLICE: Duration = Duration::from_millis(10);
const LIMIT: Duration = Duration::from_secs(120);
/// The most frames per test run: large enough that the per-run cost (the XDP dispatcher
/// swapping the program in and out) stays small.
const UNPACED_RUN: u64 = 1 << 17;

/// The frame: the one trafgen sends in the same benchmarks (the source is rewritten per frame).
const FRAME: [u8; 46] = [
    0x02, 0x52, 0x58, 0x00, 0x00, 0x0b, 0x02, 0x52, 0x58, 0x00, 0x00, 0x0a, 0x08, 0x00, // ethernet
    0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, // IPv4 (checksum: bench_tx)
    198, 19, 0, 0, 198, 18, 0, 2, // addresses
    0x9c, 0x40, 0x00, 0x09, 0x00, 0x0c, 0x00, 0x00, // UDP, no checksum
    0x00, 0x00, 0x00, 0x00,
];

fn usage() -> ! {
    eprintln!("usage: live_tx IFACE FRAMES RATE CPUS   (RATE 0: unpaced; run it in IFACE's namespace)");
    std::process::exit(2);
}

fn pin(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within it (cpu < CPU_SETSIZE is checked).
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(format!("CPU {cpu} is beyond CPU_SETSIZE"));
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// One sender: `frames` frames from CPU `cpu`, at `rate` per second (0: unpaced). Returns the frames sent.
fn send(ifindex: u32, cpu: usize, frames: u64, rate: f64, ready: &Barrier) -> Result<(u64, Duration), String> {
    let loaded = load(cpu, ifindex);
    // Every sender waits for the others, loaded or not, so none is left waiting on a failed one.
    ready.wait();
    let (mut e, ctx) = loaded?;
    let p: &mut Xdp = e.program_mut("bench_tx").ok_or("bench_tx missing")?.try_into().map_err(|e| format!("{e}"))?;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < frames && start.elapsed() < LIMIT {
        let n = if rate > 0.0 {
            let owed = ((start.elapsed().as_secs_f64() * rate) as u64).min(frames);
            if owed <= sent {
                std::thread::sleep(SLICE);
                continue;
            }
            (owed - sent).min(UNPACED_RUN)
        } else {
            (frames - sent).min(UNPACED_RUN)
        };
        let mut o = TestRunOptions::new();
        o.data_in = Some(&FRAME);
        o.ctx_in = Some(&ctx);
        o.repeat = n as u32;
        o.attrs = TestRunAttrs::new().xdp_live_frames(BATCH);
        p.test_run(o).map_err(|e| format!("bench_tx live frames (ifindex {ifindex}): {e:?}"))?;
        sent += n;
    }
    Ok((sent, start.elapsed()))
}

/// Pins this thread to `cpu` and loads bench_tx: (the object, the xdp_md context for IFACE).
fn load(cpu: usize, ifindex: u32) -> Result<(aya::Ebpf, [u8; 24]), String> {
    pin(cpu)?;
    let mut l = EbpfLoader::new();
    l.override_global("tx_src_base", &SRC_BASE, true).override_global("tx_src_count", &SRC_COUNT, true);
    let mut e = l.load(BENCH_TX_OBJ).map_err(|e| format!("loading bench_tx: {e}"))?;
    let p: &mut Xdp = e.program_mut("bench_tx").ok_or("bench_tx missing")?.try_into().map_err(|e| format!("{e}"))?;
    p.load().map_err(|e| format!("verifying bench_tx: {e}"))?;
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(FRAME.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    Ok((e, ctx))
}

fn run() -> Result<(), String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 4 {
        usage();
    }
    let iface = std::ffi::CString::new(a[0].as_str()).map_err(|_| "IFACE: a NUL byte".to_string())?;
    let frames: u64 = a[1].parse().map_err(|_| format!("FRAMES: not a count: {}", a[1]))?;
    let rate: f64 = a[2].parse().map_err(|_| format!("RATE: not a number: {}", a[2]))?;
    let cpus: usize = a[3].parse().map_err(|_| format!("CPUS: not a count: {}", a[3]))?;
    if cpus == 0 || cpus > 1024 || !rate.is_finite() || rate < 0.0 {
        return Err("CPUS: 1 to 1024; RATE: 0 or more".into());
    }
    // SAFETY: a valid NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(iface.as_ptr()) };
    if ifindex == 0 {
        return Err(format!("no interface {} in this namespace", a[0]));
    }
    let per = frames / cpus as u64;
    let ready = Barrier::new(cpus);
    let (sent, took) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..cpus)
            .map(|c| {
                let n = if c == 0 { frames - per * (cpus as u64 - 1) } else { per };
                let ready = &ready;
                s.spawn(move || send(ifindex, c, n, rate / cpus as f64, ready))
            })
            .collect();
        hs.into_iter().try_fold((0u64, Duration::ZERO), |(t, d), h| {
            let (n, took) = h.join().map_err(|_| "a sender panicked".to_string())??;
            Ok::<_, String>((t + n, d.max(took)))
        })
    })?;
    println!("{sent} {:.6}", took.as_secs_f64());
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("live_tx: {e}");
        std::process::exit(1);
    }
}
