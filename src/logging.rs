//! The process's log output: tracing to stderr, through a bounded queue and
//! a writer thread of its own, so that logging never blocks or wedges the
//! gateway.
//!
//! A log line is handed to the queue without waiting; when the queue is
//! full (stderr is a pipe nobody reads, or a slow terminal) the line is
//! dropped and counted (`loggate_log_lines_dropped_total`), never waited
//! for. Write errors (stderr closed, as under `loggate | head -3`) are
//! ignored by the writer thread; writing to stderr directly would make
//! tracing-subscriber report the failure with `eprintln!`, which panics on a
//! closed stderr and killed the shutdown task with it.

use std::sync::OnceLock;
use std::time::Duration;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

use crate::config::{Config, LogFormat};

/// Log lines waiting for the writer thread at most.
const QUEUED_LINES: usize = 16 * 1024;
/// How long exiting waits for queued lines to be written.
const FLUSH_ON_EXIT: Duration = Duration::from_secs(2);

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Log lines dropped so far because the queue was full.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// Keeps the writer thread alive; [`Logging::finish`] flushes it on exit.
pub struct Logging(WorkerGuard);

impl Logging {
    /// Waits (bounded) for queued lines to be written. The wait happens on a
    /// thread of its own: a writer stuck on a full pipe, or a closed stdout
    /// the guard complains to, must not keep the process from exiting.
    pub fn finish(self) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let flusher = std::thread::Builder::new()
            .name("loggate-log-flush".into())
            .spawn(move || {
                drop(self.0);
                let _ = done_tx.send(());
            });
        if flusher.is_ok() {
            let _ = done_rx.recv_timeout(FLUSH_ON_EXIT);
        }
    }
}

/// Installs the global subscriber: `log.filter`, `log.format`, colours only
/// on a terminal.
pub fn init(config: &Config) -> Logging {
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("loggate-log")
        .finish(std::io::stderr());
    let _ = DROPPED.set(writer.error_counter());
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Logging(guard)
}
