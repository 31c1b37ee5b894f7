//! The flight recorder from synthetic frames with explicit event times: ring bounds by count and
//! bytes, windows before and after an alert, overlapping windows, polling only after a window's end,
//! flush_all, the truncated accounting, and the packet comments.
use rxray_engine::alert::{Alert, Signature};
use rxray_engine::detect::policy::{Action, ActionKind, Mitigation};
use rxray_engine::recorder::{verdict, FlightRecorder, RecPacket, RecorderConfig, Recording};
use rxray_lab::testing::Rng;

const S: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * S;

/// A frame whose bytes say which frame it is (interface tag, sequence number), of length `len`.
fn frame(tag: u8, seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![tag; len.max(5)];
    f[1..5].copy_from_slice(&seq.to_be_bytes());
    f.truncate(len);
    f
}

fn cfg(before_s: u64, after_s: u64, packets: usize, bytes: usize, snap: u32) -> RecorderConfig {
    RecorderConfig {
        before_ns: before_s * S,
        after_ns: after_s * S,
        max_packets_per_iface: packets,
        max_bytes_per_iface: bytes,
        snap,
        ..Default::default()
    }
}

/// (iface, ts) of each packet, the shape most assertions compare.
fn times(r: &Recording) -> Vec<(String, u64)> {
    r.packets.iter().map(|p| (p.iface.to_string(), p.ts_ns)).collect()
}

#[test]
fn the_ring_is_bounded_by_count_and_counts_evictions() {
    let mut r = FlightRecorder::new(cfg(1, 1, 10, 1 << 20, 64)).unwrap();
    for i in 0..25u32 {
        r.record("eth0", T0 + i as u64, 100, &frame(1, i, 60));
    }
    assert_eq!(r.held("eth0"), Some((10, 600)));
    let st = r.stats();
    assert_eq!((st.recorded, st.evicted, st.evicted_needed), (25, 15, 0));
    // What is left are the newest ten: a window over everything shows frames 15..25.
    assert!(r.trigger(1, T0 + 24, "t", "alerted", None));
    let rec = r.flush_all().remove(0);
    let seqs: Vec<u32> = rec.packets.iter().map(|p| u32::from_be_bytes(p.data[1..5].try_into().unwrap())).collect();
    assert_eq!(seqs, (15..25).collect::<Vec<_>>());
    assert!(rec.history_short, "frames of the window were evicted before the alert");
}

#[test]
fn the_ring_is_bounded_by_bytes_and_frames_are_cut_to_snap() {
    // 1000-byte frames cut to 100; 550 bytes hold 5 of them.
    let mut r = FlightRecorder::new(cfg(1, 1, 1000, 550, 100)).unwrap();
    for i in 0..12u32 {
        r.record("eth0", T0 + i as u64, 1000, &frame(2, i, 1000));
    }
    assert_eq!(r.held("eth0"), Some((5, 500)));
    assert_eq!(r.stats().evicted, 7);
    r.trigger(9, T0 + 11, "t", "alerted", Some("eth0"));
    let rec = r.flush_all().remove(0);
    assert_eq!(rec.packets.len(), 5);
    for p in &rec.packets {
        assert_eq!((p.data.len(), p.orig_len), (100, 1000));
    }
    assert_eq!(rec.packets[0].data, frame(2, 7, 1000)[..100]);
    // A frame shorter than its wire length keeps the wire length; one with orig_len 0 gets its own.
    let mut r = FlightRecorder::new(cfg(1, 1, 10, 1000, 100)).unwrap();
    r.record("x", T0, 0, &frame(3, 0, 42));
    r.trigger(1, T0, "t", "alerted", None);
    assert_eq!(r.flush_all()[0].packets[0].orig_len, 42);
}

