//! Every pane rendered with ratatui's TestBackend at 80×24 and 200×60 from one fixed snapshot, and
//! compared with the screens kept in tests/snapshots/ (insta; `INSTA_UPDATE=always` rewrites them
//! after a deliberate change, to be reviewed in the diff).
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use rxray_tui::app::{Action, App, Overlay, Pane};
use rxray_tui::model::*;
use std::net::IpAddr;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// A fixed dashboard: two interfaces with five minutes of history, 30 flows from 8 sources.
fn fixture() -> Snapshot {
    // Waves between base/2 and base: the sparklines' shape is visible in the snapshots.
    let hist = |base: u64, k: u64| (0..300).map(|i| base / 2 + base / 2 * ((i * k) % 97) / 96).collect::<Vec<u64>>();
    let ifaces = vec![
        IfaceRate {
            name: "veth-b".into(),
            packets: 1_234_567,
            bytes: 987_654_321,
            pps: 10_250.0,
            bps: 82_000_000.0,
            pps_history: hist(9_000, 37),
            bps_history: hist(80_000, 53),
        },
        IfaceRate {
            name: "eth1".into(),
            packets: 4_321,
            bytes: 555_000,
            pps: 12.0,
            bps: 9_600.0,
            pps_history: hist(20, 7),
            bps_history: hist(100, 11),
        },
    ];
    let mut flows = Vec::new();
    for i in 0..30u16 {
        let v6 = i % 5 == 4;
        let (src, dst) = if v6 {
            (ip(&format!("2001:2::{:x}", 0x10 + i % 8)), ip("2001:2::2"))
        } else {
            (ip(&format!("198.18.0.{}", 10 + i % 8)), ip("198.18.0.2"))
        };
        let proto = ["tcp", "udp", "icmp", "tcp", "udp"][i as usize % 5];
        let ports = proto != "icmp";
        flows.push(FlowRow {
            iface: if i % 7 == 6 { "eth1".into() } else { "veth-b".into() },
            proto: proto.into(),
            src,
            sport: if ports { 20000 + i } else { 0 },
            dst,
            dport: if ports { [443, 53, 0, 80, 4789][i as usize % 5] } else { 0 },
            fragments: false,
            packets: 10_000 - i as u64 * 300,
            bytes: 9_000_000 - i as u64 * 250_000,
            pps: 300.0 - i as f64 * 9.0,
            bps: 2_400_000.0 - i as f64 * 70_000.0,
        });
    }
    let mut sources: Vec<Talker> = Vec::new();
    for f in &flows {
        match sources.iter_mut().find(|t| t.addr == f.src) {
            Some(t) => {
                t.packets += f.packets;
                t.bytes += f.bytes;
                t.pps += f.pps;
                t.bps += f.bps;
                t.flows += 1;
            }
            None => sources.push(Talker { addr: f.src, packets: f.packets, bytes: f.bytes, pps: f.pps, bps: f.bps, flows: 1 }),
        }
    }
    let ports = vec![
        PortRow { proto: "tcp".into(), port: 443, packets: 48_000, bytes: 41_000_000, pps: 1400.0, bps: 11_000_000.0, flows: 6 },
        PortRow { proto: "udp".into(), port: 53, packets: 46_000, bytes: 39_000_000, pps: 1300.0, bps: 10_500_000.0, flows: 6 },
        PortRow { proto: "tcp".into(), port: 80, packets: 42_000, bytes: 36_000_000, pps: 1200.0, bps: 9_900_000.0, flows: 6 },
        PortRow { proto: "udp".into(), port: 4789, packets: 40_000, bytes: 34_000_000, pps: 1100.0, bps: 9_400_000.0, flows: 6 },
    ];
    let protocols = vec![
        ProtoRow { name: "tcp".into(), packets: 90_000, bytes: 77_000_000 },
        ProtoRow { name: "udp".into(), packets: 86_000, bytes: 73_000_000 },
        ProtoRow { name: "icmp".into(), packets: 30_000, bytes: 2_000_000 },
        ProtoRow { name: "icmp6".into(), packets: 1_000, bytes: 90_000 },
        ProtoRow { name: "arp".into(), packets: 12, bytes: 504 },
    ];
    let t0 = 1_796_000_000_000_000_000u64;
    let alerts = Alerts {
        on: true,
        note: None,
        total: 3,
        recent: vec![
            AlertRow {
                ts_ns: t0 + 65_000_000_000,
                detector: "syn_flood".into(),
                src: ip("198.18.0.66"),
                dst: ip("198.18.0.2"),
                msg: "SYN flood: 4000 SYN/s to 198.18.0.2:80, 2% answered".into(),
                action: "block 198.18.0.66/32 300s".into(),
            },
            AlertRow {
                ts_ns: t0 + 30_000_000_000,
                detector: "port_scan_horizontal".into(),
                src: ip("198.18.0.77"),
                dst: ip("198.18.0.2"),
                msg: "port scan: 120 ports in 2 s".into(),
                action: "would block 198.18.0.77/32 600s".into(),
            },
            AlertRow {
                ts_ns: t0,
                detector: "udp_flood".into(),
                src: None,
                dst: ip("198.18.0.2"),
                msg: "UDP flood from many sources".into(),
                action: "none: distributed".into(),
            },
        ],
    };
    let http = Http {
        on: true,
        note: None,
        requests: 1_530,
        endpoints: vec![
            EndpointRow { method: "GET".into(), template: "/api/users/{id}".into(), requests: 1_000, error_rate: 0.012, p95_ms: Some(12.5) },
            EndpointRow { method: "POST".into(), template: "/api/orders".into(), requests: 500, error_rate: 0.1, p95_ms: Some(230.0) },
            EndpointRow { method: "GET".into(), template: "/healthz".into(), requests: 30, error_rate: 0.0, p95_ms: None },
        ],
    };
    Snapshot {
        ts_ns: t0 + 90_000_000_000,
        source: "veth-b (tc), eth1 (tc)".into(),
        filter: None,
        ifaces,
        health: Health {
            packets: 1_238_888,
            bytes: 988_209_321,
            flows: 30,
            flow_insert_failed: 12_388,
            malformed: 3,
            events: Some(1_200_000),
            events_lost: Some(38_888),
            drop_events_lost: Some(0),
            http_records_lost: Some(2),
        },
        sources,
        flows,
        ports,
        protocols,
        drops: Drops {
            on: true,
            note: None,
            reasons: vec![("NETFILTER_DROP".into(), 4_000), ("TCP_INVALID_SEQUENCE".into(), 120), ("NO_SOCKET".into(), 7)],
        },
        alerts,
        http,
    }
}

