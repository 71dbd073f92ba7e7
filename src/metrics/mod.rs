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
    Encoder, Gauge, Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
    TextEncoder,
};

/// The `service` label used for services that are not configured.
pub const OTHER_SERVICE: &str = "other";

/// Every label value besides service names and error codes, named once.
/// [`Metrics::new`] creates each combination at zero, so a series exists
/// from the start and `rate()` or an alert on it works before its first
/// increment.
mod build;
pub mod label;

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
    /// Log lines dropped because the log queue was full; synced at scrape.
    pub log_lines_dropped: IntCounter,
    /// Origin nodes whose cluster sequence was no longer followed because
    /// the table of them was full (`nats::wire::MAX_ORIGINS`).
    pub cluster_origins_forgotten: IntCounter,
    pub stream_resent: IntCounter,
    /// `Idempotency-Key`s remembered with their answer.
    pub idempotency_keys: IntGauge,
    /// Keys forgotten before their window ended, by reason.
    pub idempotency_evicted: IntCounterVec,
    /// Publishes answered from a remembered key, publishing nothing.
    pub idempotency_replayed: IntCounter,
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
    /// The durable store (`src/store`): its size on disk, what a start
    /// repaired, and events that could not be stored.
    pub history_disk_bytes: IntGauge,
    pub history_disk_events: IntGauge,
    pub history_disk_oldest_seconds: Gauge,
    pub history_recovered: IntCounterVec,
    pub history_write_errors: IntCounter,
    /// 1 while the store's last write failed (a full disk), 0 once one
    /// succeeds again.
    pub history_disk_degraded: IntGauge,
    /// Syncs of the store's newest segment (`HISTORY_FSYNC`).
    pub history_fsyncs: IntCounter,
    pub ai_chats: IntCounterVec,
    pub ai_tool_calls: IntCounterVec,
    pub ai_tokens: IntCounterVec,
    pub ai_upstream_errors: IntCounterVec,
    pub ai_redactions: IntCounter,
}

impl Metrics {
    /// Creates the series of a configured NATS link at zero.
    pub fn create_nats_series(&self, link: &str, refusal_codes: &[&str]) {
        for d in label::nats::directions(link) {
            self.nats_messages.with_label_values(&[link, d]);
        }
        for code in refusal_codes {
            self.nats_refused.with_label_values(&[link, code]);
        }
        self.nats_connected.with_label_values(&[link]);
    }

    /// Brings `log_lines_dropped_total` up to `dropped` (a running total).
    pub fn sync_log_drops(&self, dropped: u64) {
        let seen = self.log_lines_dropped.get();
        if dropped > seen {
            self.log_lines_dropped.inc_by(dropped - seen);
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

    /// Counts one repair of the history store found at start.
    pub fn history_recovered(&self, what: &str) {
        self.history_recovered.with_label_values(&[what]).inc();
    }

    pub fn dropped(&self, reason: &str, service: &str, n: u64) {
        let service = self.service_label(service);
        self.events_dropped
            .with_label_values(&[reason, service])
            .inc_by(n);
    }

    pub fn rejected(&self, source: &str, reason: &str) {
        self.publish_rejected
            .with_label_values(&[source, reason])
            .inc();
    }

    /// `n` events of `service` accepted through `source`.
    pub fn published(&self, service: &str, source: &str, n: u64) {
        self.events_published
            .with_label_values(&[self.service_label(service), source])
            .inc_by(n);
    }

    /// Events of `service` accepted, whatever their source.
    pub fn published_total(&self, service: &str) -> u64 {
        let service = self.service_label(service);
        label::source::ALL
            .iter()
            .map(|source| {
                self.events_published
                    .with_label_values(&[service, source])
                    .get()
            })
            .sum()
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
        let m = Metrics::new(["etl"], &[]);
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

    #[test]
    fn known_series_exist_at_zero_before_their_first_increment() {
        let m = Metrics::new(["etl"], &["invalid_json"]);
        m.create_nats_series(label::nats::CLUSTER, &["invalid_event"]);
        let text = String::from_utf8(m.render()).unwrap();
        for series in [
            r#"loggate_events_published_total{service="etl",source="http"} 0"#,
            r#"loggate_events_published_total{service="etl",source="loki"} 0"#,
            r#"loggate_events_published_total{service="other",source="otlp"} 0"#,
            r#"loggate_events_published_total{service="other",source="nats"} 0"#,
            r#"loggate_events_dropped_total{reason="nats_backlog",service="etl"} 0"#,
            r#"loggate_events_delivered_total{transport="websocket"} 0"#,
            r#"loggate_publish_rejected_total{reason="invalid_json",source="http"} 0"#,
            r#"loggate_publish_rejected_total{reason="invalid_json",source="otlp"} 0"#,
            r#"loggate_connections_rejected_total{reason="per_address_limit"} 0"#,
            r#"loggate_disconnects_total{reason="control_overflow"} 0"#,
            r#"loggate_disconnects_total{reason="stalled"} 0"#,
            r#"loggate_rate_limited_total{limit="history"} 0"#,
            r#"loggate_nats_messages_total{direction="out",link="cluster"} 0"#,
            r#"loggate_nats_refused_total{link="cluster",reason="invalid_event"} 0"#,
            "loggate_log_lines_dropped_total 0",
            r#"loggate_idempotency_evicted_total{reason="max_keys"} 0"#,
            "loggate_idempotency_keys 0",
            "loggate_idempotency_replayed_total 0",
        ] {
            assert!(text.contains(series), "{series} missing");
        }
    }
}
