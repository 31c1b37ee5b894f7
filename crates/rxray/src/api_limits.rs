//! `--api-limits FILE` for `rxray alerts` and `analyze --alerts`: reads the file (every error with
//! its line and column) and carries out a client's source rate limit on a firewall.
use anyhow::{anyhow, Result};
use rxray_engine::detect::api_limit::{ApiGuard, ApiLimits, LimitAction};
use rxray_engine::detect::policy::ActionKind;
use rxray_kernel::firewall::{Firewall, SrcLimit};
use std::path::Path;

/// The guard built from the file's text; a bad file names every problem and where it is.
pub fn load(text: &str, path: &Path) -> Result<ApiGuard> {
    let cfg = ApiLimits::parse(&path.display().to_string(), text)
        .map_err(|errs| anyhow!("{}", errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\nrxray: error: ")))?;
    for l in &cfg.limits {
        let act = match l.action {
            LimitAction::Alert => "alert",
            LimitAction::RateLimit => "rate-limit (with --enforce)",
            LimitAction::Block => "block (with --enforce)",
        };
        eprintln!("rxray: API limit {} at {} (burst {}) per client /{}, /{}: {act}", l.endpoint.text, l.rate, l.burst, l.per.0, l.per.1);
    }
    Ok(ApiGuard::new(cfg))
}

/// Installs a source rate limit on one firewall; the text says which entry and where.
pub fn enforce(f: &mut Firewall, kind: &ActionKind, ttl_s: u32) -> Result<String, rxray_kernel::KernelError> {
    let ActionKind::LimitSrc { cidr, dport, syn_only, interval_ns, burst, rate } = kind else {
        return Ok(String::new());
    };
    let lim = SrcLimit { dport: *dport, syn_only: *syn_only, interval_ns: *interval_ns, burst: *burst };
    let id = f.limit_src(cidr, lim, (ttl_s > 0).then_some(ttl_s as u64))?;
    let what = if *syn_only { "connections" } else { "packets" };
    Ok(format!("source rate limit {id} on {}: {what} from {cidr} to port {} at {rate}", f.iface, dport.map_or("any".into(), |p| p.to_string())))
}
