//! The command's side of joining: connect to the agent of this network namespace, ask for a view,
//! write what the agent sends to stdout, and say bye on Ctrl-C to get the summary.
use super::{FrameReader, Hello, JoinRequest, Kind, VERSION};
use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A command joined to the agent.
pub struct Joined {
    conn: UnixStream,
    frames: FrameReader,
    pub hello: Hello,
    /// The agent's summary, once `poll_out` has read it.
    pub summary: Option<serde_json::Value>,
}

/// What a joined run ended with.
pub struct Outcome {
    /// Output frames written to stdout.
    pub delivered: u64,
    /// The agent's summary (None when the agent went away first).
    pub summary: Option<serde_json::Value>,
    pub took: Duration,
}

/// Joins the agent of this network namespace with `req`. `Ok(None)`: no agent runs here, or it
/// does not own the interfaces asked for; the command then attaches itself. An agent that refuses
/// for another reason (a bad filter, too many clients) is an error.
pub fn try_join(command: &str, mut req: JoinRequest) -> Result<Option<Joined>> {
    let sock = crate::agent::socket_path();
    let mut conn = match UnixStream::connect(&sock) {
        Ok(c) => c,
        Err(e) => {
            // A socket nobody listens on was left by an agent that was killed (or by a namespace
            // long gone whose inode number came back): remove it, so it misleads no one.
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                let _ = std::fs::remove_file(&sock);
                if let Some(dir) = sock.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
            return Ok(None);
        }
    };
    req.cmd = "join".into();
    req.v = VERSION;
    req.command = command.into();
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_vec(&req)?;
    line.push(b'\n');
    conn.write_all(&line).with_context(|| format!("sending the join request to {}", sock.display()))?;
    let mut frames = FrameReader::default();
    let mut buf = [0u8; 4096];
    let hello = loop {
        if let Some((kind, payload)) = frames.next_frame()? {
            if kind != Kind::Hello {
                bail!("the agent at {} sent a {kind:?} frame before its hello", sock.display());
            }
            break serde_json::from_slice::<Hello>(&payload).with_context(|| format!("the agent's hello is not JSON: {}", String::from_utf8_lossy(&payload)))?;
        }
        let n = conn.read(&mut buf).with_context(|| format!("reading the agent's hello from {}", sock.display()))?;
        if n == 0 {
            bail!("the agent at {} closed the connection before answering (an older agent? `rxray status` shows it)", sock.display());
        }
        frames.feed(&buf[..n]);
    };
    if !hello.ok {
        let why = hello.error.clone().unwrap_or_default();
        if hello.not_owned {
            eprintln!("rxray: an agent runs here, but {why}: attaching myself");
            return Ok(None);
        }
        bail!("the agent of this namespace refused the join: {why} (--standalone attaches instead)");
    }
    conn.set_read_timeout(None)?;
    conn.set_nonblocking(true)?;
    Ok(Some(Joined { conn, frames, hello, summary: None }))
}

/// A snapshot command (`http`) joined to the agent: the agent renders each snapshot; this prints
/// them until Ctrl-C, when the agent sends the final one.
pub fn run_snapshots(j: Joined, stop: &AtomicBool, what: &str, count: Option<u64>) -> Result<()> {
    eprintln!("rxray: {what} {} (joined the agent of {}, client {}); Ctrl-C to stop", j.hello.interfaces.join(", "), j.hello.host, j.hello.id);
    let mut out = std::io::stdout().lock();
    let o = j.run(stop, &mut out, count, Duration::ZERO)?;
    if o.summary.is_none() {
        eprintln!("rxray: the agent went away before the final snapshot");
    }
    Ok(())
}

/// A streaming command (`drops`, `conns`) joined to the agent: the agent renders each record and,
/// at the end, the command's own closing summary; this writes the records to stdout and the
/// summary to stderr, as the command does when it attaches itself.
pub fn run_stream(j: Joined, stop: &AtomicBool, what: &str, stall: Duration) -> Result<()> {
    eprintln!("rxray: {what} (joined the agent of {}, client {}); Ctrl-C to stop", j.hello.host, j.hello.id);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let o = j.run(stop, &mut out, None, stall)?;
    drop(out);
    finish_stream(o);
    Ok(())
}

/// `run_stream` for a command that also stops after a time of its own (`latency -d`).
pub fn run_stream_for(j: Joined, stop: &AtomicBool, what: &str, duration: Option<Duration>) -> Result<()> {
    let Some(d) = duration else { return run_stream(j, stop, what, Duration::ZERO) };
    // A stop flag of this run's own: raised by Ctrl-C or at the end of the duration.
    let mine = std::sync::Arc::new(AtomicBool::new(false));
    let end = Instant::now() + d;
    std::thread::scope(|s| {
        let m = std::sync::Arc::clone(&mine);
        s.spawn(move || {
            while !m.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            m.store(true, Ordering::Relaxed);
        });
        let r = run_stream(j, &mine, what, Duration::ZERO);
        mine.store(true, Ordering::Relaxed);
        r
    })
}

