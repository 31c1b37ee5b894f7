//! Property tests: arbitrary and mutated bytes into the capture reader and into `dissect` never
//! panic, and the reader's records always lie inside what it was given. Seeds: tests/corpus/.
use proptest::prelude::*;
use rxray_io::CaptureReader;
use rxray_wire::{dissect, LinkType};

fn corpus() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/corpus", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    v.sort();
    v
}

fn drain(bytes: &[u8]) -> usize {
    let Ok(mut r) = CaptureReader::new(bytes) else { return 0 };
    let mut n = 0;
    while let Some(x) = r.next_record() {
        match x {
            Ok(p) => {
                assert!(p.data.len() <= bytes.len());
                for lt in [1, 101, 113, 228, 229, 276] {
                    let _ = dissect(p.data, LinkType(lt), p.ts_ns, p.orig_len, "f", 256);
                }
                n += 1;
            }
            Err(e) => {
                assert!(e.offset <= bytes.len() as u64);
                break;
            }
        }
    }
    assert!(r.next_record().is_none(), "nothing after the end or an error");
    n
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn reader_survives_arbitrary_bytes(prefix in 0usize..3, body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let magic: [&[u8]; 3] = [&[0xd4, 0xc3, 0xb2, 0xa1], &[0x0a, 0x0d, 0x0d, 0x0a], &[]];
        let mut b = magic[prefix].to_vec();
        b.extend_from_slice(&body);
        drain(&b);
    }

    #[test]
    fn reader_survives_mutated_corpus_files(pick in 0usize..64, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let c = corpus();
        let mut b = c[pick % c.len()].clone();
        for (at, v) in flips {
            if !b.is_empty() {
                let i = at % b.len();
                b[i] = v;
            }
        }
        let keep = if b.is_empty() { 0 } else { cut % (b.len() + 1) };
        b.truncate(keep.max(b.len() / 2));
        drain(&b);
    }

    #[test]
    fn dissect_survives_arbitrary_frames(lt in prop_oneof![Just(1u32), Just(101), Just(113), Just(228), Just(229), Just(276), any::<u32>()],
                                         frame in proptest::collection::vec(any::<u8>(), 0..300),
                                         orig in any::<u32>(), snap in 0usize..1000) {
        let p = dissect(&frame, LinkType(lt), 0, orig, "f", snap);
        prop_assert!(p.payload.len() <= snap.min(256));
        // Headers end inside the frame, unless the capture cut it (orig > captured): then the
        // offset may point past the captured bytes, where the datagram's headers really end.
        if orig as usize <= frame.len() {
            prop_assert!(p.payload_offset as usize <= frame.len());
        }
    }

    #[test]
    fn dissect_survives_plausible_headers(et in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8100), Just(0x88a8)],
                                          ver in 0u8..16, proto in prop_oneof![Just(1u8), Just(6), Just(17), Just(58), Just(0), Just(44), Just(51), any::<u8>()],
                                          rest in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&et.to_be_bytes());
        f.push(ver << 4 | 5);
        f.extend_from_slice(&rest);
        if f.len() > 23 { f[23] = proto; }
        if f.len() > 20 { f[20] = proto; }
        let _ = dissect(&f, LinkType::ETHERNET, 0, f.len() as u32, "f", 256);
    }
}