#[test]
fn a_window_holds_the_frames_before_and_after_the_alert_and_nothing_else() {
    // One frame every 100 ms from T0 for 20 s; alert at T0 + 10 s with 2 s before and 3 s after.
    let mut r = FlightRecorder::new(cfg(2, 3, 100_000, 1 << 24, 128)).unwrap();
    let mut out = Vec::new();
    let alert_at = T0 + 10 * S;
    let mut triggered = false;
    for i in 0..200u64 {
        let ts = T0 + i * S / 10;
        if !triggered && ts >= alert_at + S / 2 {
            // The detector fires a little after the alert's own time, as a real one does.
            assert!(r.trigger(17, alert_at, "syn_flood", "blocked", None));
            triggered = true;
        }
        r.record("eth0", ts, 60, &frame(1, i as u32, 60));
        out.extend(r.poll(ts));
    }
    assert_eq!(out.len(), 1);
    let rec = &out[0];
    let want: Vec<(String, u64)> = (80..=130u64).map(|i| ("eth0".to_string(), T0 + i * S / 10)).collect();
    assert_eq!(times(rec), want);
    assert_eq!((rec.alert_id, rec.start_ns, rec.end_ns, rec.ts_ns), (17, alert_at - 2 * S, alert_at + 3 * S, alert_at));
    assert_eq!((rec.truncated, rec.history_short, rec.flushed), (0, false, false));
    assert!(rec.packets.iter().all(|p| &*p.comment == "rxray alert 17 (syn_flood), verdict: blocked"));
    assert_eq!(rec.file_name(), "rxray-alert-17-syn_flood.pcapng");
}

#[test]
fn poll_returns_a_window_only_once_event_time_reaches_its_end() {
    let mut r = FlightRecorder::new(cfg(1, 1, 1000, 1 << 20, 64)).unwrap();
    r.record("eth0", T0, 60, &frame(1, 0, 60));
    r.trigger(1, T0, "t", "alerted", None);
    assert!(r.poll(T0).is_empty());
    assert!(r.poll(T0 + S - 1).is_empty());
    assert_eq!(r.open_windows(), 1);
    r.record("eth0", T0 + S, 60, &frame(1, 1, 60)); // exactly at the end: inside
    let recs = r.poll(T0 + S);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].packets.len(), 2);
    assert!(r.poll(T0 + 100 * S).is_empty(), "a window is returned once");
    assert_eq!(r.open_windows(), 0);
    assert_eq!(r.stats().recordings, 1);
}

#[test]
fn overlapping_windows_each_get_their_packets_with_their_own_comment() {
    let mut r = FlightRecorder::new(cfg(2, 2, 1000, 1 << 20, 64)).unwrap();
    let mut out = Vec::new();
    for i in 0..100u64 {
        let ts = T0 + i * S / 10; // 0 .. 9.9 s
        r.record("eth0", ts, 60, &frame(1, i as u32, 60));
        if i == 40 {
            r.trigger(1, T0 + 4 * S, "syn_flood", "blocked", None);
        }
        if i == 55 {
            r.trigger(2, T0 + 5 * S, "port_scan", "alerted", Some("eth0"));
        }
        out.extend(r.poll(ts));
    }
    assert_eq!(out.iter().map(|r| r.alert_id).collect::<Vec<_>>(), vec![1, 2]);
    let range = |a: u64, b: u64| (a..=b).map(|i| ("eth0".to_string(), T0 + i * S / 10)).collect::<Vec<_>>();
    assert_eq!(times(&out[0]), range(20, 60));
    assert_eq!(times(&out[1]), range(30, 70));
    assert!(out[0].packets.iter().all(|p| &*p.comment == "rxray alert 1 (syn_flood), verdict: blocked"));
    assert!(out[1].packets.iter().all(|p| &*p.comment == "rxray alert 2 (port_scan), verdict: alerted"));
}

#[test]
fn a_window_on_one_interface_leaves_the_others_out_and_all_merges_them_in_time_order() {
    let mut r = FlightRecorder::new(cfg(1, 1, 1000, 1 << 20, 64)).unwrap();
    let mut rng = Rng(0x5eed_0007);
    let mut sent = Vec::new();
    for i in 0..300u32 {
        let iface = ["eth0", "eth1", "veth-b"][rng.below(3)];
        let ts = T0 + i as u64 * 10_000_000; // 10 ms apart: 0 .. 2.99 s
        r.record(iface, ts, 60, &frame(1, i, 60));
        sent.push((iface.to_string(), ts));
    }
    r.trigger(1, T0 + S + S / 2, "a", "alerted", Some("eth1"));
    r.trigger(2, T0 + S + S / 2, "b", "alerted", None);
    let recs = r.poll(T0 + 3 * S);
    let (lo, hi) = (T0 + S / 2, T0 + 5 * S / 2);
    let in_window = |(i, t): &&(String, u64)| lo <= *t && *t <= hi && (i == "eth1");
    assert_eq!(times(&recs[0]), sent.iter().filter(in_window).cloned().collect::<Vec<_>>());
    assert_eq!(times(&recs[1]), sent.iter().filter(|(_, t)| lo <= *t && *t <= hi).cloned().collect::<Vec<_>>());
    assert_eq!(recs[1].ifaces().len(), 3);
}

