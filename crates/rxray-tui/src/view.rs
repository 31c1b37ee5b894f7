//! Rendering: one `Snapshot` under the `App`'s view state into a ratatui frame. Pure: no I/O, no
//! clock; what is drawn depends only on the snapshot, the view state and the frame's size.
use crate::app::{App, Overlay, Pane};
use crate::model::{Detail, Snapshot};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState, Wrap};
use ratatui::Frame;

/// 1234 -> "1.2k", as `rxray flows` writes rates.
pub fn human(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.1}G", x / 1e9),
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// HH:MM:SS (UTC) of a Unix-epoch ns time.
pub fn clock(ts_ns: u64) -> String {
    let s = ts_ns / 1_000_000_000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn or_dash(a: Option<std::net::IpAddr>) -> String {
    a.map_or_else(|| "-".into(), |a| a.to_string())
}

const HEAD: Style = Style::new().add_modifier(Modifier::BOLD);
const SEL: Style = Style::new().add_modifier(Modifier::REVERSED);
const DIM: Style = Style::new().fg(Color::DarkGray);

/// The whole screen.
pub fn draw(f: &mut Frame, s: &Snapshot, app: &App) {
    let [top, tabs, body, foot] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(f.area());
    header(f, top, s, app);
    tab_bar(f, tabs, app.pane);
    match &app.overlay {
        Overlay::Detail(d) => detail(f, body, d, app.selected),
        _ => pane(f, body, s, app, app.pane),
    }
    footer(f, foot, app);
    if app.overlay == Overlay::Help {
        help(f, body);
    }
}

fn header(f: &mut Frame, area: Rect, s: &Snapshot, app: &App) {
    let mut spans = vec![
        Span::styled("rxray top", HEAD),
        Span::raw(format!(" {} {} UTC | sort {}", s.source, clock(s.ts_ns), app.sort.name())),
    ];
    if let Some(flt) = &s.filter {
        spans.push(Span::raw(" | filter "));
        spans.push(Span::styled(flt.clone(), Style::new().fg(Color::Yellow)));
    }
    if app.paused {
        spans.push(Span::styled(" | PAUSED", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn tab_bar(f: &mut Frame, area: Rect, current: Pane) {
    let mut spans = Vec::new();
    let short = area.width < 100;
    for (i, p) in Pane::ALL.iter().enumerate() {
        let style = if *p == current { SEL } else { Style::new() };
        spans.push(Span::styled(format!("{}:{}", i + 1, if short { p.short_title() } else { p.title() }), style));
        spans.push(Span::raw(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn footer(f: &mut Frame, area: Rect, app: &App) {
    let line = match &app.overlay {
        Overlay::Filter(t) => Line::from(vec![
            Span::styled("filter (tcpdump syntax; Enter applies, empty clears, Esc cancels)> ", HEAD),
            Span::raw(t.clone()),
            Span::styled("_", Style::new().add_modifier(Modifier::SLOW_BLINK)),
        ]),
        _ => match &app.message {
            Some(m) => Line::from(Span::styled(m.clone(), Style::new().fg(Color::Yellow))),
            None => Line::from(Span::styled(
                "q quit  ? help  Tab/1-9 panes  s sort  / filter  p pause  Enter detail",
                DIM,
            )),
        },
    };
    f.render_widget(Paragraph::new(line), area);
}

/// One pane in `area`: the full view of a tab, or a part of the overview.
pub fn pane(f: &mut Frame, area: Rect, s: &Snapshot, app: &App, p: Pane) {
    let sel = (p == app.pane).then_some(app.selected);
    match p {
        Pane::Overview => overview(f, area, s, app),
        Pane::Interfaces => interfaces(f, area, s),
        Pane::Flows => flows(f, area, s, sel),
        Pane::Sources => sources(f, area, s, sel),
        Pane::Ports => ports(f, area, s, sel),
        Pane::Protocols => protocols(f, area, s, sel),
        Pane::Drops => drops(f, area, s, sel),
        Pane::Alerts => alerts(f, area, s, sel),
        Pane::Http => http(f, area, s, sel),
    }
}

/// Everything at a glance: the panes that fit. 80×24 gets interfaces, health, sources and ports,
/// flows; a large screen (≥ 150×40) adds protocols, drops, alerts and HTTP.
fn overview(f: &mut Frame, area: Rect, s: &Snapshot, app: &App) {
    let large = area.width >= 150 && area.height >= 36;
    let n_if = s.ifaces.len().clamp(1, if large { 4 } else { 2 }) as u16;
    // Small screens: one line per interface (its packets/s sparkline); large: three.
    let if_h = 2 + n_if * if large { 3 } else { 1 };
    let sel = (app.pane == Pane::Overview).then_some(app.selected);
    if !large {
        let [ifs, hl, mid, fl] = Layout::vertical([
            Constraint::Length(if_h),
            Constraint::Length(4),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ])
        .areas(area);
        interfaces(f, ifs, s);
        health(f, hl, s);
        let [l, r] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(mid);
        sources(f, l, s, sel);
        ports(f, r, s, None);
        flows(f, fl, s, None);
        return;
    }
    let [ifs, hl, row1, row2, row3] = Layout::vertical([
        Constraint::Length(if_h),
        Constraint::Length(4),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Fill(1),
    ])
    .areas(area);
    interfaces(f, ifs, s);
    health(f, hl, s);
    let [a, b, c] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(30), Constraint::Percentage(30)]).areas(row1);
    sources(f, a, s, sel);
    ports(f, b, s, None);
    protocols(f, c, s, None);
    flows(f, row2, s, None);
    let [a, b, c] = Layout::horizontal([Constraint::Percentage(25), Constraint::Percentage(45), Constraint::Percentage(30)]).areas(row3);
    drops(f, a, s, None);
    alerts(f, b, s, None);
    http(f, c, s, None);
}

fn block(title: String) -> Block<'static> {
    Block::default().borders(Borders::ALL).title(Span::styled(title, HEAD))
}

/// The tail of a history that fits `width` columns.
fn tail(h: &[u64], width: u16) -> &[u64] {
    &h[h.len().saturating_sub(width as usize)..]
}

fn interfaces(f: &mut Frame, area: Rect, s: &Snapshot) {
    let b = block("Interfaces: packets/s and bits/s, last minutes".into());
    let inner = b.inner(area);
    f.render_widget(b, area);
    if s.ifaces.is_empty() {
        f.render_widget(Paragraph::new("no interface counted yet"), inner);
        return;
    }
    // Per interface: three lines (numbers, packets/s and bits/s sparklines) when there is room,
    // else one (the numbers beside the packets/s sparkline).
    let n = s.ifaces.len() as u16;
    let per = (inner.height / n.max(1)).clamp(1, 3);
    let label_w = if per == 1 { 37 } else { 34 }.min(inner.width / 2);
    let mut y = inner.y;
    for i in &s.ifaces {
        if y >= inner.y + inner.height {
            break;
        }
        let rows = per.min(inner.y + inner.height - y);
        let r = Rect { x: inner.x, y, width: inner.width, height: rows };
        let [label, spark] = Layout::horizontal([Constraint::Length(label_w), Constraint::Min(0)]).areas(r);
        let text = if rows == 1 {
            vec![Line::from(vec![
                Span::styled(format!("{:<9}", i.name), HEAD),
                Span::raw(format!("{:>7} pkt/s {:>7} bit/s", human(i.pps), human(i.bps))),
            ])]
        } else {
            vec![
                Line::from(vec![Span::styled(format!("{:<10}", i.name), HEAD), Span::raw(format!(" {:>7} pkt/s", human(i.pps)))]),
                Line::from(format!("{:<10} {:>7} bit/s", "", human(i.bps))),
                Line::from(Span::styled(format!("{:<10} {} pkts {}B", "", i.packets, human(i.bytes as f64)), DIM)),
            ]
        };
        f.render_widget(Paragraph::new(text), label);
        let w = spark.width;
        let one = Rect { height: 1, ..spark };
        f.render_widget(Sparkline::default().data(tail(&i.pps_history, w)).style(Style::new().fg(Color::Green)), one);
        if rows >= 2 {
            let two = Rect { y: spark.y + 1, height: 1, ..spark };
            f.render_widget(Sparkline::default().data(tail(&i.bps_history, w)).style(Style::new().fg(Color::Cyan)), two);
        }
        y += rows;
    }
}

fn health(f: &mut Frame, area: Rect, s: &Snapshot) {
    let h = &s.health;
    let b = block("Loss and completeness".into());
    let inner = b.inner(area);
    f.render_widget(b, area);
    let mut first = vec![format!(
        "{} packets, {} flows; {} in flows ({} not: table full), {} malformed",
        h.packets,
        h.flows,
        pct(h.flow_completeness()),
        h.flow_insert_failed,
        h.malformed
    )];
    let mut second = Vec::new();
    match (h.events, h.event_completeness()) {
        (Some(ev), Some(c)) => second.push(format!("detector events {ev}, lost {} ({})", h.events_lost.unwrap_or(0), pct(c))),
        _ => second.push("detectors off".into()),
    }
    match h.drop_events_lost {
        Some(n) => second.push(format!("drop events lost {n}")),
        None => second.push("drops off".into()),
    }
    match h.http_records_lost {
        Some(n) => second.push(format!("HTTP lost {n}")),
        None => second.push("HTTP off".into()),
    }
    first.push(second.join("; "));
    let lines: Vec<Line> = first.into_iter().map(Line::from).collect();
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}

/// Rows a table in `area` can show (borders and header take 3), or down to the selection: only
/// those are formatted.
fn visible(area: Rect, sel: Option<usize>) -> usize {
    (area.height as usize).saturating_sub(3).max(sel.map_or(0, |i| i + 1))
}

/// One column: its header (">" right-aligns it), its width, and whether a narrow pane keeps it.
type Col = (&'static str, Constraint, bool);

/// A table with a header, a selection and right-aligned numbers; a narrow pane keeps only the
/// columns marked for it.
fn table(f: &mut Frame, area: Rect, title: String, cols: &[Col], rows: Vec<Vec<String>>, sel: Option<usize>, narrow: bool) {
    let keep: Vec<bool> = cols.iter().map(|c| !narrow || c.2).collect();
    let right: Vec<bool> = cols.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.0.starts_with('>')).collect();
    let pick = |v: Vec<String>| -> Vec<String> { v.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c).collect() };
    let cells = |v: Vec<String>| {
        Row::new(v.into_iter().zip(&right).map(|(c, r)| {
            let t = Line::from(c);
            Cell::from(if *r { t.alignment(Alignment::Right) } else { t })
        }))
    };
    let n = rows.len();
    let header = cells(pick(cols.iter().map(|c| c.0.trim_start_matches('>').to_string()).collect())).style(HEAD);
    let widths: Vec<Constraint> = cols.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.1).collect();
    let t = Table::new(rows.into_iter().map(|r| cells(pick(r))), widths)
        .header(header)
        .block(block(title))
        .column_spacing(1)
        .row_highlight_style(SEL);
    let mut state = TableState::default().with_selected(sel.filter(|_| n > 0).map(|i| i.min(n - 1)));
    f.render_stateful_widget(t, area, &mut state);
}

fn flows(f: &mut Frame, area: Rect, s: &Snapshot, sel: Option<usize>) {
    let narrow = area.width < 140;
    let addr = Constraint::Min(if narrow { 18 } else { 30 });
    let cols: [Col; 8] = [
        ("IFACE", Constraint::Length(8), false),
        ("PROTO", Constraint::Length(5), true),
        ("SOURCE", addr, true),
        ("DESTINATION", addr, true),
        (">PACKETS", Constraint::Length(if narrow { 8 } else { 10 }), true),
        (">BYTES", Constraint::Length(7), true),
        (">PKT/S", Constraint::Length(7), false),
        (">BIT/S", Constraint::Length(7), true),
    ];
    let rows = s
        .flows
        .iter()
        .take(visible(area, sel))
        .map(|r| {
            vec![
                r.iface.clone(),
                r.proto.clone(),
                r.src_text(),
                r.dst_text(),
                r.packets.to_string(),
                human(r.bytes as f64),
                human(r.pps),
                human(r.bps),
            ]
        })
        .collect();
    table(f, area, format!("Top flows ({})", s.flows.len()), &cols, rows, sel, narrow);
}

fn sources(f: &mut Frame, area: Rect, s: &Snapshot, sel: Option<usize>) {
    let rows = s
        .sources
        .iter()
        .take(visible(area, sel))
        .map(|t| vec![or_dash(t.addr), t.packets.to_string(), human(t.bytes as f64), human(t.pps), human(t.bps), t.flows.to_string()])
        .collect();
    let cols: [Col; 6] = [
        ("SOURCE", Constraint::Min(14), true),
        (">PACKETS", Constraint::Length(9), true),
        (">BYTES", Constraint::Length(6), true),
        (">PKT/S", Constraint::Length(7), false),
        (">BIT/S", Constraint::Length(6), true),
        (">FLOWS", Constraint::Length(6), false),
    ];
    table(f, area, format!("Top sources ({})", s.sources.len()), &cols, rows, sel, area.width < 60);
}

fn ports(f: &mut Frame, area: Rect, s: &Snapshot, sel: Option<usize>) {
    let rows = s
        .ports
        .iter()
        .take(visible(area, sel))
        .map(|p| vec![format!("{}/{}", p.port, p.proto), p.packets.to_string(), human(p.bytes as f64), human(p.bps), p.flows.to_string()])
        .collect();
    let cols: [Col; 5] = [
        ("PORT", Constraint::Length(9), true),
        (">PACKETS", Constraint::Length(9), true),
        (">BYTES", Constraint::Length(6), true),
        (">BIT/S", Constraint::Length(7), false),
        (">FLOWS", Constraint::Length(6), true),
    ];
    table(f, area, format!("Top destination ports ({})", s.ports.len()), &cols, rows, sel, area.width < 50);
}

fn protocols(f: &mut Frame, area: Rect, s: &Snapshot, sel: Option<usize>) {
    let total: u64 = s.protocols.iter().map(|p| p.packets).sum();
    let bar_w = area.width.saturating_sub(2 + 8 + 10 + 8 + 7 + 4) as usize;
    let rows = s
        .protocols
        .iter()
        .take(visible(area, sel))
        .map(|p| {
            let share = if total == 0 { 0.0 } else { p.packets as f64 / total as f64 };
            vec![
                p.name.clone(),
                p.packets.to_string(),
                human(p.bytes as f64),
                pct(share),
                "█".repeat((share * bar_w as f64).round() as usize),
            ]
        })
        .collect();
    let cols: [Col; 5] = [
        ("PROTO", Constraint::Length(8), true),
        (">PACKETS", Constraint::Length(10), true),
        (">BYTES", Constraint::Length(8), true),
        (">SHARE", Constraint::Length(7), true),
        ("", Constraint::Min(0), true),
    ];
    let title = if s.filter.is_some() { "Protocol mix (filtered flows)" } else { "Protocol mix" };
    table(f, area, title.into(), &cols, rows, sel, false);
}

fn off(f: &mut Frame, area: Rect, title: String, note: &Option<String>) {
    let text = format!("off: {}", note.as_deref().unwrap_or("not running"));
    f.render_widget(Paragraph::new(text).style(DIM).wrap(Wrap { trim: true }).block(block(title)), area);
}

fn drops(f: &mut Frame, area: Rect, s: &Snapshot, sel: Option<usize>) {
    let d = &s.drops;
    let total: u64 = d.reasons.iter().map(|r| r.1).sum();
    let title = format!("Kernel drops by reason ({total})");
    if !d.on {
        return off(f, area, title, &d.note);
    }
    let rows = d.reasons.iter().take(visible(area, sel)).map(|(r, n)| vec![r.clone(), n.to_string()]).collect();
    table(f, area, title, &[("REASON", Constraint::Min(20), true), (">PACKETS", Constraint::Length(9), true)], rows, sel, false);
}

fn alerts(f: &mut Frame, area: Rect, s: &Snapshot, sel: Option<usize>) {
    let a = &s.alerts;
    let title = format!("Recent alerts and firewall actions ({})", a.total);
    if !a.on {
        return off(f, area, title, &a.note);
    }
    let rows = a
        .recent
        .iter()
        .take(visible(area, sel))
        .map(|r| vec![clock(r.ts_ns), r.detector.clone(), or_dash(r.src), or_dash(r.dst), r.action.clone(), r.msg.clone()])
        .collect();
    let cols: [Col; 6] = [
        ("TIME", Constraint::Length(8), true),
        ("DETECTOR", Constraint::Length(20), true),
        ("SOURCE", Constraint::Length(15), true),
        ("DESTINATION", Constraint::Length(15), false),
        ("ACTION", Constraint::Length(32), true),
        ("MESSAGE", Constraint::Min(10), false),
    ];
    table(f, area, title, &cols, rows, sel, area.width < 120);
}

fn http(f: &mut Frame, area: Rect, s: &Snapshot, sel: Option<usize>) {
    let h = &s.http;
    let title = format!("Top HTTP endpoints ({} requests)", h.requests);
    if !h.on {
        return off(f, area, title, &h.note);
    }
    let rows = h
        .endpoints
        .iter()
        .take(visible(area, sel))
        .map(|e| {
            vec![
                e.method.clone(),
                e.template.clone(),
                e.requests.to_string(),
                e.p95_ms.map_or_else(|| "-".into(), |v| format!("{v:.1}")),
                pct(e.error_rate),
            ]
        })
        .collect();
    let cols: [Col; 5] = [
        ("METHOD", Constraint::Length(7), true),
        ("ENDPOINT", Constraint::Min(12), true),
        (">REQS", Constraint::Length(8), true),
        (">P95 MS", Constraint::Length(8), true),
        (">ERR", Constraint::Length(6), true),
    ];
    table(f, area, title, &cols, rows, sel, false);
}

fn detail(f: &mut Frame, area: Rect, d: &Detail, scroll: usize) {
    let title = format!(
        "Detail: {} ({}; Esc closes, arrows scroll)",
        or_dash(d.addr),
        if d.origin == "store" { "investigate timeline from the store" } else { "live flows and alerts" }
    );
    let lines: Vec<Line> = d.lines.iter().skip(scroll.min(d.lines.len().saturating_sub(1))).map(|l| Line::from(l.as_str())).collect();
    f.render_widget(Paragraph::new(lines).block(block(title)), area);
}

/// The key list (`?`).
pub const HELP: &[(&str, &str)] = &[
    ("q, Esc, Ctrl-C", "quit (the terminal is restored)"),
    ("Tab, Shift-Tab, arrows", "next / previous pane"),
    ("1-9", "pane by number"),
    ("s", "sort: bytes, packets, rate"),
    ("/ or f", "filter the flows, sources, ports (tcpdump syntax)"),
    ("p, Space", "pause / resume"),
    ("Up, Down", "select a row"),
    ("Enter or d", "detail of the selected address"),
    ("?", "this help (any key closes it)"),
];

fn help(f: &mut Frame, body: Rect) {
    let w = 76.min(body.width);
    let h = (HELP.len() as u16 + 2).min(body.height);
    let area = Rect { x: body.x + (body.width - w) / 2, y: body.y + (body.height - h) / 2, width: w, height: h };
    let lines: Vec<Line> =
        HELP.iter().map(|(k, v)| Line::from(vec![Span::styled(format!("{k:<24}"), HEAD), Span::raw(*v)])).collect();
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(lines).block(block("Keys".into())), area);
}