fn screen(s: &Snapshot, app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| rxray_tui::view::draw(f, s, app)).unwrap();
    t
}

fn name(p: Pane) -> String {
    p.title().to_lowercase()
}

#[test]
fn every_pane_at_80x24_and_200x60() {
    let s = fixture();
    for p in Pane::ALL {
        for (w, h) in [(80, 24), (200, 60)] {
            let app = App { pane: p, ..Default::default() };
            let t = screen(&s, &app, w, h);
            insta::assert_snapshot!(format!("{}_{w}x{h}", name(p)), t.backend());
        }
    }
}

#[test]
fn help_filter_prompt_pause_and_detail() {
    let s = fixture();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    for (w, h) in [(80, 24), (200, 60)] {
        let mut app = App::default();
        assert_eq!(app.on_key(key(KeyCode::Char('?')), &s), Action::None);
        insta::assert_snapshot!(format!("help_{w}x{h}"), screen(&s, &app, w, h).backend());

        let mut app = App::default();
        app.on_key(key(KeyCode::Char('/')), &s);
        for c in "udp port 53".chars() {
            app.on_key(key(KeyCode::Char(c)), &s);
        }
        insta::assert_snapshot!(format!("filter_prompt_{w}x{h}"), screen(&s, &app, w, h).backend());
        assert_eq!(app.on_key(key(KeyCode::Enter), &s), Action::Filter(Some("udp port 53".into())));

        let mut app = App { pane: Pane::Flows, ..Default::default() };
        app.on_key(key(KeyCode::Char('p')), &s);
        app.on_key(key(KeyCode::Down), &s);
        app.on_key(key(KeyCode::Down), &s);
        insta::assert_snapshot!(format!("paused_flows_row3_{w}x{h}"), screen(&s, &app, w, h).backend());
        // The selected row is the third flow: Enter asks for its source's detail.
        assert_eq!(app.on_key(key(KeyCode::Enter), &s), Action::Detail(s.flows[2].src.unwrap()));
        app.show_detail(Detail {
            addr: s.flows[2].src,
            origin: "store".into(),
            lines: vec![
                "2026-12-01T10:00:00Z flow udp 198.18.0.12:20002 > 198.18.0.2:53: 9400 packets".into(),
                "2026-12-01T10:01:05Z alert syn_flood 198.18.0.12 -> 198.18.0.2".into(),
            ],
        });
        assert!(matches!(app.overlay, Overlay::Detail(_)));
        insta::assert_snapshot!(format!("detail_{w}x{h}"), screen(&s, &app, w, h).backend());
    }
}

#[test]
fn filtered_and_empty_dashboards() {
    // A filter shown in the header; an empty dashboard (first refresh, parts off) says so.
    let mut s = fixture();
    s.filter = Some("host 198.18.0.10".into());
    s.flows.retain(|f| f.src == ip("198.18.0.10"));
    s.sources.retain(|t| t.addr == ip("198.18.0.10"));
    insta::assert_snapshot!("filtered_80x24", screen(&s, &App::default(), 80, 24).backend());
    let empty = Snapshot {
        source: "veth-b (tc)".into(),
        drops: Drops { on: false, note: Some("no kfree_skb tracepoint".into()), reasons: vec![] },
        alerts: Alerts { on: false, note: Some("--no-alerts".into()), ..Default::default() },
        http: Http { on: false, note: Some("--no-http".into()), ..Default::default() },
        ..Default::default()
    };
    insta::assert_snapshot!("empty_200x60", screen(&empty, &App::default(), 200, 60).backend());
}

#[test]
fn keys_switch_sort_and_quit() {
    let s = fixture();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    let mut app = App::default();
    app.on_key(key(KeyCode::Tab), &s);
    assert_eq!(app.pane, Pane::Interfaces);
    app.on_key(key(KeyCode::BackTab), &s);
    app.on_key(key(KeyCode::BackTab), &s);
    assert_eq!(app.pane, Pane::Http);
    app.on_key(key(KeyCode::Char('3')), &s);
    assert_eq!(app.pane, Pane::Flows);
    assert_eq!(app.on_key(key(KeyCode::Char('s')), &s), Action::Sort);
    assert_eq!(app.sort, SortKey::Packets);
    // Esc leaves the filter prompt without applying; Ctrl-C quits from anywhere.
    app.on_key(key(KeyCode::Char('/')), &s);
    app.on_key(key(KeyCode::Char('x')), &s);
    assert_eq!(app.on_key(key(KeyCode::Esc), &s), Action::None);
    assert_eq!(app.overlay, Overlay::None);
    app.on_key(key(KeyCode::Char('/')), &s);
    assert_eq!(app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &s), Action::Interrupt);
    assert_eq!(App::default().on_key(key(KeyCode::Char('q')), &s), Action::Quit);
}
