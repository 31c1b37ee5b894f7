//! The store's writer thread: batches arrive through a bounded queue, off the packet path, and are
//! written one transaction each. A batch the queue cannot take is counted (and the count is written
//! with the next batch that gets through), never dropped silently.
use crate::{Batch, Retention, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the writer has done, for `rxray status`.
#[derive(Default, Debug)]
pub struct WriterStats {
    pub batches_written: AtomicU64,
    pub rows_written: AtomicU64,
    /// Batches the queue was full for (the writer could not keep up).
    pub batches_lost: AtomicU64,
    /// Batches whose write failed (the error is in `last_error`).
    pub batches_failed: AtomicU64,
    /// ns since the epoch of the newest batch written.
    pub last_written_ts: AtomicU64,
    /// Batches waiting in the queue.
    pub queued: AtomicU64,
    pub size_bytes: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

enum Msg {
    Batch(Batch),
    Retain(u64),
}

/// A running writer.
pub struct StoreWriter {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<WriterStats>,
}

impl StoreWriter {
    /// Starts writing to `store`; at most `queue` batches wait.
    pub fn start(mut store: Store, queue: usize, retention: Retention) -> Result<StoreWriter, StoreError> {
        let (tx, rx) = sync_channel::<Msg>(queue.max(1));
        let stats = Arc::new(WriterStats::default());
        stats.size_bytes.store(store.size_bytes(), Ordering::Relaxed);
        let st = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("rxray-store".into())
            .spawn(move || {
                let mut last_size = Instant::now();
                // Batches lost up to the last one written: each batch row carries the losses since.
                let mut reported = 0u64;
                for m in rx {
                    st.queued.fetch_sub(1, Ordering::Relaxed);
                    match m {
                        Msg::Batch(b) => {
                            let lost = st.batches_lost.load(Ordering::Relaxed);
                            match store.write(&b, lost - reported) {
                                Ok(()) => {
                                    reported = lost;
                                    st.batches_written.fetch_add(1, Ordering::Relaxed);
                                    st.rows_written.fetch_add(b.rows() as u64, Ordering::Relaxed);
                                    st.last_written_ts.store(b.ts, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    st.batches_failed.fetch_add(1, Ordering::Relaxed);
                                    *st.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                                }
                            }
                        }
                        Msg::Retain(now) => {
                            if let Err(e) = store.retain(now, retention) {
                                *st.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("retention: {e}"));
                            }
                        }
                    }
                    if last_size.elapsed() > Duration::from_secs(1) {
                        st.size_bytes.store(store.size_bytes(), Ordering::Relaxed);
                        last_size = Instant::now();
                    }
                }
                st.size_bytes.store(store.size_bytes(), Ordering::Relaxed);
            })
            .map_err(|e| StoreError::Io { path: "rxray-store thread".into(), detail: e.to_string() })?;
        Ok(StoreWriter { tx: Some(tx), thread: Some(thread), stats })
    }

    /// Queues a batch; when the queue is full the batch is counted as lost. Never blocks.
    pub fn submit(&self, b: Batch) -> bool {
        self.send(Msg::Batch(b))
    }

    /// Queues a retention pass at `now_ns`.
    pub fn retain(&self, now_ns: u64) -> bool {
        self.send(Msg::Retain(now_ns))
    }

    fn send(&self, m: Msg) -> bool {
        let Some(tx) = &self.tx else { return false };
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(m) {
            Ok(()) => true,
            Err(TrySendError::Full(Msg::Batch(_))) | Err(TrySendError::Disconnected(Msg::Batch(_))) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                self.stats.batches_lost.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(_) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Writes what is queued and stops the thread.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        self.stop();
    }
}
