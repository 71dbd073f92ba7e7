//! The durable history store: every accepted event, on disk in `DATA_DIR`,
//! so that a restart or a deploy keeps history, ids and resume.
//!
//! An append-only log of segment files with a checksum on every record
//! ([`segment`], [`record`]), as NATS' file store and Kafka keep theirs:
//! appends are sequential writes, retention deletes whole segments (the
//! oldest first), a crash can only tear the newest segment's tail, which
//! the next start finds by its checksums and cuts off. The in-memory part
//! is one [`segment::Summary`] per segment, bounded by
//! `history.max_disk_bytes` over the segment size.
//!
//! Who talks to it:
//! - [`open`] at start (`server::app_data`): takes the directory's lock,
//!   recovers every segment and hands back what the registry continues
//!   from ([`Recovered`]: the epoch, the last sequence, the newest events
//!   for the in-memory history).
//! - The registry hands every batch it put in history to the [`Appender`]
//!   after the fan-out, without waiting: a bounded queue to the writer
//!   thread (`writer.rs`), which writes, syncs every
//!   `history.fsync_interval_ms` and applies retention. A full queue is a
//!   counted write error, never a wait on the registry's thread.
//! - The server closes it last ([`WriterHandle::close`]): everything
//!   queued is written and synced, and the stop is marked clean.

pub mod keys;
mod queue;
pub mod record;
pub mod segment;
mod writer;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::{Fsync, StoreKind};
use crate::event::Event;
use crate::metrics::{Metrics, label};
pub use queue::{Appender, MAX_PENDING_BYTES, WriterHandle};
use segment::{Damage, Summary};
pub use writer::Durable;

/// How the store is run, from `[history]`.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub dir: PathBuf,
    pub fsync: Fsync,
    pub fsync_interval: Duration,
    pub max_disk_bytes: u64,
    pub max_age_ms: i64,
    /// How much of the newest history [`open`] reads back for memory.
    pub memory_bytes: usize,
    /// How long idempotency keys are kept (`publish.idempotency_window_secs`).
    pub key_window_ms: i64,
}

impl From<&crate::config::Config> for StoreSettings {
    fn from(config: &crate::config::Config) -> Self {
        let h = &config.history;
        StoreSettings {
            dir: h.dir.clone(),
            fsync: h.fsync,
            fsync_interval: Duration::from_millis(h.fsync_interval_ms),
            max_disk_bytes: h.max_disk_bytes,
            max_age_ms: (h.max_age_minutes() as i64).saturating_mul(60_000),
            memory_bytes: h.max_bytes,
            key_window_ms: (config.publish.idempotency_window_secs as i64).saturating_mul(1000),
        }
    }
}

impl StoreSettings {
    /// Segments are a sixteenth of the byte budget (so retention drops
    /// about that much at a time), between 64 KiB and 64 MiB.
    pub fn segment_bytes(&self) -> u64 {
        (self.max_disk_bytes / 16).clamp(64 << 10, 64 << 20)
    }

    fn history_dir(&self) -> PathBuf {
        self.dir.join("history")
    }

    fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{} is in use by another loggate process (it holds the lock {}); \
         give each gateway its own DATA_DIR",
        dir.display(), lock.display()
    )]
    Locked { dir: PathBuf, lock: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the store held at start, for the registry to continue from.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The epoch of the stored ids (`None`: nothing stored yet).
    pub epoch: Option<u64>,
    /// The newest stored sequence.
    pub last_seq: u64,
    /// The last run stopped cleanly: everything it accepted is here.
    pub clean: bool,
    /// The newest events, oldest first, within the memory budget.
    pub recent: Vec<Arc<Event>>,
    /// The oldest sequence on disk.
    pub first_seq: Option<u64>,
    /// Idempotency keys answered within their window, oldest first.
    pub keys: Vec<crate::idempotency::Entry>,
}

/// An opened store, before its writer starts.
#[derive(Debug)]
pub struct Opened {
    settings: StoreSettings,
    /// Held for the life of the process: the lock on `DATA_DIR`.
    lock: File,
    /// Every segment, oldest first; the last one is appended to.
    segments: VecDeque<(PathBuf, Summary)>,
}

/// The name of the file whose lock says a gateway uses the directory.
const LOCK_FILE: &str = "LOCK";

/// Written by a clean stop: the last sequence it stored.
const CLEAN_FILE: &str = "CLEAN";

