//! IP protocol numbers by name: one table, in the spellings rxray's outputs document (each output
//! keeps its own, as the tool it follows writes it).

/// Whose spelling a name follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelling {
    /// tcpdump's text: `ICMP`, `TCP`, `UDP`, `ICMPv6` (`watch`, `drops`).
    Tcpdump,
    /// tcpdump's filter words: `icmp`, `tcp`, `udp`, `icmp6` (`flows`, `latency`).
    Filter,
    /// rxray's firewall rules: `icmp`, `tcp`, `udp`, `icmpv6`.
    Rules,
    /// Suricata's EVE (IANA keywords): `ICMP`, `TCP`, `UDP`, `IPv6-ICMP`, `SCTP`.
    Eve,
}

/// The protocol's name in that spelling; `None` for a protocol the spelling does not name.
pub fn name(proto: u8, s: Spelling) -> Option<&'static str> {
    use Spelling::*;
    Some(match (proto, s) {
        (1, Tcpdump | Eve) => "ICMP",
        (1, Filter | Rules) => "icmp",
        (6, Tcpdump | Eve) => "TCP",
        (6, Filter | Rules) => "tcp",
        (17, Tcpdump | Eve) => "UDP",
        (17, Filter | Rules) => "udp",
        (58, Tcpdump) => "ICMPv6",
        (58, Filter) => "icmp6",
        (58, Rules) => "icmpv6",
        (58, Eve) => "IPv6-ICMP",
        (132, Eve) => "SCTP",
        _ => return None,
    })
}

/// The name in that spelling, or the number.
pub fn name_or_number(proto: u8, s: Spelling) -> String {
    name(proto, s).map_or_else(|| proto.to_string(), str::to_string)
}

/// The name in that spelling, or `proto N` (the text tables' word for an unnamed protocol).
pub fn name_or_proto_n(proto: u8, s: Spelling) -> String {
    name(proto, s).map_or_else(|| format!("proto {proto}"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_output_keeps_its_spelling_of_icmpv6() {
        let v6: Vec<_> = [Spelling::Tcpdump, Spelling::Filter, Spelling::Rules, Spelling::Eve].iter().map(|s| name(58, *s)).collect();
        assert_eq!(v6, [Some("ICMPv6"), Some("icmp6"), Some("icmpv6"), Some("IPv6-ICMP")]);
        assert_eq!(name_or_number(132, Spelling::Filter), "132");
        assert_eq!(name_or_number(132, Spelling::Eve), "SCTP");
        assert_eq!(name(47, Spelling::Tcpdump), None);
        assert_eq!(name_or_proto_n(47, Spelling::Tcpdump), "proto 47");
        assert_eq!(name_or_proto_n(58, Spelling::Tcpdump), "ICMPv6");
    }
}
