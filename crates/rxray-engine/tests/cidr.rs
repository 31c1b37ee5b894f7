//! Blocklist parsing (FireHOL and Spamhaus shapes), error positions, aggregation counts, and
//! `CidrSet` lookups checked against a naive scan of the original (unaggregated) prefixes.
use proptest::prelude::*;
use rxray_engine::cidr::{aggregate, parse_list, Cidr, CidrErrorKind, CidrSet, ParseMode};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn c(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const FIREHOL: &str = "\
#
# firehol_level1
#
# Maintainer      : FireHOL
#
0.0.0.0/8
1.10.16.0/20
2001:db8::/32
192.0.2.7
  198.51.100.0/24   # trailing comment
";

const SPAMHAUS: &str = "\
; Spamhaus DROP List 2026/11/29 - (c) 2026 The Spamhaus Project SLU
; Last-Modified: Sun, 29 Nov 2026 07:00:00 GMT
1.10.16.0/20 ; SBL256894
1.19.0.0/16 ; SBL434604
2a06:e480::/29 ; SBL301771
";

#[test]
fn firehol_netset_parses_with_comments_and_bare_hosts() {
    let p = parse_list(FIREHOL, ParseMode::Strict).unwrap();
    assert_eq!(
        p.entries,
        vec![c("0.0.0.0/8"), c("1.10.16.0/20"), c("2001:db8::/32"), c("192.0.2.7/32"), c("198.51.100.0/24")]
    );
    assert!(p.errors.is_empty());
    assert_eq!(p.host_bits_cleared, 0);
}

#[test]
fn spamhaus_drop_parses_with_sbl_references_as_comments() {
    let p = parse_list(SPAMHAUS, ParseMode::Strict).unwrap();
    assert_eq!(p.entries, vec![c("1.10.16.0/20"), c("1.19.0.0/16"), c("2a06:e480::/29")]);
}

#[test]
fn bare_ipv6_address_is_a_128() {
    let p = parse_list("2001:db8::1\n", ParseMode::Strict).unwrap();
    assert_eq!(p.entries[0].prefix_len(), 128);
}

#[test]
fn host_bits_are_cleared_and_counted_as_warnings() {
    let p = parse_list("10.1.2.3/8\n2001:db8::5/64\n10.0.0.0/8\n", ParseMode::Strict).unwrap();
    assert_eq!(p.entries, vec![c("10.0.0.0/8"), c("2001:db8::/64"), c("10.0.0.0/8")]);
    assert_eq!(p.host_bits_cleared, 2);
    // A single prefix given to FromStr must be exact.
    assert!(matches!("10.1.2.3/8".parse::<Cidr>(), Err(CidrErrorKind::HostBitsSet { .. })));
}

#[test]
fn errors_name_line_column_and_fault() {
    let text = "1.2.3.0/24\n  1.2.3.999/24\n10.0.0.0/33 ; x\n::/abc\n1.2.3.4 junk\n2001:db8::/129\n";
    let errs = parse_list(text, ParseMode::Strict).unwrap_err();
    let got: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(got, vec![(2, 3), (3, 10), (4, 4), (5, 9), (6, 12)]);
    assert!(matches!(&errs[0].kind, CidrErrorKind::BadAddress { text } if text == "1.2.3.999"));
    assert!(matches!(errs[1].kind, CidrErrorKind::PrefixTooLong { len: 33, max: 32, .. }));
    assert!(matches!(&errs[2].kind, CidrErrorKind::BadPrefixLength { text } if text == "abc"));
    assert!(matches!(&errs[3].kind, CidrErrorKind::TrailingText { text } if text == "junk"));
    assert!(matches!(errs[4].kind, CidrErrorKind::PrefixTooLong { len: 129, max: 128, .. }));
    assert_eq!(errs[1].to_string(), "line 3, column 10: prefix length 33 is longer than 32, the maximum for IPv4");
}

#[test]
fn lenient_mode_keeps_good_lines_and_reports_bad_ones() {
    let text = format!("1.2.3.0/24\nbogus\n{}5.6.7.8\n", "# comment\n\n7.7.7.7\n".repeat(8));
    let p = parse_list(&text, ParseMode::Lenient).unwrap();
    assert_eq!(p.entries.len(), 10);
    assert_eq!((p.entries[0], p.entries[9]), (c("1.2.3.0/24"), c("5.6.7.8/32")));
    assert_eq!(p.errors.len(), 1);
    assert_eq!((p.bad_lines, p.entry_lines), (1, 11));
    assert_eq!((p.errors[0].line, p.errors[0].column), (2, 1));
}

#[test]
fn lenient_mode_rejects_a_list_that_is_mostly_bad() {
    // 2 bad of 12 entry lines (17%): more than the 10% a list may have.
    let text = format!("1.2.3.0/24\n{}bogus/9\n  x 1.2.3.4\n", "7.7.7.7\n".repeat(9));
    let errs = parse_list(&text, ParseMode::Lenient).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].line, errs[0].column), (11, 1), "{}", errs[0]);
    match &errs[0].kind {
        CidrErrorKind::TooManyBad { bad, lines, first } => {
            assert_eq!((*bad, *lines), (2, 12));
            assert!(matches!(**first, CidrErrorKind::BadAddress { .. }), "{first}");
        }
        k => panic!("{k}"),
    }
    // Garbage that happens to hold a few addresses is rejected, not loaded as "3 prefixes".
    let garbage = format!("1.1.1.1\n2.2.2.2\n3.3.3.3\n{}", "\u{1}garbage\n".repeat(1000));
    let errs = parse_list(&garbage, ParseMode::Lenient).unwrap_err();
    assert!(errs[0].to_string().contains("1000 of 1003 lines are bad"), "{}", errs[0]);
    assert_eq!(errs[0].line, 4);
}

