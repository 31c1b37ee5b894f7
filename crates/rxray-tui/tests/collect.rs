//! The collector from engine flow tables to the dashboard's snapshot: rates and sparklines from two
//! tables a second apart, sums per source and port, the order of each list, the view filter (and a
//! bad one), the protocol mix of filtered flows, the live detail. Expected values come from the
//! tables the test builds.
use rxray_engine::flows::{FlowKey, FlowRecord};
use rxray_engine::source::{Count, FlowSnapshot};
use rxray_tui::collect::{Collector, Counters};
use rxray_tui::model::SortKey;
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rec(src: &str, sport: u16, dst: &str, proto: u8, dport: u16, packets: u64, bytes: u64) -> FlowRecord {
    FlowRecord {
        key: FlowKey { ifindex: 2, vlan: 0, proto, src: ip(src), dst: ip(dst), sport, dport, fragments: false },
        iface: "veth-b".into(),
        packets,
        bytes,
        first_ns: 0,
        last_ns: 0,
        tcp_flags: if proto == 6 { 0x18 } else { 0 },
        size_hist: [0; 8],
        pps: 0.0,
        bps: 0.0,
    }
}

/// The same flows at t=1 s and t=2 s; `k` scales the counts at the second table.
fn table(ts_s: u64, k: u64) -> FlowSnapshot {
    let flows = vec![
        rec("198.18.0.1", 1000, "198.18.0.2", 17, 53, 10 * k, 1000 * k),
        rec("198.18.0.1", 1001, "198.18.0.2", 17, 53, 20 * k, 1500 * k),
        rec("198.18.0.1", 2000, "198.18.0.2", 6, 443, 5 * k, 5000 * k),
        rec("198.18.0.3", 3000, "198.18.0.2", 6, 80, 40 * k, 2400 * k),
        rec("2001:2::1", 4000, "2001:2::2", 17, 4789, 1 * k, 90 * k),
        rec("198.18.0.4", 0, "198.18.0.2", 1, 0, 7 * k, 700 * k),
    ];
    let packets: u64 = flows.iter().map(|f| f.packets).sum();
    let bytes: u64 = flows.iter().map(|f| f.bytes).sum();
    FlowSnapshot {
        ts_ns: ts_s * 1_000_000_000,
        flows,
        protocols: vec![("ipv4_udp", Count { packets: 30 * k, bytes: 2500 * k }), ("ipv4_tcp", Count { packets: 45 * k, bytes: 7400 * k })],
        interfaces: vec![(2, "veth-b".into(), Count { packets, bytes })],
    }
}

fn collector() -> Collector {
    let mut c = Collector::new("test");
    c.on_flows(table(1, 1), Counters { packets: 83, ..Default::default() });
    c.on_flows(table(2, 3), Counters { packets: 249, ..Default::default() });
    c
}

#[test]
fn rates_sums_and_order() {
    let c = collector();
    let s = c.snapshot(SortKey::Bytes);
    // The interface went from 83 to 249 packets and 10690 to 32070 bytes in one second.
    assert_eq!(s.ifaces.len(), 1);
    assert_eq!((s.ifaces[0].pps, s.ifaces[0].bps), (166.0, (32070.0 - 10690.0) * 8.0));
    assert_eq!(s.ifaces[0].pps_history, vec![166]);
    // Sources: 198.18.0.1 has three flows (30+60+15 packets, 3000+4500+15000 bytes at k=3).
    let s1 = s.sources.iter().find(|t| t.addr == Some(ip("198.18.0.1"))).unwrap();
    assert_eq!((s1.packets, s1.bytes, s1.flows), (105, 22500, 3));
    // Rates: the flow 198.18.0.1:1000 grew by 20 packets in the second.
    let f = s.flows.iter().find(|f| f.sport == 1000).unwrap();
    assert_eq!(f.pps, 20.0);
    // By bytes: 198.18.0.1 (22500), then .3 (7200), then .4 (2100), then 2001:2::1 (270).
    let order: Vec<String> = s.sources.iter().map(|t| t.addr.unwrap().to_string()).collect();
    assert_eq!(order, ["198.18.0.1", "198.18.0.3", "198.18.0.4", "2001:2::1"]);
    // By packets, 198.18.0.3's one flow (120) leads the flows.
    let p = c.snapshot(SortKey::Packets);
    assert_eq!(p.flows[0].src, Some(ip("198.18.0.3")));
    assert_eq!(p.flows[0].packets, 120);
    // Ports: TCP and UDP only (ICMP has none); 53/udp sums its two flows.
    let ports: Vec<(String, u16, u64)> = s.ports.iter().map(|p| (p.proto.clone(), p.port, p.packets)).collect();
    assert_eq!(ports, [("tcp".into(), 443, 15), ("udp".into(), 53, 90), ("tcp".into(), 80, 120), ("udp".into(), 4789, 3)]);
    // Without a filter the protocol mix is the kernel's own counters, most packets first.
    let mix: Vec<(String, u64)> = s.protocols.iter().map(|p| (p.name.clone(), p.packets)).collect();
    assert_eq!(mix, [("ipv4_tcp".into(), 135), ("ipv4_udp".into(), 90)]);
}

