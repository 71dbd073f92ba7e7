//! Validation: every value a typo or a bad deploy could get wrong is
//! refused with a message that starts with its key; production refuses
//! what is only safe on a laptop.

use std::net::IpAddr;

use super::{Config, ConfigError, RunEnv};
use crate::channel::MAX_SEGMENT_LEN;

mod nats;
mod security;

impl Config {
    /// Checks every value a typo or a bad deploy could get wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_publish()?;
        self.validate_subscribe()?;
        self.validate_history()?;
        self.validate_nats()?;
        self.validate_service_tokens()?;
        self.validate_auth()?;
        self.validate_ai()?;
        tracing_subscriber::EnvFilter::try_new(&self.log.filter).map_err(|e| {
            ConfigError::new(
                "log.filter (RUST_LOG)",
                format!("{:?}: {e}", self.log.filter),
            )
        })?;

        if self.env == RunEnv::Production {
            self.validate_production()?;
        }
        Ok(())
    }

    /// Address, connection slots, workers, shutdown.
    fn validate_server(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        s.host.parse::<IpAddr>().map_err(|_| {
            ConfigError::new(
                "server.host (HOST)",
                format!("{:?} is not an IP address, e.g. 0.0.0.0 or ::", s.host),
            )
        })?;
        at_least(
            "server.max_connections (MAX_CONNECTIONS)",
            s.max_connections,
            1,
        )?;
        at_most("server.workers", s.workers, 256)?;
        at_most(
            "server.shutdown_timeout_secs",
            s.shutdown_timeout_secs as usize,
            3600,
        )?;
        Ok(())
    }

    /// Event, body and batch sizes, then their rates and the other ingest paths.
    fn validate_publish(&self) -> Result<(), ConfigError> {
        let p = &self.publish;
        at_least("publish.max_event_bytes", p.max_event_bytes, 256)?;
        at_least(
            "publish.max_body_bytes",
            p.max_body_bytes,
            p.max_event_bytes,
        )?;
        at_most("publish.max_body_bytes", p.max_body_bytes, 64 << 20)?;
        at_least("publish.max_batch_events", p.max_batch_events, 1)?;
        at_most("publish.max_batch_events", p.max_batch_events, 100_000)?;
        self.validate_publish_bytes()?;
        self.validate_idempotency()?;
        self.validate_ingest()?;
        Ok(())
    }

    /// Channels per subscriber, keepalive and the queues; the SSE stall timeout.
    fn validate_subscribe(&self) -> Result<(), ConfigError> {
        let p = &self.publish;
        let sub = &self.subscribe;
        at_least("subscribe.max_channels", sub.max_channels, 1)?;
        at_most("subscribe.max_channels", sub.max_channels, 1024)?;
        at_least("subscribe.keepalive_secs", sub.keepalive_secs as usize, 1)?;
        // The contract promises a comment at least every 15 s.
        at_most("subscribe.keepalive_secs", sub.keepalive_secs as usize, 15)?;
        at_most("subscribe.retry_ms", sub.retry_ms as usize, 3_600_000)?;
        // A reader that keeps up must never lose a whole request's events,
        // a shipper's 10,000-line push included: they reach its queue at
        // once.
        at_least(
            "subscribe.queue_max_events",
            sub.queue_max_events,
            p.max_batch_events.max(self.ingest.max_batch_events),
        )?;
        at_least(
            "subscribe.queue_max_bytes",
            sub.queue_max_bytes,
            p.max_body_bytes.max(self.ingest.max_body_bytes),
        )?;

        let stall = usize::try_from(self.sse.stall_timeout_secs).unwrap_or(usize::MAX);
        at_least("sse.stall_timeout_secs (SSE_STALL_TIMEOUT_SECS)", stall, 1)?;
        at_most(
            "sse.stall_timeout_secs (SSE_STALL_TIMEOUT_SECS)",
            stall,
            3600,
        )?;
        Ok(())
    }

    /// History's entries, age, bytes and channels.
    fn validate_history(&self) -> Result<(), ConfigError> {
        let p = &self.publish;
        let h = &self.history;
        at_least(
            "history.max_entries (LOG_BUFFER_MAX_ENTRIES)",
            h.max_entries,
            1,
        )?;
        at_most(
            "history.max_entries (LOG_BUFFER_MAX_ENTRIES)",
            h.max_entries,
            10_000_000,
        )?;
        at_least(
            "history.max_age_minutes (LOG_BUFFER_MAX_AGE_MINUTES)",
            h.max_age_minutes() as usize,
            1,
        )?;
        at_most(
            "history.max_age_minutes (LOG_BUFFER_MAX_AGE_MINUTES)",
            h.max_age_minutes() as usize,
            90 * 24 * 60,
        )?;
        if h.store == super::StoreKind::Disk {
            if h.dir.as_os_str().is_empty() {
                return Err(ConfigError::new(
                    "history.dir (DATA_DIR)",
                    "must name a directory",
                ));
            }
            at_least("history.fsync_interval_ms", h.fsync_interval_ms as usize, 1)?;
            at_most(
                "history.fsync_interval_ms",
                h.fsync_interval_ms as usize,
                60_000,
            )?;
            at_least(
                "history.max_disk_bytes (HISTORY_MAX_DISK_BYTES)",
                usize::try_from(h.max_disk_bytes).unwrap_or(usize::MAX),
                1 << 20,
            )?;
        }
        at_least("history.max_bytes", h.max_bytes, p.max_body_bytes)?;
        at_least("history.max_bytes", h.max_bytes, self.ingest.max_body_bytes)?;
        at_least("history.max_channels", h.max_channels, 1)?;
        Ok(())
    }

    /// The byte rate and the decode slots.
    fn validate_publish_bytes(&self) -> Result<(), ConfigError> {
        let p = &self.publish;
        let rate = p.bytes_per_sec;
        if rate != 0 && !(1024..=1 << 40).contains(&rate) {
            return Err(ConfigError::new(
                "publish.bytes_per_sec (PUBLISH_BYTES_PER_SEC)",
                format!("{rate} is not 0 (no limit) or between 1024 and 2^40 bytes per second"),
            ));
        }
        at_least("publish.large_body_bytes", p.large_body_bytes, 4096)?;
        at_most("publish.large_body_bytes", p.large_body_bytes, 64 << 20)?;
        at_least("publish.large_body_slots", p.large_body_slots, 1)?;
        at_most("publish.large_body_slots", p.large_body_slots, 256)?;
        Ok(())
    }

    /// The idempotency window and table; with JetStream the stream must
    /// keep events as long as their keys are remembered.
    fn validate_idempotency(&self) -> Result<(), ConfigError> {
        let p = &self.publish;
        const WINDOW: &str = "publish.idempotency_window_secs";
        let window = usize::try_from(p.idempotency_window_secs).unwrap_or(usize::MAX);
        at_least(WINDOW, window, 1)?;
        at_most(WINDOW, window, 86_400)?;
        at_least("publish.idempotency_max_keys", p.idempotency_max_keys, 1)?;
        at_most(
            "publish.idempotency_max_keys",
            p.idempotency_max_keys,
            10_000_000,
        )?;
        let stream_age = self.nats.stream_max_age_minutes.saturating_mul(60);
        if self.nats.jetstream && stream_age != 0 && p.idempotency_window_secs > stream_age {
            return Err(ConfigError::new(
                WINDOW,
                format!(
                    "{} s is longer than the JetStream stream keeps events (nats.stream_max_age_minutes = {}): the stream could not recognise a retry's events; shorten it or keep the stream longer",
                    p.idempotency_window_secs, self.nats.stream_max_age_minutes
                ),
            ));
        }
        Ok(())
    }

    /// The shipper endpoints' limits.
    fn validate_ingest(&self) -> Result<(), ConfigError> {
        let i = &self.ingest;
        at_least(
            "ingest.max_body_bytes",
            i.max_body_bytes,
            self.publish.max_event_bytes,
        )?;
        at_most("ingest.max_body_bytes", i.max_body_bytes, 64 << 20)?;
        at_least("ingest.max_batch_events", i.max_batch_events, 1)?;
        at_most("ingest.max_batch_events", i.max_batch_events, 100_000)?;
        Ok(())
    }

    fn validate_ai(&self) -> Result<(), ConfigError> {
        let a = &self.ai;
        let url = a.base_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || reqwest::Url::parse(url).is_err()
        {
            return Err(ConfigError::new(
                "ai.base_url (AI_BASE_URL)",
                format!(
                    "{:?} is not an http(s) URL, e.g. https://openrouter.ai/api/v1 or http://localhost:11434/v1",
                    url.chars().take(80).collect::<String>()
                ),
            ));
        }
        if a.model.trim().is_empty() || a.model.len() > 200 {
            return Err(ConfigError::new(
                "ai.model (OPENROUTER_MODEL)",
                "must name a model, e.g. moonshotai/kimi-k2 (at most 200 characters)",
            ));
        }
        if let Some(key) = &a.api_key
            && (key.expose().is_empty() || key.expose().bytes().any(|b| b < 0x21 || b == 0x7f))
        {
            return Err(ConfigError::new(
                "ai.api_key (OPENROUTER_API_KEY / AI_API_KEY)",
                "is empty or holds spaces or control characters",
            ));
        }
        at_least("ai.max_tool_rounds", a.max_tool_rounds, 1)?;
        at_most("ai.max_tool_rounds", a.max_tool_rounds, 50)?;
        at_least("ai.max_total_tokens", a.max_total_tokens as usize, 1000)?;
        at_least(
            "ai.max_completion_tokens",
            a.max_completion_tokens as usize,
            16,
        )?;
        at_least("ai.timeout_secs", a.timeout_secs as usize, 1)?;
        at_most("ai.timeout_secs", a.timeout_secs as usize, 3600)?;
        at_least("ai.line_max_bytes", a.line_max_bytes, 64)?;
        at_least("ai.tool_result_max_bytes", a.tool_result_max_bytes, 1024)?;
        at_most("ai.tool_result_max_bytes", a.tool_result_max_bytes, 1 << 20)?;
        at_least(
            "ai.tool_result_max_bytes",
            a.tool_result_max_bytes,
            a.line_max_bytes,
        )?;
        at_least("ai.max_message_bytes", a.max_message_bytes, 1)?;
        at_most("ai.max_message_bytes", a.max_message_bytes, 64 * 1024)?;
        at_least("ai.max_concurrent", a.max_concurrent, 1)?;
        Ok(())
    }
}

fn at_least(key: &str, value: usize, min: usize) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(
            key,
            format!("{value} is below the minimum {min}"),
        ));
    }
    Ok(())
}

fn at_most(key: &str, value: usize, max: usize) -> Result<(), ConfigError> {
    if value > max {
        return Err(ConfigError::new(
            key,
            format!("{value} is above the maximum {max}"),
        ));
    }
    Ok(())
}

pub(super) fn check_service_name(service: &str) -> Result<(), ConfigError> {
    let ok = !service.is_empty()
        && service.len() <= MAX_SEGMENT_LEN
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "service_tokens (SERVICE_TOKENS)",
            format!("service name {service:?} must be 1-64 characters of A-Z a-z 0-9 _ -"),
        ))
    }
}
