//! The floors of `scripts/bench-latency`: attaches programs that only return, prints their program
//! ids on one line (`floor <name>=<id> ...`), and keeps them attached until stdin closes.
//!   bench_floor tp          tp_btf floor_read (skb_copy_datagram_iovec) and floor_queued (sk_data_ready)
//!   bench_floor xdp IFACE   bench_pass as a native XDP program on IFACE (run it in IFACE's namespace)
use aya::{
    programs::{BtfTracePoint, Xdp, XdpMode},
    Btf, Ebpf,
};
use rxray_kernel::{BENCH_PASS_OBJ, BENCH_TRACE_OBJ};
use std::io::Read;

fn usage() -> ! {
    eprintln!("usage: bench_floor tp | bench_floor xdp IFACE");
    std::process::exit(2);
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut ebpf;
    let mut ids = Vec::new();
    match args.first().map(String::as_str) {
        Some("tp") if args.len() == 1 => {
            let btf = Btf::from_sys_fs().map_err(|e| format!("kernel BTF: {e}"))?;
            ebpf = Ebpf::load(BENCH_TRACE_OBJ).map_err(|e| format!("loading bench_trace.bpf.o: {e}"))?;
            for (name, tp) in [("floor_read", "skb_copy_datagram_iovec"), ("floor_queued", "sk_data_ready")] {
                let prog: &mut BtfTracePoint = ebpf
                    .program_mut(name)
                    .ok_or(format!("{name} missing"))?
                    .try_into()
                    .map_err(|e| format!("{name}: {e}"))?;
                prog.load(tp, &btf).map_err(|e| format!("loading {name}: {e}"))?;
                prog.attach().map_err(|e| format!("attaching {name} to tp_btf/{tp}: {e}"))?;
                let id = prog.info().map_err(|e| format!("{name}: {e}"))?.id();
                ids.push(format!("{name}={id}"));
            }
        }
        Some("xdp") if args.len() == 2 => {
            ebpf = Ebpf::load(BENCH_PASS_OBJ).map_err(|e| format!("loading bench_pass.bpf.o: {e}"))?;
            let prog: &mut Xdp = ebpf
                .program_mut("bench_pass")
                .ok_or("bench_pass missing")?
                .try_into()
                .map_err(|e| format!("bench_pass: {e}"))?;
            prog.load().map_err(|e| format!("loading bench_pass: {e}"))?;
            prog.attach(&args[1], XdpMode::Driver)
                .map_err(|e| format!("attaching bench_pass to {} (native XDP): {e}", args[1]))?;
            let id = prog.info().map_err(|e| format!("bench_pass: {e}"))?.id();
            ids.push(format!("bench_pass={id}"));
        }
        _ => usage(),
    }
    println!("floor {}", ids.join(" "));
    // Attached until whoever started us closes our stdin (or kills us): the links go with `ebpf`.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(ebpf);
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_floor: {e}");
        std::process::exit(1);
    }
}
