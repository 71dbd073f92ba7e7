//! The fixed-rate phase: single-event publishes at `--rate` per second for
//! `--latency-duration` seconds, each event carrying its send time
//! (`t=<ns>`), so every subscriber records publish-to-delivery latency.
//! Its rows wait until the subscribers have stopped and their histograms
//! are merged ([`Latency::report`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::time::{MissedTickBehavior, sleep};

use super::Bench;
use crate::args::secs;
use crate::metrics::ClusterCounters;
use crate::procfs::CpuMeter;
use crate::publish::{PublishStats, event_json, http_client};
use crate::report::{Report, failures, progress, thousands};
use crate::stats::{Shared, drain};

/// Publishes in flight at once.
const MAX_IN_FLIGHT: u32 = 256;
/// A pause after the full-speed phase, so that its tail does not land in
/// this one's latencies.
const PAUSE_BEFORE: Duration = Duration::from_millis(500);
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
    let client = http_client()?;
    let cpu = CpuMeter::start(&bench.nodes.pids());
    let (sent, elapsed) = publish_at_rate(bench, shared, &publish, client).await?;
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

/// One publish per tick for `--latency-duration`, round-robin over the
/// channels, at most [`MAX_IN_FLIGHT`] at once (a tick waits for a free
/// slot; missed ticks are caught up in a burst). Waits for the last
/// publishes, then returns how many were sent and the seconds of sending
/// (up to the last tick, not counting that wait).
async fn publish_at_rate(
    bench: &Bench<'_>,
    shared: &Arc<Shared>,
    publish: &Arc<PublishStats>,
    client: reqwest::Client,
) -> anyhow::Result<(u64, f64)> {
    let args = bench.args;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize));
    let start = Instant::now();
    let end = start + secs(args.latency_duration);
    let mut ticker = tokio::time::interval(secs(1.0 / args.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sent = 0u64;
    loop {
        ticker.tick().await;
        if Instant::now() >= end {
            break;
        }
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .context("in-flight semaphore closed")?;
        let c = (sent % args.channels as u64) as usize;
        sent += 1;
        let (client, publish, url, shared) = (
            client.clone(),
            Arc::clone(publish),
            bench.publish_url.clone(),
            Arc::clone(shared),
        );
        tokio::spawn(async move {
            let mut body = String::with_capacity(192);
            let t = shared.now_ns();
            event_json(&mut body, c, &format!("t={t}"));
            publish.publish(&client, &url, c, Bytes::from(body)).await;
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
