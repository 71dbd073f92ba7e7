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

/// Every label value besides service names and error codes, named once.
/// [`Metrics::new`] creates each combination at zero, so a series exists
/// from the start and `rate()` or an alert on it works before its first
/// increment.
pub mod label {
    /// `transport`: how a subscriber is connected
    /// (`delivery::Transport::as_str`).
    pub mod transport {
        pub const SSE: &str = "sse";
        pub const WEBSOCKET: &str = "websocket";
        pub const ALL: [&str; 2] = [SSE, WEBSOCKET];
    }

    /// `source` of `events_published_total` and `publish_rejected_total`:
    /// the way events came in.
    pub mod source {
        /// `POST /api/logs/publish`.
        pub const HTTP: &str = "http";
        /// OTLP/HTTP, `POST /v1/logs`.
        pub const OTLP: &str = "otlp";
        /// The Loki push API, `POST /loki/api/v1/push`.
        pub const LOKI: &str = "loki";
        /// Fly.io's log bus and the NATS subject rules (not cluster peers:
        /// their events were counted by the node that accepted them).
        pub const NATS: &str = "nats";
        pub const ALL: [&str; 4] = [HTTP, OTLP, LOKI, NATS];
        /// The sources that answer a request, and so count refusals.
        pub const REQUESTS: [&str; 3] = [HTTP, OTLP, LOKI];
    }

    /// `reason` of `events_dropped_total`.
    pub mod dropped {
        /// A subscriber's queue was full; its oldest events went.
        pub const SLOW_CONSUMER: &str = "slow_consumer";
        /// The queue of events for the cluster was full (NATS slow or down).
        pub const NATS_BACKLOG: &str = "nats_backlog";
        /// async-nats dropped messages a subscription could not buffer.
        pub const NATS_SLOW_CONSUMER: &str = "nats_slow_consumer";
        /// Events another node accepted never arrived here (a hole in its
        /// cluster sequence). Which service they were of is unknown, so
        /// they are counted under `other`.
        pub const CLUSTER_LOSS: &str = "cluster_loss";
        pub const ALL: [&str; 4] = [
            SLOW_CONSUMER,
            NATS_BACKLOG,
            NATS_SLOW_CONSUMER,
            CLUSTER_LOSS,
        ];
    }

    /// `limit` of `rate_limited_total`.
    pub mod limit {
        pub const PUBLISH: &str = "publish";
        /// A service's publish bytes per second (`PUBLISH_BYTES_PER_SEC`).
        pub const PUBLISH_BYTES: &str = "publish_bytes";
        /// A large publish body found every decode slot taken for the
        /// whole wait (`503 ingest_busy`).
        pub const DECODE_SLOTS: &str = "decode_slots";
        pub const CONNECT: &str = "connect";
        pub const CONNECT_TABLE_FULL: &str = "connect_table_full";
        pub const HISTORY: &str = "history";
        pub const HISTORY_TABLE_FULL: &str = "history_table_full";
        pub const CHAT: &str = "chat";
        pub const CHAT_TABLE_FULL: &str = "chat_table_full";
        pub const ALL: [&str; 9] = [
            PUBLISH,
            PUBLISH_BYTES,
            DECODE_SLOTS,
            CONNECT,
            CONNECT_TABLE_FULL,
            HISTORY,
            HISTORY_TABLE_FULL,
            CHAT,
            CHAT_TABLE_FULL,
        ];
    }

    /// `reason` of `connections_rejected_total`.
    pub mod rejected {
        /// `MAX_CONNECTIONS` reached.
        pub const CONNECTION_LIMIT: &str = "connection_limit";
        /// `MAX_CONNECTIONS_PER_IP` reached for the client's address.
        pub const PER_ADDRESS_LIMIT: &str = "per_address_limit";
        pub const ALL: [&str; 2] = [CONNECTION_LIMIT, PER_ADDRESS_LIMIT];
    }

