//! /proc/net/tcp and /proc/net/tcp6 (this process's network namespace): the TCP sockets now.
//! `conns` seeds its table from them, since the kernel's tracepoints only report state changes.
pub use rxray_engine::os::TcpSocket as ProcTcp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A line that does not parse: which line and why.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}: {}", self.file, self.line, self.what)
    }
}

impl std::error::Error for ParseError {}

/// /proc prints each 32-bit word of an address as hex of its host-order value.
fn addr(hex: &str) -> Option<IpAddr> {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(|w| w.to_ne_bytes());
    match hex.len() {
        8 => word(hex).map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(hex.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = Ipv6Addr::from(b);
            Some(v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)))
        }
        _ => None,
    }
}

fn endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    Some((addr(a)?, u16::from_str_radix(p, 16).ok()?))
}

/// Parses the text of /proc/net/tcp or /proc/net/tcp6 (`file` names it in errors). The header line
/// is skipped; a malformed line is an error naming its number (1-based, header included).
pub fn parse(file: &str, text: &str) -> Result<Vec<ProcTcp>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let err = |what: &str| ParseError { file: file.to_string(), line: i + 1, what: what.to_string() };
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            return Err(err(&format!("{} fields, expected at least 10", f.len())));
        }
        let (local, local_port) = endpoint(f[1]).ok_or_else(|| err(&format!("bad local address {:?}", f[1])))?;
        let (remote, remote_port) = endpoint(f[2]).ok_or_else(|| err(&format!("bad remote address {:?}", f[2])))?;
        let state = u8::from_str_radix(f[3], 16).map_err(|_| err(&format!("bad state {:?}", f[3])))?;
        let uid = f[7].parse().map_err(|_| err(&format!("bad uid {:?}", f[7])))?;
        let inode = f[9].parse().map_err(|_| err(&format!("bad inode {:?}", f[9])))?;
        out.push(ProcTcp { local, local_port, remote, remote_port, state, uid, inode });
    }
    Ok(out)
}

/// Whether a socket in this state is a connection `conns` lists: not a listener, not closed, not in
/// TIME_WAIT (its socket is gone; the kernel reported its CLOSE).
pub fn is_connection(state: u8) -> bool {
    !matches!(state, 6 | 7 | 10 | 12 | 13)
}

/// The connections of this network namespace now, from /proc/net/tcp and /proc/net/tcp6.
pub fn read() -> Result<Vec<ProcTcp>, String> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            // No IPv6 in this kernel: nothing to seed from it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("reading {file}: {e}")),
        };
        out.extend(parse(file, &text).map_err(|e| e.to_string())?.into_iter().filter(|t| is_connection(t.state)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0200A8C0:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0200A8C0:1451 0100A8C0:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 12346 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn v4_lines_read_as_the_kernel_wrote_them() {
        let v = parse("/proc/net/tcp", TCP).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].local, "192.168.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(v[1].local_port, 5201);
        assert_eq!(v[1].remote, "192.168.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(v[1].remote_port, 40000);
        assert_eq!((v[1].state, v[1].uid, v[1].inode), (1, 1000, 12346));
        assert!(!is_connection(v[0].state) && is_connection(v[1].state));
    }

    #[test]
    fn v6_and_v4_mapped_addresses() {
        let t = "header\n 0: 00000220000000000000000002000000:1451 0000000000000000FFFF00000100A8C0:9C40 01 0:0 0:0 0 0 0 7 1\n";
        let v = parse("/proc/net/tcp6", t).unwrap();
        assert_eq!(v[0].local, "2002::2".parse::<IpAddr>().unwrap());
        assert_eq!(v[0].remote, "192.168.0.1".parse::<IpAddr>().unwrap(), "v4-mapped reads as IPv4");
    }

    #[test]
    fn a_bad_line_names_the_file_and_line() {
        let e = parse("/proc/net/tcp", "h\n 0: 0200A8C0:1451 zz:0000 01 0 0 0 0 0 0 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("/proc/net/tcp line 2: bad remote address"), "{e}");
        let e = parse("/proc/net/tcp", "h\n 0: short\n").unwrap_err();
        assert!(e.what.contains("fields"), "{e}");
    }
}
