//! A group of SSE subscribers: spawning their tasks (`sse.rs`), waiting
//! until every one has seen `event: ready`, and at the end stopping them and
//! merging their latency histograms. The measured subscribers are one group;
//! the cluster warm-up's probe subscriber is a group of one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::sleep;

use crate::report::progress;
use crate::sse::subscriber;
use crate::stats::Shared;

pub struct Subscribers {
    /// Their counters.
    pub shared: Arc<Shared>,
    /// Each task ends with its latency histogram.
    handles: Vec<JoinHandle<Histogram<u64>>>,
}

/// Why [`Subscribers::wait_ready`] gave up.
pub enum NotReady {
    /// A process under test exited.
    Died(anyhow::Error),
    /// Some subscriber failed, or the time ran out.
    Incomplete {
        ready: usize,
        failed: usize,
        /// The first subscriber error, or "timed out".
        why: String,
    },
}

impl Subscribers {
    /// Spawns `n` subscribers at `addr`, subscriber `i` on the stream
    /// `path(i)` (a request target: [`crate::publish::stream_path`], or
    /// Nchan's `/sub/…`);
    /// at most `connect`'s permits connect at once. They stop when `stop`
    /// changes.
    pub fn spawn(
        n: usize,
        path: impl Fn(usize) -> String,
        addr: SocketAddr,
        connect: &Arc<Semaphore>,
        stop: &watch::Receiver<bool>,
    ) -> Subscribers {
        let shared = Arc::new(Shared::new(n));
        let handles = (0..n)
            .map(|i| {
                tokio::spawn(subscriber(
                    i,
                    path(i),
                    addr,
                    Arc::clone(&shared),
                    Arc::clone(connect),
                    stop.clone(),
                ))
            })
            .collect();
        Subscribers { shared, handles }
    }

    /// Checks every `poll` until all are ready; gives up at the first
    /// failure, when `alive` says a process under test has exited, or at
    /// `deadline`.
    pub async fn wait_ready(
        &self,
        mut alive: impl FnMut() -> anyhow::Result<()>,
        deadline: Instant,
        poll: Duration,
    ) -> Result<(), NotReady> {
        let n = self.handles.len();
        loop {
            let ready = self.shared.ready.load(Relaxed);
            let failed = self.shared.failed.load(Relaxed);
            if ready == n {
                return Ok(());
            }
            if failed > 0 || Instant::now() >= deadline {
                let why = self
                    .shared
                    .error_text()
                    .unwrap_or_else(|| "timed out".into());
                return Err(NotReady::Incomplete { ready, failed, why });
            }
            alive().map_err(NotReady::Died)?;
            sleep(poll).await;
        }
    }

    /// [`Subscribers::wait_ready`], its refusal as an error that says how
    /// many of them made it.
    pub async fn wait_all_ready(
        &self,
        alive: impl FnMut() -> anyhow::Result<()>,
        deadline: Instant,
        poll: Duration,
    ) -> anyhow::Result<()> {
        let n = self.handles.len();
        match self.wait_ready(alive, deadline, poll).await {
            Ok(()) => Ok(()),
            Err(NotReady::Died(e)) => Err(e),
            Err(NotReady::Incomplete { ready, failed, why }) => Err(anyhow::anyhow!(
                "only {ready} of {n} subscribers became ready ({failed} failed): {why}"
            )),
        }
    }

    /// Marks them stopping, tells them to stop through `stop` (the sender
    /// of the receiver they were spawned with), and merges their
    /// histograms into `hist`, waiting up to `within`.
    pub async fn stop_into(
        self,
        stop: &watch::Sender<bool>,
        hist: &mut Histogram<u64>,
        within: Duration,
    ) {
        self.mark_stopping();
        let _ = stop.send(true);
        if !self.collect_into(hist, within).await {
            progress(format!("some subscribers did not stop within {within:?}"));
        }
    }

    /// From now on a subscriber's error is not reported: the bench is
    /// closing the streams itself.
    pub fn mark_stopping(&self) {
        self.shared.stopping.store(true, Relaxed);
    }

    /// Waits up to `within` for the tasks (after `stop` has changed) and
    /// merges their histograms into `hist`. False if some did not end.
    pub async fn collect_into(self, hist: &mut Histogram<u64>, within: Duration) -> bool {
        let collect = async {
            for h in self.handles {
                if let Ok(h) = h.await {
                    let _ = hist.add(&h);
                }
            }
        };
        tokio::time::timeout(within, collect).await.is_ok()
    }

    /// Ends the tasks without waiting.
    pub fn abort(&self) {
        for h in &self.handles {
            h.abort();
        }
    }
}