#[test]
fn errors_kept_are_bounded_but_all_are_counted() {
    let text = "bad\n".repeat(100_000);
    let errs = parse_list(&text, ParseMode::Strict).unwrap_err();
    assert_eq!(errs.len(), rxray_engine::cidr::MAX_KEPT_ERRORS);
    assert_eq!(errs[0].line, 1);
    // A token a megabyte long is quoted clipped, not whole.
    let long = "9".repeat(1 << 20);
    let errs = parse_list(&long, ParseMode::Strict).unwrap_err();
    assert!(errs[0].to_string().len() < 200, "{}", errs[0].to_string().len());
}

#[test]
fn aggregation_counts_duplicates_covered_and_merged() {
    let list = [
        c("10.0.0.0/8"),
        c("10.1.0.0/16"),  // covered
        c("10.0.0.0/8"),   // duplicate
        c("192.0.2.0/25"), // merges with the next into /24
        c("192.0.2.128/25"),
        c("192.0.3.0/24"), // then no further: 192.0.2.0/23 needs 192.0.2.0/24 + 192.0.3.0/24
        c("2001:db8::/33"),
        c("2001:db8:8000::/33"), // merges into 2001:db8::/32
    ];
    let (plain, st) = aggregate(&list, false);
    assert_eq!((st.read, st.duplicates, st.covered, st.merged, st.result), (8, 1, 1, 0, 6));
    assert_eq!(plain.len(), 6);
    let (merged, st) = aggregate(&list, true);
    assert_eq!((st.read, st.duplicates, st.covered, st.merged, st.result), (8, 1, 1, 3, 3));
    assert_eq!(merged, vec![c("10.0.0.0/8"), c("192.0.2.0/23"), c("2001:db8::/32")]);
}

#[test]
fn set_answers_membership_and_matching_prefix() {
    let (set, parsed) = CidrSet::parse(&format!("{FIREHOL}{SPAMHAUS}"), ParseMode::Strict).unwrap();
    assert_eq!(parsed.entries.len(), 8);
    assert_eq!(set.stats().duplicates, 1);
    assert_eq!(set.len(), 7);
    assert!(set.contains(ip("1.10.31.255")));
    assert!(!set.contains(ip("1.10.32.0")));
    assert!(set.contains(ip("192.0.2.7")));
    assert!(!set.contains(ip("192.0.2.8")));
    assert!(set.contains(ip("::ffff:192.0.2.7")), "IPv4-mapped IPv6 is looked up as IPv4");
    assert!(set.contains(ip("2001:db8:ffff::1")));
    assert!(!set.contains(ip("2001:db9::")));
    assert_eq!(set.matching(ip("1.19.200.1")), Some(c("1.19.0.0/16")));
    assert!(CidrSet::default().is_empty() && !CidrSet::default().contains(ip("0.0.0.0")));
}

