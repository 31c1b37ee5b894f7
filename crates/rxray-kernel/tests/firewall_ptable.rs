//! The prefix table (rxray_fw_lpm) as the real XDP program reads it, through BPF_PROG_TEST_RUN:
//! random prefix sets of every length (IPv4 /0../32, so both the direct /24 table and the deep
//! prefixes behind it; IPv6 /0../128), nested around a few bases, in source and destination rules;
//! sources and destinations at the edges of, inside and beside each prefix are decided by the first
//! rule whose prefixes (as written, a naive match) hold them. The same rules with prefixes removed
//! from the table must be caught. (Big IPv6 groups, which leave a marker and go per length, are met
//! here around the bases and in firewall_v6_filter.)
use rxray_engine::cidr::Cidr;
use rxray_engine::firewall::{Action, AddrMatch, Compiled, Rule, RuleSet};
use rxray_kernel::abi;
use rxray_kernel::firewall::{FwCapacity, Simulator};
use rxray_lab::frames::{self, ipproto, Eth, Udp, L4};
use rxray_lab::testing::{need_root, Rng};
use rxray_lab::{MAC_A, MAC_B};
use std::net::IpAddr;

const V4_BASES: [u32; 3] = [0xc633_6400, 0x0a00_0000, 0xcb00_7100];
const V6_BASES: [u128; 2] = [0x2001_0db8_1234_5678_9abc_def0_1234_5678, 0x3fff_ab0c_0000_0000_0000_0000_0000_0001];
const V4_LENS: [u8; 31] = [0, 1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32];
const V6_LENS: [u8; 28] = [0, 1, 7, 8, 15, 16, 23, 24, 25, 31, 32, 33, 40, 47, 48, 56, 63, 64, 65, 72, 80, 95, 96, 100, 112, 120, 127, 128];

fn udp(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let l4 = L4::Udp(Udp { sport: 4000, dport: 5000 });
    frames::frame(&Eth { dst: MAC_B, src: MAC_A }, &[], frames::plain_ip(src, dst, ipproto::UDP), l4, b"ptable")
}

/// A prefix near a base, of /min (IPv4; IPv6: 4 * min) or longer: the top bits (about half the
/// length) are the base's, the rest random.
fn near(rng: &mut Rng, v6: bool, min: u8) -> Cidr {
    let noise = (rng.next() as u128) << 64 | rng.next() as u128;
    let pick = |rng: &mut Rng, lens: &[u8], min: u8| loop {
        let l = rng.pick(lens);
        if l >= min {
            return l;
        }
    };
    if v6 {
        let len = pick(rng, &V6_LENS, min.saturating_mul(4).min(128));
        let x = rng.pick(&V6_BASES) ^ (noise >> (len as u32 / 2 + 1));
        Cidr::new(IpAddr::from(x.to_be_bytes()), len).unwrap()
    } else {
        let len = pick(rng, &V4_LENS, min);
        let x = rng.pick(&V4_BASES) ^ ((noise as u32) >> (len as u32 / 2 + 1));
        Cidr::new(IpAddr::from(x.to_be_bytes()), len).unwrap()
    }
}

/// Six rules over both families: sources in rules 0, 1, 3, 4, destinations in 2 and 5; the first
/// rules hold long prefixes only, so that the later ones still decide some frames.
fn rule_set(rng: &mut Rng, per_rule: usize) -> RuleSet {
    let rules = (0..6)
        .map(|i| {
            let min = [25, 20, 12, 8, 0, 0][i];
            let p: Vec<Cidr> = (0..per_rule).map(|k| near(rng, k % 2 == 1, min)).collect();
            let mut r = Rule::unconditional(i as u32 + 1, if i % 2 == 0 { Action::Deny } else { Action::Allow });
            if i == 2 || i == 5 {
                r.dst = AddrMatch::Prefixes(p);
            } else {
                r.src = AddrMatch::Prefixes(p);
            }
            r
        })
        .collect();
    RuleSet { rules, default: Action::Allow, ..Default::default() }
}

