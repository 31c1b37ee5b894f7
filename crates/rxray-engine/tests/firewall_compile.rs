//! The compiled tables (classes, the direct IPv4 table, the prefix hash) decide exactly what the
//! rules say, rule by rule in order: checked against a direct reading of the rules on random rule
//! sets with overlapping prefixes and random packets.
use proptest::prelude::*;
use rxray_engine::cidr::Cidr;
use rxray_engine::firewall::compile::FwInput;
use rxray_engine::firewall::{Action, AddrMatch, Compiled, Rule, RuleSet};
use std::net::IpAddr;

fn v4(x: u32) -> IpAddr {
    IpAddr::from((0xC612_0000u32 | (x & 0x1ffff)).to_be_bytes()) // 198.18.0.0/15
}

fn v6(x: u128) -> IpAddr {
    IpAddr::from(((0x2001_0002_0000u128 << 80) | (x & ((1u128 << 80) - 1))).to_be_bytes()) // 2001:2::/48
}

fn prefix() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        (any::<u32>(), 15u8..=32).prop_map(|(x, l)| Cidr::new(v4(x), l).unwrap()),
        (any::<u32>(), 0u8..=14).prop_map(|(x, l)| Cidr::new(v4(x), l).unwrap()),
        (any::<u128>(), 48u8..=128).prop_map(|(x, l)| Cidr::new(v6(x), l).unwrap()),
    ]
}

fn addrs() -> impl Strategy<Value = AddrMatch> {
    prop_oneof![Just(AddrMatch::Any), prop::collection::vec(prefix(), 1..4).prop_map(AddrMatch::Prefixes)]
}

fn rule() -> impl Strategy<Value = Rule> {
    (addrs(), addrs(), 0u8..3, prop::option::of(prop_oneof![Just(6u8), Just(17u8)]), any::<bool>(), 0u16..4, any::<bool>())
        .prop_map(|(src, dst, a, proto, ports, p0, flags)| {
            let action = [Action::Allow, Action::Deny, Action::Limit][a as usize];
            let dport = if ports && proto.is_some() { (1000 + p0, 1000 + p0 + 1) } else { (0, 65535) };
            Rule {
                id: 0,
                name: String::new(),
                line: 0,
                action,
                src,
                dst,
                ip: None,
                proto,
                sport: (0, 65535),
                dport,
                tcp_flags: if flags && proto == Some(6) { Some((0x02, 0x12)) } else { None },
                ttl_s: None,
                limit: None,
                lists: Vec::new(),
            }
        })
}

fn naive(rules: &[Rule], p: &FwInput) -> Option<usize> {
    rules.iter().position(|r| {
        let l4 = !r.tests_l4()
            || if !p.l4_known {
                r.action != Action::Allow
            } else {
                r.proto.is_none_or(|x| x == p.proto)
                    && (r.sport.0..=r.sport.1).contains(&p.sport)
                    && (r.dport.0..=r.dport.1).contains(&p.dport)
                    && r.tcp_flags.is_none_or(|(v, m)| p.flags & m == v)
            };
        r.src.matches(p.src) && r.dst.matches(p.dst) && l4 && r.action != Action::Limit
    })
}

