//! The store's writer thread: the only code that writes segments.
//!
//! The registry hands it batches through an `Appender` (`queue.rs`), a
//! bounded queue it never waits on. The thread writes whatever has queued in one write
//! (so the data is in the OS's cache, safe from the process being killed,
//! within a moment of the fan-out), syncs every `fsync_interval`, moves to
//! a new segment at the segment size, and deletes the oldest segments
//! past the age or byte limit. I/O errors (a full disk) are counted and
//! logged, and the next batch simply tries again, so the store recovers by
//! itself once there is space.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use super::keys::KeyLog;
use super::segment::{self, SegmentWriter, Summary};
use super::{CLEAN_FILE, Opened, StoreSettings};
use crate::event::Event;
use crate::metrics::Metrics;

/// How often retention looks at the oldest segment.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

/// Commands queued to the writer thread.
pub(super) enum Command {
    Append(Vec<Arc<Event>>, usize),
    /// `HISTORY_FSYNC=always`: written, synced, then reported by number.
    AppendDurable(Vec<Arc<Event>>, usize, u64),
    Close(SyncSender<io::Result<()>>),
    /// An idempotency key as it is answered.
    Key(crate::idempotency::Entry),
    /// Tests: write what is queued and end without marking the stop
    /// clean, as a killed process leaves the store.
    #[cfg(test)]
    Abandon(SyncSender<()>),
}

/// `HISTORY_FSYNC=always`: batch `batch` is on disk (`stored`), or could
/// not be put there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    pub batch: u64,
    pub stored: bool,
}

pub(super) struct Writer {
    settings: StoreSettings,
    dir: PathBuf,
    /// Held until the thread ends (after the clean mark is written).
    _lock: std::fs::File,
    /// Sealed segments, oldest first.
    sealed: VecDeque<(PathBuf, Summary)>,
    current: Option<SegmentWriter>,
    keys: KeyLog,
    /// `HISTORY_FSYNC=always`: where durable batches are reported.
    pub(super) reports: Option<tokio::sync::mpsc::UnboundedSender<Durable>>,
    /// Events of this round that could not be stored (no segment).
    round_failed: bool,
    metrics: Arc<Metrics>,
    pending: Arc<AtomicUsize>,
    /// The newest sequence written: what a clean stop records.
    last_seq: u64,
    last_sync: Instant,
    last_retention: Instant,
}

impl Writer {
    pub(super) fn new(
        opened: Opened,
        epoch: u64,
        metrics: Arc<Metrics>,
        pending: Arc<AtomicUsize>,
    ) -> io::Result<Self> {
        let Opened {
            settings,
            lock,
            mut segments,
        } = opened;
        let dir = settings.history_dir();
        let last_seq = segments.back().map_or(0, |(_, s)| s.last_seq);
        // The newest segment is appended to if it is of this epoch; if not
        // it is sealed and the next event starts a segment.
        let current = match segments.pop_back() {
            Some((path, summary)) if summary.epoch == epoch => {
                Some(SegmentWriter::reopen(&path, summary)?)
            }
            Some((path, summary)) => {
                segment::write_summary(&path, &summary)?;
                segments.push_back((path, summary));
                None
            }
            None => None,
        };
        let keys = KeyLog::new(settings.keys_dir(), settings.key_window_ms);
        Ok(Writer {
            reports: None,
            round_failed: false,
            keys,
            settings,
            dir,
            _lock: lock,
            sealed: segments,
            current,
            metrics,
            pending,
            last_seq,
            last_sync: Instant::now(),
            last_retention: Instant::now(),
        })
    }

