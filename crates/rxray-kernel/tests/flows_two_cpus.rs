//! The flow table is one value per flow shared by every CPU (not a per-CPU value summed by user
//! space), so two CPUs counting packets of one flow at the same moment must add up exactly: packets,
//! bytes, the size histogram and the OR of the TCP flags. Two threads, pinned to two CPUs, run the
//! real XDP program through BPF_PROG_TEST_RUN at once on two frames of the same TCP flow (different
//! sizes and flags); the expected counts come from what the threads sent.
use aya::programs::{TestRun, TestRunOptions, Xdp};
use rxray_kernel::{Ingress, IngressOptions};
use rxray_lab::frames::{self, ipproto, Eth, Tcp, L4};
use rxray_lab::testing::need_root;
use rxray_lab::{MAC_A, MAC_B};
use std::sync::Barrier;
use std::time::Instant;

const RUNS: u32 = 40; // test runs per thread
const REPEAT: u32 = 25_000; // repetitions per test run: 1,000,000 packets per thread

fn tcp_frame(flags: u8, payload_len: usize) -> Vec<u8> {
    let tcp = Tcp { sport: 40000, dport: 80, seq: 1, ack: 1, flags, window: 512, urgent: 0, options: vec![] };
    let ip = frames::plain_ip("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap(), ipproto::TCP);
    frames::frame(&Eth { dst: MAC_B, src: MAC_A }, &[], ip, L4::Tcp(tcp), &vec![0x5a; payload_len])
}

/// The flow table's size bucket of a frame of `len` bytes, from the documented edges.
fn bucket(len: usize) -> usize {
    [64, 128, 256, 512, 1024, 1518, 9018].iter().position(|&e| len <= e).unwrap_or(7)
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0, "pinning to CPU {cpu}");
    }
}

/// Runs `frame` RUNS x REPEAT times on `cpu`; returns the CPU it ran on and its time window.
fn send(prog: &Xdp, frame: &[u8], cpu: usize, start: &Barrier) -> (i32, Instant, Instant) {
    pin_to(cpu);
    start.wait();
    let t0 = Instant::now();
    for _ in 0..RUNS {
        let mut o = TestRunOptions::new();
        o.data_in = Some(frame);
        o.repeat = REPEAT;
        let r = prog.test_run(o).expect("BPF_PROG_TEST_RUN");
        assert_eq!(r.return_value, 2, "XDP_PASS expected");
    }
    // SAFETY: sched_getcpu has no preconditions.
    (unsafe { libc::sched_getcpu() }, t0, Instant::now())
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn two_cpus_counting_one_flow_at_once_add_up_exactly() {
    if !need_root() {
        return;
    }
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    assert!(ncpu >= 2, "this test needs two CPUs (found {ncpu})");
    let ingress = Ingress::load(&IngressOptions { events: false, flows: true, ..Default::default() }).expect("load the XDP program");
    let (small, large) = (tcp_frame(0x10 | 0x08, 10), tcp_frame(0x10 | 0x01, 100)); // ACK|PSH, ACK|FIN
    let prog = ingress.program();
    let start = Barrier::new(2);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| send(prog, &small, 0, &start));
        let b = s.spawn(|| send(prog, &large, 1, &start));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.0, b.0, "the two senders ran on the same CPU");
    assert!(a.1 < b.2 && b.1 < a.2, "the two senders did not run at the same time");

    let n = (RUNS * REPEAT) as u64;
    let flows = ingress.flows().expect("read the flow table");
    assert_eq!(flows.len(), 1, "one flow expected: {flows:?}");
    let (k, v) = &flows[0];
    assert_eq!((k.sport, k.dport, k.proto, &k.saddr[..4], &k.daddr[..4]), (40000, 80, 6, &[198, 18, 0, 1][..], &[198, 18, 0, 2][..]));
    assert_eq!(v.packets(), 2 * n, "packets of both CPUs");
    assert_eq!(v.bytes, n * (small.len() + large.len()) as u64, "bytes of both CPUs");
    let mut hist = [0u64; 8];
    hist[bucket(small.len())] += n;
    hist[bucket(large.len())] += n;
    assert_ne!(bucket(small.len()), bucket(large.len()), "the two frames should fall in two buckets");
    assert_eq!(v.size_hist, hist, "size histogram");
    assert_eq!(v.tcp_flags, 0x19, "OR of ACK|PSH and ACK|FIN");
    assert!(v.first_ns != 0 && v.first_ns <= v.last_ns, "first {} last {}", v.first_ns, v.last_ns);
}
