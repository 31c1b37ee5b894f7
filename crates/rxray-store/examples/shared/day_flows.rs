//! The flow rows the day generators write (store_day, store_day_bulk): one per random draw `r`,
//! starting in second `sec` of event time after `t0` (ns), from `client` to one of 200 servers
//! (198.19.0.1..=200) on 443, 80, 53 or 5432, lasting up to 30 s, a tenth of them UDP.
use rxray_store::FlowRow;
use std::net::{IpAddr, Ipv4Addr};

const S: u64 = 1_000_000_000;

pub fn flow_row(r: u64, t0: u64, sec: u64, client: IpAddr) -> FlowRow {
    let server = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1 + ((r >> 20) % 200) as u8));
    let dur = (r >> 24) % (30 * S);
    let packets = 1 + (r >> 40) % 200;
    let ts = t0 + sec * S + (r >> 8) % S;
    FlowRow {
        ts_start: ts,
        ts_end: ts + dur,
        iface: "eth1".into(),
        proto: if r.is_multiple_of(10) { 17 } else { 6 },
        src: client,
        sport: 1024 + ((r >> 16) % 60000) as u16,
        dst: server,
        dport: [443, 80, 53, 5432][((r >> 50) % 4) as usize],
        packets,
        bytes: packets * (64 + (r >> 24) % 1400),
        closed: !r.is_multiple_of(3),
        drops: 0,
        last_drop: None,
        pid: None,
        comm: None,
        cgroup: None,
    }
}
