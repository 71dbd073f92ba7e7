//! The idle phase: opens every measured subscriber on the subscribing node,
//! waits until all have seen `event: ready`, lets them idle for a second,
//! and reports the node's memory per idle SSE connection (the difference in
//! RSS before and after, divided by their number).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::time::sleep;

use super::Bench;
use crate::args::secs;
use crate::publish::{channel_name, stream_path};
use crate::report::{mib, progress, thousands};
use crate::subscribers::Subscribers;

/// Let the node settle after start-up (and the warm-up) before weighing it.
const SETTLE: Duration = Duration::from_millis(300);
/// How long the open streams idle before they are weighed.
const IDLE: Duration = Duration::from_secs(1);

pub async fn run(
    bench: &mut Bench<'_>,
    connect: &Arc<Semaphore>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Subscribers> {
    let (n, c_count, cluster) = (bench.args.subscribers, bench.args.channels, bench.cluster());
    let on_b = if cluster { " on node B" } else { "" };
    sleep(SETTLE).await;
    let before = bench.nodes.subscriber().status()?;
    let a_before = if cluster {
        Some(bench.nodes.publisher().status()?)
    } else {
        None
    };
    progress(format!(
        "opening {n} SSE subscribers on {c_count} channels{on_b}"
    ));
    let opening = Instant::now();
    let addr = bench.nodes.subscriber().addr;
    let subscribers = Subscribers::spawn(
        n,
        |i| stream_path(&channel_name(i % c_count)),
        addr,
        connect,
        stop,
    );
    let deadline = Instant::now() + secs(bench.args.setup_timeout);
    let poll = Duration::from_millis(20);
    subscribers
        .wait_all_ready(|| bench.nodes.check_alive(), deadline, poll)
        .await?;
    let open_time = opening.elapsed();
    progress(format!(
        "all {n} subscribers ready in {open_time:.2?}; idling 1 s"
    ));
    sleep(IDLE).await;
    let after = bench.nodes.subscriber().status()?;

    let per_conn = (after.rss_kib as f64 - before.rss_kib as f64) / n as f64;
    let node = if cluster { "Node B" } else { "Server" };
    let report = &mut bench.report;
    report.row(
        "SSE subscribers (channels)",
        format!("{} ({c_count}){on_b}", thousands(n as u64)),
    );
    report.row(
        "Time to open all subscribers",
        format!("{:.2} s", open_time.as_secs_f64()),
    );
    report.row(
        format!("{node} RSS before → after opening subscribers"),
        format!("{} → {}", mib(before.rss_kib), mib(after.rss_kib)),
    );
    report.row(
        format!("{node} RSS per idle SSE connection"),
        format!("{per_conn:.1} KiB"),
    );
    if let Some(a_before) = a_before {
        let a_after = bench.nodes.publisher().status()?;
        report.row(
            "Node A RSS (no subscribers) at the same moments",
            format!("{} → {}", mib(a_before.rss_kib), mib(a_after.rss_kib)),
        );
    }
    Ok(subscribers)
}