/// Addresses at the edges of, inside and beside `n` random prefixes of the set, and random ones.
fn addrs(rng: &mut Rng, set: &RuleSet, v6: bool, n: usize) -> Vec<IpAddr> {
    let all: Vec<Cidr> = set
        .rules
        .iter()
        .flat_map(|r| [&r.src, &r.dst])
        .filter_map(|a| if let AddrMatch::Prefixes(v) = a { Some(v.clone()) } else { None })
        .flatten()
        .filter(|c| c.is_ipv4() != v6)
        .collect();
    let mut out = Vec::new();
    for _ in 0..n {
        let p = all[rng.below(all.len())];
        let (lo, hi) = p.range();
        let host = ((rng.next() as u128) << 64 | rng.next() as u128) & (hi - lo);
        let x = [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1), lo + host][rng.below(5)];
        out.push(if v6 { IpAddr::from(x.to_be_bytes()) } else { IpAddr::from((x as u32).to_be_bytes()) });
    }
    out
}

/// The frames' (source, destination) pairs and the slot that should decide each.
fn cases(rng: &mut Rng, set: &RuleSet, n: usize) -> Vec<(IpAddr, IpAddr, usize)> {
    let mut v = Vec::new();
    for v6 in [false, true] {
        let srcs = addrs(rng, set, v6, n);
        let dsts = addrs(rng, set, v6, n);
        for (s, d) in srcs.into_iter().zip(dsts) {
            let want = set.rules.iter().position(|r| r.src.matches(s) && r.dst.matches(d)).unwrap_or(abi::FW_C_DEFAULT);
            v.push((s, d, want));
        }
    }
    v
}

/// How many frames the program decides by another slot than the rules as written.
fn wrong(c: &Compiled, cases: &[(IpAddr, IpAddr, usize)]) -> Vec<String> {
    let mut sim = Simulator::new(c, 1, FwCapacity { prefixes: 1 << 16, blocks: 16, buckets: 16 }).expect("load the firewall");
    let mut bad = Vec::new();
    for &(s, d, want) in cases {
        let v = sim.run(&udp(s, d), 1_000).expect("BPF_PROG_TEST_RUN");
        if v.slot != want {
            bad.push(format!("{s} -> {d}: slot {} decided, the prefixes say {want}", v.slot));
        }
    }
    bad
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn the_program_decides_by_the_longest_prefix_of_random_nested_sets() {
    if !need_root() {
        return;
    }
    let mut rng = Rng(0x5eed_f1e1_d000_0021);
    for round in 0..3 {
        let set = rule_set(&mut rng, 400);
        let c = Compiled::new(&set).expect("compile");
        assert!(c.ptable.home_buckets() > 500, "round {round}: {} buckets", c.ptable.home_buckets());
        assert_eq!(c.groups & 5, 5, "round {round}: IPv6 sources of /32 and longer and IPv4 ones longer than /24 should be grouped");
        let cs = cases(&mut rng, &set, 150);
        let decided: std::collections::BTreeSet<usize> = cs.iter().map(|c| c.2).collect();
        assert!(decided.len() >= 5, "round {round}: the frames should meet most rules and the default: {decided:?}");
        let bad = wrong(&c, &cs);
        assert!(bad.is_empty(), "round {round}: {} of {} frames decided wrongly:\n{}", bad.len(), cs.len(), bad.join("\n"));
    }
}

/// The same check against a table with the first slot of every bucket cleared: it must fail.
#[test]
#[ignore = "needs root, namespaces and BPF"]
fn a_table_missing_prefixes_is_caught_by_the_program() {
    if !need_root() {
        return;
    }
    let mut rng = Rng(0x5eed_f1e1_d000_0022);
    let set = rule_set(&mut rng, 400);
    let mut c = Compiled::new(&set).expect("compile");
    let cs = cases(&mut rng, &set, 150);
    c.ptable.break_first_slots();
    let bad = wrong(&c, &cs);
    assert!(bad.len() > 10, "a table missing a third of its prefixes went unnoticed ({} wrong of {})", bad.len(), cs.len());
}
