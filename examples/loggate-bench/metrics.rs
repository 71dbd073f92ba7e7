//! The gateway's own account of a run, read from its `/metrics`: events
//! published, delivered and dropped (to cross-check the bench's counts),
//! and the cluster path's counters (NATS messages out of A and into B,
//! backlog drops on A) plus the "slow consumer" lines in B's and
//! nats-server's logs. The text format is parsed by `prometheus-parse`;
//! this file only picks series and sums them.

use std::fmt::Write as _;
use std::net::SocketAddr;

use loggate::metrics::label;
use prometheus_parse::{Sample, Scrape, Value};

use crate::nodes::Nodes;
use crate::report::thousands;

const PUBLISHED: &str = "loggate_events_published_total";
const DELIVERED: &str = "loggate_events_delivered_total";
const DROPPED: &str = "loggate_events_dropped_total";
const NATS_MESSAGES: &str = "loggate_nats_messages_total";
/// Events dropped because A's outbound NATS queue was full.
const NATS_BACKLOG: (&str, &str) = ("reason", label::dropped::NATS_BACKLOG);
/// Events B was told another node accepted and it never received.
const CLUSTER_LOSS: (&str, &str) = ("reason", label::dropped::CLUSTER_LOSS);
/// The cluster bridge's NATS series.
const CLUSTER_LINK: (&str, &str) = ("link", label::nats::CLUSTER);

/// One scrape of a gateway's `/metrics`. `prometheus-parse` splits a label
/// set at `,` and `=` without regard to quotes; the series read here have
/// fixed-word label values (`loggate::metrics::label`), so that cannot bite.
#[derive(Clone)]
pub struct Metrics {
    samples: Vec<Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        // Reading from a `&str` cannot fail.
        let scrape =
            Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("lines of a string");
        Metrics {
            samples: scrape.samples,
        }
    }

    /// The sum of the samples of the counter `name` whose labels include
    /// every one of `labels`; None if there is no such sample.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        let mut values = self
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|&(k, v)| s.labels.get(k) == Some(v)))
            .filter_map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                Value::Histogram(_) | Value::Summary(_) => None,
            })
            .peekable();
        values.peek()?;
        Some(values.sum::<f64>() as u64)
    }
}

/// `GET http://<addr>/metrics`, parsed; None if it cannot be had.
pub async fn fetch(client: &reqwest::Client, addr: SocketAddr) -> Option<Metrics> {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(Metrics::parse(&text))
}

/// Published events according to the publishing gateway's metrics,
/// delivered and dropped ones according to the subscribing gateway's (the
/// same scrape in single-node mode).
pub fn server_counts(publisher: &Metrics, subscriber: &Metrics) -> Option<[u64; 3]> {
    Some([
        publisher.sum(PUBLISHED, &[])?,
        subscriber.sum(DELIVERED, &[])?,
        subscriber.sum(DROPPED, &[]).unwrap_or(0),
    ])
}

/// Events dropped on the publishing node for a full outbound NATS queue.
pub fn nats_backlog_drops(publisher: &Metrics) -> Option<u64> {
    publisher.sum(DROPPED, &[NATS_BACKLOG])
}

/// The cluster path's counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClusterCounters {
    /// `loggate_nats_messages_total{link="cluster",direction="out"}` on A.
    a_out: u64,
    /// `loggate_nats_messages_total{link="cluster",direction="in"}` on B.
    b_in: u64,
    /// `loggate_nats_messages_total{link="cluster",direction="invalid"}` on B.
    b_invalid: u64,
    /// `loggate_events_dropped_total{reason="nats_backlog"}` on A: events
    /// dropped because A's outbound NATS queue was full. None while A
    /// has no such series.
    a_backlog: Option<u64>,
    /// `loggate_events_dropped_total{reason="cluster_loss"}` on B: events
    /// it found missing in a node's (or the stream's) sequence and told its
    /// subscribers of.
    b_reported: u64,
    /// Lines saying "slow consumer" in B's log: its NATS client dropped
    /// inbound messages because B did not take them fast enough.
    b_slow_logs: usize,
    /// Lines saying "slow consumer" in nats-server's log.
    nats_slow_logs: usize,
}

