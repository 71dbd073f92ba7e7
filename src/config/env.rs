//! The contract's environment names, read one by one over the files'
//! settings.

use std::collections::BTreeMap;

use super::validate::check_service_name;
use super::{Config, ConfigError, Fsync, LogFormat, RunEnv, Secret, StoreKind, TrustProxy};
use crate::digest::token_digest;

/// How a yes-or-no environment variable may be spelled.
const BOOL_WORDS: &[(&str, bool)] = &[
    ("true", true),
    ("1", true),
    ("yes", true),
    ("on", true),
    ("false", false),
    ("0", false),
    ("no", false),
    ("off", false),
];

impl Config {
    pub(super) fn apply_env(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(v) = env("HOST") {
            self.server.host = v;
        }
        if let Some(v) = env("PORT") {
            self.server.port = parse_env("PORT", &v, "a port number 0-65535")?;
        }
        if let Some(v) = env("MAX_CONNECTIONS") {
            self.server.max_connections = parse_env("MAX_CONNECTIONS", &v, "a whole number")?;
        }
        if let Some(v) = env("MAX_CONNECTIONS_PER_IP") {
            self.server.max_connections_per_ip =
                parse_env("MAX_CONNECTIONS_PER_IP", &v, "a whole number (0 = no cap)")?;
        }
        if let Some(v) = env("SSE_STALL_TIMEOUT_SECS") {
            self.sse.stall_timeout_secs =
                parse_env("SSE_STALL_TIMEOUT_SECS", &v, "a whole number of seconds")?;
        }
        if let Some(v) = env("TRUST_PROXY") {
            self.server.trust_proxy = parse_choice("TRUST_PROXY", &v, TrustProxy::WORDS)?;
        }
        if let Some(v) = env("LOGGATE_ENV") {
            // Exactly the documented words: `prod` was once taken for
            // production and `staging` refused, so a reader of the deploy
            // file could not tell which mode a value meant.
            self.env = match v.trim() {
                "production" => RunEnv::Production,
                "development" | "" => RunEnv::Development,
                other => {
                    return Err(ConfigError::new(
                        "LOGGATE_ENV",
                        format!("{other:?} is not one of: production, development"),
                    ));
                }
            };
        }
        if let Some(v) = env("SERVICE_TOKENS") {
            self.service_tokens = parse_service_tokens(&v)?;
        }
        let secret = |name: &str| env(name).filter(|v| !v.is_empty()).map(Secret::new);
        if let Some(v) = secret("JWT_SECRET") {
            self.auth.jwt_secret = Some(v);
        }
        if let Some(v) = env("JWT_PUBLIC_KEY_FILE").filter(|v| !v.is_empty()) {
            self.auth.jwt_public_key_file = Some(v.into());
        }
        if let Some(v) = secret("AUTH_TOKEN") {
            self.auth.auth_token = Some(v);
        }
        if let Some(v) = secret("ADMIN_TOKEN") {
            self.auth.admin_token = Some(v);
        }
        if let Some(v) = env("ALLOWED_ORIGINS") {
            self.auth.allowed_origins = v
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect();
        }
        if let Some(v) = env("PUBLISH_RATE_PER_SEC") {
            self.limits.publish_rate_per_sec = parse_env(
                "PUBLISH_RATE_PER_SEC",
                &v,
                "a whole number of events per second",
            )?;
        }
        if let Some(v) = env("PUBLISH_BYTES_PER_SEC") {
            self.publish.bytes_per_sec = parse_env(
                "PUBLISH_BYTES_PER_SEC",
                &v,
                "a whole number of bytes per second (0 = no limit)",
            )?;
        }
        if let Some(v) = env("CONNECT_RATE_PER_IP") {
            self.limits.connect_rate_per_ip = parse_env(
                "CONNECT_RATE_PER_IP",
                &v,
                "a whole number of connections per second",
            )?;
        }
        if let Some(v) = env("HISTORY_RATE_PER_IP") {
            self.limits.history_rate_per_ip = parse_env(
                "HISTORY_RATE_PER_IP",
                &v,
                "a whole number of requests per second",
            )?;
        }
        if let Some(v) = env("LOG_BUFFER_MAX_ENTRIES") {
            self.history.max_entries =
                parse_env("LOG_BUFFER_MAX_ENTRIES", &v, "a whole number of events")?;
        }
        if let Some(v) = env("LOG_BUFFER_MAX_AGE_MINUTES") {
            self.history.max_age_minutes = Some(parse_env(
                "LOG_BUFFER_MAX_AGE_MINUTES",
                &v,
                "a whole number of minutes",
            )?);
        }
        if let Some(v) = env("DATA_DIR") {
            self.history.dir = v.into();
        }
        if let Some(v) = env("HISTORY_STORE") {
            self.history.store = parse_choice("HISTORY_STORE", &v, StoreKind::WORDS)?;
        }
        if let Some(v) = env("HISTORY_FSYNC") {
            self.history.fsync = parse_choice("HISTORY_FSYNC", &v, Fsync::WORDS)?;
        }
        if let Some(v) = env("HISTORY_MAX_DISK_BYTES") {
            self.history.max_disk_bytes =
                parse_env("HISTORY_MAX_DISK_BYTES", &v, "a whole number of bytes")?;
        }
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
        };
        if let Some(v) = first(&["NATS_URL"]) {
            self.nats.url = Some(v.trim().to_owned());
        }
        if let Some(v) = first(&["NATS_JETSTREAM"]) {
            self.nats.jetstream = parse_choice("NATS_JETSTREAM", &v, BOOL_WORDS)?;
        }
        if let Some(v) = first(&["FLY_ORG", "ORG_SLUG"]) {
            self.fly.org = Some(v.trim().to_owned());
        }
        if let Some(v) = first(&["ACCESS_TOKEN"]) {
            self.fly.access_token = Some(Secret::new(v.trim()));
        }
        if let Some(v) = first(&["FLY_APP", "FLY_APP_NAME", "FLY_PROD_APP_NAME"]) {
            self.fly.app = Some(v.trim().to_owned());
        }
        if let Some(v) = first(&["FLY_NATS_URL"]) {
            self.fly.nats_url = v.trim().to_owned();
        }
        if let Some(v) = first(&["FLY_NATS_QUEUE"]) {
            self.fly.queue = Some(v.trim().to_owned());
        }
        if let Some(v) = first(&["OPENROUTER_API_KEY", "AI_API_KEY"]) {
            self.ai.api_key = Some(Secret::new(v.trim()));
        }
        if let Some(v) = first(&["OPENROUTER_MODEL"]) {
            self.ai.model = v.trim().to_owned();
        }
        if let Some(v) = first(&["AI_BASE_URL"]) {
            self.ai.base_url = v.trim().to_owned();
        }
        if let Some(v) = first(&["AI_TOOLS_RETURN_LINES"]) {
            self.ai.tools_return_lines = parse_choice("AI_TOOLS_RETURN_LINES", &v, BOOL_WORDS)?;
        }
        if let Some(v) = first(&["AI_RATE_PER_MINUTE"]) {
            self.ai.rate_per_minute = parse_env(
                "AI_RATE_PER_MINUTE",
                &v,
                "a whole number of chats per minute",
            )?;
        }
        if let Some(v) = env("RUST_LOG") {
            self.log.filter = v;
        }
        if let Some(v) = env("LOG_FORMAT") {
            self.log.format = parse_choice(
                "LOG_FORMAT",
                &v,
                &[
                    ("json", LogFormat::Json),
                    ("text", LogFormat::Text),
                    ("", LogFormat::Text),
                ],
            )?;
        }
        Ok(())
    }
}

