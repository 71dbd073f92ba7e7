//! Configuration: one typed struct, its sources, and its validation.
//!
//! Sources, later ones winning: `config/default.toml` (compiled in, so the
//! binary runs anywhere with no files), the file named by `--config` or
//! `LOGGATE_CONFIG`, then the environment names fixed by the contract. Files
//! are merged by figment, which names the key and the file in its errors;
//! the contract's environment names do not follow one scheme
//! (`SERVICE_TOKENS` is a list of pairs, `HOST` is bare), so they are read
//! here one by one. [`Config::validate`] refuses bad values with a message
//! that starts with the key. Nothing else in loggate reads the environment.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use crate::channel::MAX_SEGMENT_LEN;

/// The compiled-in defaults.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Every environment name loggate reads (deploy files are checked against
/// this list by a test, so they cannot drift from the code).
pub const ENV_NAMES: &[&str] = &[
    "HOST",
    "PORT",
    "LOGGATE_ENV",
    "LOGGATE_CONFIG",
    "SERVICE_TOKENS",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY_FILE",
    "AUTH_TOKEN",
    "ADMIN_TOKEN",
    "ALLOWED_ORIGINS",
    "LOG_BUFFER_MAX_ENTRIES",
    "LOG_BUFFER_MAX_AGE_MINUTES",
    "PUBLISH_RATE_PER_SEC",
    "CONNECT_RATE_PER_IP",
    "HISTORY_RATE_PER_IP",
    "TRUST_PROXY",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_IP",
    "NATS_URL",
    "FLY_ORG",
    "ORG_SLUG",
    "ACCESS_TOKEN",
    "FLY_APP",
    "FLY_APP_NAME",
    "FLY_PROD_APP_NAME",
    "FLY_NATS_URL",
    "FLY_NATS_QUEUE",
    "RUST_LOG",
    "LOG_FORMAT",
];

/// The dev service tokens of `config/default.toml`, refused in production.
pub const DEV_TOKENS: &[&str] = &[
    "l5-etl-token",
    "faas-token",
    "function-token",
    "analytics-token",
];

/// Environment names of the contract whose features this build does not
/// have yet. Setting one is refused at start rather than silently ignored:
/// an operator who sets `JWT_SECRET` must never get open subscriptions.
const NOT_YET_SUPPORTED: &[(&str, &str)] = &[
    ("NATS_JETSTREAM", "JetStream-backed cluster delivery"),
    ("OPENROUTER_API_KEY", "AI log analysis"),
    ("AI_API_KEY", "AI log analysis"),
    ("OPENROUTER_MODEL", "AI log analysis"),
    ("AI_BASE_URL", "AI log analysis"),
];

/// A configured secret. Its `Debug` never shows the value, so logging a
/// config cannot leak it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Shortest JWT secret and `AUTH_TOKEN` production accepts.
const MIN_PRODUCTION_SECRET: usize = 32;
/// Shortest admin token production accepts.
const MIN_PRODUCTION_ADMIN_TOKEN: usize = 16;

/// The prefix of a service token stored as its SHA-256 digest.
pub const SHA256_PREFIX: &str = "sha256:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunEnv {
    Development,
    Production,
}

/// Where the client address comes from when loggate runs behind a proxy.
/// A header is only as trustworthy as the proxy that sets it: trusting
/// `Fly-Client-IP` behind any other proxy lets clients pick their own
/// address, and with it escape every per-address limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustProxy {
    /// The socket's peer address (no proxy).
    Off,
    /// `Fly-Client-IP`, set by Fly.io's proxy.
    Fly,
    /// The last address of `X-Forwarded-For`: the one the proxy in front of
    /// loggate appended (earlier ones are whatever the client sent).
    XForwardedFor,
}

impl TrustProxy {
    /// The words `TRUST_PROXY` and `server.trust_proxy` take.
    const WORDS: &'static [(&'static str, TrustProxy)] = &[
        ("false", TrustProxy::Off),
        ("off", TrustProxy::Off),
        ("no", TrustProxy::Off),
        ("0", TrustProxy::Off),
        ("", TrustProxy::Off),
        ("fly", TrustProxy::Fly),
        ("x-forwarded-for", TrustProxy::XForwardedFor),
        ("xff", TrustProxy::XForwardedFor),
        // A generic proxy appends to X-Forwarded-For (Fly's and Render's
        // do too), so that is what plain "true" trusts.
        ("true", TrustProxy::XForwardedFor),
        ("on", TrustProxy::XForwardedFor),
        ("yes", TrustProxy::XForwardedFor),
        ("1", TrustProxy::XForwardedFor),
    ];
}