    /// `reason` of `disconnects_total`: sessions the gateway ended.
    pub mod disconnect {
        /// A WebSocket frame declared more than the client-frame limit.
        pub const FRAME_TOO_LARGE: &str = "frame_too_large";
        /// A WebSocket frame the codec could not read.
        pub const PROTOCOL_ERROR: &str = "protocol_error";
        /// The client made the gateway queue more replies than it read.
        pub const CONTROL_OVERFLOW: &str = "control_overflow";
        /// No answer to pings for three keepalive intervals.
        pub const DEAD_PEER: &str = "dead_peer";
        /// An SSE reader whose queue stayed full with nothing written for
        /// `sse.stall_timeout_secs`.
        pub const STALLED: &str = "stalled";
        pub const ALL: [&str; 5] = [
            FRAME_TOO_LARGE,
            PROTOCOL_ERROR,
            CONTROL_OVERFLOW,
            DEAD_PEER,
            STALLED,
        ];
    }

    /// Labels of the `ai_*` metrics.
    pub mod ai {
        /// `tool` of `ai_tool_calls_total`: the tools, and `unknown` for a
        /// name the model made up.
        pub const TOOLS: [&str; 7] = [
            "list_channels",
            "search_logs",
            "count_by",
            "top_patterns",
            "get_context",
            "get_stats",
            UNKNOWN_TOOL,
        ];
        pub const UNKNOWN_TOOL: &str = "unknown";
        /// `outcome` of `ai_chats_total`: answered; stopped by a bound
        /// (rounds, tokens, time) with a partial answer; the model server
        /// failed; the client went away.
        pub const ANSWERED: &str = "answered";
        pub const STOPPED: &str = "stopped";
        pub const UPSTREAM_ERROR: &str = "upstream_error";
        pub const CANCELLED: &str = "cancelled";
        pub const OUTCOMES: [&str; 4] = [ANSWERED, STOPPED, UPSTREAM_ERROR, CANCELLED];
        /// `reason` of `ai_upstream_errors_total`.
        pub const STATUS: &str = "status";
        pub const TRANSPORT: &str = "transport";
        pub const TIMEOUT: &str = "timeout";
        pub const GARBAGE: &str = "garbage";
        pub const TOO_LARGE: &str = "too_large";
        pub const UPSTREAM_REASONS: [&str; 5] = [STATUS, TRANSPORT, TIMEOUT, GARBAGE, TOO_LARGE];
        /// `kind` of `ai_tokens_total`.
        pub const PROMPT: &str = "prompt";
        pub const COMPLETION: &str = "completion";
    }

    /// `link` and `direction` of `nats_messages_total`.
    pub mod nats {
        pub const CLUSTER: &str = "cluster";
        pub const FLY: &str = "fly";
        pub const RULES: &str = "rules";
        /// The JetStream stream, as a link of `nats_connected` (1 once
        /// it is known to exist).
        pub const JETSTREAM: &str = "jetstream";
        pub const IN: &str = "in";
        pub const OUT: &str = "out";
        pub const INVALID: &str = "invalid";
        pub const PLAIN: &str = "plain";
        /// `reason` of `nats_refused_total{link="cluster"}`: a sequence
        /// number further past the expected one than a node can have gone
        /// since its number last moved. Forged; not counted as loss.
        pub const IMPLAUSIBLE_SEQUENCE: &str = "implausible_sequence";
        /// `reason` of `nats_refused_total{link="cluster"}`: a sequence mark
        /// below what its origin was already heard at.
        pub const SEQUENCE_REWOUND: &str = "sequence_rewound";
        /// The refusals of a cluster message for its number, not its content.
        pub const SEQUENCE_REFUSALS: [&str; 2] = [IMPLAUSIBLE_SEQUENCE, SEQUENCE_REWOUND];
        /// The directions each link counts.
        pub fn directions(link: &str) -> &'static [&'static str] {
            match link {
                CLUSTER => &[IN, OUT, INVALID],
                FLY => &[IN, INVALID, PLAIN],
                _ => &[IN, INVALID],
            }
        }
    }
}

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
    pub ai_chats: IntCounterVec,
    pub ai_tool_calls: IntCounterVec,
    pub ai_tokens: IntCounterVec,
    pub ai_upstream_errors: IntCounterVec,
    pub ai_redactions: IntCounter,
}

