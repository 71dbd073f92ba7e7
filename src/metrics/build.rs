//! Building the metrics: every series registered with its help, and every
//! known label combination created at zero.

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::{Metrics, OTHER_SERVICE, label};

/// `metric`, registered in `registry`. Names and labels are constants
/// here, so a failure is a programming error, caught by every test.
fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<C>,
) -> C {
    let metric = metric.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric name");
    metric
}

impl Metrics {
    /// `services` are the configured publishers: the only values the
    /// `service` label may take besides `other`. `publish_codes` are the
    /// reasons a publish can be refused (`PublishError::CODES`).
    pub fn new<'a>(services: impl IntoIterator<Item = &'a str>, publish_codes: &[&str]) -> Self {
        let r =
            Registry::new_custom(Some("loggate".into()), None).expect("a constant, valid prefix");
        // Every help that names a label's values lists them from the label
        // module, so a value added there cannot be missing here.
        let values = |all: &[&str]| all.join(", ");
        let events_published = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "events_published_total",
                    format!(
                        "Events accepted for delivery, by publishing service and by source ({}).",
                        values(&label::source::ALL)
                    ),
                ),
                &["service", "source"],
            ),
        );
        let publish_rejected = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "publish_rejected_total",
                    format!(
                        "Publish requests refused, by source ({}) and reason.",
                        values(&label::source::REQUESTS)
                    ),
                ),
                &["source", "reason"],
            ),
        );
        let events_delivered = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "events_delivered_total",
                    format!(
                        "Events written to subscriber connections, by transport ({}).",
                        values(&label::transport::ALL)
                    ),
                ),
                &["transport"],
            ),
        );
        let events_dropped = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "events_dropped_total",
                    format!(
                        "Events dropped before reaching a subscriber, by reason ({}) and service.",
                        values(&label::dropped::ALL)
                    ),
                ),
                &["reason", "service"],
            ),
        );
        let events_fanned_out = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "events_fanned_out_total",
                    "Events queued for subscribers (one per subscriber), by service.",
                ),
                &["service"],
            ),
        );
        let ai_chats = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "ai_chats_total",
                    format!(
                        "AI chats, by outcome ({}; stopped: a bound ended it with a partial answer).",
                        values(&label::ai::OUTCOMES)
                    ),
                ),
                &["outcome"],
            ),
        );
        let ai_tool_calls = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "ai_tool_calls_total",
                    format!(
                        "Tool calls the model made in AI chats, by tool ({}; {}: a name it made up).",
                        values(&label::ai::TOOLS),
                        label::ai::UNKNOWN_TOOL
                    ),
                ),
                &["tool"],
            ),
        );
        let ai_tokens = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "ai_tokens_total",
                    format!(
                        "Tokens the model server reported for AI chats, by kind ({}, {}).",
                        label::ai::PROMPT,
                        label::ai::COMPLETION
                    ),
                ),
                &["kind"],
            ),
        );
        let ai_upstream_errors = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "ai_upstream_errors_total",
                    format!(
                        "Failed calls to the AI model server, by reason ({}).",
                        values(&label::ai::UPSTREAM_REASONS)
                    ),
                ),
                &["reason"],
            ),
        );
        let connections_rejected = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "connections_rejected_total",
                    format!(
                        "Subscriber connections refused before the stream started, by reason ({}).",
                        values(&label::rejected::ALL)
                    ),
                ),
                &["reason"],
            ),
        );
        let disconnects = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "disconnects_total",
                    format!(
                        "Subscriber sessions closed by the gateway, by reason ({}).",
                        values(&label::disconnect::ALL)
                    ),
                ),
                &["reason"],
            ),
        );
        let rate_limited = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "rate_limited_total",
                    format!(
                        "Requests refused by a rate limit, by limit ({}).",
                        values(&label::limit::ALL)
                    ),
                ),
                &["limit"],
            ),
        );
        let nats_messages = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "nats_messages_total",
                    "NATS messages by link (cluster, fly, rules) and direction (in, out, invalid; plain: not Fly's JSON, kept as a line).",
                ),
                &["link", "direction"],
            ),
        );
        let nats_refused = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "nats_refused_total",
                    "NATS messages refused by the checks an HTTP publish gets, by link (cluster, fly, rules) and reason (the publish error code).",
                ),
                &["link", "reason"],
            ),
        );
        let nats_connected = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "nats_connected",
                    "1 while the NATS link is connected, by link.",
                ),
                &["link"],
            ),
        );
        let connections = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "connections",
                    format!(
                        "Open subscriber connections, by transport ({}).",
                        values(&label::transport::ALL)
                    ),
                ),
                &["transport"],
            ),
        );
        let subscriptions = register(
            &r,
            IntGauge::new(
                "subscriptions",
                "Channel subscriptions held by the registry.",
            ),
        );
        let session_actors = register(
            &r,
            IntGauge::new("session_actors", "Subscriber session actors alive."),
        );
        let publish_batch_events = register(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "publish_batch_events",
                    "Events per accepted publish request.",
                )
                .buckets(vec![1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0]),
            ),
        );
        let delivery_latency = register(&r, Histogram::with_opts(
            HistogramOpts::new(
                "delivery_latency_seconds",
                "From receipt to the write to a subscriber's socket (oldest event of each written batch).",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        ));
        let history_events = register(
            &r,
            IntGauge::new("history_events", "Events held in history."),
        );
        let history_bytes = register(
            &r,
            IntGauge::new("history_bytes", "Bytes of encoded events held in history."),
        );
        let history_channels = register(
            &r,
            IntGauge::new("history_channels", "Channels with history."),
        );
        let history_disk_bytes = register(
            &r,
            IntGauge::new(
                "history_disk_bytes",
                "Bytes of history on disk (HISTORY_STORE=disk), every segment.",
            ),
        );
        let history_disk_events = register(
            &r,
            IntGauge::new("history_disk_events", "Events of history on disk."),
        );
        let history_disk_oldest_seconds = register(
            &r,
            Gauge::new(
                "history_disk_oldest_seconds",
                "When the oldest event on disk was received (Unix seconds; 0: none).",
            ),
        );
        let history_recovered = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "history_recovered_total",
                    format!(
                        "Damage to the history store found and repaired at start, by what ({}).",
                        values(&label::recovered::ALL)
                    ),
                ),
                &["what"],
            ),
        );
        for what in label::recovered::ALL {
            history_recovered.with_label_values(&[what]);
        }
        let history_write_errors = register(
            &r,
            IntCounter::new(
                "history_write_errors_total",
                "Events that could not be stored on disk (I/O errors, a full disk, a writer too far behind).",
            ),
        );
        let history_disk_degraded = register(
            &r,
            IntGauge::new(
                "history_disk_degraded",
                "1 while the history store's last write failed (events are delivered but not stored), 0 once a write succeeds again.",
            ),
        );
        let history_fsyncs = register(
            &r,
            IntCounter::new(
                "history_fsyncs_total",
                "Syncs of the history store to disk (one per interval, or one per group of publishes with HISTORY_FSYNC=always).",
            ),
        );
        let ai_redactions = register(
            &r,
            IntCounter::new(
                "ai_redactions_total",
                "Secrets and personal data redacted from what AI chats sent to the model.",
            ),
        );
        let cluster_origins_forgotten = register(
            &r,
            IntCounter::new(
                "cluster_origins_forgotten_total",
                "Origin nodes no longer followed for loss because too many were heard from; heard from again, they are followed afresh.",
            ),
        );
        let stream_resent = register(
            &r,
            IntCounter::new(
                "stream_publishes_resent_total",
                "JetStream mode: events sent to the stream again because their ack did not come (the stream stores each once).",
            ),
        );
        let idempotency_keys = register(
            &r,
            IntGauge::new(
                "idempotency_keys",
                "Idempotency-Keys remembered with the answer they were given.",
            ),
        );
        let idempotency_evicted = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "idempotency_evicted_total",
                    format!(
                        "Idempotency-Keys forgotten before their window ended, oldest first, by reason ({}); a retry with one publishes again.",
                        values(&label::idempotency::ALL)
                    ),
                ),
                &["reason"],
            ),
        );
        let idempotency_replayed = register(
            &r,
            IntCounter::new(
                "idempotency_replayed_total",
                "Publishes answered with a remembered Idempotency-Key's answer, publishing nothing again.",
            ),
        );
        let log_lines_dropped = register(
            &r,
            IntCounter::new(
                "log_lines_dropped_total",
                "Log lines dropped because stderr did not keep up (the log queue was full).",
            ),
        );
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            // Already-registered is impossible on a fresh registry; ignore it.
            let _ = r.register(Box::new(pc));
        }
        let metrics = Metrics {
            registry: r,
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
            idempotency_keys,
            idempotency_evicted,
            idempotency_replayed,
            subscriptions,
            session_actors,
            publish_batch_events,
            delivery_latency,
            history_events,
            history_bytes,
            history_channels,
            history_disk_bytes,
            history_disk_events,
            history_disk_oldest_seconds,
            history_recovered,
            history_write_errors,
            history_disk_degraded,
            history_fsyncs,
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
        for r in label::idempotency::ALL {
            self.idempotency_evicted.with_label_values(&[r]);
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
}
