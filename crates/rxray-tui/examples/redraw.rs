//! Offline redraw cost at 200x60: a dashboard over N flows (the Collector's snapshot, then the
//! overview drawn into ratatui's TestBackend), beside the peer: the same flows written as `rxray
//! flows`' text table and drawn full-screen as one paragraph (what `flows` redraws every second).
//!   redraw [FLOWS]
use ratatui::backend::TestBackend;
use ratatui::widgets::Paragraph;
use ratatui::Terminal;
use rxray_engine::flows::{FlowKey, FlowRecord};
use rxray_engine::source::{Count, FlowSnapshot};
use rxray_tui::app::App;
use rxray_tui::collect::{Collector, Counters};
use rxray_tui::model::SortKey;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn table(n: usize, ts_ns: u64, k: u64) -> FlowSnapshot {
    let flows = (0..n)
        .map(|i| FlowRecord {
            key: FlowKey {
                ifindex: 2,
                vlan: 0,
                proto: 17,
                src: IpAddr::V4(Ipv4Addr::new(198, 19, (i / 250 % 250) as u8, (1 + i % 250) as u8)),
                dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
                sport: 1024 + (i % 60_000) as u16,
                dport: 9,
                fragments: false,
            },
            iface: "veth-b".into(),
            packets: k * (1 + (i as u64 * 7) % 13),
            bytes: k * 60 * (1 + (i as u64 * 7) % 13),
            first_ns: 0,
            last_ns: ts_ns,
            tcp_flags: 0,
            size_hist: [0; 8],
            pps: 0.0,
            bps: 0.0,
        })
        .collect();
    FlowSnapshot { ts_ns, flows, protocols: vec![("ipv4_udp", Count { packets: k, bytes: k * 60 })], interfaces: vec![(2, "veth-b".into(), Count { packets: k * 10, bytes: k * 600 })] }
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds = 20u64;
    let mut c = Collector::new("veth-b (TC ingress)");
    let mut term = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let app = App::default();
    let (mut snap_ns, mut draw_ns) = (0u128, 0u128);
    for r in 1..=rounds {
        c.on_flows(table(n, r * 1_000_000_000, r), Counters { packets: r * 10, ..Default::default() });
        let t = Instant::now();
        let s = c.snapshot(SortKey::Bytes);
        snap_ns += t.elapsed().as_nanos();
        let t = Instant::now();
        term.draw(|f| rxray_tui::view::draw(f, &s, &app)).expect("draw");
        draw_ns += t.elapsed().as_nanos();
    }
    // The peer: flows' text table (58 rows on a 60-line screen), drawn as one paragraph.
    let snap = table(n, 1, 1);
    let mut peer_ns = 0u128;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut text = String::from("rxray flows: ...\n");
        for r in snap.flows.iter().take(58) {
            let k = &r.key;
            text.push_str(&format!(
                "{:<8} {:<5} {:>41} {:>41} {:>10} {:>12} {:>8} {:>9}\n",
                r.iface, "udp", format!("{}:{}", k.src, k.sport), format!("{}:{}", k.dst, k.dport), r.packets, r.bytes, "0", "0"
            ));
        }
        term.draw(|f| f.render_widget(Paragraph::new(text.as_str()), f.area())).expect("draw");
        peer_ns += t.elapsed().as_nanos();
    }
    let ms = |ns: u128| ns as f64 / rounds as f64 / 1e6;
    println!("redraw at 200x60 over {n} flows, mean of {rounds}:");
    println!("| what | ms |");
    println!("|---|---|");
    println!("| top: snapshot of the collector (filter, aggregate, sort) | {:.3} |", ms(snap_ns));
    println!("| top: drawing the overview | {:.3} |", ms(draw_ns));
    println!("| peer: flows' text table drawn full-screen | {:.3} |", ms(peer_ns));
}
