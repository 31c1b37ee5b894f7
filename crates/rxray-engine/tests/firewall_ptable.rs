//! The prefix table (firewall::ptable, what the kernel's rxray_fw_lpm holds and `fw_ptable_get` reads):
//! every key it was built from is found with its class, no other key is, and the classes it gives
//! lead to the same rules as a naive longest-prefix match over the prefixes as written, for random
//! prefix sets of every length (IPv4 /0../32, IPv6 /0../128), nested around a few bases so that
//! longer and shorter prefixes overlap. A table broken on purpose must fail the same checks.
use proptest::prelude::*;
use rxray_engine::cidr::Cidr;
use rxray_engine::firewall::compile::{mask16, PrefixEntry};
use rxray_engine::firewall::ptable::{PTable, PSLOTS};
use rxray_engine::firewall::{Action, AddrMatch, Compiled, Rule, RuleSet};
use std::collections::HashMap;
use std::net::IpAddr;

const V4_BASES: [u32; 3] = [0xc633_6400, 0x0a00_0000, 0xcb00_7100];
const V6_BASES: [u128; 2] = [0x2001_0db8_1234_5678_9abc_def0_1234_5678, 0x3fff_ab0c_0000_0000_0000_0000_0000_0001];

/// A prefix near one of the bases (random low bits), of any length of its family.
fn near(v6: bool, base: usize, noise: u128, len: u8) -> Cidr {
    if v6 {
        let b = V6_BASES[base % 2];
        let x = b ^ (noise >> (len as u32 / 2 + 1)); // nearby: the top len/2 bits stay the base's
        Cidr::new(IpAddr::from(x.to_be_bytes()), len.min(128)).unwrap()
    } else {
        let b = V4_BASES[base % 3];
        let x = b ^ ((noise as u32) >> (len as u32 / 2 + 1));
        Cidr::new(IpAddr::from(x.to_be_bytes()), len.min(32)).unwrap()
    }
}

/// Lengths drawn from: at most 32 distinct per (field, family), the kernel's limit (RXRAY_FW_LENS).
const V4_LENS: [u8; 31] = [0, 1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32];
const V6_LENS: [u8; 28] = [0, 1, 7, 8, 15, 16, 23, 24, 25, 31, 32, 33, 40, 47, 48, 56, 63, 64, 65, 72, 80, 95, 96, 100, 112, 120, 127, 128];

fn pick_len(v6: bool, r: u128) -> u8 {
    if v6 { V6_LENS[(r % V6_LENS.len() as u128) as usize] } else { V4_LENS[(r % V4_LENS.len() as u128) as usize] }
}

fn prefixes() -> impl Strategy<Value = Vec<Cidr>> {
    prop::collection::vec(
        (any::<bool>(), 0usize..6, any::<u128>(), any::<u128>()).prop_map(|(v6, b, n, l)| near(v6, b, n, pick_len(v6, l))),
        1..40,
    )
}

/// Rule i: its prefixes as the source (even i) or the destination (odd i).
fn rule_set(sets: Vec<Vec<Cidr>>) -> RuleSet {
    let rules = sets
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut r = Rule::unconditional(i as u32 + 1, if i % 3 == 0 { Action::Deny } else { Action::Allow });
            if i % 2 == 0 {
                r.src = AddrMatch::Prefixes(p);
            } else {
                r.dst = AddrMatch::Prefixes(p);
            }
            r
        })
        .collect();
    RuleSet { rules, ..Default::default() }
}

/// The rules (bit i: rule i) whose prefixes in `field` hold `ip`, by a naive longest-prefix reading
/// (any prefix of a rule holding the address), plus the rules that take any address there.
fn naive_mask(set: &RuleSet, field: usize, ip: IpAddr) -> u64 {
    let mut m = 0u64;
    for (i, r) in set.rules.iter().enumerate() {
        let a = if field == 0 { &r.src } else { &r.dst };
        if a.matches(ip) {
            m |= 1 << i;
        }
    }
    m
}

/// Addresses at, inside and beside every prefix, and random ones near the bases.
fn probe_addrs(set: &RuleSet, noise: &[u128]) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    for r in &set.rules {
        for a in [&r.src, &r.dst] {
            if let AddrMatch::Prefixes(v) = a {
                for p in v {
                    let (lo, hi) = p.range();
                    for x in [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1), lo + (hi - lo) / 3] {
                        ips.push(if p.is_ipv4() { IpAddr::from((x as u32).to_be_bytes()) } else { IpAddr::from(x.to_be_bytes()) });
                    }
                }
            }
        }
    }
    for (i, &n) in noise.iter().enumerate() {
        ips.push(if i % 2 == 1 {
            IpAddr::from((V6_BASES[i % 2] ^ (n >> 40)).to_be_bytes())
        } else {
            IpAddr::from((V4_BASES[i % 3] ^ (n as u32 >> 12)).to_be_bytes())
        });
    }
    ips
}

