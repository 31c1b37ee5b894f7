//! Which hook and mode rxray attaches to a device: the driver (ETHTOOL_GDRVINFO) decides, with the
//! role (observer or firewall), where the counts stay exact at the least cost to the host.
//!
//! Native XDP runs before the skb and before GRO. On most physical NICs that is the cheapest place,
//! but on veth and virtio_net a native XDP program turns GRO-sized buffers off (veth takes GSO away
//! from its peer; virtio_net needs the guest offloads off), and every MTU-sized segment then climbs
//! the stack alone: a TCP bulk transfer loses most of its throughput. Observers there use a TC
//! ingress program, after GRO, counting each unit as its `gso_segs` wire segments. The firewall
//! keeps XDP, to drop before the skb exists, except on veth: there every frame is an skb already
//! (the peer built it), XDP must first copy it into a buffer of its own, and native XDP takes GRO
//! away from the traffic the firewall passes; its TC (tcx) copy drops for the same CPU as nftables'
//! netdev hook and passes at about 4× native XDP's TCP throughput (scripts/bench-drop, README).
use std::ffi::CString;

/// How to attach, as asked for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// XDP in the driver.
    Native,
    /// XDP in the generic (skb) path.
    Generic,
    /// A TC ingress classifier (tcx on Linux >= 6.6, else clsact; the firewall needs tcx).
    Tc,
    /// Per device and role, see `observer_hook` and `firewall_hook`.
    Auto,
}

/// The program an `Ingress` loads: the XDP build or the TC build of the same code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Xdp,
    Tc,
}

/// Drivers whose native XDP runs before GRO without taking GRO-sized buffers from the stack (or
/// whose XDP runs on plain pages anyway): observers use native XDP there. Any other driver gets TC.
const NATIVE_XDP_DRIVERS: &[&str] = &[
    "ixgbe", "ixgbevf", "i40e", "ice", "igb", "igc", "idpf", "mlx4_en", "mlx5_core", "bnxt_en", "nfp", "qede", "ena",
    "sfc", "gve", "thunder-nicvf", "mvneta", "mvpp2", "stmmac", "fec", "dpaa2-eth", "fsl_enetc", "hv_netvsc",
    "netfront", "vrf_xdp", "tsnep", "lan966x-switch", "octeontx2-nicpf", "octeontx2-nicvf", "cpsw", "ti-cpsw",
    "atlantic", "mana", "bnx2x",
];

/// Drivers where native XDP is known to cost GRO or the receive offloads.
const GRO_COSTING_DRIVERS: &[&str] = &["veth", "virtio_net"];

/// The driver behind `iface`, as `ethtool -i` reports it (ETHTOOL_GDRVINFO), or from
/// /sys/class/net/IF/device/driver when the ioctl says nothing.
pub fn driver(iface: &str) -> Option<String> {
    driver_ethtool(iface).or_else(|| {
        let link = std::fs::read_link(format!("/sys/class/net/{iface}/device/driver")).ok()?;
        Some(link.file_name()?.to_string_lossy().into_owned())
    })
}

/// struct ethtool_drvinfo (linux/ethtool.h).
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// struct ifreq with the ifr_data member of its union (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfreqData {
    name: [u8; 16],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

const ETHTOOL_GDRVINFO: u32 = 0x3;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

fn driver_ethtool(iface: &str) -> Option<String> {
    let name = CString::new(iface).ok()?;
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > 16 {
        return None;
    }
    let mut info = EthtoolDrvinfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        fw_version: [0; 32],
        bus_info: [0; 32],
        erom_version: [0; 32],
        reserved2: [0; 12],
        n_priv_flags: 0,
        n_stats: 0,
        testinfo_len: 0,
        eedump_len: 0,
        regdump_len: 0,
    };
    let mut req = IfreqData { name: [0; 16], data: &mut info as *mut EthtoolDrvinfo as *mut libc::c_void, _pad: [0; 16] };
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: a plain datagram socket, closed below; no memory is passed.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: req is a valid ifreq whose data points at a valid ethtool_drvinfo; both outlive the call.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut req as *mut IfreqData) };
    // SAFETY: fd is ours and open.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return None;
    }
    let end = info.driver.iter().position(|&b| b == 0).unwrap_or(info.driver.len());
    let s = String::from_utf8_lossy(&info.driver[..end]).into_owned();
    (!s.is_empty()).then_some(s)
}

