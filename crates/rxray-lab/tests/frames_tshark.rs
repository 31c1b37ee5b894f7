//! Checks the frame builder against tshark: every checksum tshark verifies must be Good, and the
//! fields it decodes must equal what the test built. A corrupted frame proves tshark checks.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use anyhow::{ensure, Context, Result};
use rxray_lab::frames::*;
use rxray_lab::pcap::write_pcap;

/// Wireshark's checksum status values (proto.h: PROTO_CHECKSUM_E_BAD = 0, _GOOD = 1).
const GOOD: &str = "1";
const BAD: &str = "0";

const ETH: Eth = Eth {
    dst: [0x02, 0x52, 0x58, 0, 0, 0x0b],
    src: [0x02, 0x52, 0x58, 0, 0, 0x0a],
};
const A4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

fn ipv4(protocol: u8) -> Ipv4 {
    Ipv4 {
        src: A4,
        dst: B4,
        ttl: 61,
        tos: 0x10,
        id: 0x1234,
        df: true,
        mf: false,
        frag_off_bytes: 0,
        options: vec![],
        protocol,
    }
}

fn ipv6(next_header: u8) -> Ipv6 {
    Ipv6 {
        src: A6,
        dst: B6,
        hop_limit: 33,
        traffic_class: 0,
        flow_label: 0xabcde,
        next_header,
    }
}

/// Runs tshark with checksum validation on and returns one row per frame, one column per field
/// (repeated fields joined with ','). Returns None when the test is skipped.
fn tshark_fields(frames: &[Vec<u8>], fields: &[&str]) -> Result<Option<Vec<Vec<String>>>> {
    if !common::have("tshark") {
        common::skip_or_fail("tshark is not installed");
        return Ok(None);
    }
    let dir = common::TempDir::new();
    let file = dir.path().join("frames.pcap");
    write_pcap(&file, frames)?;
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(&file).args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.relative_sequence_numbers:FALSE",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().context("running tshark")?;
    ensure!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<String>> = String::from_utf8(out.stdout)?
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect();
    ensure!(
        rows.len() == frames.len(),
        "tshark printed {} rows for {} frames",
        rows.len(),
        frames.len()
    );
    Ok(Some(rows))
}

/// Compares the wanted fields of frame `i` and reports every mismatch at once.
fn assert_row(rows: &[Vec<String>], i: usize, fields: &[&str], want: &[(&str, &str)]) {
    let mut wrong = Vec::new();
    for (name, value) in want {
        let col = fields
            .iter()
            .position(|f| f == name)
            .unwrap_or_else(|| panic!("field {name} not requested"));
        let got = rows[i].get(col).map_or("<missing>", String::as_str);
        if got != *value {
            wrong.push(format!("{name}: tshark says {got:?}, built {value:?}"));
        }
    }
    assert!(wrong.is_empty(), "frame {i}:\n  {}", wrong.join("\n  "));
}