#[test]
fn the_filter_narrows_every_list_and_a_bad_one_changes_nothing() {
    let mut c = collector();
    c.set_filter(Some("udp and port 53")).unwrap();
    let s = c.snapshot(SortKey::Bytes);
    assert_eq!(s.filter.as_deref(), Some("udp and port 53"));
    assert_eq!(s.flows.len(), 2);
    assert!(s.flows.iter().all(|f| f.proto == "udp" && f.dport == 53));
    assert_eq!(s.sources.len(), 1);
    assert_eq!((s.sources[0].packets, s.sources[0].bytes), (90, 7500));
    assert_eq!(s.ports.len(), 1);
    let mix: Vec<(String, u64)> = s.protocols.iter().map(|p| (p.name.clone(), p.packets)).collect();
    assert_eq!(mix, [("udp".into(), 90)]);
    // Addresses, nets, IPv6 and `not` as tcpdump reads them.
    c.set_filter(Some("src net 198.18.0.0/24 and not icmp")).unwrap();
    assert_eq!(c.snapshot(SortKey::Bytes).flows.len(), 4);
    c.set_filter(Some("ip6")).unwrap();
    assert_eq!(c.snapshot(SortKey::Bytes).flows.len(), 1);
    // A filter that does not parse says where, and leaves the previous one in place.
    let e = c.set_filter(Some("port 53 andd udp")).unwrap_err();
    assert!(e.to_string().contains("column"), "{e}");
    assert_eq!(c.filter_text(), Some("ip6"));
    c.set_filter(None).unwrap();
    assert_eq!(c.snapshot(SortKey::Bytes).flows.len(), 6);
}

#[test]
fn the_live_detail_lists_the_address_flows() {
    let c = collector();
    let d = c.detail_live(ip("198.18.0.1"));
    assert_eq!(d.origin, "live");
    assert_eq!(d.lines[0], "3 live flows from or to 198.18.0.1");
    // Largest first: the TCP flow (15000 bytes).
    assert_eq!(d.lines[1], "  veth-b tcp 198.18.0.1:2000 > 198.18.0.2:443: 15 packets, 15000 bytes");
    assert!(d.lines.iter().any(|l| l == "0 recent alerts about 198.18.0.1"));
}

/// Panes that come from outside (a running agent's `TopPanes`) replace the drops, alerts and HTTP
/// panes as sent, read back unchanged, and the live detail lists the alerts sent about an address.
#[test]
fn panes_sent_by_an_agent_replace_the_collectors_own() {
    use rxray_tui::model::{AlertRow, Alerts, Drops, EndpointRow, Http, Panes};
    let mut c = collector();
    c.set_parts(Err("off here".into()), Err("off here".into()), Err("off here".into()));
    c.set_drops([("OTHER".to_string(), 9)]);
    let sent = Panes {
        drops: Drops { on: true, note: None, reasons: vec![("NO_SOCKET".into(), 40), ("TCP_CSUM".into(), 2)] },
        alerts: Alerts {
            on: true,
            note: None,
            total: 3,
            recent: vec![AlertRow {
                ts_ns: 1_700_000_000_000_000_000,
                detector: "port_scan_vertical".into(),
                src: Some(ip("198.18.0.1")),
                dst: Some(ip("198.18.0.2")),
                msg: "RXRAY port scan".into(),
                action: "block 198.18.0.1/32 600s".into(),
            }],
        },
        http: Http {
            on: true,
            note: None,
            requests: 15,
            endpoints: vec![EndpointRow { method: "GET".into(), template: "/api/items/{id}".into(), requests: 12, error_rate: 0.0, p95_ms: Some(1.5) }],
        },
    };
    c.set_panes(sent.clone());
    assert_eq!(c.panes(), sent);
    let s = c.snapshot(SortKey::Bytes);
    assert_eq!((s.drops, s.alerts, s.http), (sent.drops, sent.alerts, sent.http));
    let d = c.detail_live(ip("198.18.0.1"));
    assert!(d.lines.iter().any(|l| l == "1 recent alerts about 198.18.0.1"), "{:?}", d.lines);
    assert!(d.lines.iter().any(|l| l.contains("port_scan_vertical") && l.contains("[block 198.18.0.1/32 600s]")), "{:?}", d.lines);
}