/// Where an observer's `Auto` attaches on a device with this driver: native XDP on the NICs known
/// to keep GRO with it, TC ingress on every other device (veth, virtio_net, bridges, tunnels, and
/// drivers not known to have native XDP).
pub fn observer_hook_for_driver(driver: Option<&str>) -> Hook {
    match driver {
        Some(d) if GRO_COSTING_DRIVERS.contains(&d) => Hook::Tc,
        Some(d) if NATIVE_XDP_DRIVERS.contains(&d) => Hook::Xdp,
        _ => Hook::Tc,
    }
}

/// Drivers whose frames always arrive as skbs built by a peer: XDP there only adds a copy.
const SKB_DRIVERS: &[&str] = &["veth"];

/// Where the firewall's `Auto` attaches on a device with this driver: TC (tcx) on veth, XDP (native,
/// else generic) everywhere else.
pub fn firewall_hook_for_driver(driver: Option<&str>) -> Hook {
    match driver {
        Some(d) if SKB_DRIVERS.contains(&d) => Hook::Tc,
        _ => Hook::Xdp,
    }
}

/// The hook the firewall attaches to `iface` with `mode`.
pub fn firewall_hook(iface: &str, mode: AttachMode) -> Hook {
    match mode {
        AttachMode::Native | AttachMode::Generic => Hook::Xdp,
        AttachMode::Tc => Hook::Tc,
        AttachMode::Auto => firewall_hook_for_driver(driver(iface).as_deref()),
    }
}

/// The hook an observer attaches to `iface` with `mode`.
pub fn observer_hook(iface: &str, mode: AttachMode) -> Hook {
    match mode {
        AttachMode::Native | AttachMode::Generic => Hook::Xdp,
        AttachMode::Tc => Hook::Tc,
        AttachMode::Auto => observer_hook_for_driver(driver(iface).as_deref()),
    }
}

/// One hook for a set of interfaces an observer attaches to at once (one program, one ring): TC
/// as soon as one of them wants it (TC is exact and GRO-friendly on every device).
pub fn observer_hook_all(ifaces: &[String], mode: AttachMode) -> Hook {
    if ifaces.iter().any(|i| observer_hook(i, mode) == Hook::Tc) {
        Hook::Tc
    } else {
        Hook::Xdp
    }
}

/// The TC ingress (tcx) programs on `iface`, as (id, name) in run order; none when the kernel has
/// no tcx (before Linux 6.6) or the interface is gone.
pub fn tc_ingress_programs(iface: &str) -> Vec<(u32, String)> {
    use aya::programs::{tc::TcAttachType, SchedClassifier};
    let Ok((_, progs)) = SchedClassifier::query_tcx(iface, TcAttachType::Ingress) else { return Vec::new() };
    progs.iter().map(|p| (p.id(), p.name_as_str().unwrap_or("").to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drvinfo_and_ifreq_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<EthtoolDrvinfo>(), 196);
        assert_eq!(std::mem::size_of::<IfreqData>(), std::mem::size_of::<libc::ifreq>());
    }

    #[test]
    fn observers_take_tc_where_native_xdp_costs_gro() {
        assert_eq!(observer_hook_for_driver(Some("veth")), Hook::Tc);
        assert_eq!(observer_hook_for_driver(Some("virtio_net")), Hook::Tc);
        assert_eq!(observer_hook_for_driver(Some("bridge")), Hook::Tc);
        assert_eq!(observer_hook_for_driver(None), Hook::Tc);
        assert_eq!(firewall_hook_for_driver(Some("veth")), Hook::Tc);
        assert_eq!(firewall_hook_for_driver(Some("virtio_net")), Hook::Xdp);
        assert_eq!(firewall_hook_for_driver(Some("ixgbe")), Hook::Xdp);
        assert_eq!(firewall_hook_for_driver(None), Hook::Xdp);
        assert_eq!(observer_hook_for_driver(Some("mlx5_core")), Hook::Xdp);
        assert_eq!(observer_hook_for_driver(Some("ixgbe")), Hook::Xdp);
        for d in GRO_COSTING_DRIVERS {
            assert!(!NATIVE_XDP_DRIVERS.contains(d), "{d} is listed as both");
        }
    }

    #[test]
    fn an_interface_that_does_not_exist_has_no_driver() {
        assert_eq!(driver("no-such-iface0"), None);
    }
}