impl ClusterCounters {
    /// None in single-node mode, or if a node's /metrics cannot be read.
    pub async fn read(client: &reqwest::Client, nodes: &Nodes) -> Option<ClusterCounters> {
        let nats = nodes.nats.as_ref()?;
        let a = fetch(client, nodes.publisher().addr).await?;
        let b = fetch(client, nodes.subscriber().addr).await?;
        let nats_msgs = |m: &Metrics, dir: &str| {
            m.sum(NATS_MESSAGES, &[CLUSTER_LINK, ("direction", dir)])
                .unwrap_or(0)
        };
        Some(ClusterCounters {
            a_out: nats_msgs(&a, label::nats::OUT),
            b_in: nats_msgs(&b, label::nats::IN),
            b_invalid: nats_msgs(&b, label::nats::INVALID),
            a_backlog: nats_backlog_drops(&a),
            b_reported: b.sum(DROPPED, &[CLUSTER_LOSS]).unwrap_or(0),
            b_slow_logs: nodes.subscriber().log_lines_containing("slow consumer"),
            nats_slow_logs: nats.log_lines_containing("slow consumer"),
        })
    }

    /// What happened between `base` and `self`, as a report value.
    pub fn delta_text(&self, base: &ClusterCounters) -> String {
        let backlog = self.a_backlog.unwrap_or(0) - base.a_backlog.unwrap_or(0);
        let mut s = format!(
            "NATS messages A out {} / B in {} (lost in between {}); dropped on A for \
             nats_backlog {}; reported lost on B (gap cluster_loss) {}; slow-consumer log \
             lines B {} / nats-server {}",
            thousands(self.a_out - base.a_out),
            thousands(self.b_in - base.b_in),
            thousands((self.a_out - base.a_out).saturating_sub(self.b_in - base.b_in)),
            thousands(backlog),
            thousands(self.b_reported - base.b_reported),
            self.b_slow_logs - base.b_slow_logs,
            self.nats_slow_logs - base.nats_slow_logs,
        );
        if self.b_invalid > base.b_invalid {
            let _ = write!(
                s,
                "; invalid on B {}",
                thousands(self.b_invalid - base.b_invalid)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_counters_by_name_and_labels() {
        let m = Metrics::parse(
            "# HELP loggate_events_delivered_total x\n\
             # TYPE loggate_events_delivered_total counter\n\
             loggate_events_delivered_total{transport=\"sse\"} 12\n\
             loggate_events_delivered_total{transport=\"ws\"} 3\n\
             loggate_events_delivered_totalx 99\n",
        );
        assert_eq!(m.sum(DELIVERED, &[]), Some(15));
        assert_eq!(m.sum(DROPPED, &[]), None);
        let m = Metrics::parse(
            "loggate_events_dropped_total{reason=\"nats_backlog\",service=\"etl\"} 4\n\
             loggate_events_dropped_total{reason=\"slow_consumer\",service=\"etl\"} 5\n\
             loggate_events_dropped_total{reason=\"x_nats_backlog\",service=\"etl\"} 6\n\
             loggate_nats_messages_total{direction=\"out\",link=\"cluster\"} 7\n\
             loggate_nats_messages_total{direction=\"in\",link=\"cluster\"} 8\n",
        );
        assert_eq!(nats_backlog_drops(&m), Some(4));
        assert_eq!(m.sum(DROPPED, &[]), Some(15));
        assert_eq!(m.sum(DROPPED, &[("reason", "nats")]), None);
        assert_eq!(
            m.sum(NATS_MESSAGES, &[CLUSTER_LINK, ("direction", "in")]),
            Some(8)
        );
        assert_eq!(server_counts(&m, &m), None);
    }

    /// The series the bench reads, as the gateway's own encoder writes them.
    #[test]
    fn reads_the_gateways_exposition() {
        let gateway = loggate::metrics::Metrics::new(["etl"], &[]);
        gateway.create_nats_series(label::nats::CLUSTER, &[]);
        gateway.dropped(label::dropped::NATS_BACKLOG, "etl", 4);
        gateway.dropped(label::dropped::SLOW_CONSUMER, "etl", 5);
        gateway.delivered("sse").inc_by(12);
        let m = Metrics::parse(&String::from_utf8(gateway.render()).unwrap());
        assert_eq!(server_counts(&m, &m), Some([0, 12, 9]));
        assert_eq!(nats_backlog_drops(&m), Some(4));
        let out = [CLUSTER_LINK, ("direction", label::nats::OUT)];
        assert_eq!(m.sum(NATS_MESSAGES, &out), Some(0));
    }
}
