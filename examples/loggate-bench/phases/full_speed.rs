//! The full-speed phase: `--publishers` tasks, each on its own keep-alive
//! connection, publish batches of `--batch` events round-robin over the
//! channels for `--duration` seconds; then the subscribers drain. Reports
//! events published/s, deliveries/s (over the span from the first publish
//! to the last delivery), lag and drops, what is missing, and CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use tokio::time::sleep;

use super::Bench;
use crate::args::secs;
use crate::metrics::ClusterCounters;
use crate::procfs::CpuMeter;
use crate::publish::{Endpoint, PublishStats, batch_body, http_client};
use crate::report::{failures, progress, thousands};
use crate::stats::{Shared, drain};

/// A publisher whose request failed waits this long, so as not to spin on
/// a failing server.
const BACKOFF: Duration = Duration::from_millis(10);

/// Runs the phase and adds its rows; returns what was published.
pub async fn run(bench: &mut Bench<'_>, shared: &Shared) -> anyhow::Result<Arc<PublishStats>> {
    let args = bench.args;
    let filler = "x".repeat(args.message_bytes);
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..args.channels)
            .map(|c| batch_body(c, args.batch(), &filler))
            .collect(),
    );
    progress(format!(
        "full speed: {} publishers × batches of {} for {} s{}",
        args.publishers(),
        args.batch(),
        args.duration,
        if bench.cluster() { " on node A" } else { "" }
    ));
    let cluster_base = ClusterCounters::read(&bench.client, &bench.nodes).await;
    let base = shared.totals();
    let cpu = CpuMeter::start(&bench.nodes.pids());
    let first_publish_ns = shared.now_ns();
    let pub_start = Instant::now();
    let to = Endpoint::Loggate(bench.publish_url.clone());
    let end = pub_start + secs(args.duration);
    let full = publish_flat_out(&to, args.publishers(), bodies, end).await?;
    let pub_elapsed = pub_start.elapsed().as_secs_f64();
    let published = full.events();
    let expected = full.expected_deliveries(&bench.subs_on);
    progress(format!(
        "published {} events in {pub_elapsed:.2} s; waiting for {} deliveries",
        thousands(published),
        thousands(expected)
    ));
    let (t, complete) = drain(shared, base, expected, secs(args.drain_timeout)).await;
    let (cpu_label, cpu_value) = bench.nodes.cpu_row(cpu.finish(bench.tck));
    let cluster_full = ClusterCounters::read(&bench.client, &bench.nodes).await;

    let delivered = t.delivered - base.delivered;
    let dropped = t.dropped - base.dropped;
    let lag_frames = t.lag_frames - base.lag_frames;
    let delivery_span = t.last_delivery_ns.saturating_sub(first_publish_ns) as f64 / 1e9;
    let missing = expected.saturating_sub(delivered);
    let report = &mut bench.report;
    report.row(
        "Full speed: events published/s",
        format!(
            "{} ({} events in {pub_elapsed:.2} s, {} requests)",
            thousands((published as f64 / pub_elapsed) as u64),
            thousands(published),
            thousands(full.requests_ok.load(Relaxed))
        ),
    );
    report.row(
        "Full speed: deliveries/s",
        if delivered > 0 && delivery_span > 0.0 {
            format!(
                "{} ({} in {delivery_span:.2} s)",
                thousands((delivered as f64 / delivery_span) as u64),
                thousands(delivered)
            )
        } else {
            "0".into()
        },
    );
    report.row(
        "Full speed: lag frames / events dropped",
        format!("{} / {}", thousands(lag_frames), thousands(dropped)),
    );
    report.row(
        "Full speed: missing deliveries (expected − delivered)",
        format!(
            "{} of {}{}",
            thousands(missing),
            thousands(expected),
            if missing > dropped {
                format!(
                    ", {} not explained by lag{}",
                    thousands(missing - dropped),
                    if complete { "" } else { " (drain timed out)" }
                )
            } else {
                String::new()
            }
        ),
    );
    if delivered > expected {
        report.row(
            "Full speed: UNEXPECTED extra deliveries",
            thousands(delivered - expected),
        );
    }
    report.row(
        format!("Full speed: {cpu_label} (100 % = 1 core)"),
        cpu_value,
    );
    if let (Some(b), Some(a)) = (&cluster_base, &cluster_full) {
        report.row("Full speed: cluster path", a.delta_text(b));
    }
    let failed = full.requests_failed.load(Relaxed);
    if failed > 0 {
        report.row(
            "Full speed: failed publish requests",
            failures(failed, full.error_text()),
        );
    }
    Ok(full)
}

/// Publishes `bodies` (one request body per channel) to `to` from
/// `publishers` tasks, each on its own connection, until `end`, each task
/// taking the next channel in turn.
pub async fn publish_flat_out(
    to: &Endpoint,
    publishers: usize,
    bodies: Arc<Vec<Bytes>>,
    end: Instant,
) -> anyhow::Result<Arc<PublishStats>> {
    let full = Arc::new(PublishStats::new(bodies.len()));
    let next_channel = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let client = http_client()?;
        let (bodies, full, next, to) = (
            Arc::clone(&bodies),
            Arc::clone(&full),
            Arc::clone(&next_channel),
            to.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let c = next.fetch_add(1, Relaxed) % bodies.len();
                if !full.publish_to(&client, &to, c, bodies[c].clone()).await {
                    sleep(BACKOFF).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("publisher task failed")?;
    }
    Ok(full)
}
