//! The filter parser takes outside input: arbitrary strings, token soups and mutations of the seed
//! corpus (tests/corpus/filters.txt) never panic; errors always point inside the expression (or
//! just past its end); everything that parses lowers and evaluates.
use proptest::prelude::*;
use rxray_engine::filter::{parse, Filter};
use rxray_wire::{dissect::empty_packet, dissect, LinkType};

fn corpus() -> Vec<String> {
    include_str!("corpus/filters.txt").lines().filter(|l| !l.trim().is_empty()).map(String::from).collect()
}

/// A few packets to evaluate on: empty, and one frame of each common kind.
fn packets() -> Vec<rxray_engine::event::Packet> {
    let mut v = vec![empty_packet()];
    let frame: Vec<u8> = {
        let mut f = vec![2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 29, 0, 1, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2]);
        f.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 9, 0, 0, b'x']);
        f
    };
    v.push(dissect(&frame, LinkType::ETHERNET, 0, frame.len() as u32, "lo", 0));
    v
}

fn check(s: &str) {
    match Filter::parse(s) {
        Ok(f) => {
            for p in packets() {
                let _ = f.matches(&p);
            }
        }
        Err(e) => {
            let chars = s.chars().count();
            assert!(e.column >= 1 && e.column <= chars + 1, "{s:?}: column {} outside 1..={}", e.column, chars + 1);
            assert!(!e.message.is_empty());
            let _ = e.to_string();
        }
    }
}

#[test]
fn the_corpus_parses() {
    for line in corpus() {
        parse(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    }
}

const WORDS: &[&str] = &[
    "host", "net", "port", "portrange", "src", "dst", "and", "or", "not", "&&", "||", "!", "(", ")", "[", "]", "&", "|",
    "=", "==", "!=", "<", "<=", ">", ">=", "/", "mask", "tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp", "vlan", "len",
    "greater", "less", "tcpflags", "tcp-syn", "tcp-ack", "13", "0", "53", "65536", "0x1f", "010", "1-2", "10.0.0.0",
    "10", "255.255.0.0", "2001:2::1", "::", "24", "129", "999999999999", "é", "$",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}") {
        check(&s);
    }

    #[test]
    fn token_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(WORDS), 0..24), glue in proptest::collection::vec(prop_oneof![Just(" "), Just("")], 24)) {
        let mut s = String::new();
        for (i, w) in words.iter().enumerate() {
            s.push_str(w);
            s.push_str(glue[i]);
        }
        check(&s);
    }

    #[test]
    fn corpus_mutations_never_panic(pick in 0usize..1000, at in 0usize..200, del in 0usize..4, ins in "\\PC{0,3}") {
        let c = corpus();
        let base: Vec<char> = c[pick % c.len()].chars().collect();
        let at = at % (base.len() + 1);
        let end = (at + del).min(base.len());
        let mut s: String = base[..at].iter().collect();
        s.push_str(&ins);
        s.extend(&base[end..]);
        check(&s);
    }
}