/// Opens (creating if need be) the store in `settings.dir`: takes its
/// lock, recovers every segment, and reads back the newest events.
pub fn open(settings: StoreSettings, metrics: &Metrics) -> Result<(Opened, Recovered), StoreError> {
    let dir = settings.history_dir();
    std::fs::create_dir_all(&dir).map_err(at(&dir))?;
    let keys_dir = settings.keys_dir();
    std::fs::create_dir_all(&keys_dir).map_err(at(&keys_dir))?;
    let lock_path = settings.dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(at(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StoreError::Locked {
                dir: settings.dir.clone(),
                lock: lock_path,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(at(&lock_path)(e)),
    }
    let segments = recover_segments(&dir, metrics)?;
    let clean_path = dir.join(CLEAN_FILE);
    let clean_seq = std::fs::read_to_string(&clean_path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    // Gone from here on: a crash of this run must not look clean.
    if clean_seq.is_some() {
        std::fs::remove_file(&clean_path).map_err(at(&clean_path))?;
    }
    let newest = segments.back().map(|(_, s)| *s);
    let last_seq = newest.map_or(0, |s| s.last_seq);
    let recovered = Recovered {
        epoch: newest.map(|s| s.epoch),
        last_seq,
        clean: newest.is_none() || clean_seq == Some(last_seq),
        recent: read_recent(&segments, settings.memory_bytes, settings.max_age_ms),
        first_seq: segments.front().map(|(_, s)| s.first_seq),
        keys: keys::read(&keys_dir, settings.key_window_ms, crate::event::now_ms())
            .map_err(at(&keys_dir))?,
    };
    let opened = Opened {
        settings,
        lock,
        segments,
    };
    metrics.history_disk_bytes.set(opened.disk_bytes() as i64);
    Ok((opened, recovered))
}

impl Opened {
    /// Starts the writer thread, appending events of `epoch`: the
    /// recovered one, or a new one if nothing was stored.
    pub fn start_writer(
        self,
        epoch: u64,
        metrics: Arc<Metrics>,
    ) -> io::Result<(Appender, WriterHandle)> {
        queue::start(self, epoch, metrics)
    }

    fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|(_, s)| s.bytes).sum()
    }
}

/// Every segment of `dir`, oldest first, each checked: sealed ones by
/// their summary (scanned when it is missing or stale), the newest by
/// reading it whole. A torn or corrupt tail of the newest is cut off; an
/// older segment that cannot be read to its end is set aside
/// (`.corrupt`), logged and counted.
fn recover_segments(
    dir: &Path,
    metrics: &Metrics,
) -> Result<VecDeque<(PathBuf, Summary)>, StoreError> {
    let mut paths: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(at(dir))? {
        let entry = entry.map_err(at(dir))?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(segment::parse_file_name) {
            paths.push((first, entry.path()));
        }
    }
    paths.sort();
    let mut segments = VecDeque::with_capacity(paths.len());
    let newest = paths.len().saturating_sub(1);
    for (i, (_, path)) in paths.into_iter().enumerate() {
        let is_newest = i == newest;
        if !is_newest && let Some(summary) = segment::read_summary(&path) {
            segments.push_back((path, summary));
            continue;
        }
        let scan = match segment::read_records(&path, |_, _| std::ops::ControlFlow::Continue(())) {
            Ok(scan) => scan,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && is_newest => {
                // Created, then cut before its header was whole.
                tracing::warn!(path = %path.display(), "history: an empty newest segment with a torn header; removed");
                metrics.history_recovered(label::recovered::TORN_TAIL);
                std::fs::remove_file(&path).map_err(at(&path))?;
                continue;
            }
            Err(e) => {
                set_aside(&path, &e.to_string(), metrics)?;
                continue;
            }
        };
        let summary = scan.summary;
        match (scan.damage, is_newest) {
            (None, _) => {}
            (Some(damage), true) => {
                let what = match damage {
                    Damage::Torn => label::recovered::TORN_TAIL,
                    Damage::Corrupt => label::recovered::CORRUPT_TAIL,
                };
                let cut = std::fs::metadata(&path).map_err(at(&path))?.len() - summary.bytes;
                tracing::warn!(
                    path = %path.display(),
                    kept_events = summary.events,
                    cut_bytes = cut,
                    "history: the newest segment ends in a {} record (a crash mid-write); cut off there",
                    if damage == Damage::Torn { "torn" } else { "corrupt" },
                );
                metrics.history_recovered(what);
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(at(&path))?;
                file.set_len(summary.bytes).map_err(at(&path))?;
                file.sync_all().map_err(at(&path))?;
            }
            (Some(_), false) => {
                set_aside(&path, "a record fails its checksum", metrics)?;
                continue;
            }
        }
        if !is_newest {
            // Scanned because its summary was missing: write it now.
            segment::write_summary(&path, &summary).map_err(at(&path))?;
        }
        segments.push_back((path, summary));
    }
    Ok(segments)
}

/// Renames a damaged older segment out of the log, so it is neither read
/// nor deleted, and says so.
fn set_aside(path: &Path, why: &str, metrics: &Metrics) -> Result<(), StoreError> {
    let aside = path.with_extension("seg.corrupt");
    tracing::error!(
        path = %path.display(),
        set_aside_as = %aside.display(),
        "history: a segment cannot be read ({why}); its events are left out of history"
    );
    metrics.history_recovered(label::recovered::CORRUPT_SEGMENT);
    std::fs::rename(path, &aside).map_err(at(path))?;
    let _ = std::fs::remove_file(segment::summary_path(path));
    Ok(())
}

/// The newest events on disk, oldest first: whole segments from the
/// newest back, until `budget` bytes of events or the age limit.
fn read_recent(
    segments: &VecDeque<(PathBuf, Summary)>,
    budget: usize,
    max_age_ms: i64,
) -> Vec<Arc<Event>> {
    let oldest_allowed = crate::event::now_ms().saturating_sub(max_age_ms);
    let mut parts: Vec<Vec<Arc<Event>>> = Vec::new();
    let mut bytes = 0usize;
    for (path, summary) in segments.iter().rev() {
        if bytes >= budget || (summary.events > 0 && summary.last_ms < oldest_allowed) {
            break;
        }
        let mut events = Vec::with_capacity(summary.events as usize);
        if let Err(e) = segment::read_events(path, |e| events.push(e)) {
            tracing::warn!(path = %path.display(), "history: cannot read a segment back: {e}");
            break;
        }
        bytes += events.iter().map(|e| e.size()).sum::<usize>();
        parts.push(events);
    }
    let mut recent: Vec<Arc<Event>> = parts.into_iter().rev().flatten().collect();
    // Whole segments were read: keep only the newest `budget` bytes.
    let mut kept = 0usize;
    let mut start = recent.len();
    while start > 0 && kept + recent[start - 1].size() <= budget {
        start -= 1;
        kept += recent[start].size();
    }
    recent.drain(..start);
    recent
}

#[cfg(test)]
mod tests;
