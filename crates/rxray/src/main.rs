//! rxray: see, and act on, every packet that arrives at a Linux host.
//! The binary is thin: it parses arguments and wires sources, engine and outputs together.
mod flows;
mod line;
mod session;
mod watch;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "rxray", version, about = "See, and act on, every packet that arrives at a Linux host (eBPF/XDP)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum XdpModeArg {
    Native,
    Generic,
    Auto,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print every incoming packet as it arrives (like `tcpdump -nn -v`), or as JSON Lines.
    Watch(watch::WatchArgs),
    /// Show the top flows, counted exactly in the kernel, refreshed live (or JSON Lines snapshots).
    Flows(flows::FlowsArgs),
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Watch(a) => watch::run(a),
        Cmd::Flows(a) => flows::run(a),
    };
    if let Err(e) = res {
        eprintln!("rxray: error: {e:#}");
        std::process::exit(1);
    }
}
