//! The interfaces of this network namespace over rtnetlink: a link dump (RTM_GETLINK) gives what
//! `ip -d link show` shows (name, index, state, address, flags, the XDP program and its mode), and
//! RTM_SETLINK with an XDP fd of -1 detaches an XDP program, as `ip link set dev X xdp off` does.
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{
    LinkAttribute, LinkFlags, LinkLayerType, LinkMessage, LinkXdp, State, XdpAttached,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;

/// XDP_FLAGS_SKB_MODE (linux/if_link.h): the generic (skb) hook.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;

/// Where an XDP program runs, as IFLA_XDP_ATTACHED says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    Native,
    Generic,
    Offload,
}

impl XdpMode {
    /// The word `rxray ifaces` prints: "native", "generic" or "offload".
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
            XdpMode::Offload => "offload",
        }
    }
}

/// The one XDP program on a link (a link with several, one per mode, lists none, as `ip -j` does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpProg {
    pub id: u32,
    pub mode: XdpMode,
}

/// A network interface as the kernel describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub ifindex: u32,
    /// RFC 2863 operational state in `ip`'s words: "UP", "DOWN", "UNKNOWN", ...
    pub operstate: String,
    /// The link-layer address as `ip` prints it ("" when the link has none).
    pub mac: String,
    /// IFF_UP is set.
    pub up: bool,
    /// IFF_LOOPBACK is set.
    pub loopback: bool,
    pub xdp: Option<XdpProg>,
}

/// Every interface of this network namespace, by index.
pub fn links() -> io::Result<Vec<Link>> {
    let mut nl = Netlink::open()?;
    let mut v = Vec::new();
    nl.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP, |m| {
        if let RouteNetlinkMessage::NewLink(l) = m {
            v.push(link_of(l));
        }
    })?;
    v.sort_by_key(|l| l.ifindex);
    Ok(v)
}

/// Removes the XDP program from a link (`ip link set dev X xdp off`, or `xdpgeneric off` when
/// `generic`): a program attached through a bpf_link cannot be removed this way (its owner's
/// exit removes it).
pub fn detach_xdp(ifindex: u32, generic: bool) -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let mut xdp = vec![LinkXdp::Fd(-1)];
    if generic {
        xdp.push(LinkXdp::Flags(XDP_FLAGS_SKB_MODE));
    }
    msg.attributes.push(LinkAttribute::Xdp(xdp));
    Netlink::open()?.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK, |_| {})
}

/// The name of a loaded BPF program, by id (`None` when it is gone).
pub fn program_name(id: u32) -> Option<String> {
    aya::programs::loaded_programs()
        .flatten()
        .find(|p| p.id() == id)
        .map(|p| p.name_as_str().unwrap_or("").to_string())
}

fn link_of(l: LinkMessage) -> Link {
    let mut link = Link {
        name: String::new(),
        ifindex: l.header.index,
        operstate: "UNKNOWN".into(),
        mac: String::new(),
        up: l.header.flags.contains(LinkFlags::Up),
        loopback: l.header.flags.contains(LinkFlags::Loopback),
        xdp: None,
    };
    for a in l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::OperState(s) => link.operstate = operstate_name(s),
            LinkAttribute::Address(a) => link.mac = address_text(l.header.link_layer_type, &a),
            LinkAttribute::Xdp(x) => link.xdp = xdp_of(&x),
            _ => {}
        }
    }
    link
}

fn xdp_of(attrs: &[LinkXdp]) -> Option<XdpProg> {
    let mode = attrs.iter().find_map(|a| match a {
        LinkXdp::Attached(XdpAttached::Driver) => Some(XdpMode::Native),
        LinkXdp::Attached(XdpAttached::SocketBuffer) => Some(XdpMode::Generic),
        LinkXdp::Attached(XdpAttached::Hardware) => Some(XdpMode::Offload),
        _ => None,
    })?;
    let id = attrs.iter().find_map(|a| if let LinkXdp::ProgId(id) = a { Some(*id) } else { None })?;
    Some(XdpProg { id, mode })
}

/// iproute2's names for IF_OPER_* (ip/ipaddress.c, oper_states).
fn operstate_name(s: State) -> String {
    match s {
        State::Unknown => "UNKNOWN",
        State::NotPresent => "NOTPRESENT",
        State::Down => "DOWN",
        State::LowerLayerDown => "LOWERLAYERDOWN",
        State::Testing => "TESTING",
        State::Dormant => "DORMANT",
        State::Up => "UP",
        State::Other(n) => return format!("state {n:#x}"),
        _ => "UNKNOWN",
    }
    .to_string()
}

/// The address as iproute2's ll_addr_n2a prints it: IPv4 or IPv6 on IP tunnels, hex pairs otherwise.
fn address_text(ty: LinkLayerType, a: &[u8]) -> String {
    use LinkLayerType as T;
    match (ty, a.len()) {
        (T::Tunnel | T::Sit | T::Ipgre, 4) => std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
        (T::Tunnel6 | T::Ip6gre, 16) => {
            let b: [u8; 16] = a.try_into().unwrap_or([0; 16]);
            std::net::Ipv6Addr::from(b).to_string()
        }
        _ => a.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
    }
}

/// A route netlink socket, one request at a time.
struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// Sends one request and hands each answer to `each` until the dump's end or the ack; a
    /// netlink error becomes the io::Error of its errno.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, mut each: impl FnMut(RouteNetlinkMessage)) -> io::Result<()> {
        self.seq += 1;
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0; req.header.length as usize];
        req.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let m: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("a netlink answer at byte {off}: {e}")))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::Done(_) => return Ok(()),
                        NetlinkPayload::Error(e) => match e.code {
                            Some(c) => return Err(io::Error::from_raw_os_error(-c.get())),
                            None => return Ok(()),
                        },
                        NetlinkPayload::InnerMessage(im) => each(im),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_up_with_iproute2s_words() {
        // Every network namespace has lo; tests run in one where it is up.
        let all = links().expect("RTM_GETLINK dump");
        let lo = all.iter().find(|l| l.name == "lo").expect("lo is listed");
        assert_eq!(lo.ifindex, 1);
        assert!(lo.up && lo.loopback);
        assert_eq!(lo.operstate, "UNKNOWN");
        assert_eq!(lo.mac, "00:00:00:00:00:00");
    }

    #[test]
    fn addresses_print_as_iproute2_does() {
        assert_eq!(address_text(LinkLayerType::Ether, &[0x02, 0, 0xab, 1, 2, 0xff]), "02:00:ab:01:02:ff");
        assert_eq!(address_text(LinkLayerType::Ipgre, &[198, 18, 0, 1]), "198.18.0.1");
        assert_eq!(address_text(LinkLayerType::Ether, &[]), "");
    }

    #[test]
    fn xdp_needs_a_single_mode_and_an_id() {
        let one = [LinkXdp::Attached(XdpAttached::SocketBuffer), LinkXdp::ProgId(7)];
        assert_eq!(xdp_of(&one), Some(XdpProg { id: 7, mode: XdpMode::Generic }));
        assert_eq!(xdp_of(&[LinkXdp::Attached(XdpAttached::Multiple), LinkXdp::ProgId(7)]), None);
        assert_eq!(xdp_of(&[LinkXdp::Attached(XdpAttached::None)]), None);
    }
}
