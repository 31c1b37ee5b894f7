//! `rxray ifaces` (interfaces, their driver, the XDP or TC ingress program on them, and their rxray
//! owner) and `rxray detach` (removes what a killed rxray left: stale owner locks and rxray XDP
//! programs attached with no live owner). Links and their XDP programs come from rtnetlink (the view
//! `ip -d link` users have, rxray_kernel::os::links); TC ingress (tcx) programs from BPF_PROG_QUERY.
use crate::session;
use anyhow::{bail, Context, Result};
use rxray_kernel::os::links;
use rxray_kernel::owner::{self, Owner};
use serde::Serialize;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Xdp {
    pub prog_id: u64,
    pub prog_name: String,
    /// "native", "generic" or "offload".
    pub mode: &'static str,
}

/// A TC ingress (tcx) program: tcx links go with the process that made them, so none is ever left.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Tc {
    pub prog_id: u32,
    pub prog_name: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Iface {
    pub name: String,
    pub ifindex: u32,
    pub state: String,
    pub mac: String,
    /// The device's driver (as `ethtool -i` says), which decides where observers attach.
    pub driver: Option<String>,
    pub xdp: Option<Xdp>,
    /// TC ingress programs (tcx), in run order.
    pub tc_ingress: Vec<Tc>,
    pub owner: Option<String>,
    pub owner_pid: Option<u32>,
    /// The owner lock exists but nobody holds it: a killed rxray's leftover.
    pub stale_owner: bool,
    /// rxray's firewall is installed (pinned): its program is meant to run with no owner.
    pub firewall: bool,
}

pub fn list(only: &[String]) -> Result<Vec<Iface>> {
    let mut v = Vec::new();
    for l in links::links().context("listing interfaces over rtnetlink")? {
        let name = l.name;
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let ifindex = l.ifindex;
        let xdp = l.xdp.map(|x| Xdp { prog_id: x.id.into(), prog_name: links::program_name(x.id).unwrap_or_default(), mode: x.mode.name() });
        let own: Option<Owner> = owner::owner_of(ifindex);
        let tc_ingress = tc_ingress(&name);
        v.push(Iface {
            driver: rxray_kernel::hook::driver(&name),
            tc_ingress,
            name,
            ifindex,
            state: l.operstate,
            mac: l.mac,
            xdp,
            owner: own.as_ref().filter(|o| o.alive).map(|o| o.to_string()),
            owner_pid: own.as_ref().filter(|o| o.alive).map(|o| o.pid),
            stale_owner: own.is_some_and(|o| !o.alive),
            firewall: rxray_kernel::firewall::installed(ifindex),
        });
    }
    for want in only {
        if !v.iter().any(|i| &i.name == want) {
            bail!("no interface named {want:?} in this network namespace (list them with `ip link`)");
        }
    }
    Ok(v)
}

/// The tcx ingress programs on `iface` (none when the kernel has no tcx, before Linux 6.6).
fn tc_ingress(iface: &str) -> Vec<Tc> {
    rxray_kernel::hook::tc_ingress_programs(iface).into_iter().map(|(prog_id, prog_name)| Tc { prog_id, prog_name }).collect()
}

/// What is attached, in words: "rxray_xdp id 7 (native XDP)", "rxray_tc id 9 (TC ingress)".
fn hook_text(i: &Iface) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(x) = &i.xdp {
        parts.push(format!("{} id {} ({} XDP)", x.prog_name, x.prog_id, x.mode));
    }
    for t in &i.tc_ingress {
        parts.push(format!("{} id {} (TC ingress)", t.prog_name, t.prog_id));
    }
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

pub fn ifaces(json: bool) -> Result<()> {
    let v = list(&[])?;
    if json {
        for i in &v {
            crate::sinks::print(i)?;
        }
        return Ok(());
    }
    println!("{:<16} {:>7} {:<8} {:<18} {:<12} {:<34} OWNER", "IFACE", "IFINDEX", "STATE", "MAC", "DRIVER", "HOOK");
    for i in &v {
        let hook = hook_text(i);
        let mut own = match (&i.owner, i.stale_owner) {
            (Some(o), _) => o.clone(),
            (None, true) => "stale (run `rxray detach`)".into(),
            _ => "-".into(),
        };
        if i.firewall {
            own = if own == "-" { "rxray firewall (pinned)".into() } else { format!("{own}; rxray firewall (pinned)") };
        }
        println!("{:<16} {:>7} {:<8} {:<18} {:<12} {:<34} {own}", i.name, i.ifindex, i.state, i.mac, i.driver.as_deref().unwrap_or("-"), hook);
    }
    Ok(())
}

pub fn detach(only: &[String], orphans: bool) -> Result<()> {
    session::require_root()?;
    let mut busy = Vec::new();
    let mut removed = 0;
    for i in list(only)? {
        if let Some(o) = &i.owner {
            println!("{}: owned by {o}, which is running; left alone", i.name);
            busy.push(i.name.clone());
            continue;
        }
        if i.stale_owner {
            let p = owner::lock_path(i.ifindex);
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            println!("{}: removed the stale owner lock {}", i.name, p.display());
            removed += 1;
        }
        if i.firewall {
            println!("{}: rxray's firewall is installed, and runs with no owner by design; left alone (`rxray firewall off` removes it)", i.name);
            continue;
        }
        if let Some(x) = i.xdp.as_ref().filter(|x| x.prog_name.starts_with("rxray")) {
            if let Err(e) = links::detach_xdp(i.ifindex, x.mode == "generic") {
                bail!("{}: could not remove XDP program {} (id {}): {e}", i.name, x.prog_name, x.prog_id);
            }
            println!("{}: detached XDP program {} (id {}, {})", i.name, x.prog_name, x.prog_id, x.mode);
            removed += 1;
        }
    }
    let _ = std::fs::remove_dir(owner::lock_dir());
    // Firewall state pinned for namespaces that are gone (deleted with the firewall installed).
    if orphans && rxray_kernel::firewall::check_bpffs().is_ok() {
        for root in rxray_kernel::firewall::collect_orphans()? {
            println!("removed the firewall state of a deleted network namespace: {}", root.display());
            removed += 1;
        }
    }
    if removed == 0 && busy.is_empty() {
        println!("nothing to remove");
    }
    if !busy.is_empty() {
        bail!("{} owned by running rxray commands; stop them first", busy.join(", "));
    }
    Ok(())
}