#[test]
fn frames_an_open_window_needs_outlive_the_soft_bound_up_to_the_hard_bound() {
    // Ring of 10 frames; window 1 s before and 1 s after; 1 frame every 100 ms: the window needs 21.
    let mut r = FlightRecorder::new(cfg(1, 1, 10, 1 << 20, 64)).unwrap();
    let mut out = Vec::new();
    for i in 0..40u64 {
        let ts = T0 + i * S / 10;
        r.record("eth0", ts, 60, &frame(1, i as u32, 60));
        if i == 10 {
            // Held now: frames 1..=10; the window [0 s, 2 s] wants 0..=20 and frame 0 is already gone.
            assert!(r.trigger(5, T0 + S, "t", "alerted", None));
        }
        assert!(r.held("eth0").unwrap().0 <= 20, "over the hard bound");
        out.extend(r.poll(ts));
    }
    let rec = &out[0];
    // Frames 1..=10 were protected from the soft bound; 11..=20 arrived during the window. Holding
    // 1..=20 is 20 frames, exactly the hard bound: nothing truncated.
    let want: Vec<u64> = (1..=20).map(|i| T0 + i * S / 10).collect();
    assert_eq!(rec.packets.iter().map(|p| p.ts_ns).collect::<Vec<_>>(), want);
    assert_eq!((rec.truncated, rec.history_short), (0, true));
    assert_eq!(r.stats().evicted_needed, 0);
    // After the window closed, the ring went back to its soft bound.
    assert_eq!(r.held("eth0").unwrap().0, 10);
}

#[test]
fn the_hard_bound_truncates_a_window_and_counts_each_lost_frame() {
    // Ring of 5 frames (hard bound 10); the window needs 31 frames (3 s at 100 ms, both ends inclusive).
    let mut r = FlightRecorder::new(cfg(0, 3, 5, 1 << 20, 64)).unwrap();
    let mut out = Vec::new();
    r.trigger(3, T0, "t", "alerted", None);
    r.trigger(4, T0, "u", "alerted", Some("eth0"));
    for i in 0..40u64 {
        let ts = T0 + i * S / 10;
        r.record("eth0", ts, 60, &frame(1, i as u32, 60));
        assert!(r.held("eth0").unwrap().0 <= 10);
        out.extend(r.poll(ts));
    }
    assert_eq!(out.len(), 2);
    for rec in &out {
        // The window ended at frame 30; the ring held the last 10 of 0..=30, the other 21 were lost.
        assert_eq!(rec.packets.iter().map(|p| p.ts_ns).collect::<Vec<_>>(), (21..=30).map(|i| T0 + i * S / 10).collect::<Vec<_>>());
        assert_eq!(rec.truncated, 21);
        assert!(!rec.history_short);
    }
    // Each lost frame counted once in the stats, however many windows wanted it.
    assert_eq!(r.stats().evicted_needed, 21);
    assert_eq!(r.stats().evicted, 40 - 5);
}

#[test]
fn the_hard_bound_holds_for_bytes_too() {
    // 100-byte frames, 500 bytes soft (1000 hard).
    let mut r = FlightRecorder::new(cfg(0, 10, 1000, 500, 100)).unwrap();
    r.trigger(1, T0, "t", "alerted", None);
    for i in 0..30u64 {
        r.record("eth0", T0 + i, 100, &frame(1, i as u32, 100));
        assert!(r.held("eth0").unwrap().1 <= 1000);
    }
    let rec = r.flush_all().remove(0);
    assert_eq!((rec.packets.len(), rec.truncated, rec.flushed), (10, 20, true));
}

#[test]
fn flush_all_closes_every_window_with_what_was_recorded() {
    let mut r = FlightRecorder::new(cfg(1, 10, 1000, 1 << 20, 64)).unwrap();
    for i in 0..5u64 {
        r.record("eth0", T0 + i * S / 10, 60, &frame(1, i as u32, 60));
    }
    r.trigger(8, T0 + S / 10, "t", "alerted", None);
    r.trigger(7, T0 + 2 * S / 10, "t", "alerted", None);
    assert!(r.poll(T0 + S).is_empty());
    let recs = r.flush_all();
    assert_eq!(recs.iter().map(|r| (r.alert_id, r.packets.len(), r.flushed)).collect::<Vec<_>>(), vec![(8, 5, true), (7, 5, true)]);
    assert_eq!(r.open_windows(), 0);
    assert!(r.flush_all().is_empty());
}

