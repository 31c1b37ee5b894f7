//! Default priorities of Suricata's common classtypes (its `classification.config`), so a rule
//! without an explicit `priority` gets the severity Suricata would give it.

/// Suricata's default priority for `classtype`, or 3 for classtypes it does not list.
pub fn default_priority(classtype: &str) -> u8 {
    match classtype {
        "attempted-user" | "unsuccessful-user" | "successful-user" | "attempted-admin" | "successful-admin"
        | "shellcode-detect" | "trojan-activity" | "web-application-attack" | "inappropriate-content"
        | "policy-violation" | "targeted-activity" | "exploit-kit" | "domain-c2" | "credential-theft"
        | "command-and-control" => 1,
        "bad-unknown" | "attempted-recon" | "successful-recon-limited" | "successful-recon-largescale"
        | "attempted-dos" | "successful-dos" | "rpc-portmap-decode" | "suspicious-filename-detect"
        | "suspicious-login" | "system-call-detect" | "unusual-client-port-connection" | "denial-of-service"
        | "non-standard-protocol" | "web-application-activity" | "misc-attack" | "default-login-attempt"
        | "external-ip-check" | "pup-activity" | "social-engineering" | "coin-mining" => 2,
        "tcp-connection" => 4,
        // not-suspicious, unknown, string-detect, network-scan, protocol-command-decode,
        // misc-activity, icmp-event, and anything else.
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_and_unknown_classtypes() {
        assert_eq!(super::default_priority("web-application-attack"), 1);
        assert_eq!(super::default_priority("attempted-recon"), 2);
        assert_eq!(super::default_priority("tcp-connection"), 4);
        assert_eq!(super::default_priority("misc-activity"), 3);
        assert_eq!(super::default_priority("made-up"), 3);
    }
}
