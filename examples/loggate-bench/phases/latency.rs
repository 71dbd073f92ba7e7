//! The fixed-rate phase: single-event publishes at `--rate` per second for
//! `--latency-duration` seconds, each event carrying the time it was
//! *scheduled* to be sent (`t=<ns>`), so every subscriber records
//! publish-to-delivery latency, and a publish held up behind slow ones counts
//! its wait too (no coordinated omission).
//! Its rows wait until the subscribers have stopped and their histograms
//! are merged ([`Latency::report`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::time::sleep;

use super::Bench;
use crate::args::secs;
use crate::metrics::ClusterCounters;
use crate::procfs::CpuMeter;
use crate::publish::{Endpoint, PublishStats, event_json, http_client};
use crate::report::{Report, failures, progress, thousands};
use crate::stats::{Shared, drain};

/// Publishes in flight at once.
const MAX_IN_FLIGHT: u32 = 256;
/// A pause after the full-speed phase, so that its tail does not land in
/// this one's latencies.
const PAUSE_BEFORE: Duration = Duration::from_millis(500);
/// The last stretch before a tick, slept with the OS's timer rather than
/// tokio's (whose wheel turns once a millisecond).
const FINE_SLEEP: Duration = Duration::from_millis(2);
/// How long to wait for the publishes still in flight at the end.
const IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the phase measured, short of the latencies themselves.
pub struct Latency {
    pub publish: Arc<PublishStats>,
    /// Publishes accepted.
    ok: u64,
    /// Seconds of publishing.
    elapsed: f64,
    delivered: u64,
    expected: u64,
    dropped: u64,
    /// The drain saw everything arrive.
    complete: bool,
    cpu_row: (&'static str, String),
    /// The cluster path's counters over the phase.
    cluster_path: Option<String>,
}

pub async fn run(bench: &mut Bench<'_>, shared: &Arc<Shared>) -> anyhow::Result<Latency> {
    let args = bench.args;
    progress(format!(
        "latency: {} single-event publishes/s for {} s",
        args.rate, args.latency_duration
    ));
    sleep(PAUSE_BEFORE).await;
    let cluster_base = ClusterCounters::read(&bench.client, &bench.nodes).await;
    let base = shared.totals();
    let publish = Arc::new(PublishStats::new(args.channels));
    let cpu = CpuMeter::start(&bench.nodes.pids());
    let to = Endpoint::Loggate(bench.publish_url.clone());
    let body = |c, scheduled_ns| {
        let mut body = String::with_capacity(192);
        event_json(&mut body, c, &format!("t={scheduled_ns}"));
        Bytes::from(body)
    };
    let (sent, elapsed) = publish_at_rate(
        &to,
        &publish,
        (args.rate, secs(args.latency_duration)),
        shared.now_ns(),
        body,
    )
    .await?;
    let ok = publish.requests_ok.load(Relaxed);
    let expected = publish.expected_deliveries(&bench.subs_on);
    progress(format!(
        "sent {sent} publishes ({ok} accepted); waiting for {} deliveries",
        thousands(expected)
    ));
    let (t, complete) = drain(shared, base, expected, secs(args.drain_timeout)).await;
    let cpu_row = bench.nodes.cpu_row(cpu.finish(bench.tck));
    let cluster_end = ClusterCounters::read(&bench.client, &bench.nodes).await;
    Ok(Latency {
        publish,
        ok,
        elapsed,
        delivered: t.delivered - base.delivered,
        expected,
        dropped: t.dropped - base.dropped,
        complete,
        cpu_row,
        cluster_path: cluster_base.zip(cluster_end).map(|(b, a)| a.delta_text(&b)),
    })
}

/// One publish to `to` per tick of `rate` (per second) for `duration`,
/// round-robin over `publish`'s channels, at most [`MAX_IN_FLIGHT`] at once
/// (a tick waits for a free slot; missed ticks are caught up in a burst).
/// `body(c, scheduled_ns)` makes the event for channel `c` whose tick was
/// due at `scheduled_ns` on the subscribers' clock (`start_ns` is now on
/// it). Waits for the last publishes, then returns how many were sent and
/// the seconds of sending (up to the last tick, not counting that wait).
///
/// The ticks run on a thread of their own, with its own runtime and HTTP
/// client, and the last stretch before each is slept with the OS's timer:
/// on the shared runtime, behind the subscribers' reading and on tokio's
/// 1 ms timer wheel, they came 1.5 ms late on average, and since latency
/// counts from the scheduled time, the bench's lateness would have been
/// charged to the server.
pub async fn publish_at_rate(
    to: &Endpoint,
    publish: &Arc<PublishStats>,
    (rate, duration): (f64, Duration),
    start_ns: u64,
    body: impl Fn(usize, u64) -> Bytes + Send + 'static,
) -> anyhow::Result<(u64, f64)> {
    let start = Instant::now();
    let (to, publish) = (to.clone(), Arc::clone(publish));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-ticker".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the ticker's runtime")
                .and_then(|rt| {
                    rt.block_on(tick(
                        &to,
                        &publish,
                        (rate, duration),
                        (start, start_ns),
                        body,
                    ))
                });
            let _ = done_tx.send(result);
        })
        .context("cannot start the ticker thread")?;
    done_rx.await.context("the ticker thread died")?
}