#[test]
fn interfaces_and_windows_past_their_limits_are_counted() {
    let c = RecorderConfig { max_ifaces: 2, max_open_windows: 2, ..cfg(1, 1, 10, 1000, 64) };
    let mut r = FlightRecorder::new(c).unwrap();
    for name in ["a", "b", "c", "c", "a"] {
        r.record(name, T0, 60, &frame(1, 0, 60));
    }
    assert_eq!(r.held("c"), None);
    assert_eq!((r.stats().recorded, r.stats().iface_limit_drops), (3, 2));
    assert!(r.trigger(1, T0, "t", "alerted", None));
    assert!(r.trigger(2, T0, "t", "alerted", None));
    assert!(!r.trigger(3, T0, "t", "alerted", None));
    assert_eq!((r.stats().windows_opened, r.stats().windows_refused), (2, 1));
}

#[test]
fn the_verdict_of_an_alert_names_the_action_taken() {
    let sig = Signature { detector: "syn_flood", sid: 1, rev: 1, msg: "m", category: "c", severity: 1 };
    let mut a = Alert::new(sig, T0, "198.18.0.1".parse().unwrap());
    a.id = 42;
    a.iface = Some("veth-b".into());
    assert_eq!(verdict(&a), "alerted");
    let act = |kind| Mitigation::Taken(Action { kind, ttl_s: 60, reason: "r".into(), alert_id: 42 });
    a.mitigation = Some(act(ActionKind::RateLimit { dst: "198.18.0.2".parse().unwrap(), pps: 10, burst: 10 }));
    // Decided but not carried out (offline, or live without --enforce): only alerted.
    assert_eq!(verdict(&a), "alerted");
    a.enforced = true;
    assert_eq!(verdict(&a), "rate-limited");
    a.mitigation = Some(act(ActionKind::Block { cidr: "198.18.0.1/32".parse().unwrap() }));
    assert_eq!(verdict(&a), "blocked");

    let mut r = FlightRecorder::new(cfg(1, 1, 10, 1000, 64)).unwrap();
    r.record("veth-b", T0, 60, &frame(1, 0, 60));
    r.record("eth9", T0, 60, &frame(2, 0, 60));
    assert!(r.trigger_alert(&a));
    let rec = r.poll(T0 + S).remove(0);
    let want = RecPacket {
        iface: "veth-b".into(),
        ts_ns: T0,
        orig_len: 60,
        data: frame(1, 0, 60),
        comment: "rxray alert 42 (syn_flood), verdict: blocked".into(),
    };
    assert_eq!(rec.packets, vec![want]);
}

/// One step of a random run against the model below.
#[derive(Clone, Debug)]
enum Op {
    /// A frame on interface `iface`, `gap` ns after the previous one (times strictly increase).
    Record { iface: usize, gap: u64, len: usize },
    /// An alert `back` ns before the latest frame's time (negative: after it).
    Trigger { back: i64, iface: Option<usize> },
    Poll,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        8 => (0..3usize, 1..300_000_000u64, 1..300usize).prop_map(|(iface, gap, len)| Op::Record { iface, gap, len }),
        1 => (-1_000_000_000..3_000_000_000i64, proptest::option::of(0..3usize)).prop_map(|(back, iface)| Op::Trigger { back, iface }),
        2 => Just(Op::Poll),
    ]
}