    pub(super) fn run(&mut self, rx: Receiver<Command>) {
        loop {
            let wait = self
                .settings
                .fsync_interval
                .saturating_sub(self.last_sync.elapsed())
                .max(Duration::from_millis(1));
            match rx.recv_timeout(wait) {
                Ok(command) => {
                    let mut next = Some(command);
                    let mut durable: Vec<u64> = Vec::new();
                    self.round_failed = false;
                    let before = self
                        .current
                        .as_ref()
                        .map(|c| (c.path().to_path_buf(), c.summary));
                    // Whatever has queued meanwhile goes in the same write.
                    while let Some(command) = next.take() {
                        match command {
                            Command::Append(events, bytes) => {
                                self.append(&events);
                                self.pending.fetch_sub(bytes, Ordering::AcqRel);
                            }
                            Command::AppendDurable(events, bytes, batch) => {
                                self.append(&events);
                                self.pending.fetch_sub(bytes, Ordering::AcqRel);
                                durable.push(batch);
                            }
                            Command::Key(entry) => {
                                if let Err(e) = self.keys.push(&entry) {
                                    self.metrics.history_write_errors.inc();
                                    self.io_error("keeping an idempotency key", &e);
                                }
                            }
                            Command::Close(reply) => {
                                let _ = reply.send(self.close());
                                return;
                            }
                            #[cfg(test)]
                            Command::Abandon(reply) => {
                                let _ = self.flush();
                                let _ = reply.send(());
                                return;
                            }
                        }
                        next = rx.try_recv().ok();
                    }
                    let written = self.flush() && !self.round_failed;
                    if !durable.is_empty() {
                        // Group commit: one sync for every batch of the round.
                        let stored = written && self.sync();
                        if !stored {
                            self.roll_back(before);
                        }
                        if let Some(reports) = &self.reports {
                            for batch in durable {
                                let _ = reports.send(Durable { batch, stored });
                            }
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Dropped without a close (a gateway built and dropped by a
                // test): written and synced, but not marked clean, which
                // only costs the next start a jump in ids.
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.flush();
                    let _ = self.sync();
                    return;
                }
            }
            if self.last_sync.elapsed() >= self.settings.fsync_interval {
                let _ = self.sync();
            }
            if self.last_retention.elapsed() >= RETENTION_EVERY {
                self.retain();
            }
        }
    }

    fn append(&mut self, events: &[Arc<Event>]) {
        for event in events {
            let full = self.current.as_ref().is_none_or(|c| {
                c.summary.bytes >= self.settings.segment_bytes()
                    || c.summary.epoch != event.id.epoch
            });
            if full && !self.roll(event) {
                self.metrics.history_write_errors.inc();
                self.round_failed = true;
                continue;
            }
            if let Some(current) = self.current.as_mut() {
                current.push(event);
            }
        }
    }

    /// Seals the current segment and starts one at `first`. False if no
    /// segment could be created (the event is not stored).
    fn roll(&mut self, first: &Event) -> bool {
        if let Some(current) = self.current.take() {
            let path = current.path().to_path_buf();
            match current.seal() {
                Ok(summary) => self.sealed.push_back((path, summary)),
                Err(e) => {
                    self.io_error("sealing a segment", &e);
                    // Its records are still in the file; a start scans
                    // it (no summary yet).
                    if let Ok(scan) =
                        segment::read_records(&path, |_, _| std::ops::ControlFlow::Continue(()))
                    {
                        self.sealed.push_back((path, scan.summary));
                    }
                }
            }
        }
        match SegmentWriter::create(&self.dir, first.id.epoch, first.id.seq) {
            Ok(writer) => {
                self.current = Some(writer);
                true
            }
            Err(e) => {
                self.io_error("starting a segment", &e);
                false
            }
        }
    }

    /// A failed round of durable batches: the segment it wrote to is cut
    /// back to where the round began (if the round moved on to a new
    /// segment, what it sealed stays: a rare case, documented).
    fn roll_back(&mut self, before: Option<(PathBuf, Summary)>) {
        if let (Some(current), Some((path, summary))) = (self.current.as_mut(), before)
            && current.path() == path
            && let Err(e) = current.rollback(summary)
        {
            self.io_error("cutting back a failed write", &e);
        }
    }

    /// Whether everything pushed is now written.
    fn flush(&mut self) -> bool {
        if let Err(e) = self.keys.flush() {
            self.metrics.history_write_errors.inc();
            self.io_error("writing idempotency keys", &e);
        }
        let Some(current) = self.current.as_mut() else {
            return true;
        };
        let before = current.summary.events;
        let unwritten = current.summary.last_seq;
        let had_data = current.has_unwritten();
        match current.flush() {
            Ok(()) => {
                self.last_seq = self.last_seq.max(unwritten);
                if had_data && self.metrics.history_disk_degraded.get() != 0 {
                    self.metrics.history_disk_degraded.set(0);
                    tracing::info!(dir = %self.dir.display(), "history: writing to the store again");
                }
                true
            }
            Err(e) => {
                let lost = before.saturating_sub(current.summary.events);
                self.metrics.history_write_errors.inc_by(lost);
                self.io_error("writing events", &e);
                false
            }
        }
    }

    /// Whether what was written is now on disk.
    fn sync(&mut self) -> bool {
        self.last_sync = Instant::now();
        if let Err(e) = self.keys.sync() {
            self.io_error("syncing idempotency keys", &e);
        }
        let Some(current) = self.current.as_mut() else {
            return true;
        };
        self.metrics.history_fsyncs.inc();
        match current.sync() {
            Ok(()) => true,
            Err(e) => {
                self.io_error("syncing", &e);
                false
            }
        }
    }

    fn io_error(&self, doing: &str, e: &io::Error) {
        self.metrics.history_disk_degraded.set(1);
        tracing::error!(dir = %self.dir.display(), "history: {doing} failed: {e}");
    }

    /// Deletes the oldest segments past the age or byte limit.
    fn retain(&mut self) {
        self.last_retention = Instant::now();
        if let Err(e) = self.keys.retain(crate::event::now_ms()) {
            self.io_error("deleting expired idempotency keys", &e);
        }
        let oldest_allowed = crate::event::now_ms().saturating_sub(self.settings.max_age_ms);
        // A quiet gateway's only segment ages out too.
        if self.sealed.is_empty()
            && let Some(current) = self.current.as_ref()
            && current.summary.events > 0
            && current.summary.last_ms < oldest_allowed
            && let Some(current) = self.current.take()
        {
            let path = current.path().to_path_buf();
            match current.seal() {
                Ok(summary) => self.sealed.push_back((path, summary)),
                Err(e) => self.io_error("sealing a segment", &e),
            }
        }
        let mut total = self.disk_bytes();
        while let Some((path, summary)) = self.sealed.front() {
            if total <= self.settings.max_disk_bytes && summary.last_ms >= oldest_allowed {
                break;
            }
            if let Err(e) = remove_segment(path) {
                self.io_error("deleting an old segment", &e);
                break;
            }
            total -= summary.bytes;
            self.sealed.pop_front();
        }
        self.publish_sizes(total);
    }

    fn disk_bytes(&self) -> u64 {
        self.sealed.iter().map(|(_, s)| s.bytes).sum::<u64>()
            + self.current.as_ref().map_or(0, |c| c.summary.bytes)
    }

    fn publish_sizes(&self, bytes: u64) {
        let events: u64 = self.sealed.iter().map(|(_, s)| s.events).sum::<u64>()
            + self.current.as_ref().map_or(0, |c| c.summary.events);
        let oldest_ms = self
            .sealed
            .iter()
            .map(|(_, s)| s)
            .chain(self.current.as_ref().map(|c| &c.summary))
            .find(|s| s.events > 0)
            .map_or(0, |s| s.first_ms);
        self.metrics.history_disk_bytes.set(bytes as i64);
        self.metrics.history_disk_events.set(events as i64);
        self.metrics
            .history_disk_oldest_seconds
            .set(oldest_ms as f64 / 1000.0);
    }

    /// Writes and syncs what was queued and marks the stop clean.
    fn close(&mut self) -> io::Result<()> {
        let _ = self.flush();
        if let Some(current) = self.current.as_mut() {
            current.flush()?;
            current.sync()?;
        }
        self.keys.flush()?;
        self.keys.sync()?;
        let clean = self.dir.join(CLEAN_FILE);
        std::fs::write(&clean, self.last_seq.to_string())?;
        std::fs::File::open(&clean)?.sync_all()?;
        segment::sync_dir(&self.dir)?;
        tracing::info!(
            last_seq = self.last_seq,
            "history: stored and synced; stopped cleanly"
        );
        Ok(())
    }
}

fn remove_segment(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)?;
    match std::fs::remove_file(segment::summary_path(path)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