impl<'de> Deserialize<'de> for TrustProxy {
    /// `true`/`false` (as in earlier config files) or one of the words.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Word(String),
        }
        let word = match Raw::deserialize(d)? {
            Raw::Bool(b) => b.to_string(),
            Raw::Word(w) => w,
        };
        parse_choice("server.trust_proxy", &word, TrustProxy::WORDS)
            .map_err(|e| serde::de::Error::custom(e.problem))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub env: RunEnv,
    pub server: ServerConfig,
    pub publish: PublishConfig,
    pub subscribe: SubscribeConfig,
    pub history: HistoryConfig,
    pub nats: NatsConfig,
    pub fly: FlyConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    /// Service name → token, or `sha256:<hex>` of the token.
    pub service_tokens: BTreeMap<String, Secret>,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    pub max_entries: usize,
    pub max_age_minutes: u64,
    pub max_bytes: usize,
    pub max_channels: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub creds_file: Option<std::path::PathBuf>,
    pub subject_prefix: String,
    pub outbound_backlog: usize,
    /// Generic ingest rules (file only): NATS subjects mapped to channels.
    #[serde(default)]
    pub ingest: Vec<crate::nats::rules::IngestRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlyConfig {
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub queue: Option<String>,
    pub nats_url: String,
}

impl FlyConfig {
    /// Ingest is on when both the org and its token are known.
    pub fn enabled(&self) -> bool {
        self.org.is_some() && self.access_token.is_some()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub jwt_secret: Option<Secret>,
    #[serde(default)]
    pub jwt_public_key_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub auth_token: Option<Secret>,
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// Clock skew tolerated on `nbf` (and on the lifetime limit). `exp` is
    /// honoured to the second.
    pub jwt_leeway_secs: u64,
    /// Longest lifetime a subscriber JWT may have, in seconds (`exp` after
    /// `iat`, or after now); 0 = no limit.
    pub jwt_max_lifetime_secs: u64,
    pub jwt_audience: Vec<String>,
    pub jwt_issuer: Vec<String>,
    /// Accept the subscriber JWT from cookie `loggate_token`.
    pub cookie: bool,
    /// CORS allow-list; `*` allows any origin.
    pub allowed_origins: Vec<String>,
}

impl AuthConfig {
    /// True when no subscriber credential is configured: anyone may
    /// subscribe to anything.
    pub fn is_open(&self) -> bool {
        self.jwt_secret.is_none() && self.jwt_public_key_file.is_none() && self.auth_token.is_none()
    }