fn parse_env<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, format!("{value:?} is not {what}")))
}

/// One of a fixed set of words, in any case.
pub(super) fn parse_choice<T: Copy>(
    key: &str,
    value: &str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let word = value.trim().to_ascii_lowercase();
    choices
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let words: Vec<&str> = choices
                .iter()
                .map(|(w, _)| *w)
                .filter(|w| !w.is_empty())
                .collect();
            ConfigError::new(
                key,
                format!("{value:?} is not one of: {}", words.join(", ")),
            )
        })
}

/// `service=token,service2=token2`. Every problem is reported at once, one
/// line each, so a deploy is fixed in one go; no token is ever quoted.
fn parse_service_tokens(value: &str) -> Result<BTreeMap<String, Secret>, ConfigError> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    let mut digests: BTreeMap<[u8; 32], String> = BTreeMap::new();
    let pairs = value.split(',').map(str::trim).filter(|p| !p.is_empty());
    for (n, pair) in pairs.enumerate().map(|(i, p)| (i + 1, p)) {
        let Some((service, token)) = pair.split_once('=') else {
            problems.push(format!(
                "pair {n} has no '=' (expected service=token pairs separated by commas)"
            ));
            continue;
        };
        let (service, token) = (service.trim(), token.trim());
        if let Err(e) = check_service_name(service) {
            problems.push(format!("pair {n}: {}", e.problem));
            continue;
        }
        if token.is_empty() {
            problems.push(format!("service {service:?} has an empty token"));
            continue;
        }
        match token_digest(token) {
            Err(problem) => problems.push(format!("service {service:?}: {problem}")),
            Ok(digest) => {
                if let Some(first) = digests.insert(digest, service.to_owned()) {
                    problems.push(format!(
                        "services {first:?} and {service:?} have the same token"
                    ));
                }
            }
        }
        if out.insert(service.to_owned(), Secret::new(token)).is_some() {
            problems.push(format!("service {service:?} is listed twice"));
        }
    }
    match problems.len() {
        0 => Ok(out),
        1 => Err(ConfigError::new("SERVICE_TOKENS", problems.remove(0))),
        n => Err(ConfigError::new(
            "SERVICE_TOKENS",
            format!(
                "{n} problems:{}",
                problems
                    .iter()
                    .map(|p| format!("\n  {p}"))
                    .collect::<String>()
            ),
        )),
    }
}
