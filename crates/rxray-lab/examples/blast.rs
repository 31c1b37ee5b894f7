//! A paced UDP generator for the benchmarks: sends frames cycling over FLOWS distinct flows (each a
//! source address and port of its own, from 198.19.0.0/16) out of IFACE in namespace NS, at RATE
//! frames per second (0: as fast as it can) for SECS seconds or, with SECS 0, one frame per flow.
//! Prints the frames sent and the seconds taken.
//!   blast NS IFACE DST_MAC DST_IP FLOWS RATE SECS
use rxray_lab::frames::{self, ipproto, Eth, Ipv4, Udp, L3, L4};
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 8 {
        eprintln!("usage: blast NS IFACE DST_MAC DST_IP FLOWS RATE SECS");
        std::process::exit(2);
    }
    let mac: Vec<u8> = a[3].split(':').map(|h| u8::from_str_radix(h, 16).expect("a MAC like 02:52:58:00:00:0b")).collect();
    let dst_mac: [u8; 6] = mac.try_into().expect("6 bytes");
    let dst: std::net::Ipv4Addr = a[4].parse().expect("an IPv4 address");
    let flows: usize = a[5].parse().expect("FLOWS");
    let rate: f64 = a[6].parse().expect("RATE");
    let secs: f64 = a[7].parse().expect("SECS");
    assert!(flows > 0 && flows <= 60_000 * 250, "FLOWS: 1 to 15,000,000");
    let eth = Eth { dst: dst_mac, src: [0x02, 0x52, 0x58, 0, 0, 0x0a] };
    let frame = |i: usize| {
        let src = std::net::Ipv4Addr::new(198, 19, (i / 60_000 / 250) as u8, (1 + (i / 60_000) % 250) as u8);
        let ip = Ipv4 { src, dst, ttl: 64, tos: 0, id: i as u16, df: true, mf: false, frag_off_bytes: 0, options: vec![], protocol: ipproto::UDP };
        frames::frame(&eth, &[], L3::Ipv4(ip), L4::Udp(Udp { sport: 1024 + (i % 60_000) as u16, dport: 9 }), b"rxray-bench")
    };
    let all: Vec<Vec<u8>> = (0..flows).map(frame).collect();
    let start = Instant::now();
    let mut sent = 0usize;
    if secs == 0.0 {
        for chunk in all.chunks(10_000) {
            sent += rxray_lab::send_frames(&a[1], &a[2], chunk).expect("send");
        }
    } else {
        // 10 ms slices: each sends what the rate owes so far, then sleeps to the next slice.
        let mut next = 0usize;
        let end = Duration::from_secs_f64(secs);
        while start.elapsed() < end {
            let owed = if rate > 0.0 { (start.elapsed().as_secs_f64() * rate) as usize } else { sent + 5000 };
            if owed > sent {
                let n = (owed - sent).min(20_000);
                let chunk: Vec<Vec<u8>> = (0..n).map(|k| all[(next + k) % flows].clone()).collect();
                next = (next + n) % flows;
                sent += rxray_lab::send_frames(&a[1], &a[2], &chunk).expect("send");
            }
            if rate > 0.0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    println!("{sent} {:.3}", start.elapsed().as_secs_f64());
}