fn finish_stream(o: Outcome) {
    match o.summary {
        Some(s) => {
            if let Some(t) = s["text"].as_str() {
                eprint!("{t}");
            }
            let lost = s["lost_queue"].as_u64().unwrap_or(0);
            if lost > 0 {
                eprintln!("rxray: {lost} records lost because this client's queue in the agent was full");
            }
        }
        None => eprintln!("\nrxray: {} records delivered; the agent went away before its summary", o.delivered),
    }
}

impl Joined {
    /// Writes the agent's output frames to `out` until `count` of them, a stop signal, or the
    /// agent's end; then says bye and waits (bounded) for the summary. `stall`: a test aid that
    /// waits before reading anything (a slow client).
    pub fn run(mut self, stop: &AtomicBool, out: &mut impl Write, count: Option<u64>, stall: Duration) -> Result<Outcome> {
        let start = Instant::now();
        if !stall.is_zero() {
            std::thread::sleep(stall);
        }
        let mut delivered = 0u64;
        let mut bye_deadline: Option<Instant> = None;
        let mut writing = true;
        let mut summary = None;
        let mut buf = vec![0u8; 64 << 10];
        'outer: loop {
            if bye_deadline.is_none() && (stop.load(Ordering::Relaxed) || !writing) {
                self.bye();
                bye_deadline = Some(Instant::now() + Duration::from_secs(3));
            }
            if bye_deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let mut pfd = libc::pollfd { fd: self.conn.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: pfd is one valid pollfd for our socket, open for the call.
            unsafe { libc::poll(&mut pfd, 1, 100) };
            loop {
                match self.read_once(&mut buf)? {
                    None => {
                        let _ = out.flush();
                        break 'outer;
                    }
                    Some(false) => break,
                    Some(true) => {}
                }
                while let Some((kind, payload)) = self.frames.next_frame()? {
                    match kind {
                        Kind::Out if writing => {
                            delivered += 1;
                            if out.write_all(&payload).is_err() || count.is_some_and(|c| delivered >= c) {
                                writing = false;
                            }
                        }
                        Kind::Out => {}
                        Kind::Lost => {
                            let v: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
                            eprintln!(
                                "rxray: {} events lost so far for this client: it read more slowly than they came and its queue in the agent ({} events) was full",
                                v["lost"], self.hello.queue
                            );
                        }
                        Kind::Summary => {
                            summary = serde_json::from_slice(&payload).ok();
                            let _ = out.flush();
                            break 'outer;
                        }
                        Kind::Hello => bail!("the agent sent a second hello"),
                    }
                }
            }
            if out.flush().is_err() {
                writing = false;
            }
        }
        Ok(Outcome { delivered, summary, took: start.elapsed() })
    }

    /// The payloads of the output frames that arrived, waiting at most `wait` for the first
    /// (`top`'s feed, which reads between redraws). `Ok(None)`: the agent closed the connection.
    pub fn poll_out(&mut self, wait: Duration) -> Result<Option<Vec<Vec<u8>>>> {
        let mut pfd = libc::pollfd { fd: self.conn.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: pfd is one valid pollfd for our socket, open for the call.
        unsafe { libc::poll(&mut pfd, 1, wait.as_millis().min(i32::MAX as u128) as i32) };
        let mut buf = vec![0u8; 64 << 10];
        let mut out = Vec::new();
        // The agent may close right after its last frames: those are read first.
        let mut closed = false;
        loop {
            match self.read_once(&mut buf)? {
                None => {
                    closed = true;
                    break;
                }
                Some(false) => break,
                Some(true) => {}
            }
        }
        while let Some((kind, payload)) = self.frames.next_frame()? {
            match kind {
                Kind::Out => out.push(payload),
                Kind::Summary => {
                    self.summary = serde_json::from_slice(&payload).ok();
                    closed = true;
                    break;
                }
                Kind::Hello => bail!("the agent sent a second hello"),
                Kind::Lost => {}
            }
        }
        Ok(if closed && out.is_empty() { None } else { Some(out) })
    }

    /// One read from the socket into the frame reader: `Some(true)` bytes came, `Some(false)`
    /// nothing is ready, `None` the agent closed the connection.
    fn read_once(&mut self, buf: &mut [u8]) -> Result<Option<bool>> {
        loop {
            return match self.conn.read(buf) {
                Ok(0) => Ok(None),
                Ok(n) => {
                    self.frames.feed(&buf[..n]);
                    Ok(Some(true))
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(Some(false)),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(e).context("reading from the agent"),
            };
        }
    }

    /// Says goodbye (the agent then drops this client).
    pub fn leave(mut self) {
        self.bye();
    }

    /// Says goodbye and stays: the agent sends what is left and its summary, then closes.
    pub fn say_bye(&mut self) {
        self.bye();
    }

    fn bye(&mut self) {
        // Non-blocking, and the line is short: it fits the socket buffer unless the agent is gone.
        let _ = self.conn.write_all(b"{\"cmd\":\"bye\"}\n");
    }
}