#[test]
fn a_million_prefixes_build_and_answer() {
    // Every other /32 in 16.0.0.0 .. : 1,000,000 disjoint host prefixes.
    let list: Vec<Cidr> = (0..1_000_000u32).map(|i| Cidr::host(Ipv4Addr::from(0x1000_0000 + 2 * i).into())).collect();
    let set = CidrSet::new(&list);
    assert_eq!(set.len(), 1_000_000);
    for i in (0..1_000_000u32).step_by(997) {
        assert!(set.contains(Ipv4Addr::from(0x1000_0000 + 2 * i).into()));
        assert!(!set.contains(Ipv4Addr::from(0x1000_0000 + 2 * i + 1).into()));
    }
}

fn arb_cidr() -> impl Strategy<Value = Cidr> {
    // Addresses drawn from a small space so prefixes overlap, nest and neighbour often.
    prop_oneof![
        (0u32..4096, 20u8..=32).prop_map(|(a, l)| Cidr::new(Ipv4Addr::from(0x0a00_0000 | (a << 4)).into(), l).unwrap()),
        (0u32..=32).prop_flat_map(|l| any::<u32>().prop_map(move |a| Cidr::new(Ipv4Addr::from(a).into(), l as u8).unwrap())),
        (0u128..4096, 110u8..=128).prop_map(|(a, l)| {
            Cidr::new(Ipv6Addr::from((0x2001_0db8u128 << 96) | (a << 8)).into(), l).unwrap()
        }),
    ]
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u32..(4096 << 4) + 16).prop_map(|a| IpAddr::from(Ipv4Addr::from(0x0a00_0000 | a))),
        any::<u32>().prop_map(|a| IpAddr::from(Ipv4Addr::from(a))),
        (0u128..(4096 << 8) + 256).prop_map(|a| IpAddr::from(Ipv6Addr::from((0x2001_0db8u128 << 96) | a))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Membership equals "some original prefix contains it", with and without sibling merging.
    #[test]
    fn set_matches_naive_scan(list in proptest::collection::vec(arb_cidr(), 0..60),
                              probes in proptest::collection::vec(arb_ip(), 1..40)) {
        let set = CidrSet::new(&list);
        let (merged, st) = aggregate(&list, true);
        prop_assert_eq!(st.read, st.duplicates + st.covered + st.merged + st.result);
        let mset = CidrSet::new(&merged);
        for p in probes {
            let naive = list.iter().any(|c| c.contains(p));
            prop_assert_eq!(set.contains(p), naive, "{}", p);
            prop_assert_eq!(mset.contains(p), naive, "{} (merged)", p);
            if let Some(m) = set.matching(p) {
                prop_assert!(m.contains(p));
                // The match is the shortest listed prefix holding p.
                let shortest = list.iter().filter(|c| c.contains(p)).map(|c| c.prefix_len()).min();
                prop_assert_eq!(Some(m.prefix_len()), shortest);
            }
        }
        // The aggregated prefixes are disjoint and sorted.
        let v: Vec<Cidr> = set.iter().collect();
        for w in v.windows(2) {
            if w[0].is_ipv4() == w[1].is_ipv4() {
                prop_assert!(w[0].range().1 < w[1].range().0);
            }
        }
    }

    /// The parser never panics, and every error points inside its line (or just past its end).
    #[test]
    fn parse_never_panics(text in "[0-9a-f:./;# \\n/x-]{0,200}") {
        let lines: Vec<&str> = text.lines().collect();
        let errors = match parse_list(&text, ParseMode::Lenient) {
            Ok(p) => {
                prop_assert!(p.bad_lines * 100 <= p.entry_lines * rxray_engine::cidr::MAX_BAD_SHARE_PERCENT);
                p.errors
            }
            Err(e) => {
                prop_assert_eq!(e.len(), 1);
                let is_share = matches!(e[0].kind, CidrErrorKind::TooManyBad { .. });
                prop_assert!(is_share);
                e
            }
        };
        for e in errors {
            let l = lines[e.line - 1];
            prop_assert!(e.column >= 1 && e.column <= l.chars().count() + 1);
        }
    }

    /// Printing and parsing a prefix round-trips.
    #[test]
    fn display_round_trips(x in arb_cidr()) {
        prop_assert_eq!(x.to_string().parse::<Cidr>().unwrap(), x);
    }
}
