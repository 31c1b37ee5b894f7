//! ns/packet of the XDP ingress program through BPF_PROG_TEST_RUN, beside the floor (a program that
//! only returns XDP_PASS), cycling through many distinct flows, with the ring buffer drained by a
//! second thread while timing; and the rate at which user space drains and decodes events.
//! Run: `scripts/bench` (root). Prints raw figures and ratios; asserts nothing about speed.
use aya::{
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf,
};
use rxray_kernel::{abi, decode, Clock, Ingress, IngressOptions, BENCH_PASS_OBJ};
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
}
