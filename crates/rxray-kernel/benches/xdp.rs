//! ns/packet of the XDP ingress program through BPF_PROG_TEST_RUN, beside the floor (a program that
//! only returns XDP_PASS), cycling through many distinct flows, with the ring buffer drained by a
//! second thread while timing; and the rate at which user space drains and decodes events.
//! Then the flow table at 1,000, 100,000 and 1,000,000 live flows: a rotating front program
//! (bench_rotate) writes the next of N source addresses into the frame on every run and tail-calls
//! rxray, so every packet belongs to another of the N flows the table holds; the floor is the same
//! rotation in front of XDP_PASS. The flows are visited in the order they were inserted, then in a
//! shuffled order (the worst case for the caches: no prefetcher follows it).
//! Run: `scripts/bench` (root). Prints raw figures and ratios; asserts nothing about speed.
use aya::{
    maps::{Array, ProgramArray},
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf, EbpfLoader,
};
use rxray_kernel::{abi, decode, Clock, Ingress, IngressOptions, BENCH_PASS_OBJ, BENCH_ROTATE_OBJ};
use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

const FLOWS: usize = 1000;
const REPEAT_PER_FLOW: u32 = 1000; // FLOWS * REPEAT = 1,000,000 runs per round
const ROUNDS: usize = 5;

/// A TCP/IPv4 frame with 64 payload bytes; flow i differs in source address and port.
fn frame(i: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20 + 64];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x0b]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x0a]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 20 + 64) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[198, 18, (i >> 8) as u8, i as u8]);
    ip[16..20].copy_from_slice(&[198, 19, 0, 1]);
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&(10_000 + i as u16).to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    f
}

/// Mean ns/run over all flows (the kernel times each batch of REPEAT runs).
fn round(prog: &Xdp, frames: &[Vec<u8>]) -> f64 {
    let mut total = Duration::ZERO;
    for f in frames {
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(f);
        opts.repeat = REPEAT_PER_FLOW;
        let r = prog.test_run(opts).expect("BPF_PROG_TEST_RUN");
        assert_eq!(r.return_value, 2, "XDP_PASS expected");
        total += r.duration; // per-run average of this batch
    }
    total.as_nanos() as f64 / frames.len() as f64
}

/// Live flow counts measured under rotation, and the test-run repetitions per timed round.
const SCALES: [usize; 3] = [1_000, 100_000, 1_000_000];
const ROT_RUNS: u32 = 1_000_000;
const ROT_ROUNDS: usize = 3;

/// bench_rotate loaded in front of `target`, cycling over `n` sources 10.0.0.0 + i.
fn rotator(target: &Xdp, n: usize) -> Ebpf {
    let n32 = n as u32;
    let mut e = EbpfLoader::new()
        .map_max_entries("rotate_src", n32)
        .override_global("rotate_n", &n32, true)
        .load(BENCH_ROTATE_OBJ)
        .expect("load bench_rotate");
    {
        let mut a: Array<_, [u8; 16]> = Array::try_from(e.map_mut("rotate_src").unwrap()).expect("rotate_src");
        for i in 0..n32 {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&(0x0a00_0000 + i).to_be_bytes());
            a.set(i, b, 0).expect("rotate_src set");
        }
    }
    let p: &mut Xdp = e.program_mut("bench_rotate").unwrap().try_into().unwrap();
    p.load().expect("verify bench_rotate");
    let fd = target.fd().expect("target fd");
    let mut next = ProgramArray::try_from(e.map_mut("rotate_next").unwrap()).expect("rotate_next");
    next.set(0, fd, 0).expect("rotate_next set");
    e
}

/// One test run of `repeat` rotating repetitions: kernel's mean ns per run.
fn rot_run(rot: &Ebpf, frame: &[u8], repeat: u32) -> f64 {
    let p: &Xdp = rot.program("bench_rotate").unwrap().try_into().unwrap();
    let mut o = TestRunOptions::new();
    o.data_in = Some(frame);
    o.repeat = repeat;
    let r = p.test_run(o).expect("bench_rotate: BPF_PROG_TEST_RUN");
    assert_eq!(r.return_value, 2, "XDP_PASS expected");
    r.duration.as_nanos() as f64
}

/// Median ns/packet of rotating over `n` sources in front of `target`, after one pass over all of
/// them (so the flow table holds every flow before timing): first in the order they were inserted,
/// then in a shuffled order. Visited in insertion order, a hash map's preallocated elements are
/// read in address order, which the prefetchers follow; shuffled, every element is a random access,
/// as with real traffic. Returns (insertion order, shuffled).
fn rotating(target: &Xdp, frame: &[u8], n: usize) -> (f64, f64) {
    let mut rot = rotator(target, n);
    rot_run(&rot, frame, n as u32);
    let in_order = median((0..ROT_ROUNDS).map(|_| rot_run(&rot, frame, ROT_RUNS.max(n as u32))).collect());
    {
        // Fisher-Yates with a fixed xorshift seed: the same order on every run.
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut a: Array<_, [u8; 16]> = Array::try_from(rot.map_mut("rotate_src").unwrap()).expect("rotate_src");
        for (i, src) in order.iter().enumerate() {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&(0x0a00_0000 + src).to_be_bytes());
            a.set(i as u32, b, 0).expect("rotate_src set");
        }
    }
    let shuffled = median((0..ROT_ROUNDS).map(|_| rot_run(&rot, frame, ROT_RUNS.max(n as u32))).collect());
    (in_order, shuffled)
}

