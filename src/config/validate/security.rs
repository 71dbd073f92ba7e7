//! Who may publish and subscribe (service tokens, JWT keys, the open
//! modes) and what production refuses: dev tokens, short secrets, open
//! subscriptions.

use super::super::{Config, ConfigError, DEV_TOKENS, Secret};
use super::{at_most, check_service_name};
use crate::digest::{sha256, token_digest};

/// Shortest JWT secret and `AUTH_TOKEN` production accepts.
const MIN_PRODUCTION_SECRET: usize = 32;
/// Shortest admin token production accepts.
const MIN_PRODUCTION_ADMIN_TOKEN: usize = 16;

impl Config {
    /// At least one service, each name a channel segment, no token twice.
    pub(super) fn validate_service_tokens(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }

    pub(super) fn validate_auth(&self) -> Result<(), ConfigError> {
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
    pub(super) fn validate_production(&self) -> Result<(), ConfigError> {
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
