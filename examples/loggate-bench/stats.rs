//! What the subscribers have seen, shared between their tasks and the
//! phases that read it: per-subscriber counters (each on its own cache
//! line, written without locks), the readiness and failure counts, the first
//! error, the totals over all subscribers, and the latency histograms.
//! [`drain`] waits on these counters for the end of a phase.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::time::sleep;

/// Latency histogram upper bound: 60 s in microseconds.
const HIST_MAX_US: u64 = 60_000_000;
/// [`drain`] gives up after this long without a new delivery or drop.
const DRAIN_STALL: Duration = Duration::from_secs(5);

/// A latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Counters of one subscriber, on their own cache line.
#[repr(align(64))]
#[derive(Default)]
pub struct SubStats {
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub lag_frames: AtomicU64,
    /// Nanoseconds since the bench started, at the last `event: log`.
    pub last_delivery_ns: AtomicU64,
}

/// The first error seen among many tasks, for the report.
#[derive(Default)]
pub struct FirstError(Mutex<Option<String>>);

impl FirstError {
    /// Keeps `e` if it is the first.
    pub fn record(&self, e: String) {
        let mut first = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e);
        }
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The state one group of subscribers shares with the bench.
pub struct Shared {
    /// The bench's clock: send times and arrival times are ns since this.
    start: Instant,
    /// One per subscriber, by index.
    pub subs: Vec<SubStats>,
    /// Subscribers that have seen `event: ready`.
    pub ready: AtomicUsize,
    /// Subscribers that failed before they were ready.
    pub failed: AtomicUsize,
    /// Streams that ended (or broke) while the bench still wanted them.
    pub ended: AtomicUsize,
    pub shutdown_frames: AtomicUsize,
    pub unparsed_latency: AtomicU64,
    first_error: FirstError,
    /// Set before the bench stops the subscribers: their errors then no
    /// longer count.
    pub stopping: AtomicBool,
}

impl Shared {
    pub fn new(n: usize) -> Shared {
        Shared {
            start: Instant::now(),
            subs: (0..n).map(|_| SubStats::default()).collect(),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
            shutdown_frames: AtomicUsize::new(0),
            unparsed_latency: AtomicU64::new(0),
            first_error: FirstError::default(),
            stopping: AtomicBool::new(false),
        }
    }

    /// Nanoseconds on the bench's clock.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Keeps `e` if it is the first error.
    pub fn error(&self, e: String) {
        self.first_error.record(e);
    }

    pub fn error_text(&self) -> Option<String> {
        self.first_error.get()
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.subs {
            t.delivered += s.delivered.load(Relaxed);
            t.dropped += s.dropped.load(Relaxed);
            t.lag_frames += s.lag_frames.load(Relaxed);
            t.last_delivery_ns = t.last_delivery_ns.max(s.last_delivery_ns.load(Relaxed));
        }
        t
    }
}

/// The sum of the subscribers' counters at one moment.
#[derive(Default, Clone, Copy, Debug)]
pub struct Totals {
    pub delivered: u64,
    pub dropped: u64,
    pub lag_frames: u64,
    /// The latest delivery of any subscriber, ns on the bench's clock.
    pub last_delivery_ns: u64,
}

/// Waits until subscribers have received (or been told they lost) everything
/// published since `base`; gives up after `timeout`, or after 5 s without
/// progress. Returns the totals then, and whether everything arrived.
pub async fn drain(
    shared: &Shared,
    base: Totals,
    expected: u64,
    timeout: Duration,
) -> (Totals, bool) {
    let deadline = Instant::now() + timeout;
    let mut last_progress = Instant::now();
    let mut last_seen = u64::MAX;
    loop {
        let t = shared.totals();
        let seen = (t.delivered - base.delivered) + (t.dropped - base.dropped);
        if seen >= expected {
            return (t, true);
        }
        if seen != last_seen {
            last_seen = seen;
            last_progress = Instant::now();
        }
        if Instant::now() >= deadline || last_progress.elapsed() > DRAIN_STALL {
            return (t, false);
        }
        sleep(Duration::from_millis(10)).await;
    }
}
