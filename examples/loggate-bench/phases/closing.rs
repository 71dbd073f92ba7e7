//! The end of a run: the gateway's own counts of events published,
//! delivered and dropped beside the bench's (read while the streams are
//! still open), stopping the subscribers and merging their histograms,
//! the health rows (streams that ended early, unexpected shutdown frames,
//! memory at the end), and stopping the processes.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::time::sleep;

use super::Bench;
use super::warm_up::WarmUp;
use crate::metrics::{self, nats_backlog_drops, server_counts};
use crate::publish::PublishStats;
use crate::report::{Report, cell, mib, thousands};
use crate::server::Server;
use crate::stats::{Shared, new_histogram};
use crate::subscribers::Subscribers;

/// How long the subscriber tasks get to end once told to stop.
const STOP_SUBSCRIBERS: Duration = Duration::from_secs(10);
/// A moment for the gateway's last log lines before it is stopped.
const BEFORE_STOP: Duration = Duration::from_millis(200);

/// What the gateways' /metrics said at the end of the last phase.
pub struct GatewayCounts {
    /// "gateway P / D / X; bench P / D / X", if /metrics could be read.
    cross_check: Option<String>,
    /// Events dropped on the publishing node for a full NATS queue.
    nats_backlog: Option<u64>,
}

impl GatewayCounts {
    /// Published on the publishing node, delivered and dropped on the
    /// subscribing one (the same gateway in single-node mode), beside the
    /// bench's counts of all phases, warm-up probes included.
    pub async fn read(
        bench: &Bench<'_>,
        shared: &Shared,
        warm: &Option<WarmUp>,
        phases: [&PublishStats; 2],
    ) -> GatewayCounts {
        let nodes = &bench.nodes;
        let pub_metrics = metrics::fetch(&bench.client, nodes.publisher().addr).await;
        let sub_metrics = if bench.cluster() {
            metrics::fetch(&bench.client, nodes.subscriber().addr).await
        } else {
            pub_metrics.clone()
        };
        let cross_check = pub_metrics
            .as_ref()
            .zip(sub_metrics.as_ref())
            .and_then(|(p, s)| server_counts(p, s))
            .map(|server| {
                let t = shared.totals();
                let published = phases.iter().map(|p| p.events()).sum::<u64>();
                let mut seen = [published, t.delivered, t.dropped];
                if let Some(w) = warm {
                    let probe = w.probe.shared.totals();
                    seen[0] += w.probes.events();
                    seen[1] += probe.delivered;
                    seen[2] += probe.dropped;
                }
                let show = |v: [u64; 3]| v.map(thousands).join(" / ");
                format!("gateway {}; bench {}", show(server), show(seen))
            });
        GatewayCounts {
            cross_check,
            nats_backlog: pub_metrics.as_ref().and_then(nats_backlog_drops),
        }
    }
}

/// Tells every subscriber (the warm-up's too) to stop and returns the
/// merged latency histogram of the measured ones.
pub async fn stop_subscribers(
    subscribers: Subscribers,
    warm: Option<WarmUp>,
    stop: &watch::Sender<bool>,
) -> Histogram<u64> {
    if let Some(w) = &warm {
        w.probe.mark_stopping();
    }
    let mut hist = new_histogram();
    subscribers
        .stop_into(stop, &mut hist, STOP_SUBSCRIBERS)
        .await;
    if let Some(w) = warm {
        w.probe.abort();
    }
    hist
}

/// Adds the closing rows, stops the processes, and returns the table.
pub async fn finish(mut bench: Bench<'_>, counts: GatewayCounts, shared: &Shared) -> Report {
    let cluster = bench.cluster();
    let report = &mut bench.report;
    if let Some(line) = counts.cross_check {
        report.row(
            if cluster {
                "Events published (A) / delivered (B) / dropped (B) (gateway /metrics vs bench, \
                 incl. warm-up probes)"
            } else {
                "Events published / delivered / dropped (gateway /metrics vs bench)"
            },
            line,
        );
    }
    if cluster {
        report.row(
            "Events dropped on A, outbound NATS queue full (`reason=\"nats_backlog\"`)",
            match counts.nats_backlog {
                Some(v) => thousands(v),
                None => "0 (no such series in A's /metrics)".into(),
            },
        );
    }
    let ended = shared.ended.load(Relaxed);
    if ended > 0 {
        let why = shared.error_text().unwrap_or_default();
        report.row(
            "Streams that ended early",
            format!("{ended} (first: {})", cell(&why)),
        );
    }
    let shutdowns = shared.shutdown_frames.load(Relaxed);
    if shutdowns > 0 {
        report.row(
            "Unexpected `event: shutdown` frames",
            thousands(shutdowns as u64),
        );
    }
    memory_at_end(report, &bench.nodes);
    sleep(BEFORE_STOP).await;
    let (stopped, nats_stopped) = bench.nodes.stop();
    bench.report.row("Gateway shutdown (SIGTERM)", stopped);
    if let Some(s) = nats_stopped {
        bench.report.row("nats-server shutdown (SIGTERM)", s);
    }
    bench.report
}

/// RSS now and at its peak, of every process under test.
fn memory_at_end(report: &mut Report, nodes: &crate::nodes::Nodes) {
    let rss = |s: &Server| {
        s.status()
            .ok()
            .map(|st| format!("{} / {}", mib(st.rss_kib), mib(st.hwm_kib)))
    };
    if nodes.cluster() {
        let show = |s: Option<String>| s.unwrap_or_else(|| "n/a".into());
        report.row(
            "RSS at end / peak (VmHWM): node A; node B; nats-server",
            format!(
                "{}; {}; {}",
                show(rss(nodes.publisher())),
                show(rss(nodes.subscriber())),
                show(nodes.nats.as_ref().and_then(rss))
            ),
        );
    } else if let Some(s) = rss(nodes.subscriber()) {
        report.row("Server RSS at end / peak (VmHWM)", s);
    }
}