/// The loop of [`publish_at_rate`], on the ticker thread.
async fn tick(
    to: &Endpoint,
    publish: &Arc<PublishStats>,
    (rate, duration): (f64, Duration),
    (start, start_ns): (Instant, u64),
    body: impl Fn(usize, u64) -> Bytes,
) -> anyhow::Result<(u64, f64)> {
    let client = http_client()?;
    let channels = publish.channels() as u64;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize));
    let end = start + duration;
    let mut sent = 0u64;
    loop {
        // Tick `sent` is due at start + sent / rate.
        let due_in = secs(sent as f64 / rate);
        let due = start + due_in;
        if due >= end {
            break;
        }
        if let Some(coarse) = due.checked_sub(FINE_SLEEP) {
            tokio::time::sleep_until(coarse.into()).await;
        }
        let now = Instant::now();
        if due > now {
            // Blocks only this thread's runtime, for under FINE_SLEEP.
            std::thread::sleep(due - now);
        }
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .context("in-flight semaphore closed")?;
        let c = (sent % channels) as usize;
        let event = body(c, start_ns + due_in.as_nanos() as u64);
        sent += 1;
        let (client, publish, to) = (client.clone(), Arc::clone(publish), to.clone());
        tokio::spawn(async move {
            publish.publish_to(&client, &to, c, event).await;
            drop(permit);
        });
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _all = tokio::time::timeout(IN_FLIGHT_TIMEOUT, in_flight.acquire_many(MAX_IN_FLIGHT)).await;
    Ok((sent, elapsed))
}

impl Latency {
    /// Adds the phase's rows; `hist` holds every subscriber's latencies.
    pub fn report(&self, report: &mut Report, rate: f64, hist: &Histogram<u64>, shared: &Shared) {
        let missing = self.expected.saturating_sub(self.delivered);
        let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
        report.row(
            "Latency: publish rate target / achieved",
            format!(
                "{rate} / {:.1} per s ({} accepted)",
                self.ok as f64 / self.elapsed,
                thousands(self.ok)
            ),
        );
        report.row(
            "Latency: deliveries (expected)",
            format!(
                "{} ({}){}",
                thousands(self.delivered),
                thousands(self.expected),
                if missing > 0 {
                    format!(
                        ", {} missing, {} dropped by lag{}",
                        thousands(missing),
                        thousands(self.dropped),
                        if self.complete {
                            ""
                        } else {
                            ", drain timed out"
                        }
                    )
                } else {
                    String::new()
                }
            ),
        );
        for (label, q) in [
            ("Latency p50", 0.5),
            ("Latency p90", 0.9),
            ("Latency p99", 0.99),
            ("Latency p99.9", 0.999),
        ] {
            report.row(label, ms(hist.value_at_quantile(q)));
        }
        report.row("Latency max", ms(hist.max()));
        let (cpu_label, cpu_value) = &self.cpu_row;
        report.row(format!("Latency phase: {cpu_label}"), cpu_value.clone());
        if let Some(path) = &self.cluster_path {
            report.row("Latency phase: cluster path", path.clone());
        }
        let failed = self.publish.requests_failed.load(Relaxed);
        if failed > 0 {
            report.row(
                "Latency: failed publish requests",
                failures(failed, self.publish.error_text()),
            );
        }
        let unparsed = shared.unparsed_latency.load(Relaxed);
        if unparsed > 0 {
            report.row("Latency: unparsable timestamps", thousands(unparsed));
        }
        if hist.len() != self.delivered {
            report.row(
                "Latency: samples recorded",
                format!("{} (≠ deliveries)", thousands(hist.len())),
            );
        }
    }
}