#[test]
fn ipv4_frames_decode_with_good_checksums() -> Result<()> {
    let syn = Tcp {
        sport: 40000,
        dport: 80,
        seq: 0x01020304,
        ack: 0,
        flags: tcp_flags::SYN | tcp_flags::ECE | tcp_flags::CWR,
        window: 64240,
        urgent: 0,
        options: vec![
            TcpOpt::Mss(1460),
            TcpOpt::SackPermitted,
            TcpOpt::Timestamps(1000, 0),
            TcpOpt::Nop,
            TcpOpt::WScale(7),
        ],
    };
    let mut with_opts = ipv4(ipproto::TCP);
    with_opts.options = vec![0x94, 0x04, 0x00, 0x00]; // Router Alert
    let frames = vec![
        frame(&ETH, &[], L3::Ipv4(with_opts), L4::Tcp(syn), &[]),
        frame(
            &ETH,
            &[Vlan {
                tpid: TPID_8021Q,
                tci: 0x6064,
            }],
            L3::Ipv4(ipv4(ipproto::UDP)),
            L4::Udp(Udp {
                sport: 5353,
                dport: 9999,
            }),
            b"odd payload",
        ),
        frame(
            &ETH,
            &[
                Vlan {
                    tpid: TPID_8021AD,
                    tci: 100,
                },
                Vlan {
                    tpid: TPID_8021Q,
                    tci: 10,
                },
            ],
            L3::Ipv4(ipv4(ipproto::ICMP)),
            L4::Icmp(Icmp {
                ty: 8,
                code: 0,
                id: 0xbeef,
                seq: 7,
            }),
            b"ping!",
        ),
        frame(
            &ETH,
            &[],
            L3::Arp(Arp {
                op: 2,
                sha: ETH.src,
                spa: A4,
                tha: ETH.dst,
                tpa: B4,
            }),
            L4::None,
            &[],
        ),
    ];
    let fields = [
        "ip.checksum.status",
        "ip.hdr_len",
        "ip.len",
        "ip.ttl",
        "ip.dsfield",
        "ip.id",
        "ip.flags.df",
        "ip.src",
        "ip.dst",
        "tcp.checksum.status",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.seq_raw",
        "tcp.flags",
        "tcp.window_size_value",
        "tcp.hdr_len",
        "tcp.options.mss_val",
        "tcp.options.wscale.shift",
        "tcp.options.timestamp.tsval",
        "udp.checksum.status",
        "udp.length",
        "udp.srcport",
        "vlan.id",
        "vlan.priority",
        "ieee8021ad.id",
        "icmp.checksum.status",
        "icmp.ident",
        "icmp.seq",
        "arp.opcode",
        "arp.src.proto_ipv4",
        "arp.dst.hw_mac",
    ];
    let Some(rows) = tshark_fields(&frames, &fields)? else {
        return Ok(());
    };
    assert_row(
        &rows,
        0,
        &fields,
        &[
            ("ip.checksum.status", GOOD),
            ("ip.hdr_len", "24"),
            ("ip.len", "64"),
            ("ip.ttl", "61"),
            ("ip.dsfield", "0x10"),
            ("ip.id", "0x1234"),
            ("ip.flags.df", "1"),
            ("ip.src", "198.18.0.1"),
            ("ip.dst", "198.18.0.2"),
            ("tcp.checksum.status", GOOD),
            ("tcp.srcport", "40000"),
            ("tcp.dstport", "80"),
            ("tcp.seq_raw", "16909060"),
            ("tcp.flags", "0x00c2"),
            ("tcp.window_size_value", "64240"),
            ("tcp.hdr_len", "40"),
            ("tcp.options.mss_val", "1460"),
            ("tcp.options.wscale.shift", "7"),
            ("tcp.options.timestamp.tsval", "1000"),
        ],
    );
    assert_row(
        &rows,
        1,
        &fields,
        &[
            ("ip.checksum.status", GOOD),
            ("udp.checksum.status", GOOD),
            ("udp.length", "19"),
            ("udp.srcport", "5353"),
            ("vlan.id", "100"),
            ("vlan.priority", "3"),
        ],
    );
    assert_row(
        &rows,
        2,
        &fields,
        &[
            ("ip.checksum.status", GOOD),
            ("icmp.checksum.status", GOOD),
            ("icmp.ident", "48879"),
            ("icmp.seq", "7"),
            ("ieee8021ad.id", "100"), // tshark decodes an 88a8 tag as 802.1ad
            ("vlan.id", "10"),
        ],
    );
    assert_row(
        &rows,
        3,
        &fields,
        &[
            ("arp.opcode", "2"),
            ("arp.src.proto_ipv4", "198.18.0.1"),
            ("arp.dst.hw_mac", "02:52:58:00:00:0b"),
        ],
    );
    Ok(())
}

#[test]
fn ipv6_frames_decode_with_good_checksums() -> Result<()> {
    let ack = Tcp {
        sport: 443,
        dport: 50000,
        seq: 1,
        ack: 2,
        flags: tcp_flags::ACK | tcp_flags::PSH,
        window: 500,
        urgent: 0,
        options: vec![
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::Sack(vec![(10, 20), (30, 40)]),
        ],
    };
    let exts = vec![
        Ext::HopByHop(pad_options(&[])),
        Ext::DestOpts(pad_options(&[0x1e, 1, 0xaa])),
    ];
    let frames = vec![
        frame(
            &ETH,
            &[],
            L3::Ipv6(ipv6(ipproto::TCP), vec![]),
            L4::Tcp(ack),
            b"data",
        ),
        frame(
            &ETH,
            &[],
            L3::Ipv6(ipv6(ipproto::UDP), exts),
            L4::Udp(Udp {
                sport: 53,
                dport: 33333,
            }),
            b"abc",
        ),
        frame(
            &ETH,
            &[Vlan {
                tpid: TPID_8021Q,
                tci: 5,
            }],
            L3::Ipv6(ipv6(ipproto::ICMPV6), vec![]),
            L4::Icmpv6(Icmpv6 {
                ty: 128,
                code: 0,
                id: 0x4242,
                seq: 9,
            }),
            b"echo",
        ),
    ];
    let fields = [
        "ipv6.plen",
        "ipv6.flow",
        "ipv6.hlim",
        "ipv6.nxt",
        "ipv6.dst",
        "ipv6.hopopts.nxt",
        "ipv6.hopopts.len",
        "ipv6.dstopts.nxt",
        "ipv6.dstopts.len",
        "tcp.checksum.status",
        "tcp.hdr_len",
        "tcp.ack_raw",
        "tcp.options.sack_le",
        "udp.checksum.status",
        "udp.dstport",
        "icmpv6.checksum.status",
        "icmpv6.echo.identifier",
        "icmpv6.echo.sequence_number",
    ];
    let Some(rows) = tshark_fields(&frames, &fields)? else {
        return Ok(());
    };
    assert_row(
        &rows,
        0,
        &fields,
        &[
            ("ipv6.plen", "44"),
            ("ipv6.flow", "0x0abcde"),
            ("ipv6.hlim", "33"),
            ("ipv6.nxt", "6"),
            ("ipv6.dst", "2001:2::2"),
            ("tcp.checksum.status", GOOD),
            ("tcp.hdr_len", "40"),
            ("tcp.ack_raw", "2"),
            ("tcp.options.sack_le", "10,30"),
        ],
    );
    assert_row(
        &rows,
        1,
        &fields,
        &[
            ("ipv6.plen", "27"),
            ("ipv6.nxt", "0"),
            ("ipv6.hopopts.nxt", "60"),
            ("ipv6.hopopts.len", "0"),
            ("ipv6.dstopts.nxt", "17"),
            ("ipv6.dstopts.len", "0"),
            ("udp.checksum.status", GOOD),
            ("udp.dstport", "33333"),
        ],
    );
    assert_row(
        &rows,
        2,
        &fields,
        &[
            ("icmpv6.checksum.status", GOOD),
            ("icmpv6.echo.identifier", "0x4242"),
            ("icmpv6.echo.sequence_number", "9"),
        ],
    );
    Ok(())
}

