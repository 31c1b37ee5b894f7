//! The IPv6 source filter (rxray_fw_v6: which prefix lengths the kernel probes for a source) in the
//! real XDP program: sources inside, at the edges of and beside nested prefixes of 13 lengths (/8 to
//! /128: shorter than the filter's /24, between /24 and /32, and longer; more than the filter's 7
//! own bits) are decided by the rule the rules file names, through BPF_PROG_TEST_RUN. Each length
//! has its own rule, longer prefixes in earlier rules, so a probe the filter skipped by mistake
//! shows as a later rule deciding.
//! The expected rule comes from the prefixes as written (the first rule with a prefix holding the
//! source), not from rxray's compiler.
use rxray_engine::cidr::Cidr;
use rxray_engine::firewall::{Action, AddrMatch, Compiled, Rule, RuleSet};
use rxray_kernel::abi;
use rxray_kernel::firewall::{FwCapacity, Simulator};
use rxray_lab::frames::{self, ipproto, Eth, Ipv6, Udp, L3, L4};
use rxray_lab::testing::{need_root, Rng};
use rxray_lab::{MAC_A, MAC_B};
use std::net::{IpAddr, Ipv6Addr};

fn udp6(src: Ipv6Addr) -> Vec<u8> {
    let ip = Ipv6 { src, dst: "2001:2::2".parse().unwrap(), hop_limit: 64, traffic_class: 0, flow_label: 0, next_header: ipproto::UDP };
    frames::frame(&Eth { dst: MAC_B, src: MAC_A }, &[], L3::Ipv6(ip, vec![]), L4::Udp(Udp { sport: 4000, dport: 5000 }), b"v6 filter")
}

#[test]
#[ignore = "needs root, namespaces and BPF"]
fn ipv6_sources_meet_the_rule_of_their_longest_prefix_at_every_length() {
    if !need_root() {
        return;
    }
    // With lengths shorter than /24 (probed for every source) and without them (every length from
    // index 7 on then comes from the filter's last bit alone).
    check(&[128, 96, 64, 56, 48, 40, 36, 32, 31, 28, 24, 20, 8]);
    check(&[128, 96, 64, 56, 48, 40, 36, 32, 31, 28, 24]);
}

/// Rule i holds the prefixes of length lens[i] around two bases (longest first); sources inside, at
/// the edges of and beside each, and random ones, are decided by the rule the prefixes name.
fn check(lens: &[u8]) {
    let bases: [u128; 2] = [0x2001_0db8_1234_5678_9abc_def0_1234_5678, 0x3fff_ab0c_0000_0000_0000_0000_0000_0001];
    let rules: Vec<Rule> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let p = bases.iter().map(|&b| Cidr::new(IpAddr::from(b.to_be_bytes()), l).unwrap());
            let action = if i % 2 == 0 { Action::Deny } else { Action::Allow };
            Rule { src: AddrMatch::Prefixes(p.collect()), ..Rule::unconditional(i as u32 + 1, action) }
        })
        .collect();
    let set = RuleSet { rules, ..Default::default() };
    let c = Compiled::new(&set).expect("compile");
    let mut sim = Simulator::new(&c, 1, FwCapacity { prefixes: 4096, blocks: 16, buckets: 16 }).expect("load the firewall");

    let mut srcs: Vec<u128> = Vec::new();
    let mut rng = Rng(0x5eed_0006_f117_e400);
    for r in &set.rules {
        let AddrMatch::Prefixes(v) = &r.src else { unreachable!() };
        for p in v {
            let (a, b) = p.range();
            let host = ((rng.next() as u128) << 64 | rng.next() as u128) & (b - a);
            srcs.extend([a, b, a.wrapping_sub(1), b.wrapping_add(1), a + host]);
        }
    }
    for _ in 0..40 {
        srcs.push(((rng.next() as u128) << 64 | rng.next() as u128) >> 3 | 1u128 << 125); // 2000::/3
    }
    let mut met = vec![0usize; lens.len() + 1];
    for s in srcs {
        let src = Ipv6Addr::from(s);
        let want = set.rules.iter().position(|r| r.src.matches(IpAddr::V6(src)));
        let v = sim.run(&udp6(src), 1_000).expect("BPF_PROG_TEST_RUN");
        let want_slot = want.unwrap_or(abi::FW_C_DEFAULT);
        assert_eq!(v.slot, want_slot, "lengths {lens:?}, source {src}: decided by slot {}, the prefixes say {want_slot}", v.slot);
        assert_eq!(v.dropped, want.is_some_and(|i| set.rules[i].action == Action::Deny), "source {src}: drop");
        met[want.unwrap_or(lens.len())] += 1;
    }
    assert!(met.iter().all(|&n| n > 0), "every rule and the default should decide some source: {met:?}");
}
