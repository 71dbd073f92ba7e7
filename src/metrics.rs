//! Prometheus metrics: one registry per gateway, every name prefixed
//! `loggate_`.
//!
//! Owns the metric definitions and the text exposition; the other modules
//! only bump counters. Label values are bounded: `service` takes only
//! configured service names (anything else is folded into `other`),
//! `transport` and `reason` take fixed words. No label ever takes a channel or
//! another client-chosen string, so a hostile client cannot explode the
//! series count.

use std::collections::HashSet;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The `service` label used for services that are not configured.
pub const OTHER_SERVICE: &str = "other";

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

pub struct Metrics {
    registry: Registry,
    known_services: HashSet<String>,
    pub events_published: IntCounterVec,
    pub publish_rejected: IntCounterVec,
    pub events_delivered: IntCounterVec,
    pub events_dropped: IntCounterVec,
    /// Events queued for subscribers, by service (one count per subscriber).
    pub events_fanned_out: IntCounterVec,
    pub connections: IntGaugeVec,
    pub connections_rejected: IntCounterVec,
    /// Sessions the gateway closed on its own initiative, by reason.
    pub disconnects: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub nats_messages: IntCounterVec,
    /// NATS messages refused by the publish checks, by link and by
    /// `PublishError::code()`, a fixed set of words.
    pub nats_refused: IntCounterVec,
    /// 1 while a NATS link is connected, by link; set at scrape time.
    pub nats_connected: IntGaugeVec,
    pub subscriptions: IntGauge,
    /// Session actors alive; equals open connections unless one leaks.
    pub session_actors: IntGauge,
    pub publish_batch_events: Histogram,
    /// Receipt to socket write, observed once per written batch on its
    /// oldest event (per event would cost more than the write).
    pub delivery_latency: Histogram,
    pub history_events: IntGauge,
    pub history_bytes: IntGauge,
    pub history_channels: IntGauge,
}

impl Metrics {
    /// `services` are the configured publishers: the only values the
    /// `service` label may take besides `other`.
    pub fn new<'a>(services: impl IntoIterator<Item = &'a str>) -> Self {
        let registry =
            Registry::new_custom(Some("loggate".into()), None).expect("a constant, valid prefix");
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric name");
            c
        };
        let events_published = counter_vec(
            "events_published_total",
            "Events accepted for delivery, by publishing service.",
            &["service"],
        );
        let publish_rejected = counter_vec(
            "publish_rejected_total",
            "Publish requests refused, by reason.",
            &["reason"],
        );
        let events_delivered = counter_vec(
            "events_delivered_total",
            "Events written to subscriber connections, by transport.",
            &["transport"],
        );
        let events_dropped = counter_vec(
            "events_dropped_total",
            "Events dropped before reaching a subscriber, by reason and service.",
            &["reason", "service"],
        );
        let events_fanned_out = counter_vec(
            "events_fanned_out_total",
            "Events queued for subscribers (one per subscriber), by service.",
            &["service"],
        );
        let connections_rejected = counter_vec(
            "connections_rejected_total",
            "Subscriber connections refused before the stream started, by reason.",
            &["reason"],
        );
        let disconnects = counter_vec(
            "disconnects_total",
            "Subscriber sessions closed by the gateway, by reason (frame_too_large, protocol_error, control_overflow, dead_peer).",
            &["reason"],
        );
        let rate_limited = counter_vec(
            "rate_limited_total",
            "Requests refused by a rate limit, by limit (publish, connect, connect_table_full).",
            &["limit"],
        );
        let nats_messages = counter_vec(
            "nats_messages_total",
            "NATS messages by link (cluster, fly, rules) and direction (in, out, invalid; plain: not Fly's JSON, kept as a line).",
            &["link", "direction"],
        );
        let nats_refused = counter_vec(
            "nats_refused_total",
            "NATS messages refused by the checks an HTTP publish gets, by link (cluster, fly, rules) and reason (the publish error code).",
            &["link", "reason"],
        );
        let nats_connected = IntGaugeVec::new(
            Opts::new(
                "nats_connected",
                "1 while the NATS link is connected, by link.",
            ),
            &["link"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(nats_connected.clone()))
            .expect("unique metric name");
        let connections = IntGaugeVec::new(
            Opts::new("connections", "Open subscriber connections, by transport."),
            &["transport"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(connections.clone()))
            .expect("unique metric name");
        let subscriptions = IntGauge::new(
            "subscriptions",
            "Channel subscriptions held by the registry.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(subscriptions.clone()))
            .expect("unique metric name");
        let session_actors = IntGauge::new("session_actors", "Subscriber session actors alive.")
            .expect("valid metric");
        registry
            .register(Box::new(session_actors.clone()))
            .expect("unique metric name");
        let publish_batch_events = Histogram::with_opts(
            HistogramOpts::new(
                "publish_batch_events",
                "Events per accepted publish request.",
            )
            .buckets(vec![1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(publish_batch_events.clone()))
            .expect("unique metric name");
        let delivery_latency = Histogram::with_opts(
            HistogramOpts::new(
                "delivery_latency_seconds",
                "From receipt to the write to a subscriber's socket (oldest event of each written batch).",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(delivery_latency.clone()))
            .expect("unique metric name");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric name");
            g
        };
        let history_events = gauge("history_events", "Events held in history.");
        let history_bytes = gauge("history_bytes", "Bytes of encoded events held in history.");
        let history_channels = gauge("history_channels", "Channels with history.");
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            // Already-registered is impossible on a fresh registry; ignore it.
            let _ = registry.register(Box::new(pc));
        }
        Metrics {
            registry,
            known_services: services.into_iter().map(str::to_owned).collect(),
            events_published,
            publish_rejected,
            events_delivered,
            events_dropped,
            events_fanned_out,
            connections,
            connections_rejected,
            disconnects,
            rate_limited,
            nats_messages,
            nats_refused,
            nats_connected,
            subscriptions,
            session_actors,
            publish_batch_events,
            delivery_latency,
            history_events,
            history_bytes,
            history_channels,
        }
    }

    /// The label value for `service`: itself if configured, else `other`.
    pub fn service_label<'a>(&self, service: &'a str) -> &'a str {
        if self.known_services.contains(service) {
            service
        } else {
            OTHER_SERVICE
        }
    }

    pub fn delivered(&self, transport: &str) -> IntCounter {
        self.events_delivered.with_label_values(&[transport])
    }

    pub fn dropped(&self, reason: &str, service: &str, n: u64) {
        let service = self.service_label(service);
        self.events_dropped
            .with_label_values(&[reason, service])
            .inc_by(n);
    }

    pub fn rejected(&self, reason: &str) {
        self.publish_rejected.with_label_values(&[reason]).inc();
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * 1024);
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_services_fold_into_other() {
        let m = Metrics::new(["etl"]);
        m.dropped("slow_consumer", "etl", 2);
        m.dropped("slow_consumer", "attacker-chosen", 3);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains(
                r#"loggate_events_dropped_total{reason="slow_consumer",service="etl"} 2"#
            )
        );
        assert!(
            text.contains(
                r#"loggate_events_dropped_total{reason="slow_consumer",service="other"} 3"#
            )
        );
        assert!(!text.contains("attacker"));
    }
}