/// A datagram built once with `transport` and cut into fragments; tshark reassembles it and
/// verifies the UDP checksum over the whole datagram.
#[test]
fn fragments_reassemble_with_good_checksums() -> Result<()> {
    let payload: Vec<u8> = (0..100u8).collect();
    let udp = L4::Udp(Udp { sport: 7, dport: 8 });

    let seg4 = transport(IpAddr::V4(A4), IpAddr::V4(B4), &udp, &payload);
    let mut first4 = ipv4(ipproto::UDP);
    first4.df = false;
    first4.mf = true;
    let mut second4 = first4.clone();
    second4.mf = false;
    second4.frag_off_bytes = 48;

    let seg6 = transport(IpAddr::V6(A6), IpAddr::V6(B6), &udp, &payload);
    let frag = |offset_bytes, more| Ext::Fragment {
        offset_bytes,
        more,
        id: 0x0a0b0c0d,
    };

    let frames = vec![
        frame(&ETH, &[], L3::Ipv4(first4), L4::None, &seg4[..48]),
        frame(&ETH, &[], L3::Ipv4(second4), L4::None, &seg4[48..]),
        frame(
            &ETH,
            &[],
            L3::Ipv6(ipv6(ipproto::UDP), vec![frag(0, true)]),
            L4::None,
            &seg6[..56],
        ),
        frame(
            &ETH,
            &[],
            L3::Ipv6(ipv6(ipproto::UDP), vec![frag(56, false)]),
            L4::None,
            &seg6[56..],
        ),
    ];
    let fields = [
        "ip.checksum.status",
        "ip.frag_offset",
        "ip.flags.mf",
        "ipv6.fraghdr.offset",
        "ipv6.fraghdr.more",
        "ipv6.fraghdr.ident",
        "udp.checksum.status",
        "udp.length",
    ];
    let Some(rows) = tshark_fields(&frames, &fields)? else {
        return Ok(());
    };
    assert_row(
        &rows,
        0,
        &fields,
        &[
            ("ip.checksum.status", GOOD),
            ("ip.flags.mf", "1"),
            ("ip.frag_offset", "0"),
        ],
    );
    assert_row(
        &rows,
        1,
        &fields,
        &[
            ("ip.checksum.status", GOOD),
            ("ip.flags.mf", "0"),
            ("ip.frag_offset", "6"), // in 8-byte units: 48 bytes
            ("udp.checksum.status", GOOD),
            ("udp.length", "108"),
        ],
    );
    assert_row(
        &rows,
        2,
        &fields,
        &[
            ("ipv6.fraghdr.more", "1"),
            ("ipv6.fraghdr.ident", "0x0a0b0c0d"),
        ],
    );
    assert_row(
        &rows,
        3,
        &fields,
        &[
            ("ipv6.fraghdr.offset", "7"),
            ("ipv6.fraghdr.more", "0"),
            ("udp.checksum.status", GOOD),
            ("udp.length", "108"),
        ],
    );
    Ok(())
}

/// Negative control: one flipped payload byte must make tshark report Bad, or the Good results
/// above prove nothing.
#[test]
fn tshark_flags_a_corrupted_checksum() -> Result<()> {
    let good = frame(
        &ETH,
        &[],
        L3::Ipv4(ipv4(ipproto::UDP)),
        L4::Udp(Udp { sport: 1, dport: 2 }),
        b"payload",
    );
    let mut bad_l4 = good.clone();
    *bad_l4.last_mut().unwrap() ^= 0xff;
    let mut bad_ip = good.clone();
    bad_ip[14 + 8] ^= 1; // TTL
    let fields = ["ip.checksum.status", "udp.checksum.status"];
    let Some(rows) = tshark_fields(&[good, bad_l4, bad_ip], &fields)? else {
        return Ok(());
    };
    assert_row(
        &rows,
        0,
        &fields,
        &[("ip.checksum.status", GOOD), ("udp.checksum.status", GOOD)],
    );
    assert_row(
        &rows,
        1,
        &fields,
        &[("ip.checksum.status", GOOD), ("udp.checksum.status", BAD)],
    );
    assert_row(&rows, 2, &fields, &[("ip.checksum.status", BAD)]);
    Ok(())
}
