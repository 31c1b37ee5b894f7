//! Suricata 8's explicit rule hooks, `proto:hook` in a rule's protocol field
//! (`tls:client_hello_done`, `http1:request_complete`, `tcp:all`): the states its firewall-mode
//! design document lists per protocol. rxray accepts them and evaluates the rule where it
//! evaluates that protocol anyway (HTTP rules on the whole message, packet rules on packets).

/// Every app-layer protocol has these (firewall-design.rst, "general").
const GENERAL: &[&str] = &["request_started", "request_complete", "response_started", "response_complete"];

const HTTP1: &[&str] = &[
    "request_started",
    "request_line",
    "request_headers",
    "request_body",
    "request_trailer",
    "request_complete",
    "response_started",
    "response_line",
    "response_headers",
    "response_body",
    "response_trailer",
    "response_complete",
];

const TLS: &[&str] = &[
    "client_in_progress",
    "client_hello_done",
    "client_cert_done",
    "client_handshake_done",
    "client_finished",
    "server_in_progress",
    "server_hello",
    "server_cert_done",
    "server_hello_done",
    "server_handshake_done",
    "server_finished",
];

/// Packet-layer hooks.
const PACKET: &[&str] = &["all", "flow_start", "pre_flow", "pre_stream"];

fn hooks(proto: &str) -> &'static [&'static str] {
    match proto.to_ascii_lowercase().as_str() {
        "tcp" | "udp" | "icmp" | "ip" => PACKET,
        "http" | "http1" => HTTP1,
        "tls" => TLS,
        _ => GENERAL,
    }
}

/// `hook` is a state of `proto` (protocols without their own list have the general states).
pub fn valid(proto: &str, hook: &str) -> bool {
    hooks(proto).contains(&hook) || (!matches!(proto, "tcp" | "udp" | "icmp" | "ip") && GENERAL.contains(&hook))
}

/// The hooks of `proto`, for an error message.
pub fn known(proto: &str) -> String {
    format!("its hooks are {}", hooks(proto).join(", "))
}