/// How many (field, address) pairs classify to a different set of rules than the naive reading.
fn mismatches(c: &Compiled, set: &RuleSet, ips: &[IpAddr]) -> usize {
    let mut bad = 0;
    for &ip in ips {
        for field in 0..2 {
            let got = c.class_masks[field][c.classify(field, ip) as usize];
            if got != naive_mask(set, field, ip) {
                bad += 1;
            }
        }
    }
    bad
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn prefix_table_classifies_like_a_naive_longest_prefix_match(
        sets in prop::collection::vec(prefixes(), 1..7),
        noise in prop::collection::vec(any::<u128>(), 32),
    ) {
        let set = rule_set(sets);
        let c = Compiled::new(&set).unwrap();
        let ips = probe_addrs(&set, &noise);
        prop_assert_eq!(mismatches(&c, &set, &ips), 0);
    }
}

/// The same check, with every bucket's first slot cleared: the table has lost prefixes, and the
/// naive reading must notice on some rule sets (a check that cannot fail proves nothing).
#[test]
fn a_broken_prefix_table_is_caught() {
    let mut caught = 0;
    let mut x = 0x5eed_7ab1_e000_0021u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u128 | (x.rotate_left(17) as u128) << 64
    };
    for round in 0..50 {
        let sets: Vec<Vec<Cidr>> = (0..3)
            .map(|_| {
                (0..30)
                    .map(|i| {
                        let n = next();
                        near(i % 2 == 0, i, n, pick_len(i % 2 == 0, n.rotate_left(7)))
                    })
                    .collect()
            })
            .collect();
        let set = rule_set(sets);
        let mut c = Compiled::new(&set).unwrap();
        let ips = probe_addrs(&set, &[]);
        assert_eq!(mismatches(&c, &set, &ips), 0, "round {round}: the intact table");
        c.ptable.break_first_slots();
        if mismatches(&c, &set, &ips) > 0 {
            caught += 1;
        }
    }
    assert!(caught >= 45, "a table missing prefixes went unnoticed in {} of 50 rounds", 50 - caught);
}

/// Direct: a table of many random keys (both fields, both families, every length) finds each key's
/// class and nothing for keys it was not given; also at a size where runs of full buckets are long.
#[test]
fn prefix_table_finds_exactly_its_keys() {
    let mut x = 0x0123_4567_89ab_cdefu64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for n in [1usize, 2, 7, 100, 10_000, 300_000] {
        let mut want: HashMap<(u8, u8, u8, [u8; 16]), u8> = HashMap::new();
        let mut entries = Vec::new();
        let mut others = Vec::new();
        while entries.len() < n {
            let r = next();
            let (field, ver) = ((r & 1) as u8, if r & 2 == 0 { 4 } else { 6 });
            let len = (next() % if ver == 4 { 33 } else { 129 }) as u8;
            let mut a = [0u8; 16];
            a[..8].copy_from_slice(&next().to_be_bytes());
            a[8..].copy_from_slice(&next().to_be_bytes());
            if ver == 4 {
                a[4..].fill(0);
            }
            let addr = mask16(&a, len);
            let key = (field, ver, len, addr);
            if want.contains_key(&key) {
                continue;
            }
            let class = (next() % 127) as u8 + 1;
            want.insert(key, class);
            entries.push(PrefixEntry { field, ver, len, addr, class, grouped: false });
            // Near misses: the other field, family tag, a length one off, the last bit flipped.
            others.push((field ^ 1, ver, len, addr));
            others.push((field, ver, len.saturating_add(1).min(if ver == 4 { 32 } else { 128 }), addr));
            let mut flipped = a;
            flipped[15] ^= 1;
            flipped[3] ^= 0x80;
            others.push((field, ver, len, mask16(&flipped, len)));
        }
        let t = PTable::build(&entries).unwrap();
        assert!(t.home_buckets() as usize * PSLOTS >= n, "{n} keys in {} buckets", t.home_buckets());
        for e in &entries {
            assert_eq!(t.get(e.field, e.ver, e.len, &e.addr), Some(e.class), "{n} keys: {e:?}");
        }
        for (f, v, l, a) in others {
            assert_eq!(t.get(f, v, l, &a), want.get(&(f, v, l, a)).copied(), "{n} keys: near miss {f} {v} /{l} {a:?}");
        }
    }
    assert_eq!(PTable::build(&[]).unwrap().get(0, 4, 32, &[0; 16]), None);
}