impl Metrics {
    /// `services` are the configured publishers: the only values the
    /// `service` label may take besides `other`. `publish_codes` are the
    /// reasons a publish can be refused (`PublishError::CODES`).
    pub fn new<'a>(services: impl IntoIterator<Item = &'a str>, publish_codes: &[&str]) -> Self {
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
            "Events accepted for delivery, by publishing service and by source (http, otlp, loki, nats).",
            &["service", "source"],
        );
        let publish_rejected = counter_vec(
            "publish_rejected_total",
            "Publish requests refused, by source (http, otlp, loki) and reason.",
            &["source", "reason"],
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
        let ai_chats = counter_vec(
            "ai_chats_total",
            "AI chats, by outcome (answered, stopped: a bound ended it with a partial answer, upstream_error, cancelled).",
            &["outcome"],
        );
        let ai_tool_calls = counter_vec(
            "ai_tool_calls_total",
            "Tool calls the model made in AI chats, by tool (unknown: a name it made up).",
            &["tool"],
        );
        let ai_tokens = counter_vec(
            "ai_tokens_total",
            "Tokens the model server reported for AI chats, by kind (prompt, completion).",
            &["kind"],
        );
        let ai_upstream_errors = counter_vec(
            "ai_upstream_errors_total",
            "Failed calls to the AI model server, by reason (status, transport, timeout, garbage, too_large).",
            &["reason"],
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
            "Requests refused by a rate limit, by limit (publish, publish_bytes, decode_slots, connect, connect_table_full, …).",
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
        let ai_redactions = IntCounter::new(
            "ai_redactions_total",
            "Secrets and personal data redacted from what AI chats sent to the model.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(ai_redactions.clone()))
            .expect("unique metric name");
        let cluster_origins_forgotten = IntCounter::new(
            "cluster_origins_forgotten_total",
            "Origin nodes no longer followed for loss because too many were heard from; heard from again, they are followed afresh.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(cluster_origins_forgotten.clone()))
            .expect("unique metric name");
        let stream_resent = IntCounter::new(
            "stream_publishes_resent_total",
            "JetStream mode: events sent to the stream again because their ack did not come (the stream stores each once).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(stream_resent.clone()))
            .expect("unique metric name");
        let log_lines_dropped = IntCounter::new(
            "log_lines_dropped_total",
            "Log lines dropped because stderr did not keep up (the log queue was full).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(log_lines_dropped.clone()))
            .expect("unique metric name");
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            // Already-registered is impossible on a fresh registry; ignore it.
            let _ = registry.register(Box::new(pc));
        }
        let metrics = Metrics {
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
            log_lines_dropped,
            cluster_origins_forgotten,
            stream_resent,
            subscriptions,
            session_actors,
            publish_batch_events,
            delivery_latency,
            history_events,
            history_bytes,
            history_channels,
            ai_chats,
            ai_tool_calls,
            ai_tokens,
            ai_upstream_errors,
            ai_redactions,
        };
        metrics.create_series(publish_codes);
        metrics
    }

    /// Creates every known label combination at zero.
    fn create_series(&self, publish_codes: &[&str]) {
        let mut services: Vec<&str> = self.known_services.iter().map(String::as_str).collect();
        services.push(OTHER_SERVICE);
        for s in &services {
            for source in label::source::ALL {
                self.events_published.with_label_values(&[s, source]);
            }
            self.events_fanned_out.with_label_values(&[s]);
            for r in label::dropped::ALL {
                self.events_dropped.with_label_values(&[r, s]);
            }
        }
        for t in label::transport::ALL {
            self.events_delivered.with_label_values(&[t]);
            self.connections.with_label_values(&[t]);
        }
        for source in label::source::REQUESTS {
            for code in publish_codes {
                self.publish_rejected.with_label_values(&[source, code]);
            }
        }
        for r in label::rejected::ALL {
            self.connections_rejected.with_label_values(&[r]);
        }
        for r in label::disconnect::ALL {
            self.disconnects.with_label_values(&[r]);
        }
        for l in label::limit::ALL {
            self.rate_limited.with_label_values(&[l]);
        }
        for o in label::ai::OUTCOMES {
            self.ai_chats.with_label_values(&[o]);
        }
        for t in label::ai::TOOLS {
            self.ai_tool_calls.with_label_values(&[t]);
        }
        for k in [label::ai::PROMPT, label::ai::COMPLETION] {
            self.ai_tokens.with_label_values(&[k]);
        }
        for r in label::ai::UPSTREAM_REASONS {
            self.ai_upstream_errors.with_label_values(&[r]);
        }
    }

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
        ] {
            assert!(text.contains(series), "{series} missing");
        }
    }
}
