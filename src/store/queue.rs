//! The two ends of the queue to the store's writer thread: the
//! registry's [`Appender`] (bounded, never waited on) and the server's
//! [`WriterHandle`] (closes the store at a stop), the commands that go
//! through it, and the reports of durable batches that come back
//! (`HISTORY_FSYNC=always`). The thread itself is `writer.rs`.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};

use super::Opened;
use super::writer::{Command, Durable, Writer};
use crate::event::Event;
use crate::metrics::Metrics;

/// Batches that may wait for the writer; the byte bound below is the one
/// that normally holds.
const QUEUE_BATCHES: usize = 4096;

/// Bytes of events that may wait for the writer before further batches
/// are refused (and counted as write errors) instead of queued.
pub const MAX_PENDING_BYTES: usize = 64 << 20;

/// The registry's end of the queue to the writer.
#[derive(Debug)]
pub struct Appender {
    tx: SyncSender<Command>,
    /// `HISTORY_FSYNC=always`: the writer's reports, for the registry to
    /// take once ([`Appender::take_reports`]).
    reports: Option<tokio::sync::mpsc::UnboundedReceiver<Durable>>,
    pending: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    /// Set once a refusal was logged, until the queue takes a batch again:
    /// one log line per episode, not per batch.
    refusing: AtomicBool,
    reports_wanted: bool,
}

impl Appender {
    /// `HISTORY_FSYNC=always`: events are delivered only once on disk.
    pub fn always(&self) -> bool {
        self.reports_wanted
    }

    /// The writer's reports of durable batches (once).
    pub fn take_reports(&mut self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Durable>> {
        self.reports.take()
    }

    /// Queues batch number `batch` to be written and synced; its
    /// [`Durable`] report follows. False if the writer is too far behind
    /// to take it (nothing of it is stored, and nothing will be reported).
    pub fn append_durable(&self, events: Vec<Arc<Event>>, batch: u64) -> bool {
        self.queue(events, |events, bytes| {
            Command::AppendDurable(events, bytes, batch)
        })
    }

    /// Bytes of events queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Queues `events` (already fanned out and in memory) to be written.
    /// Never waits: if the writer is that far behind, the batch is not
    /// stored, which is counted and logged.
    pub fn append(&self, events: Vec<Arc<Event>>) {
        self.queue(events, Command::Append);
    }

    fn queue(
        &self,
        events: Vec<Arc<Event>>,
        command: impl FnOnce(Vec<Arc<Event>>, usize) -> Command,
    ) -> bool {
        if events.is_empty() {
            return true;
        }
        let bytes: usize = events.iter().map(|e| e.size()).sum();
        let n = events.len() as u64;
        let before = self.pending.fetch_add(bytes, Ordering::AcqRel);
        let refused = if before + bytes > MAX_PENDING_BYTES {
            true
        } else {
            match self.tx.try_send(command(events, bytes)) {
                Ok(()) => false,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => true,
            }
        };
        if refused {
            self.pending.fetch_sub(bytes, Ordering::AcqRel);
            self.metrics.history_write_errors.inc_by(n);
            if !self.refusing.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    events = n,
                    "history: the disk writer is too far behind; events are not being stored"
                );
            }
        } else if self.refusing.swap(false, Ordering::Relaxed) {
            tracing::info!("history: the disk writer keeps up again");
        }
        !refused
    }
}

/// The server's end: closes the store at the very end of a stop.
#[derive(Debug)]
pub struct WriterHandle {
    tx: SyncSender<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriterHandle {
    /// Writes and syncs everything queued before this call, marks the stop
    /// clean and ends the thread.
    pub fn close(mut self) -> io::Result<()> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let result = match self.tx.send(Command::Close(reply)) {
            Ok(()) => answer
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("the history writer ended"))),
            Err(_) => Err(io::Error::other("the history writer ended")),
        };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        result
    }

    /// Where the idempotency table hands each answered key: queued to the
    /// writer like events, never waited on (a full queue is counted).
    pub fn key_sink(
        &self,
        metrics: Arc<Metrics>,
    ) -> impl Fn(crate::idempotency::Entry) + Send + Sync + 'static {
        let tx = self.tx.clone();
        move |entry| {
            if tx.try_send(Command::Key(entry)).is_err() {
                metrics.history_write_errors.inc();
            }
        }
    }

    /// Tests: ends the writer as a killed process would leave it (what was
    /// written is in the files, nothing marks the stop clean).
    #[cfg(test)]
    pub fn abandon(mut self) {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        if self.tx.send(Command::Abandon(reply)).is_ok() {
            let _ = answer.recv();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the writer for `opened`, appending events of `epoch`.
pub(super) fn start(
    opened: Opened,
    epoch: u64,
    metrics: Arc<Metrics>,
) -> io::Result<(Appender, WriterHandle)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_BATCHES);
    let pending = Arc::new(AtomicUsize::new(0));
    let always = opened.settings.fsync == super::Fsync::Always;
    // Unbounded in type only: there is one report per batch the queue
    // above took, and it holds QUEUE_BATCHES.
    let (report_tx, report_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut writer = Writer::new(opened, epoch, Arc::clone(&metrics), Arc::clone(&pending))?;
    writer.reports = always.then_some(report_tx);
    let thread = std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || writer.run(rx))?;
    Ok((
        Appender {
            tx: tx.clone(),
            reports: always.then_some(report_rx),
            reports_wanted: always,
            pending,
            metrics,
            refusing: AtomicBool::new(false),
        },
        WriterHandle {
            tx,
            thread: Some(thread),
        },
    ))
}