const IFACES: [&str; 3] = ["eth0", "eth1", "veth-b"];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Against a model that keeps every frame: with room enough a recording is exactly the frames
    /// recorded in its window; with tight bounds it is those frames less the ones it reports
    /// missing (`truncated`, or `history_short` for those gone before the alert), the rings never
    /// exceed the hard bounds, and every frame is either held or counted as evicted.
    #[test]
    fn recordings_match_a_model_that_keeps_everything(
        ops in proptest::collection::vec(op(), 1..300),
        tight in proptest::bool::ANY,
        packets in 1..20usize,
        bytes in 100..2000usize,
        snap in 1..100u32,
        max_ifaces in 1..4usize,
        max_open in 1..5usize,
    ) {
        let c = if tight {
            RecorderConfig { before_ns: S, after_ns: S, max_packets_per_iface: packets, max_bytes_per_iface: bytes, snap, max_ifaces, max_open_windows: max_open }
        } else {
            RecorderConfig { before_ns: S, after_ns: S, max_packets_per_iface: 100_000, max_bytes_per_iface: 1 << 26, snap, max_ifaces: 3, max_open_windows: 1000 }
        };
        let mut r = FlightRecorder::new(c.clone()).unwrap();
        // The model: every frame kept (iface, ts, orig_len, data cut to snap), and the open windows.
        let mut all: Vec<(String, u64, u32, Vec<u8>)> = Vec::new();
        let mut open: Vec<(u64, u64, u64, Option<String>)> = Vec::new();
        let mut seen_ifaces: Vec<&str> = Vec::new();
        let (mut now, mut id, mut recs) = (T0, 0u64, Vec::new());
        let check = |recs: Vec<Recording>, all: &[(String, u64, u32, Vec<u8>)], open: &mut Vec<(u64, u64, u64, Option<String>)>| {
            for rec in recs {
                let k = open.iter().position(|w| w.0 == rec.alert_id).expect("a recording for an open window");
                let (_, start, end, iface) = open.remove(k);
                proptest::prop_assert_eq!((rec.start_ns, rec.end_ns, &rec.iface), (start, end, &iface));
                let want: Vec<_> = all.iter().filter(|f| start <= f.1 && f.1 <= end && iface.as_ref().is_none_or(|i| *i == f.0)).cloned().collect();
                let got: Vec<_> = rec.packets.iter().map(|p| (p.iface.to_string(), p.ts_ns, p.orig_len, p.data.clone())).collect();
                if !tight {
                    proptest::prop_assert_eq!((rec.truncated, rec.history_short), (0, false));
                }
                // Rings evict oldest first, so on each interface what is missing is the oldest of
                // the window's frames: the recording keeps a suffix of each interface's frames.
                proptest::prop_assert!(got.iter().all(|g| want.contains(g)), "a frame not sent in the window");
                proptest::prop_assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "not in time order");
                for name in IFACES {
                    let g: Vec<_> = got.iter().filter(|f| f.0 == name).collect();
                    let w: Vec<_> = want.iter().filter(|f| f.0 == name).collect();
                    proptest::prop_assert_eq!(&g[..], &w[w.len() - g.len()..]);
                }
                if rec.history_short {
                    proptest::prop_assert!(got.len() as u64 + rec.truncated <= want.len() as u64);
                } else {
                    proptest::prop_assert_eq!(got.len() as u64 + rec.truncated, want.len() as u64);
                }
                let comment = format!("rxray alert {} (d{}), verdict: v", rec.alert_id, rec.alert_id);
                proptest::prop_assert!(rec.packets.iter().all(|p| *p.comment == comment));
            }
            Ok(())
        };
        for o in ops {
            match o {
                Op::Record { iface, gap, len } => {
                    now += gap;
                    let name = IFACES[iface];
                    let data: Vec<u8> = (0..len).map(|b| (b as u64 ^ now) as u8).collect();
                    r.record(name, now, len as u32 + 4, &data);
                    if !seen_ifaces.contains(&name) && seen_ifaces.len() < c.max_ifaces {
                        seen_ifaces.push(name);
                    }
                    if seen_ifaces.contains(&name) {
                        all.push((name.to_string(), now, len as u32 + 4, data[..len.min(snap as usize)].to_vec()));
                    }
                }
                Op::Trigger { back, iface } => {
                    id += 1;
                    let ts = now.saturating_add_signed(-back);
                    let name = iface.map(|i| IFACES[i]);
                    if r.trigger(id, ts, &format!("d{id}"), "v", name) {
                        open.push((id, ts - S, ts + S, name.map(str::to_string)));
                    } else {
                        proptest::prop_assert_eq!(open.len(), c.max_open_windows);
                    }
                }
                Op::Poll => recs = r.poll(now),
            }
            check(std::mem::take(&mut recs), &all, &mut open)?;
            let mut held = 0;
            for name in IFACES {
                if let Some((n, b)) = r.held(name) {
                    proptest::prop_assert!(n <= 2 * c.max_packets_per_iface && b <= 2 * c.max_bytes_per_iface);
                    held += n as u64;
                }
            }
            let st = r.stats();
            proptest::prop_assert_eq!(st.recorded, all.len() as u64);
            proptest::prop_assert_eq!(st.recorded - st.evicted, held);
        }
        check(r.flush_all(), &all, &mut open)?;
        proptest::prop_assert!(open.is_empty());
    }
}