/// The flow table at each of SCALES live flows, beside the rotation floor; prints one line each.
fn flow_scales(frame: &[u8], floor: &Xdp) {
    println!("flow table, events off, every packet another of N live flows (rotating source), median of {ROT_ROUNDS}; visited in insertion order, then shuffled");
    for n in SCALES {
        let cap = (n + n / 4).max(65536) as u32;
        let ing = Ingress::load(&IngressOptions { events: false, flows: true, flow_capacity: cap, ..Default::default() })
            .expect("load rxray");
        let (floor_ns, floor_shuf) = rotating(floor, frame, n);
        let (ns, shuf) = rotating(ing.program(), frame, n);
        let t = ing.totals().expect("totals");
        let live = ing.flows().expect("flows").len();
        assert_eq!(live, n, "the flow table should hold every rotated flow");
        println!(
            "  {n:>9} flows  rxray {ns:7.1} ns/packet  floor (rotate + XDP_PASS) {floor_ns:6.1}  net {:7.1}  |  shuffled order: rxray {shuf:7.1}  floor {floor_shuf:6.1}  net {:7.1}  (insert failures {})",
            ns - floor_ns,
            shuf - floor_shuf,
            t.flow_insert_failed
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench xdp: needs root (BPF_PROG_TEST_RUN)");
        std::process::exit(1);
    }
    let frames: Vec<Vec<u8>> = (0..FLOWS).map(frame).collect();

    let mut floor_obj = Ebpf::load(BENCH_PASS_OBJ).expect("load bench_pass");
    let floor: &mut Xdp = floor_obj.program_mut("bench_pass").unwrap().try_into().unwrap();
    floor.load().expect("verify bench_pass");
    let floor: &Xdp = floor;
    if std::env::args().any(|a| a == "--scale-only") {
        flow_scales(&frames[0], floor);
        return;
    }
    let floor_ns = median((0..ROUNDS).map(|_| round(floor, &frames)).collect());

    let mut ing = Ingress::load(&IngressOptions { events: false, flows: false, ..Default::default() }).expect("load rxray");
    let off_ns = median((0..ROUNDS).map(|_| round(ing.program(), &frames)).collect());
    let flows_ing = Ingress::load(&IngressOptions { events: false, flows: true, ..Default::default() }).expect("load rxray");
    let flows_ns = median((0..ROUNDS).map(|_| round(flows_ing.program(), &frames)).collect());
    let nflows = flows_ing.flows().expect("flows").len();
    drop(flows_ing);

    ing.set_events(true).unwrap();
    let before = ing.totals().unwrap();
    let running = AtomicBool::new(true);
    let drained = AtomicU64::new(0);
    let (on_ns, drain_rate) = {
        let (prog, ring) = ing.split();
        std::thread::scope(|s| {
            let consumer = s.spawn(|| {
                let clock = Clock::now();
                let mut n = 0u64;
                let mut busy = Duration::ZERO;
                loop {
                    let t = Instant::now();
                    let mut got = 0;
                    while let Some(item) = ring.next() {
                        let ev = abi::PktEvent::from_bytes(&item).expect("event");
                        drop(item);
                        std::hint::black_box(decode(&ev, &clock, "bench"));
                        got += 1;
                    }
                    if got > 0 {
                        busy += t.elapsed();
                        n += got;
                    } else if !running.load(Ordering::Acquire) {
                        break;
                    } else {
                        std::thread::yield_now();
                    }
                }
                drained.store(n, Ordering::Release);
                n as f64 / busy.as_secs_f64()
            });
            let ns = median((0..ROUNDS).map(|_| round(prog, &frames)).collect());
            running.store(false, Ordering::Release);
            (ns, consumer.join().unwrap())
        })
    };
    let after = ing.totals().unwrap();
    let emitted = after.events - before.events;
    let lost = after.lost - before.lost;

    println!("xdp ingress, BPF_PROG_TEST_RUN, {FLOWS} flows x {REPEAT_PER_FLOW} runs, median of {ROUNDS} rounds");
    println!("  floor (XDP_PASS only)      {floor_ns:8.1} ns/packet");
    println!("  rxray, events off          {off_ns:8.1} ns/packet   {:5.2}x floor  (goal <= 60 ns)", off_ns / floor_ns);
    println!("  rxray, flows on ({nflows} flows) {flows_ns:8.1} ns/packet   {:5.2}x floor", flows_ns / floor_ns);
    println!("  rxray, every packet event  {on_ns:8.1} ns/packet   {:5.2}x floor  (goal <= 120 ns)", on_ns / floor_ns);
    println!(
        "  drained {} of {emitted} events, lost {lost}; user-space drain+decode {:.2} M events/s on one core (goal >= 1.00)",
        drained.load(Ordering::Acquire),
        drain_rate / 1e6
    );
    drop(ing);
    if std::env::args().all(|a| a != "--no-scale") {
        flow_scales(&frames[0], floor);
    }
}
