//! One packet as one line of text, in the spirit of `tcpdump -nn -v`.
use rxray_wire::ipproto::{self, Spelling};
use rxray_engine::event::{mac_string, Packet};
use std::fmt::Write;

/// `HH:MM:SS.nnnnnnnnn` (UTC) of a Unix-epoch nanosecond stamp.
pub fn clock_time(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}.{:09}", day / 3600, day % 3600 / 60, day % 60, ts_ns % 1_000_000_000)
}

pub fn format(p: &Packet) -> String {
    let mut s = String::with_capacity(160);
    let _ = write!(s, "{} {} q{}", clock_time(p.ts_ns), p.iface, p.rx_queue);
    if let Some(e) = &p.eth {
        let _ = write!(s, " {} > {}", mac_string(&e.src), mac_string(&e.dst));
        for v in &p.vlans {
            let kind = if v.tpid == 0x88a8 { "802.1ad" } else { "vlan" };
            let _ = write!(s, ", {kind} {} p {}{}", v.vid, v.pcp, if v.dei { " DEI" } else { "" });
        }
        let _ = write!(s, ", ethertype 0x{:04x}", e.ethertype);
    }
    let _ = write!(s, ", length {}", p.len);
    if let Some(a) = &p.arp {
        let op = match a.op {
            1 => "Request who-has".to_string(),
            2 => "Reply".to_string(),
            o => format!("op {o}"),
        };
        let _ = write!(s, ": ARP, {op} {} tell {} ({} > {})", a.tpa, a.spa, mac_string(&a.sha), mac_string(&a.tha));
    }
    if let Some(ip) = &p.ip {
        let fam = if ip.version == 4 { "IP" } else { "IP6" };
        let _ = write!(s, ": {fam} (tos 0x{:x}, {} {}", ip.dscp << 2 | ip.ecn, if ip.version == 4 { "ttl" } else { "hlim" }, ip.ttl);
        if ip.version == 4 {
            let _ = write!(s, ", id {}", ip.id);
        } else if ip.flow_label != 0 {
            let _ = write!(s, ", flowlabel 0x{:05x}", ip.flow_label);
        }
        if ip.fragment || ip.df {
            let mut fl = Vec::new();
            if ip.df {
                fl.push("DF");
            }
            if ip.mf {
                fl.push("+");
            }
            let _ = write!(s, ", offset {}, flags [{}]", ip.frag_offset, fl.join(","));
            if ip.version == 6 && ip.fragment {
                let _ = write!(s, ", frag id {}", ip.id);
            }
        }
        if !ip.ext_headers.is_empty() {
            let _ = write!(s, ", ext {:?}", ip.ext_headers);
        }
        if ip.options {
            let _ = write!(s, ", options ({} bytes)", ip.hdr_len.saturating_sub(20));
        }
        let _ = write!(s, ", proto {} ({}), length {})", ipproto::name(ip.proto, Spelling::Tcpdump).unwrap_or("unknown"), ip.proto, ip.total_len);
        let (sp, dp) = match (&p.tcp, &p.udp) {
            (Some(t), _) => (Some(t.sport), Some(t.dport)),
            (_, Some(u)) => (Some(u.sport), Some(u.dport)),
            _ => (None, None),
        };
        let sep = ".";
        match (sp, dp) {
            (Some(a), Some(b)) => {
                let _ = write!(s, " {}{sep}{a} > {}{sep}{b}:", ip.src, ip.dst);
            }
            _ => {
                let _ = write!(s, " {} > {}:", ip.src, ip.dst);
            }
        }
    }
    if let Some(t) = &p.tcp {
        let _ = write!(s, " Flags [{}], seq {}", t.flags_str(), t.seq);
        if t.flags & 0x10 != 0 {
            let _ = write!(s, ", ack {}", t.ack);
        }
        let _ = write!(s, ", win {}", t.window);
        let mut opts = Vec::new();
        if let Some(m) = t.mss {
            opts.push(format!("mss {m}"));
        }
        if t.sack_ok {
            opts.push("sackOK".into());
        }
        if t.sack {
            opts.push("sack".into());
        }
        if let Some((v, e)) = t.ts {
            opts.push(format!("TS val {v} ecr {e}"));
        }
        if let Some(w) = t.wscale {
            opts.push(format!("wscale {w}"));
        }
        if !opts.is_empty() {
            let _ = write!(s, ", options [{}]", opts.join(","));
        }
    } else if let Some(u) = &p.udp {
        let _ = write!(s, " UDP, length {}", u.len.saturating_sub(8));
    } else if let Some(i) = &p.icmp {
        let _ = write!(s, " ICMP{} type {} code {}", if i.v6 { "6" } else { "" }, i.ty, i.code);
        if let Some((id, seq)) = i.echo {
            let _ = write!(s, ", id {id}, seq {seq}");
        }
    }
    if let Some(m) = p.malformed {
        let _ = write!(s, " [malformed: {m}]");
    }
    if !p.payload.is_empty() {
        let _ = write!(s, " payload {}B", p.payload.len());
        if p.tcp.is_some() {
            if let Some(rl) = rxray_wire::http::request_line(&p.payload) {
                let _ = write!(s, " HTTP \"{}\"", rl.escape_debug());
            }
        }
    }
    if let Some(v) = p.firewall {
        let _ = write!(s, " [firewall: {v}]");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_time_is_utc_time_of_day() {
        assert_eq!(clock_time(3_723_000_000_005), "01:02:03.000000005");
    }
}
