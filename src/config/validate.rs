//! Validation: every value a typo or a bad deploy could get wrong is
//! refused with a message that starts with its key; production refuses
//! what is only safe on a laptop.

use std::net::IpAddr;

use super::{Config, ConfigError, DEV_TOKENS, RunEnv, Secret};
use crate::channel::MAX_SEGMENT_LEN;
use crate::digest::{sha256, token_digest};

/// Shortest JWT secret and `AUTH_TOKEN` production accepts.
const MIN_PRODUCTION_SECRET: usize = 32;
/// Shortest admin token production accepts.
const MIN_PRODUCTION_ADMIN_TOKEN: usize = 16;

impl Config {
    /// Checks every value a typo or a bad deploy could get wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        self.validate_ingest()?;

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
            h.max_age_minutes as usize,
            1,
        )?;
        at_most(
            "history.max_age_minutes (LOG_BUFFER_MAX_AGE_MINUTES)",
            h.max_age_minutes as usize,
            7 * 24 * 60,
        )?;
        at_least("history.max_bytes", h.max_bytes, p.max_body_bytes)?;
        at_least("history.max_bytes", h.max_bytes, self.ingest.max_body_bytes)?;
        at_least("history.max_channels", h.max_channels, 1)?;

        self.validate_nats()?;

        if self.service_tokens.is_empty() {
            return Err(ConfigError::new(
                "service_tokens (SERVICE_TOKENS)",
                "no service can publish; configure at least one service=token",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (service, token) in &self.service_tokens {
            check_service_name(service)?;
            let key = format!("service_tokens.{service}");
            let digest =
                token_digest(token.expose()).map_err(|problem| ConfigError::new(&key, problem))?;
            if !seen.insert(digest) {
                return Err(ConfigError::new(
                    key,
                    "the same token is configured for two services",
                ));
            }
        }
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

    fn validate_nats(&self) -> Result<(), ConfigError> {
        let url_ok = |u: &str| {
            ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| u.starts_with(s) && u.len() > s.len())
        };
        let n = &self.nats;
        if let Some(url) = &n.url
            && !url_ok(url)
        {
            return Err(ConfigError::new(
                "NATS_URL",
                format!("{url:?} is not a URL like nats://host:4222"),
            ));
        }
        let token_ok = |t: &str| {
            !t.is_empty()
                && t.split('.').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                })
        };
        if !token_ok(&n.subject_prefix) {
            return Err(ConfigError::new(
                "nats.subject_prefix",
                format!(
                    "{:?} is not a NATS subject prefix like loggate",
                    n.subject_prefix
                ),
            ));
        }
        at_least("nats.outbound_backlog", n.outbound_backlog, 1)?;
        let rate = usize::try_from(n.max_node_events_per_sec).unwrap_or(usize::MAX);
        at_least("nats.max_node_events_per_sec", rate, 1)?;
        if n.jetstream {
            if n.url.is_none() {
                return Err(ConfigError::new(
                    "NATS_JETSTREAM",
                    "JetStream keeps the cluster's events: set NATS_URL too",
                ));
            }
            let name_ok = !n.stream.is_empty()
                && n.stream.len() <= 64
                && n.stream
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok {
                return Err(ConfigError::new(
                    "nats.stream",
                    format!(
                        "{:?} is not a stream name: 1-64 characters of A-Z a-z 0-9 _ -",
                        n.stream
                    ),
                ));
            }
        }
        if n.stream_max_bytes < 1024 * 1024 {
            return Err(ConfigError::new(
                "nats.stream_max_bytes",
                format!(
                    "{} is below the minimum of 1048576 (1 MiB)",
                    n.stream_max_bytes
                ),
            ));
        }
        let timeout = usize::try_from(n.publish_timeout_secs).unwrap_or(usize::MAX);
        at_least("nats.publish_timeout_secs", timeout, 1)?;
        at_most("nats.publish_timeout_secs", timeout, 300)?;
        // JetStream takes ages in nanoseconds as an i64.
        let age = usize::try_from(n.stream_max_age_minutes).unwrap_or(usize::MAX);
        at_most("nats.stream_max_age_minutes", age, 60 * 24 * 365 * 100)?;
        for (i, rule) in n.ingest.iter().enumerate() {
            rule.validate()
                .map_err(|problem| ConfigError::new(format!("nats.ingest[{i}]"), problem))?;
        }
        if !n.ingest.is_empty() && n.url.is_none() {
            return Err(ConfigError::new(
                "nats.ingest",
                "ingest rules read from the cluster connection: set NATS_URL",
            ));
        }
        if n.user.is_some() != n.password.is_some() {
            return Err(ConfigError::new(
                "nats.user / nats.password",
                "set both or neither",
            ));
        }
        let f = &self.fly;
        match (&f.org, &f.access_token) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "ACCESS_TOKEN",
                    "FLY_ORG is set but ACCESS_TOKEN is not; Fly ingest needs both",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "FLY_ORG",
                    "ACCESS_TOKEN is set but FLY_ORG (or ORG_SLUG) is not; Fly ingest needs both",
                ));
            }
            _ => {}
        }
        if let Some(org) = &f.org
            && crate::channel::ChannelName::from_parts("x", Some(org), None).is_err()
        {
            return Err(ConfigError::new(
                "FLY_ORG",
                format!("{org:?} cannot be a channel segment (A-Z a-z 0-9 _ -, at most 64)"),
            ));
        }
        if let Some(app) = f.app.as_deref().filter(|a| *a != "*")
            && !token_ok(app)
        {
            return Err(ConfigError::new(
                "FLY_APP",
                format!("{app:?} is not an app name"),
            ));
        }
        if f.enabled() && !url_ok(&f.nats_url) {
            return Err(ConfigError::new(
                "FLY_NATS_URL",
                format!("{:?} is not a URL like nats://[fdaa::3]:4223", f.nats_url),
            ));
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let a = &self.auth;
        if a.jwt_secret.is_some() && a.jwt_public_key_file.is_some() {
            return Err(ConfigError::new(
                "JWT_SECRET / JWT_PUBLIC_KEY_FILE",
                "set one of them, not both: each fixes the one algorithm tokens must use",
            ));
        }
        at_most("auth.jwt_leeway_secs", a.jwt_leeway_secs as usize, 600)?;
        if a.allowed_origins.is_empty() {
            return Err(ConfigError::new(
                "auth.allowed_origins (ALLOWED_ORIGINS)",
                "empty; list origins such as https://app.example.com, or * for any",
            ));
        }
        for origin in a.allowed_origins.iter().filter(|o| *o != "*") {
            // An origin is scheme://host[:port]: no path, not even "/".
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let ok = host.is_some_and(|h| !h.is_empty() && !h.contains(['/', ' ', '*']));
            if !ok {
                return Err(ConfigError::new(
                    "auth.allowed_origins (ALLOWED_ORIGINS)",
                    format!(
                        "{origin:?} is not an origin like https://app.example.com (scheme and host, no path)"
                    ),
                ));
            }
        }
        let p = &self.limits;
        at_most(
            "limits.publish_rate_per_sec",
            p.publish_rate_per_sec as usize,
            1 << 30,
        )?;
        at_most(
            "limits.connect_rate_per_ip",
            p.connect_rate_per_ip as usize,
            1 << 30,
        )?;
        at_most(
            "limits.history_rate_per_ip (HISTORY_RATE_PER_IP)",
            p.history_rate_per_ip as usize,
            1 << 30,
        )?;
        Ok(())
    }

    /// `LOGGATE_ENV=production` refuses what is only safe on a laptop. Every
    /// refusal is reported at once, one line each, so an operator fixes
    /// them in one go instead of one per start.
    fn validate_production(&self) -> Result<(), ConfigError> {
        let mut problems: Vec<(&str, String)> = Vec::new();
        let dev: Vec<[u8; 32]> = DEV_TOKENS.iter().map(|t| sha256(t.as_bytes())).collect();
        for (service, token) in &self.service_tokens {
            if token_digest(token.expose()).is_ok_and(|d| dev.contains(&d)) {
                problems.push((
                    "SERVICE_TOKENS",
                    format!(
                        "the dev token of service {service:?} is refused; set SERVICE_TOKENS=service=secret,…"
                    ),
                ));
            }
        }
        let a = &self.auth;
        if a.is_open() {
            problems.push((
                "JWT_SECRET",
                "open subscriptions are refused; set JWT_SECRET (or JWT_PUBLIC_KEY_FILE, or AUTH_TOKEN)".into(),
            ));
        }
        let short = |secret: &Option<Secret>, min: usize| {
            secret.as_ref().is_some_and(|s| s.expose().len() < min)
        };
        if short(&a.jwt_secret, MIN_PRODUCTION_SECRET) {
            problems.push((
                "JWT_SECRET",
                format!(
                    "needs at least {MIN_PRODUCTION_SECRET} bytes (e.g. `openssl rand -base64 48`)"
                ),
            ));
        }
        if short(&a.auth_token, MIN_PRODUCTION_SECRET) {
            problems.push((
                "AUTH_TOKEN",
                format!(
                    "needs at least {MIN_PRODUCTION_SECRET} characters: it grants every channel (e.g. `openssl rand -base64 48`)"
                ),
            ));
        }
        if a.cookie && a.any_origin() {
            problems.push((
                "ALLOWED_ORIGINS",
                "* is refused while cookie auth is on: list the origins of the pages that use the loggate_token cookie (with *, it counts only on the gateway's own pages, and CORS grants no origin credentials), or set auth.cookie = false".into(),
            ));
        }
        if short(&a.admin_token, MIN_PRODUCTION_ADMIN_TOKEN) {
            problems.push((
                "ADMIN_TOKEN",
                format!("needs at least {MIN_PRODUCTION_ADMIN_TOKEN} characters"),
            ));
        }
        // A misspelt name may be the setting that makes production safe
        // (`JWT_SECERT`): guessing what was meant is not safe either.
        for stray in &self.stray_env {
            problems.push((
                &stray.name,
                match stray.closest {
                    Some(known) => format!(
                        "is not a loggate setting (did you mean {known}?); rename or unset it"
                    ),
                    None => "is not a loggate setting; unset it".into(),
                },
            ));
        }
        if problems.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = problems
            .iter()
            .map(|(key, problem)| format!("\n  {key}: {problem}"))
            .collect();
        Err(ConfigError::new(
            "LOGGATE_ENV=production",
            format!(
                "refuses to start, {} problem(s):{}",
                problems.len(),
                lines.concat()
            ),
        ))
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
