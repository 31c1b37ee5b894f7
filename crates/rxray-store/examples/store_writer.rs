//! For the kill -9 test: writes numbered batches of 100 flows into the store in DIR as fast as it
//! can, printing each batch number once its transaction is committed, until it is killed.
use rxray_store::{Batch, FlowRow, Store};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: store_writer DIR");
    let mut s = Store::open(std::path::Path::new(&dir), "child").expect("open the store");
    for n in 1..u64::MAX {
        let mut b = Batch { ts: n, ..Default::default() };
        for j in 0..100u16 {
            b.flows.push(FlowRow {
                ts_start: n,
                ts_end: n,
                iface: "veth-b".into(),
                proto: 6,
                src: "198.18.0.1".parse().unwrap(),
                sport: j,
                dst: "198.18.0.2".parse().unwrap(),
                dport: 80,
                packets: n,
                bytes: n,
                closed: false,
                drops: 0,
                last_drop: None,
                pid: None,
                comm: None,
                cgroup: None,
            });
        }
        s.write(&b, 0).expect("write");
        println!("{n}");
    }
}
