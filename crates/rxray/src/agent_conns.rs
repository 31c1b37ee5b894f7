//! The agent's connections for the store: the kernel's TCP tracepoints (as `rxray conns` attaches
//! them) read as one more live source; each connection becomes rows like a flow's: one when it is
//! first seen open, one every flow_period_s while it moves, and its closing row, each with the bytes
//! and retransmits since its previous row, its RTT, and the process and cgroup that read it.
use rxray_engine::conns::{fill, record, ConnRecord, Seeds, Tuple};
use rxray_engine::os::Os;
use rxray_engine::source::{ConnSnapshot, Connection, Event, Source as _, TCP_CLOSE};
use rxray_kernel::os::LinuxOs;
use rxray_kernel::{Conns, ConnsOptions, LiveSource};
use rxray_store::ConnRow;
use std::collections::HashMap;

/// What the store has of one connection.
struct Mark {
    bytes_in: u64,
    bytes_out: u64,
    retrans: u64,
    /// The end of its last row (ns since the epoch).
    written_ns: u64,
    /// When its last row was made (agent time).
    row_ns: u64,
}

/// The connections source and the rows waiting for the next batch.
pub struct ConnHistory {
    src: LiveSource,
    os: LinuxOs,
    seeds: Seeds,
    marks: HashMap<Tuple, Mark>,
    rows: Vec<ConnRow>,
    lost: u64,
    /// Rows are made only for a store (without one, the connections feed the detectors alone).
    keep_rows: bool,
}

impl ConnHistory {
    /// Attaches the TCP tracepoints for this network namespace.
    pub fn attach(ring_bytes: u32, keep_rows: bool) -> anyhow::Result<ConnHistory> {
        let netns = rxray_kernel::drops::current_netns_ino()?;
        let conns = Conns::attach(&ConnsOptions { ring_bytes, netns_ino: Some(netns) })?;
        let mut os = LinuxOs::new();
        // Read after attaching: a connection is either seeded or seen changing state.
        let seeds = Seeds::new(&os.tcp_sockets().unwrap_or_default());
        Ok(ConnHistory { src: LiveSource::new().with_conns(conns, None), os, seeds, marks: HashMap::new(), rows: Vec::new(), lost: 0, keep_rows })
    }

    pub fn poll_fds(&mut self) -> Vec<std::os::fd::RawFd> {
        self.src.poll_fds()
    }

    /// Reads what the ring holds (at most `max` events): each closed connection's last row, and
    /// each closed connection to `on_closed` (the detectors).
    pub fn pump(&mut self, max: usize, mut on_closed: impl FnMut(&Connection, u64)) {
        for _ in 0..max {
            let Some(ev) = self.src.next_event() else { break };
            if let Ok(Event::Conn(ev)) = ev {
                if ev.conn.state == TCP_CLOSE {
                    let c = ev.conn.clone();
                    let ts = ev.ts_ns;
                    on_closed(&c, ts);
                    if self.keep_rows {
                        self.closed(&c, ts);
                    }
                }
            }
        }
    }

    /// The connections' live source (a joined `conns` reads its map and counters).
    pub fn source(&self) -> &LiveSource {
        &self.src
    }

    /// The open connections now (the detectors' periodic view).
    pub fn live(&self) -> Option<ConnSnapshot> {
        self.src.conn_snapshot().ok()
    }

    /// The kernel's counters of the connections' programs.
    pub fn totals(&self) -> Option<Result<rxray_kernel::ConnTotals, rxray_kernel::KernelError>> {
        self.src.conns().map(|c| c.totals())
    }

    fn closed(&mut self, c: &Connection, ts_ns: u64) {
        let mut r = record(c, ts_ns, "closed");
        self.seeds.mark(&mut r);
        fill(&mut self.os, &mut r);
        let end = c.last_ns.unwrap_or(ts_ns);
        if let Some(row) = self.row(&r, c.first_ns, end, true, 0) {
            self.rows.push(row);
        }
    }

    /// The open connections now: a row for each one not written yet, and for each that moved
    /// when its last row is at least `period_s` old.
    pub fn snapshot(&mut self, now_agent_ns: u64, period_s: u64) {
        if !self.keep_rows {
            return;
        }
        let snap: ConnSnapshot = match self.src.conn_snapshot() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("rxray agent: reading the connections: {e}");
                return;
            }
        };
        for c in &snap.conns {
            let mut r = record(c, snap.ts_ns, "live");
            self.seeds.mark(&mut r);
            let Some(t) = rxray_engine::conns::tuple_of(&r) else { continue };
            let due = match self.marks.get(&t) {
                None => true,
                Some(m) => {
                    let moved = r.bytes_rx > m.bytes_in || r.bytes_tx > m.bytes_out || u64::from(r.retransmits) > m.retrans;
                    moved && m.row_ns.saturating_add(period_s.saturating_mul(1_000_000_000)) <= now_agent_ns
                }
            };
            if due {
                fill(&mut self.os, &mut r);
                if let Some(row) = self.row(&r, c.first_ns, snap.ts_ns, false, now_agent_ns) {
                    self.rows.push(row);
                }
            }
        }
    }

    /// The row for `r` since the connection's previous one (its mark moves on; a closing row
    /// forgets it).
    fn row(&mut self, r: &ConnRecord, first_ns: Option<u64>, end_ns: u64, closed: bool, now_agent_ns: u64) -> Option<ConnRow> {
        let t = rxray_engine::conns::tuple_of(r)?;
        let first = first_ns.unwrap_or(end_ns);
        let m = self.marks.remove(&t).unwrap_or(Mark { bytes_in: 0, bytes_out: 0, retrans: 0, written_ns: first, row_ns: 0 });
        let row = ConnRow {
            ts_start: m.written_ns.min(end_ns),
            ts_end: end_ns,
            local: t.0,
            lport: t.1,
            remote: t.2,
            rport: t.3,
            state: r.state.to_string(),
            bytes_in: r.bytes_rx.saturating_sub(m.bytes_in),
            bytes_out: r.bytes_tx.saturating_sub(m.bytes_out),
            retrans: u64::from(r.retransmits).saturating_sub(m.retrans),
            pid: r.pid,
            comm: r.comm.clone(),
            cgroup: r.cgroup.clone(),
            closed,
            srtt_us: r.srtt_us,
            min_rtt_us: r.min_rtt_us,
            reset_by: r.reset_by.map(str::to_string),
        };
        if !closed {
            self.marks.insert(t, Mark { bytes_in: r.bytes_rx, bytes_out: r.bytes_tx, retrans: u64::from(r.retransmits), written_ns: end_ns, row_ns: now_agent_ns });
        }
        Some(row)
    }

    /// The rows since the last call.
    pub fn take(&mut self) -> Vec<ConnRow> {
        std::mem::take(&mut self.rows)
    }

    /// The events the ring lost since the last call.
    pub fn take_lost(&mut self) -> u64 {
        let lost = self.src.conns().and_then(|c| c.totals().ok()).map_or(0, |t| t.lost);
        let d = lost.saturating_sub(self.lost);
        self.lost = lost;
        d
    }
}
