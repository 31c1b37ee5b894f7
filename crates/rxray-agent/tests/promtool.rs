//! Debian's promtool (the checker Prometheus ships) accepts what the agent serves: a scrape of a
//! snapshot with every family, folded labels and histograms. Fails under CI=true without promtool.
use rxray_agent::metrics::{render, Hist, Snapshot, Window};
use rxray_lab::testing::skip_or_fail;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn promtool_check_metrics_passes_on_a_full_scrape() {
    if Command::new("promtool").arg("--version").output().is_err() {
        skip_or_fail("promtool (Debian's prometheus package) is not installed");
        return;
    }
    let mut s = Snapshot { host: "lab-b".into(), events_lost: 3, flows_live: 5, flow_capacity: 100, ..Default::default() };
    for i in 0..20u64 {
        s.interfaces.insert(format!("veth{i}"), (i * 10, i * 640));
        s.drops.insert(format!("REASON_{i}"), i);
    }
    s.protocols.insert("ipv4_tcp".into(), 40);
    s.firewall_rules.insert("no DNS from 198.18.0.1".into(), 12);
    s.alerts.insert("syn_flood".into(), 1);
    let h = Hist { buckets: vec![(0.0001, 1), (0.001, 4), (0.01, 9)], sum_seconds: 0.05, count: 10 };
    s.latency.insert("queued".into(), h.clone());
    s.http_requests.insert(("GET".into(), "/api/items/{id}".into(), "2xx".into()), 97);
    s.http_duration.insert(("GET".into(), "/api/items/{id}".into()), h);
    let text = render(&s, &Window { seconds: 1.0, ..Default::default() }, 8);
    let mut p = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
    // The cap held: 8 interfaces kept and one `other`.
    assert_eq!(text.lines().filter(|l| l.starts_with("rxray_interface_packets_total{")).count(), 9, "{text}");
}
