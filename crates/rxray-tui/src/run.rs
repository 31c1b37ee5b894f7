//! The dashboard's loop: read the feed, refresh the snapshot every interval (unless paused), take
//! keys, redraw. The feed is the outside world (the live kernel, an agent, a test's fake).
use crate::app::{Action, App};
use crate::collect::Collector;
use crate::model::{Detail, Snapshot};
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event};
use ratatui::Terminal;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where the data comes from.
pub trait Feed {
    /// Reads what arrived (events, drops, alerts, HTTP records) into the collector, waiting at most
    /// `wait` for something to arrive.
    fn pump(&mut self, c: &mut Collector, wait: Duration) -> Result<(), Error>;
    /// Reads the tables (flows, counters) into the collector: once per refresh.
    fn refresh(&mut self, c: &mut Collector) -> Result<(), Error>;
    /// The detail of an address: its investigate timeline when a store exists, otherwise the live one.
    fn detail(&mut self, addr: IpAddr, c: &Collector) -> Detail {
        c.detail_live(addr)
    }
    /// A stop was asked from outside (SIGTERM, SIGINT sent to the process).
    fn stopped(&self) -> bool {
        false
    }
}

/// How the loop runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub interval: Duration,
    /// Stop after this many refreshes (tests, benchmarks).
    pub refreshes: Option<u64>,
}

/// What the loop did: draws and the time they took (the redraw figure of the benchmark).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub refreshes: u64,
    pub draws: u64,
    pub draw_ns: u64,
    pub draw_max_ns: u64,
    /// The loop ended on Ctrl-C (or a stop from outside), not on `q`.
    pub interrupted: bool,
}

/// Runs until `q`, Ctrl-C, a stop from outside or the refresh count.
pub fn run<B: Backend>(terminal: &mut Terminal<B>, feed: &mut dyn Feed, c: &mut Collector, o: Options) -> Result<Stats, Error>
where
    B::Error: Send + Sync + 'static,
{
    let mut app = App::default();
    let mut stats = Stats::default();
    feed.refresh(c)?;
    let mut shown: Snapshot = c.snapshot(app.sort);
    let mut next = Instant::now() + o.interval;
    let mut dirty = true;
    loop {
        if feed.stopped() {
            stats.interrupted = true;
            break;
        }
        while event::poll(Duration::ZERO)? {
            match event::read()? {
                Event::Key(k) => {
                    dirty = true;
                    match app.on_key(k, &shown) {
                        Action::None => {}
                        Action::Quit => return Ok(stats),
                        Action::Interrupt => {
                            stats.interrupted = true;
                            return Ok(stats);
                        }
                        // The top rows by the new order (from the same table while paused).
                        Action::Sort => shown = c.snapshot(app.sort),
                        Action::Filter(t) => {
                            let err = c.set_filter(t.as_deref()).err().map(|e| e.to_string());
                            app.filter_result(c.filter_text(), err);
                            shown = c.snapshot(app.sort);
                        }
                        Action::Detail(a) => {
                            let d = feed.detail(a, c);
                            app.show_detail(d);
                        }
                    }
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        let now = Instant::now();
        if now >= next {
            next = (next + o.interval).max(now);
            if !app.paused {
                feed.refresh(c)?;
                shown = c.snapshot(app.sort);
                dirty = true;
            }
            stats.refreshes += 1;
            if o.refreshes.is_some_and(|n| stats.refreshes >= n) {
                break;
            }
        }
        if dirty {
            let t = Instant::now();
            terminal.draw(|f| crate::view::draw(f, &shown, &app))?;
            let ns = t.elapsed().as_nanos() as u64;
            stats.draws += 1;
            stats.draw_ns += ns;
            stats.draw_max_ns = stats.draw_max_ns.max(ns);
            dirty = false;
        }
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
        feed.pump(c, wait)?;
    }
    Ok(stats)
}