    pub fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Events per second per service (burst twice that); 0 = no limit.
    pub publish_rate_per_sec: u32,
    /// New subscriber connections per second per client IP (burst twice
    /// that); 0 = no limit.
    pub connect_rate_per_ip: u32,
    /// History requests per second per client IP (burst twice that); 0 =
    /// no limit.
    pub history_rate_per_ip: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub max_connections: usize,
    /// Subscriber connections one client address may hold (IPv6: one
    /// /64); 0 = no cap.
    pub max_connections_per_ip: usize,
    pub shutdown_timeout_secs: u64,
    /// Which proxy header names the client address.
    pub trust_proxy: TrustProxy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    pub max_body_bytes: usize,
    pub max_event_bytes: usize,
    pub max_batch_events: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeConfig {
    pub max_channels: usize,
    pub keepalive_secs: u64,
    pub retry_ms: u64,
    pub queue_max_events: usize,
    pub queue_max_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: String,
    pub format: LogFormat,
}

/// A refused configuration: `key` is the file key or environment name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

impl Default for Config {
    /// The compiled-in defaults, with no file and no environment.
    fn default() -> Self {
        Figment::from(Toml::string(DEFAULT_TOML))
            .extract()
            .expect("config/default.toml is valid; a unit test checks it")
    }
}

impl Config {
    /// Loads defaults, then `file`, then the environment through `env`
    /// (a function so tests need not touch the process environment), and
    /// validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let mut config: Config = figment.extract().map_err(|e| {
            let key = if e.path.is_empty() {
                file.map_or("config".into(), |p| p.display().to_string())
            } else {
                e.path.join(".")
            };
            ConfigError::new(key, e.kind.to_string())
        })?;
        config.apply_env(&env)?;
        config.validate()?;
        Ok(config)
    }

    /// Loads with the real process environment.
    pub fn from_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load(file, |k| std::env::var(k).ok())
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (name, feature) in NOT_YET_SUPPORTED {
            if env(name).is_some_and(|v| !v.is_empty()) {
                return Err(ConfigError::new(
                    *name,
                    format!(
                        "is set, but {feature} is not built into this version of loggate yet; unset it"
                    ),
                ));
            }
        }
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
        if let Some(v) = env("TRUST_PROXY") {
            self.server.trust_proxy = parse_choice("TRUST_PROXY", &v, TrustProxy::WORDS)?;
        }
        if let Some(v) = env("LOGGATE_ENV") {
            use RunEnv::{Development, Production};
            self.env = parse_choice(
                "LOGGATE_ENV",
                &v,
                &[
                    ("production", Production),
                    ("prod", Production),
                    ("development", Development),
                    ("dev", Development),
                    ("", Development),
                ],
            )?;
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
            self.history.max_age_minutes = parse_env(
                "LOG_BUFFER_MAX_AGE_MINUTES",
                &v,
                "a whole number of minutes",
            )?;
        }
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
        };
        if let Some(v) = first(&["NATS_URL"]) {
            self.nats.url = Some(v.trim().to_owned());
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

        let sub = &self.subscribe;
        at_least("subscribe.max_channels", sub.max_channels, 1)?;
        at_most("subscribe.max_channels", sub.max_channels, 1024)?;
        at_least("subscribe.keepalive_secs", sub.keepalive_secs as usize, 1)?;
        // The contract promises a comment at least every 15 s.
        at_most("subscribe.keepalive_secs", sub.keepalive_secs as usize, 15)?;
        at_most("subscribe.retry_ms", sub.retry_ms as usize, 3_600_000)?;
        // A reader that keeps up must never lose a whole batch.
        at_least(
            "subscribe.queue_max_events",
            sub.queue_max_events,
            p.max_batch_events,
        )?;
        at_least(
            "subscribe.queue_max_bytes",
            sub.queue_max_bytes,
            p.max_body_bytes,
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
        // Loads and parses the key now, so a bad file stops the start.
        crate::auth::SubscriberAuth::new(a)?;
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
                "* is refused while cookie auth is on (any site could read streams with a visitor's cookie); list your origins, or set auth.cookie = false".into(),
            ));
        }
        if short(&a.admin_token, MIN_PRODUCTION_ADMIN_TOKEN) {
            problems.push((
                "ADMIN_TOKEN",
                format!("needs at least {MIN_PRODUCTION_ADMIN_TOKEN} characters"),
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

    /// The address to listen on. `validate` has checked the host.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let ip: IpAddr = self.server.host.parse().map_err(|_| {
            ConfigError::new(
                "server.host (HOST)",
                format!("{:?} is not an IP address", self.server.host),
            )
        })?;
        Ok(SocketAddr::new(ip, self.server.port))
    }

    pub fn history_limits(&self) -> crate::registry::history::HistoryLimits {
        crate::registry::history::HistoryLimits {
            max_entries_per_channel: self.history.max_entries,
            max_age_ms: (self.history.max_age_minutes as i64).saturating_mul(60_000),
            max_bytes: self.history.max_bytes,
            max_channels: self.history.max_channels,
        }
    }

    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.subscribe.keepalive_secs)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_timeout_secs)
    }

    pub fn is_production(&self) -> bool {
        self.env == RunEnv::Production
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The digest a configured service token stands for: `sha256:<hex>` as
/// written, anything else hashed.
pub fn token_digest(configured: &str) -> Result<[u8; 32], String> {
    match configured.strip_prefix(SHA256_PREFIX) {
        Some(hex_digest) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(hex_digest.trim(), &mut out)
                .map_err(|_| "sha256: must be followed by 64 hex digits".to_string())?;
            Ok(out)
        }
        None if configured.len() < 8 => Err("token is shorter than 8 characters".into()),
        None => Ok(sha256(configured.as_bytes())),
    }
}

