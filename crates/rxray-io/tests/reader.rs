//! The capture reader on well-formed files of every supported flavour (hand-built here, so expected
//! values come from the test, not from the reader) and on the damaged files of tests/corpus/.
use rxray_io::{CaptureReader, LinkType, PcapWriter, PcapngWriter, ReadError};

#[derive(Debug, PartialEq)]
struct Rec {
    ts_ns: u64,
    linktype: u32,
    iface: u32,
    orig_len: u32,
    data: Vec<u8>,
    queue: Option<u32>,
}

/// Every record, and the error that stopped reading (if any). Read twice: from memory through a
/// buffer, and from a file through its mapping (releasing read pages every 4 KiB, the smallest
/// step); both must give the same records and the same error.
fn read_all(bytes: &[u8]) -> (Vec<Rec>, Option<ReadError>) {
    let buffered = read_from(CaptureReader::new(bytes));
    let path = std::env::temp_dir().join(format!("rxray-reader-{}-{}.cap", std::process::id(), SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::write(&path, bytes).expect("temp file");
    let file = std::fs::File::open(&path).expect("temp file");
    let mapped = read_from(CaptureReader::open(file).map(|r| {
        assert_eq!(r.is_mapped(), !bytes.is_empty(), "a non-empty regular file is mapped");
        r.with_release_step(4096)
    }));
    let _ = std::fs::remove_file(&path);
    assert_eq!(buffered.0, mapped.0, "records read through the mapping differ from the buffered ones");
    let show = |e: &Option<ReadError>| e.as_ref().map(|e| e.to_string());
    assert_eq!(show(&buffered.1), show(&mapped.1), "errors differ between the buffered and the mapped reader");
    buffered
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn read_from<R: std::io::Read>(r: Result<CaptureReader<R>, ReadError>) -> (Vec<Rec>, Option<ReadError>) {
    let mut r = match r {
        Ok(r) => r,
        Err(e) => return (vec![], Some(e)),
    };
    let mut out = vec![];
    while let Some(x) = r.next_record() {
        match x {
            Ok(p) => out.push(Rec {
                ts_ns: p.ts_ns,
                linktype: p.linktype.0,
                iface: p.iface_id,
                orig_len: p.orig_len,
                data: p.data.to_vec(),
                queue: p.queue,
            }),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"))).expect("corpus file")
}

#[test]
fn damaged_files_yield_what_came_before_and_name_the_offset() {
    let cases: &[(&str, usize, u64, &str)] = &[
        ("truncated-data.pcap", 2, 160, "truncated packet data (47 of 52 bytes)"),
        ("truncated-record-header.pcap", 2, 160, "truncated pcap record header (3 of 16 bytes)"),
        ("truncated-file-header.pcap", 0, 0, "truncated pcap file header (10 of 24 bytes)"),
        ("huge-record.pcap", 1, 92, "more than any packet"),
        ("not-a-capture.txt", 0, 0, "not a pcap or pcapng file (magic 68656c6c)"),
        ("bad-block-length.pcapng", 1, 144, "enhanced packet block has an invalid total length 7"),
        ("trailer-mismatch.pcapng", 1, 144, "length mismatch: header says 84, trailer says"),
        ("epb-unknown-interface.pcapng", 1, 144, "refers to interface 3"),
        ("truncated-block.pcapng", 2, 228, "truncated enhanced packet block (54 of 84 bytes)"),
        ("caplen-past-block.pcapng", 0, 60, "captured length 500 runs past the block"),
    ];
    for (name, n, offset, what) in cases {
        let (recs, e) = read_all(&corpus(name));
        let e = e.unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(recs.len(), *n, "{name}: records before the error");
        assert_eq!(e.offset, *offset, "{name}: {e}");
        assert!(e.to_string().contains(what), "{name}: {e}");
        assert!(e.to_string().ends_with(&format!("at byte offset {offset}")), "{name}: {e}");
    }
    assert!(read_all(&[]).1.unwrap().to_string().contains("empty file"));
}

/// A classic pcap header + records, in the given byte order and resolution.
fn pcap_bytes(be: bool, nanos: bool, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut b = vec![];
    b.extend_from_slice(&w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    b.extend_from_slice(&w16(2));
    b.extend_from_slice(&w16(4));
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&w32(65535));
    b.extend_from_slice(&w32(0x1000_0000 | 101)); // FCS bits set above the link type
    for (s, frac, data, orig) in recs {
        b.extend_from_slice(&w32(*s));
        b.extend_from_slice(&w32(*frac));
        b.extend_from_slice(&w32(data.len() as u32));
        b.extend_from_slice(&w32(*orig));
        b.extend_from_slice(data);
    }
    b
}

#[test]
fn classic_pcap_in_both_byte_orders_and_resolutions() {
    for be in [false, true] {
        for nanos in [false, true] {
            let b = pcap_bytes(be, nanos, &[(10, 999_999, b"abc", 3), (11, 5, b"", 60)]);
            let (recs, e) = read_all(&b);
            assert!(e.is_none());
            let unit = if nanos { 1 } else { 1000 };
            assert_eq!(recs[0], Rec { ts_ns: 10_000_000_000 + 999_999 * unit, linktype: 101, iface: 0, orig_len: 3, data: b"abc".to_vec(), queue: None });
            assert_eq!((recs[1].ts_ns, recs[1].orig_len, recs[1].data.len()), (11_000_000_000 + 5 * unit, 60, 0));
        }
    }
}

/// A pcapng block in the given byte order.
fn block(be: bool, ty: u32, body: &[u8]) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut body = body.to_vec();
    body.resize(body.len().div_ceil(4) * 4, 0);
    let n = 12 + body.len() as u32;
    let mut b = w32(ty).to_vec();
    b.extend_from_slice(&w32(n));
    b.extend_from_slice(&body);
    b.extend_from_slice(&w32(n));
    b
}

fn pcapng_bytes(be: bool) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let opt = |code: u16, v: &[u8]| {
        let mut o = w16(code).to_vec();
        o.extend_from_slice(&w16(v.len() as u16));
        o.extend_from_slice(v);
        o.resize(o.len().div_ceil(4) * 4, 0);
        o
    };
    let mut shb = w32(0x1A2B_3C4D).to_vec();
    shb.extend_from_slice(&w16(1));
    shb.extend_from_slice(&w16(0));
    shb.extend_from_slice(&[0xff; 8]);
    let idb = |lt: u16, resol: Option<u8>, name: &str| {
        let mut b = w16(lt).to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&w32(0));
        b.extend_from_slice(&opt(2, name.as_bytes()));
        if let Some(r) = resol {
            b.extend_from_slice(&opt(9, &[r]));
        }
        b.extend_from_slice(&opt(0, &[]));
        b
    };
    let epb = |iface: u32, ts: u64, data: &[u8], orig: u32, queue: Option<u32>| {
        let mut b = w32(iface).to_vec();
        b.extend_from_slice(&w32((ts >> 32) as u32));
        b.extend_from_slice(&w32(ts as u32));
        b.extend_from_slice(&w32(data.len() as u32));
        b.extend_from_slice(&w32(orig));
        b.extend_from_slice(data);
        b.resize(b.len().div_ceil(4) * 4, 0);
        b.extend_from_slice(&opt(1, b"a comment"));
        if let Some(q) = queue {
            b.extend_from_slice(&opt(6, &w32(q)));
        }
        b
    };
    let mut f = block(be, 0x0A0D_0D0A, &shb);
    f.extend(block(be, 1, &idb(1, None, "eth0"))); // default resolution: microseconds
    f.extend(block(be, 1, &idb(113, Some(0x80 | 10), "any"))); // 2^-10 s
    f.extend(block(be, 1, &idb(228, Some(3), "ms"))); // milliseconds
    f.extend(block(be, 0x0BAD, b"unknown block, skipped"));
    f.extend(block(be, 6, &epb(0, 1_500_000, b"first", 5, None)));
    f.extend(block(be, 6, &epb(1, 3 << 10, b"second", 100, Some(3))));
    f.extend(block(be, 6, &epb(2, 1234, b"third!!", 7, None)));
    let mut spb = w32(9).to_vec();
    spb.extend_from_slice(b"simple!!!");
    f.extend(block(be, 3, &spb));
    let mut opb = w16(1).to_vec();
    opb.extend_from_slice(&w16(0));
    opb.extend_from_slice(&w32(0));
    opb.extend_from_slice(&w32(2048));
    opb.extend_from_slice(&w32(3));
    opb.extend_from_slice(&w32(3));
    opb.extend_from_slice(b"old");
    f.extend(block(be, 2, &opb));
    f
}

#[test]
fn pcapng_in_both_byte_orders_with_every_packet_block_and_resolution() {
    for be in [false, true] {
        let (recs, e) = read_all(&pcapng_bytes(be));
        assert!(e.is_none(), "{e:?}");
        let got: Vec<_> = recs.iter().map(|r| (r.ts_ns, r.linktype, r.iface, r.orig_len, r.data.as_slice(), r.queue)).collect();
        assert_eq!(
            got,
            vec![
                (1_500_000_000, 1, 0, 5, &b"first"[..], None),
                (3_000_000_000, 113, 1, 100, &b"second"[..], Some(3)),
                (1_234_000_000, 228, 2, 7, &b"third!!"[..], None),
                (0, 1, 0, 9, &b"simple!!!"[..], None),
                (2_000_000_000, 113, 1, 3, &b"old"[..], None),
            ],
            "big endian: {be}"
        );
    }
    // A second section (in the other byte order) resets the interfaces.
    let mut two = pcapng_bytes(false);
    two.extend(pcapng_bytes(true));
    let (recs, e) = read_all(&two);
    assert!(e.is_none());
    assert_eq!(recs.len(), 10);
}

#[test]
fn writers_round_trip_through_the_reader() {
    let mut ng = PcapngWriter::new(Vec::new(), "rxray test").unwrap();
    let a = ng.add_interface("eth0", LinkType::ETHERNET, 262144).unwrap();
    let b = ng.add_interface("tun0", LinkType::RAW, 128).unwrap();
    ng.write_packet(a, 1_700_000_000_123_456_789, 1514, &[1; 99], Some("snapped")).unwrap();
    ng.write_packet(b, 1_700_000_001_000_000_001, 3, &[2; 3], None).unwrap();
    assert!(ng.write_packet(7, 0, 0, &[], None).is_err());
    let bytes = ng.into_inner();
    let (recs, e) = read_all(&bytes);
    assert!(e.is_none());
    assert_eq!(recs[0], Rec { ts_ns: 1_700_000_000_123_456_789, linktype: 1, iface: 0, orig_len: 1514, data: vec![1; 99], queue: None });
    assert_eq!(recs[1], Rec { ts_ns: 1_700_000_001_000_000_001, linktype: 101, iface: 1, orig_len: 3, data: vec![2; 3], queue: None });
    let r = CaptureReader::new(&bytes[..]).unwrap();
    assert_eq!(r.interfaces().len(), 0, "interfaces are learnt while reading");

    let mut p = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
    p.write_packet(1_700_000_000_987_654_321, 60, &[3; 42]).unwrap();
    let (recs, e) = read_all(&p.into_inner());
    assert!(e.is_none());
    assert_eq!(recs[0], Rec { ts_ns: 1_700_000_000_987_654_321, linktype: 1, iface: 0, orig_len: 60, data: vec![3; 42], queue: None });
}

/// SHB, one IDB with `resol` (if_tsresol) and `offset_s` (if_tsoffset), then one EPB per time;
/// returns the file and the byte offset of each EPB.
fn pcapng_with_times(resol: u8, offset_s: Option<i64>, times: &[u64]) -> (Vec<u8>, Vec<u64>) {
    let opt = |code: u16, v: &[u8]| {
        let mut o = code.to_le_bytes().to_vec();
        o.extend_from_slice(&(v.len() as u16).to_le_bytes());
        o.extend_from_slice(v);
        o.resize(o.len().div_ceil(4) * 4, 0);
        o
    };
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&[0xff; 8]);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    idb.extend_from_slice(&opt(9, &[resol]));
    if let Some(o) = offset_s {
        idb.extend_from_slice(&opt(14, &o.to_le_bytes()));
    }
    idb.extend_from_slice(&opt(0, &[]));
    let mut f = block(false, 0x0A0D_0D0A, &shb);
    f.extend(block(false, 1, &idb));
    let mut offsets = Vec::new();
    for &ts in times {
        let mut b = 0u32.to_le_bytes().to_vec();
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(b"data");
        offsets.push(f.len() as u64);
        f.extend(block(false, 6, &b));
    }
    (f, offsets)
}

/// The largest whole second a u64 of nanoseconds holds: 18446744073 s (2554-07-21).
const MAX_S: u64 = u64::MAX / 1_000_000_000;

#[test]
fn pcapng_times_out_of_range_are_errors_at_the_record_not_wrapped() {
    // (if_tsresol, if_tsoffset, the last good time and its nanoseconds, the first time out of range)
    let cases: &[(u8, Option<i64>, u64, u64, u64)] = &[
        // Binary resolution 2^0 s: 2^40+3 s once wrapped to the year 2323, 2^63 to 1970.
        (0x80, None, MAX_S, MAX_S * 1_000_000_000, (1 << 40) + 3),
        (0x80, None, MAX_S, MAX_S * 1_000_000_000, 1 << 63),
        // 2^-10 s: 1024 units a second.
        (0x80 | 10, None, MAX_S << 10, MAX_S * 1_000_000_000, (MAX_S + 1) << 10),
        // Decimal resolution: seconds, and microseconds (the default), once saturated instead.
        (0, None, MAX_S, MAX_S * 1_000_000_000, MAX_S + 1),
        (6, None, 1_700_000_000_000_000, 1_700_000_000_000_000_000, u64::MAX),
        // if_tsoffset pushes a time past either end.
        (0, Some(-10), 10, 0, 9),
        (0, Some(10), MAX_S - 10, (MAX_S - 10 + 10) * 1_000_000_000, MAX_S - 9),
    ];
    for &(resol, offset, good, good_ns, bad) in cases {
        let (file, offsets) = pcapng_with_times(resol, offset, &[good, bad, good]);
        let (recs, e) = read_all(&file);
        let what = format!("if_tsresol {resol:#x}, offset {offset:?}, {good} then {bad}");
        assert_eq!(recs.len(), 1, "{what}");
        assert_eq!(recs[0].ts_ns, good_ns, "{what}");
        let e = e.unwrap_or_else(|| panic!("{what}: no error"));
        assert_eq!(e.offset, offsets[1], "{what}: {e}");
        assert!(e.to_string().contains(&format!("timestamp {bad} ")), "{what}: {e}");
    }
}

/// A file many release steps long: every record read through the mapping, after the pages behind
/// it were given back, is the record written (pcap and pcapng).
#[test]
fn a_mapped_file_reads_whole_while_its_read_pages_are_released() {
    let payload = |i: usize| -> Vec<u8> { (0..700 + i % 800).map(|b| (b * 31 + i * 7) as u8).collect() };
    let n = 3000;
    let mut p = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
    let mut ng = PcapngWriter::new(Vec::new(), "rxray tests").unwrap();
    let eth = ng.add_interface("eth0", LinkType::ETHERNET, 65535).unwrap();
    for i in 0..n {
        let d = payload(i);
        p.write_packet(1_700_000_000_000_000_000 + i as u64, d.len() as u32, &d).unwrap();
        ng.write_packet(eth, 1_700_000_000_000_000_000 + i as u64, d.len() as u32, &d, None).unwrap();
    }
    for bytes in [p.into_inner(), ng.into_inner()] {
        assert!(bytes.len() > 500 * 4096, "the file spans many release steps");
        let (recs, e) = read_all(&bytes);
        assert!(e.is_none(), "{e:?}");
        assert_eq!(recs.len(), n);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.data, payload(i), "record {i}");
            assert_eq!(r.ts_ns, 1_700_000_000_000_000_000 + i as u64);
        }
    }
}
