//! The cluster warm-up. A node's NATS subscription may reach nats-server a
//! little after its `/ready` turns 200, so before anything is measured this
//! publishes probe events on A (every 100 ms, on a channel of their own)
//! until one reaches a subscriber on B. Its events count in the final
//! cross-check with the gateways' counters, never in a measured phase.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::{Semaphore, watch};
use tokio::time::sleep;

use super::Bench;
use crate::publish::{PublishStats, probe_body, probe_channel, stream_path};
use crate::report::{Report, progress};
use crate::subscribers::{NotReady, Subscribers};

/// How often a probe event is published.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The warm-up's subscriber, its publishes, and how long it took.
pub struct WarmUp {
    /// The one probe subscriber on node B.
    pub probe: Subscribers,
    /// The probe events published on node A.
    pub probes: PublishStats,
    sent: u64,
    took: Duration,
}

impl WarmUp {
    pub fn report(&self, report: &mut Report) {
        report.row(
            "Cluster warm-up: first probe on A delivered on B after",
            format!(
                "{:.0} ms ({} probe publishes)",
                self.took.as_secs_f64() * 1000.0,
                self.sent
            ),
        );
    }
}

pub async fn run(
    bench: &mut Bench<'_>,
    connect: &Arc<Semaphore>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<WarmUp> {
    progress("warm-up: probe events on node A until one reaches node B");
    let timeout = bench.args.setup_timeout();
    let deadline = Instant::now() + timeout;
    let addr = bench.nodes.subscriber().addr;
    let probe = Subscribers::spawn(1, |_| stream_path(&probe_channel()), addr, connect, stop);
    let poll = Duration::from_millis(10);
    match probe
        .wait_ready(|| bench.nodes.check_alive(), deadline, poll)
        .await
    {
        Ok(()) => {}
        Err(NotReady::Died(e)) => return Err(e),
        Err(NotReady::Incomplete { why, .. }) => {
            bail!("the probe subscriber on node B did not become ready: {why}")
        }
    }
    let probes = PublishStats::new(1);
    let body = probe_body();
    let first = Instant::now();
    let mut sent = 0u64;
    loop {
        probes
            .publish(&bench.client, &bench.publish_url, 0, body.clone())
            .await;
        sent += 1;
        let next = Instant::now() + PROBE_INTERVAL;
        while Instant::now() < next {
            if probe.shared.totals().delivered > 0 {
                let took = first.elapsed();
                progress(format!(
                    "warm-up: first probe reached node B after {took:.0?} ({sent} sent)"
                ));
                return Ok(WarmUp {
                    probe,
                    probes,
                    sent,
                    took,
                });
            }
            sleep(Duration::from_millis(5)).await;
        }
        if Instant::now() >= deadline {
            bail!(
                "no probe event published on node A reached node B within {timeout:?} \
                 ({sent} sent, {} accepted{})",
                probes.requests_ok.load(Relaxed),
                probes
                    .error_text()
                    .map(|e| format!("; first error: {e}"))
                    .unwrap_or_default()
            );
        }
        bench.nodes.check_alive()?;
    }
}