fn parse_env<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, format!("{value:?} is not {what}")))
}

/// One of a fixed set of words, in any case.
fn parse_choice<T: Copy>(key: &str, value: &str, choices: &[(&str, T)]) -> Result<T, ConfigError> {
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

fn check_service_name(service: &str) -> Result<(), ConfigError> {
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

/// `service=token,service2=token2`.
fn parse_service_tokens(value: &str) -> Result<BTreeMap<String, Secret>, ConfigError> {
    let mut out = BTreeMap::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((service, token)) = pair.split_once('=') else {
            return Err(ConfigError::new(
                "SERVICE_TOKENS",
                "expected service=token pairs separated by commas (a pair has no '=')",
            ));
        };
        let (service, token) = (service.trim(), token.trim());
        check_service_name(service)?;
        if token.is_empty() {
            return Err(ConfigError::new(
                "SERVICE_TOKENS",
                format!("service {service:?} has an empty token"),
            ));
        }
        if out.insert(service.to_owned(), Secret::new(token)).is_some() {
            return Err(ConfigError::new(
                "SERVICE_TOKENS",
                format!("service {service:?} is listed twice"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_with(vars: &[(&str, &str)], file: Option<&Path>) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(file, |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_valid_and_match_the_contract() {
        let c = load_with(&[], None).unwrap();
        assert_eq!(c.listen_addr().unwrap().to_string(), "0.0.0.0:3002");
        assert_eq!(c.service_tokens["etl"].expose(), "l5-etl-token");
        assert_eq!(c.service_tokens["faas"].expose(), "faas-token");
        assert_eq!(c.service_tokens["function"].expose(), "function-token");
        assert_eq!(c.service_tokens["analytics"].expose(), "analytics-token");
        assert_eq!(c.server.max_connections, 10_000);
        assert_eq!(c.publish.max_event_bytes, 64 * 1024);
        assert_eq!(c.publish.max_body_bytes, 1024 * 1024);
        assert_eq!(c.publish.max_batch_events, 1000);
        assert_eq!(c.subscribe.max_channels, 32);
        assert_eq!(c.history.max_entries, 10_000);
        assert_eq!(c.history.max_age_minutes, 30);
        assert!(c.subscribe.keepalive_secs <= 15);
        assert_eq!(Config::default().server.port, 3002);
    }

    #[test]
    fn env_overrides() {
        let c = load_with(
            &[
                ("HOST", "127.0.0.1"),
                ("PORT", "8080"),
                ("MAX_CONNECTIONS", "5"),
                ("SERVICE_TOKENS", "billing=secret-one, etl = secret-two"),
                ("RUST_LOG", "debug"),
                ("TRUST_PROXY", "true"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.max_connections, 5);
        assert_eq!(c.service_tokens.len(), 2);
        assert_eq!(c.service_tokens["billing"].expose(), "secret-one");
        assert_eq!(c.log.filter, "debug");
        assert_eq!(c.server.trust_proxy, TrustProxy::XForwardedFor);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("PORT", "abc")], "PORT"),
            (&[("PORT", "70000")], "PORT"),
            (&[("HOST", "not-an-ip")], "HOST"),
            (&[("MAX_CONNECTIONS", "0")], "MAX_CONNECTIONS"),
            (&[("MAX_CONNECTIONS", "-1")], "MAX_CONNECTIONS"),
            (&[("LOGGATE_ENV", "staging")], "LOGGATE_ENV"),
            (&[("SERVICE_TOKENS", "etl")], "SERVICE_TOKENS"),
            (&[("SERVICE_TOKENS", "etl=")], "SERVICE_TOKENS"),
            (&[("SERVICE_TOKENS", "e.tl=abcdefgh")], "SERVICE_TOKENS"),
            (
                &[("SERVICE_TOKENS", "a=abcdefgh,a=ijklmnop")],
                "SERVICE_TOKENS",
            ),
            (&[("SERVICE_TOKENS", "a=short")], "service_tokens.a"),
            (
                &[("SERVICE_TOKENS", "a=abcdefgh,b=abcdefgh")],
                "service_tokens.",
            ),
            (&[("SERVICE_TOKENS", "")], "SERVICE_TOKENS"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("TRUST_PROXY", "maybe")], "TRUST_PROXY"),
            (&[("RUST_LOG", "=[")], "RUST_LOG"),
            (&[("NATS_URL", "localhost:4222")], "NATS_URL"),
            (&[("FLY_ORG", "myorg")], "ACCESS_TOKEN"),
            (&[("ACCESS_TOKEN", "t")], "FLY_ORG"),
            (&[("FLY_ORG", "my.org"), ("ACCESS_TOKEN", "t")], "FLY_ORG"),
            (&[("LOG_BUFFER_MAX_ENTRIES", "0")], "LOG_BUFFER_MAX_ENTRIES"),
            (
                &[("LOG_BUFFER_MAX_ENTRIES", "many")],
                "LOG_BUFFER_MAX_ENTRIES",
            ),
            (
                &[("LOG_BUFFER_MAX_AGE_MINUTES", "0")],
                "LOG_BUFFER_MAX_AGE_MINUTES",
            ),
            (&[("PUBLISH_RATE_PER_SEC", "fast")], "PUBLISH_RATE_PER_SEC"),
            (&[("CONNECT_RATE_PER_IP", "-1")], "CONNECT_RATE_PER_IP"),
            (&[("ALLOWED_ORIGINS", "app.example.com")], "ALLOWED_ORIGINS"),
            (
                &[("ALLOWED_ORIGINS", "https://app.example.com/")],
                "ALLOWED_ORIGINS",
            ),
            (
                &[("ALLOWED_ORIGINS", "https://*.example.com")],
                "ALLOWED_ORIGINS",
            ),
            (&[("ALLOWED_ORIGINS", ",")], "ALLOWED_ORIGINS"),
            (
                &[("JWT_PUBLIC_KEY_FILE", "/nonexistent.pem")],
                "JWT_PUBLIC_KEY_FILE",
            ),
            (
                &[("JWT_SECRET", "s"), ("JWT_PUBLIC_KEY_FILE", "/x.pem")],
                "JWT_SECRET / JWT_PUBLIC_KEY_FILE",
            ),
            (&[("SERVICE_TOKENS", "a=sha256:nothex")], "service_tokens.a"),
            (&[("NATS_JETSTREAM", "true")], "NATS_JETSTREAM"),
            (
                &[("OPENROUTER_API_KEY", "sk-x")],
                "not built into this version",
            ),
        ];
        for (vars, key) in cases {
            let err = load_with(vars, None).expect_err(&format!("{vars:?} should fail"));
            assert!(err.to_string().contains(key), "{vars:?}: {err}");
        }
    }

    #[test]
    fn production_refusals_each_name_what_to_set() {
        let secure: &[(&str, &str)] = &[
            ("LOGGATE_ENV", "production"),
            ("SERVICE_TOKENS", "etl=a-real-secret"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("ALLOWED_ORIGINS", "https://app.example.com"),
            ("ADMIN_TOKEN", "an-admin-token-of-length"),
        ];
        let with = |over: &[(&str, &str)]| {
            let mut vars: Vec<(&str, &str)> = secure
                .iter()
                .filter(|(k, _)| !over.iter().any(|(o, _)| o == k))
                .copied()
                .collect();
            vars.extend(over.iter().filter(|(_, v)| !v.is_empty()));
            load_with(&vars, None)
        };
        assert!(with(&[]).is_ok(), "{:?}", with(&[]).err());
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("SERVICE_TOKENS", "etl=l5-etl-token")], "dev token"),
            (&[("JWT_SECRET", "")], "open subscriptions"),
            (
                &[("JWT_SECRET", "short-secret")],
                "JWT_SECRET: needs at least 32 bytes",
            ),
            (
                &[("AUTH_TOKEN", "x")],
                "AUTH_TOKEN: needs at least 32 characters",
            ),
            (&[("ALLOWED_ORIGINS", "*")], "ALLOWED_ORIGINS: * is refused"),
            (&[("ADMIN_TOKEN", "short")], "at least 16"),
        ];
        for (over, want) in cases {
            let err = with(over).expect_err(&format!("{over:?} should be refused"));
            assert!(err.to_string().contains(want), "{over:?}: {err}");
        }
        // A dev token configured as its digest is still a dev token.
        let digest = hex::encode(sha256(b"faas-token"));
        let hashed = format!("faas=sha256:{digest}");
        let err = with(&[("SERVICE_TOKENS", &hashed)]).unwrap_err();
        assert!(err.to_string().contains("dev token"), "{err}");
        // AUTH_TOKEN alone closes subscriptions too.
        assert!(
            with(&[
                ("JWT_SECRET", ""),
                ("AUTH_TOKEN", "a-static-ops-token-of-32-characters")
            ])
            .is_ok()
        );
        // Everything wrong is reported in one go.
        let err = with(&[
            ("SERVICE_TOKENS", "etl=l5-etl-token,faas=faas-token"),
            ("JWT_SECRET", "short-secret"),
            ("AUTH_TOKEN", "x"),
            ("ALLOWED_ORIGINS", "*"),
            ("ADMIN_TOKEN", "short"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("6 problem(s)"), "{err}");
        for key in [
            "SERVICE_TOKENS",
            "JWT_SECRET",
            "AUTH_TOKEN",
            "ALLOWED_ORIGINS",
            "ADMIN_TOKEN",
        ] {
            assert!(err.contains(&format!("\n  {key}: ")), "{key}: {err}");
        }
        // Development keeps accepting what production refuses.
        assert!(load_with(&[("JWT_SECRET", "short")], None).is_ok());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = load_with(
            &[
                ("JWT_SECRET", "super-secret-value"),
                ("ADMIN_TOKEN", "admin-secret-value"),
            ],
            None,
        )
        .unwrap();
        let text = format!("{c:?}");
        for secret in ["super-secret-value", "admin-secret-value", "l5-etl-token"] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn file_layer_and_its_errors() {
        let dir = std::env::temp_dir().join(format!("loggate-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[server]\nport = 4000\n[subscribe]\nmax_channels = 8\n",
        )
        .unwrap();
        let c = load_with(&[], Some(&good)).unwrap();
        assert_eq!(c.server.port, 4000);
        assert_eq!(c.subscribe.max_channels, 8);
        assert_eq!(c.server.host, "0.0.0.0", "unset keys keep defaults");
        // The environment wins over the file.
        assert_eq!(
            load_with(&[("PORT", "5000")], Some(&good))
                .unwrap()
                .server
                .port,
            5000
        );

        let typo = dir.join("typo.toml");
        std::fs::write(&typo, "[server]\nprot = 4000\n").unwrap();
        let err = load_with(&[], Some(&typo)).unwrap_err().to_string();
        assert!(err.contains("prot"), "{err}");

        let wrong_type = dir.join("type.toml");
        std::fs::write(&wrong_type, "[server]\nport = \"high\"\n").unwrap();
        let err = load_with(&[], Some(&wrong_type)).unwrap_err().to_string();
        assert!(err.contains("server.port"), "{err}");

        let rules = dir.join("rules.toml");
        std::fs::write(
            &rules,
            "[[nats.ingest]]\nsubject = \"a.>\"\nchannel = \"logs:{2}\"\n",
        )
        .unwrap();
        let err = load_with(&[], Some(&rules)).unwrap_err();
        assert_eq!(err.key, "nats.ingest", "rules need NATS_URL: {err}");
        assert!(load_with(&[("NATS_URL", "nats://127.0.0.1:4222")], Some(&rules)).is_ok());
        std::fs::write(
            &rules,
            "[[nats.ingest]]\nsubject = \"a.>\"\nchannel = \"logs:{0}\"\n",
        )
        .unwrap();
        let err = load_with(&[("NATS_URL", "nats://127.0.0.1:4222")], Some(&rules)).unwrap_err();
        assert_eq!(err.key, "nats.ingest[0]", "{err}");

        let err = load_with(&[], Some(&dir.join("missing.toml"))).unwrap_err();
        assert_eq!(err.key, "--config");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
