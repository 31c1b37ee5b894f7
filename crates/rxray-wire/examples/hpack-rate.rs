//! HPACK decode rate on one core: header blocks as a browser-like client and a server send them
//! (20,000 request and response blocks over 2,000 paths and 50 user agents, one dynamic table per
//! direction as on one connection), decoded by rxray's `h2::HeaderDecoder` (loona-hpack).
//! Writes the blocks (u32 direction, u32 length, bytes) to the file given, for a peer to decode
//! the same bytes (scripts/bench-h2 runs Python's hpack on it).
//!   cargo run --release -p rxray-wire --example hpack-rate -- BLOCKS_FILE [PASSES]
use rxray_wire::h2::HeaderDecoder;
use std::io::Write;
use std::time::Instant;

/// The block with every string Huffman-coded, as nghttp2 and browsers send them (loona-hpack's
/// encoder writes them plain).
fn huffman(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    rxray_wire::h2::rewrite_strings(block, &mut out, |_, s, scratch| {
        rxray_wire::hpack_huffman::encode(s, scratch);
        Ok((true, &[]))
    })
    .expect("a block loona-hpack wrote");
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: hpack-rate BLOCKS_FILE [PASSES]");
        std::process::exit(2);
    };
    let passes: u32 = args.next().and_then(|p| p.parse().ok()).unwrap_or(20);
    let (mut req, mut resp) = (loona_hpack::Encoder::new(), loona_hpack::Encoder::new());
    let mut blocks: Vec<(u32, Vec<u8>)> = Vec::new();
    for i in 0..10_000u32 {
        let path = format!("/api/v1/items/{}/details?page={}", i % 2000, i % 7);
        let ua = format!("Mozilla/5.0 (X11; Linux x86_64) lab-client/{}", i % 50);
        let cookie = format!("session={:016x}; theme=dark", u64::from(i % 300) * 0x9e37_79b9);
        let h: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", b"api.lab.test"),
            (b":path", path.as_bytes()),
            (b"user-agent", ua.as_bytes()),
            (b"accept", b"application/json"),
            (b"accept-encoding", b"gzip, deflate, br"),
            (b"cookie", cookie.as_bytes()),
        ];
        blocks.push((0, huffman(&req.encode(h))));
        let len = format!("{}", 100 + i % 900);
        let etag = format!("\"{:08x}\"", i.wrapping_mul(2_654_435_761));
        let r: Vec<(&[u8], &[u8])> = vec![
            (b":status", if i % 10 == 0 { b"404" } else { b"200" }),
            (b"content-type", b"application/json"),
            (b"content-length", len.as_bytes()),
            (b"etag", etag.as_bytes()),
            (b"cache-control", b"private, max-age=0"),
            (b"date", b"Sun, 06 Dec 2026 07:40:00 GMT"),
            (b"server", b"lab"),
        ];
        blocks.push((1, huffman(&resp.encode(r))));
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("blocks file"));
    for (d, b) in &blocks {
        f.write_all(&d.to_le_bytes()).and_then(|_| f.write_all(&(b.len() as u32).to_le_bytes())).and_then(|_| f.write_all(b)).expect("write");
    }
    f.flush().expect("write");
    let bytes: usize = blocks.iter().map(|b| b.1.len()).sum();
    let (mut fields, mut check) = (0u64, 0u64);
    let t0 = Instant::now();
    for _ in 0..passes {
        let mut dec = [HeaderDecoder::default(), HeaderDecoder::default()];
        for (d, b) in &blocks {
            dec[*d as usize]
                .decode(b, |n, v| {
                    fields += 1;
                    check += (n.len() + v.len()) as u64;
                })
                .expect("decode");
        }
    }
    let s = t0.elapsed().as_secs_f64();
    let n = blocks.len() as f64 * f64::from(passes);
    // The same blocks through loona-hpack alone (its own Huffman decoder), one pass: why rxray
    // decodes the Huffman strings itself.
    let t1 = Instant::now();
    let mut dec = [loona_hpack::Decoder::new(), loona_hpack::Decoder::new()];
    for (d, b) in &blocks {
        dec[*d as usize].decode_with_cb(b, |_, _| {}).expect("decode");
    }
    let s1 = t1.elapsed().as_secs_f64();
    println!("loona-hpack alone: {} blocks in {s1:.3} s: {:.0} blocks/s", blocks.len(), blocks.len() as f64 / s1);
    println!(
        "rxray (loona-hpack): {} blocks ({} bytes) x {passes} passes in {s:.3} s: {:.0} blocks/s, {:.0} fields/s, {:.1} MB/s of HPACK (checksum {check})",
        blocks.len(),
        bytes,
        n / s,
        fields as f64 / s,
        (bytes as f64 * f64::from(passes)) / s / 1e6
    );
}
