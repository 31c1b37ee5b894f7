//! rxray: see, and act on, every packet that arrives at a Linux host.
//! The binary is thin: it parses arguments and wires sources, engine and outputs together.
mod agent;
mod agent_conns;
mod agent_http;
mod agent_metrics;
mod agent_rollups;
mod alerts;
mod analyze;
mod api_limits;
mod args;
mod capture;
mod conns;
mod context;
mod drops;
mod firewall;
mod flows;
mod history;
mod http;
mod ifaces;
mod join;
mod lab;
mod latency;
mod line;
mod records;
mod session;
mod sinks;
mod top;
mod watch;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "rxray", version, about = "See, and act on, every packet that arrives at a Linux host (eBPF/XDP)")]
struct Cli {
    /// Run in this network namespace (as `ip netns exec NAME` does), keeping the host's BPF filesystem
    /// so the firewall's pinned state outlives the command.
    #[arg(long, global = true)]
    netns: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--xdp-mode`: where a command attaches. `auto` picks per device and command (observers: TC
/// ingress on veth, virtio_net and other devices where native XDP costs GRO, native XDP on NICs known
/// to keep it; the firewall: native XDP, else generic).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum XdpModeArg {
    /// XDP in the driver.
    Native,
    /// XDP in the generic (skb) path.
    Generic,
    /// A TC ingress program after GRO (tcx).
    Tc,
    /// Per device and command (see `rxray ifaces` for what is attached).
    Auto,
}

impl From<XdpModeArg> for rxray_kernel::AttachMode {
    fn from(m: XdpModeArg) -> Self {
        match m {
            XdpModeArg::Native => rxray_kernel::AttachMode::Native,
            XdpModeArg::Generic => rxray_kernel::AttachMode::Generic,
            XdpModeArg::Tc => rxray_kernel::AttachMode::Tc,
            XdpModeArg::Auto => rxray_kernel::AttachMode::Auto,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Read pcap/pcapng captures and print totals, protocols, talkers, ports, flows and conversations.
    Analyze(analyze::AnalyzeArgs),
    /// Print every incoming packet as it arrives (like `tcpdump -nn -v`), or as JSON Lines.
    Watch(watch::WatchArgs),
    /// Write whole incoming packets to pcapng (like `tcpdump -w`), or to stdout with `-w -`.
    Capture(capture::CaptureArgs),
    /// Print every packet the kernel drops here, with its reason and the dropping function; counts at exit.
    Drops(drops::DropsArgs),
    /// List TCP connections (states, handshake, bytes, retransmits, resets, RTT) and accept-queue overflows.
    Conns(conns::ConnsArgs),
    /// Delivery latency per flow and per process: XDP arrival → socket queue → application read.
    Latency(latency::LatencyArgs),
    /// Show the top flows, counted exactly in the kernel, refreshed live (or JSON Lines snapshots).
    Flows(flows::FlowsArgs),
    /// A live dashboard on the terminal: rates per interface, loss, top sources, flows and ports,
    /// protocols, drops, alerts, HTTP endpoints; keys to switch panes, sort, filter, pause (`?`).
    Top(top::TopArgs),
    /// API calls per endpoint (method and path template), both directions of the TCP streams on the
    /// HTTP ports: requests, statuses, latency, bytes, clients; live table or JSON Lines snapshots.
    Http(http::HttpArgs),
    /// The XDP firewall: rules (allow, deny, rate limits), blocklists, blocks with a TTL, counters,
    /// what-if replay of a capture; its state is pinned and keeps working with no rxray running.
    #[command(subcommand)]
    Firewall(firewall::FirewallCmd),
    /// Detectors and payload signatures over live traffic: alerts as Suricata EVE JSON Lines, and with
    /// --enforce the policy's blocks and rate limits carried out by the firewall.
    Alerts(alerts::AlertsArgs),
    /// The agent: one long-lived owner of this namespace's interfaces (counts, detection, firewall
    /// rules, Prometheus metrics at --metrics, `rxray status`); SIGHUP reloads, SIGTERM stops.
    Agent(agent::AgentArgs),
    /// What the running agent of this network namespace attaches, counts, loses and serves.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The history store's records (flows, connections, alerts, mitigations, per-minute counts),
    /// filtered, in time order, with how complete the window is.
    History(history::HistoryArgs),
    /// Everything known about an address around an incident, as one timeline (from the store, or
    /// offline from a directory of captures).
    Investigate(history::InvestigateArgs),
    /// Bring up a lab (two namespaces, a veth pair, traffic) and show rxray on it; removed on exit.
    Demo(lab::DemoArgs),
    /// The lab's network namespaces, for trying rxray by hand.
    #[command(subcommand)]
    Lab(lab::LabCmd),
    /// List interfaces, the XDP program on each, and which rxray command owns it.
    Ifaces {
        /// JSON Lines output.
        #[arg(long)]
        json: bool,
    },
    /// Remove what a killed rxray left on interfaces (stale owner locks, orphaned rxray XDP programs).
    Detach {
        /// Interface (repeatable). Default: every interface in this namespace.
        #[arg(short = 'i', long = "interface")]
        ifaces: Vec<String>,
        /// Also remove firewall state pinned for network namespaces that no longer exist (no process
        /// and no /run/netns name refers to them).
        #[arg(long)]
        orphans: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    if matches!(cli.cmd, Cmd::Firewall(_) | Cmd::Ifaces { .. } | Cmd::Lab(_)) {
        // One-shot commands: a closed pipe (`| head`) ends them quietly, as it does other tools.
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Live commands need /sys/fs/bpf for pinned state: mounted here when missing, before `--netns`
    // (which carries this mount namespace's bpffs into the new one). Where that cannot be done
    // (`ip netns exec`), commands that pin say so themselves; observers run without it.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root && !matches!(cli.cmd, Cmd::Analyze(_) | Cmd::Lab(_) | Cmd::History(_) | Cmd::Investigate(_) | Cmd::Status { .. }) {
        if let Ok(rxray_kernel::bpffs::Bpffs::Mounted) = rxray_kernel::bpffs::ensure() {
            eprintln!("rxray: mounted a BPF filesystem at /sys/fs/bpf (none was mounted; the firewall's pinned state lives there)");
        }
    }
    if let Some(ns) = &cli.netns {
        if let Err(e) = rxray_kernel::os::netns::enter_named(ns) {
            eprintln!("rxray: error: {e}");
            std::process::exit(1);
        }
    }
    let res = match cli.cmd {
        Cmd::Analyze(a) => analyze::run(a),
        Cmd::Watch(a) => watch::run(a),
        Cmd::Flows(a) => flows::run(a),
        Cmd::Top(a) => top::run(a),
        Cmd::Http(a) => http::run(a),
        Cmd::Drops(a) => drops::run(a),
        Cmd::Conns(a) => conns::run(a),
        Cmd::Latency(a) => latency::run(a),
        Cmd::Capture(a) => capture::run(a),
        Cmd::Firewall(c) => firewall::run(c),
        Cmd::Alerts(a) => alerts::run(a),
        Cmd::Agent(a) => agent::run(a),
        Cmd::Status { json } => agent::status_cmd(json),
        Cmd::History(a) => history::history(a),
        Cmd::Investigate(a) => history::investigate(a),
        Cmd::Demo(a) => lab::demo(a),
        Cmd::Lab(c) => lab::lab(c),
        Cmd::Ifaces { json } => ifaces::ifaces(json),
        Cmd::Detach { ifaces, orphans } => ifaces::detach(&ifaces, orphans),
    };
    if let Err(e) = res {
        eprintln!("rxray: error: {e:#}");
        std::process::exit(1);
    }
}
