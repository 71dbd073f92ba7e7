//! The NATS settings: URLs, subjects and rules, the cluster link and its
//! JetStream stream.

use super::super::{Config, ConfigError};
use super::{at_least, at_most};

impl Config {
    /// The NATS links and what each reads and writes.
    pub(super) fn validate_nats(&self) -> Result<(), ConfigError> {
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
}