fn packet() -> impl Strategy<Value = FwInput> {
    (any::<bool>(), any::<u128>(), any::<u128>(), prop_oneof![Just(6u8), Just(17u8), Just(1u8)], 0u16..6, any::<u8>(), any::<bool>())
        .prop_map(|(is4, s, d, proto, dp, flags, known)| FwInput {
            src: if is4 { v4(s as u32) } else { v6(s) },
            dst: if is4 { v4(d as u32) } else { v6(d) },
            proto,
            sport: 40000,
            dport: 1000 + dp,
            flags,
            l4_known: known,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn compiled_tables_decide_like_the_rules(rules in prop::collection::vec(rule(), 1..8), pkts in prop::collection::vec(packet(), 64)) {
        let set = RuleSet { rules: rules.into_iter().enumerate().map(|(i, mut r)| { r.id = i as u32 + 1; r }).collect(), ..Default::default() };
        let c = Compiled::new(&set).unwrap();
        for p in &pkts {
            prop_assert_eq!(c.decide(p), naive(&set.rules, p), "packet {:?}", p);
        }
        // Addresses exactly at prefix edges, where off-by-one errors live.
        for r in &set.rules {
            if let AddrMatch::Prefixes(v) = &r.src {
                for pfx in v {
                    let (a, b) = pfx.range();
                    for x in [a, b, b.wrapping_add(1), a.wrapping_sub(1)] {
                        let ip = if pfx.is_ipv4() { IpAddr::from((x as u32).to_be_bytes()) } else { IpAddr::from(x.to_be_bytes()) };
                        let p = FwInput { src: ip, dst: ip, proto: 6, sport: 1, dport: 1000, flags: 2, l4_known: true };
                        prop_assert_eq!(c.decide(&p), naive(&set.rules, &p), "edge {:?}", ip);
                    }
                }
            }
        }
    }
}

#[test]
fn a_million_prefix_list_compiles_and_classifies() {
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let list: Vec<Cidr> = (0..1_000_000)
        .map(|_| {
            let r = next();
            Cidr::new(IpAddr::from((r as u32).to_be_bytes()), 16 + (r >> 40) as u8 % 17).unwrap()
        })
        .collect();
    let (agg, _) = rxray_engine::cidr::aggregate(&list, false);
    let set_ref = rxray_engine::cidr::CidrSet::new(&agg);
    let rule = Rule { name: "list".into(), src: AddrMatch::Prefixes(agg), ..Rule::unconditional(1, Action::Deny) };
    let c = Compiled::new(&RuleSet { rules: vec![rule], ..Default::default() }).unwrap();
    let (mut inside, mut outside) = (0, 0);
    for _ in 0..20_000 {
        let ip = IpAddr::from((next() as u32).to_be_bytes());
        let p = FwInput { src: ip, dst: ip, proto: 17, sport: 1, dport: 2, flags: 0, l4_known: true };
        let listed = set_ref.contains(ip);
        assert_eq!(c.decide(&p).is_some(), listed, "{ip}");
        if listed { inside += 1 } else { outside += 1 }
    }
    assert!(inside > 100 && outside > 100, "inside {inside}, outside {outside}");
}

/// IPv6 addresses whose first 32 bits take few values (2001:0000..2001:0303), so that prefixes of
/// every length, shorter and longer than the IPv6 source filter's /24 and /32, overlap.
fn v6w(x: u128) -> IpAddr {
    let top = (0x2001u128 << 112) | ((x & 3) << 104) | (((x >> 2) & 3) << 96);
    IpAddr::from((top | ((x >> 4) & ((1u128 << 96) - 1))).to_be_bytes())
}

/// A rule with 1..6 source prefixes of /min_len to /72 (with min_len 24, the lengths from index 7 on
/// come from the filter alone; below, some are probed for every source).
fn v6w_rule(min_len: u8) -> impl Strategy<Value = Rule> {
    (prop::collection::vec((any::<u128>(), min_len..=72), 1..6), 0u8..2).prop_map(|(pfx, a)| Rule {
        src: AddrMatch::Prefixes(pfx.into_iter().map(|(x, l)| Cidr::new(v6w(x), l).unwrap()).collect()),
        ..Rule::unconditional(0, [Action::Allow, Action::Deny][a as usize])
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]
    /// The IPv6 source filter (which lengths to probe for an address) never hides a match: sources
    /// in, at the edges of and beside prefixes of /0 to /72 decide as the rules say.
    #[test]
    fn ipv6_source_filter_keeps_every_match(
        rules in prop_oneof![Just(0u8), Just(24u8)].prop_flat_map(|m| prop::collection::vec(v6w_rule(m), 1..10)),
        srcs in prop::collection::vec(any::<u128>(), 64),
    ) {
        let set = RuleSet { rules: rules.into_iter().enumerate().map(|(i, mut r)| { r.id = i as u32 + 1; r }).collect(), ..Default::default() };
        let c = Compiled::new(&set).unwrap();
        let dst = v6w(0);
        let mut ips: Vec<IpAddr> = srcs.into_iter().map(v6w).collect();
        for r in &set.rules {
            if let AddrMatch::Prefixes(v) = &r.src {
                for pfx in v {
                    let (a, b) = pfx.range();
                    ips.extend([a, b, b.wrapping_add(1), a.wrapping_sub(1)].map(|x| IpAddr::from(x.to_be_bytes())));
                }
            }
        }
        for src in ips {
            let p = FwInput { src, dst, proto: 6, sport: 1, dport: 1000, flags: 2, l4_known: true };
            prop_assert_eq!(c.decide(&p), naive(&set.rules, &p), "source {:?}", src);
        }
    }
}
