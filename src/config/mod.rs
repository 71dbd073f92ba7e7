//! Configuration: one typed struct of plain settings, its sources, and its
//! validation.
//!
//! Sources, later ones winning: `config/default.toml` (compiled in, so the
//! binary runs anywhere with no files), the file named by `--config` or
//! `LOGGATE_CONFIG`, then the environment names fixed by the contract
//! ([`env`](self) module). Files are merged by figment, which names the key
//! and the file in its errors; the contract's environment names do not
//! follow one scheme (`SERVICE_TOKENS` is a list of pairs, `HOST` is bare),
//! so they are read one by one. [`Config::validate`] refuses bad values
//! with a message that starts with the key. Nothing else in loggate reads
//! the environment. [`Config::from_env`] also looks through every name in
//! it for one that looks like a setting and is not (`JWT_SECERT`; the
//! `strays` module): warned about at start, refused in production.
//!
//! Settings only: each part of loggate builds its own runtime object from
//! its section (auth its token checks, the registry its history limits,
//! the NATS bridge its connections), so nothing here imports them.

mod env;
mod rule;
mod strays;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use env::parse_choice;
pub use rule::IngestRule;
pub use strays::{CLI_ENV_NAMES, StrayEnv};

pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

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
    "DATA_DIR",
    "HISTORY_STORE",
    "HISTORY_FSYNC",
    "HISTORY_MAX_DISK_BYTES",
    "PUBLISH_RATE_PER_SEC",
    "PUBLISH_BYTES_PER_SEC",
    "CONNECT_RATE_PER_IP",
    "HISTORY_RATE_PER_IP",
    "TRUST_PROXY",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_IP",
    "SSE_STALL_TIMEOUT_SECS",
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
    "OPENROUTER_API_KEY",
    "AI_API_KEY",
    "OPENROUTER_MODEL",
    "AI_BASE_URL",
    "AI_TOOLS_RETURN_LINES",
    "AI_RATE_PER_MINUTE",
];

/// The dev service tokens of `config/default.toml`, refused in production.
pub const DEV_TOKENS: &[&str] = &[
    "l5-etl-token",
    "faas-token",
    "function-token",
    "analytics-token",
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
    pub ingest: IngestConfig,
    pub subscribe: SubscribeConfig,
    pub sse: SseConfig,
    pub history: HistoryConfig,
    pub nats: NatsConfig,
    pub fly: FlyConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    /// Service name → token, or `sha256:<hex>` of the token.
    pub service_tokens: BTreeMap<String, Secret>,
    pub log: LogConfig,
    pub ai: AiConfig,
    /// Environment variables that look like settings and are not one
    /// (`JWT_SECERT`): warned about at start, refused in production.
    #[serde(skip)]
    pub stray_env: Vec<StrayEnv>,
}

/// AI log analysis (`POST /api/logs/chat`): the model server and the
/// bounds of one chat.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiConfig {
    /// Off: chat answers 503 `ai_disabled` even with a key.
    pub enabled: bool,
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// An OpenAI-compatible API root, e.g. `https://openrouter.ai/api/v1`.
    pub base_url: String,
    pub model: String,
    /// False: tools give the model counts and patterns, never log lines.
    pub tools_return_lines: bool,
    pub max_tool_rounds: usize,
    /// Tokens (prompt + completion, summed over rounds) one chat may use.
    pub max_total_tokens: u64,
    /// `max_tokens` asked of each round.
    pub max_completion_tokens: u32,
    /// Wall clock of one chat, all rounds included.
    pub timeout_secs: u64,
    /// Each tool result as sent to the model.
    pub tool_result_max_bytes: usize,
    /// Each log line inside a tool result.
    pub line_max_bytes: usize,
    /// The question.
    pub max_message_bytes: usize,
    /// Chats per caller per minute (the burst is the same); 0 = no limit.
    pub rate_per_minute: u32,
    /// Chats running at once, over all callers.
    pub max_concurrent: usize,
}

impl AiConfig {
    /// Chat answers only with a key and the switch on.
    pub fn active(&self) -> bool {
        self.enabled && self.api_key.is_some()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// Per channel, in memory.
    pub max_entries: usize,
    /// Unset: 1440 with the disk store, 30 in memory
    /// ([`HistoryConfig::max_age_minutes`]).
    #[serde(default)]
    pub max_age_minutes: Option<u64>,
    /// In memory, all channels.
    pub max_bytes: usize,
    pub max_channels: usize,
    /// Where history lives (`HISTORY_STORE`).
    pub store: StoreKind,
    /// The data directory (`DATA_DIR`): history, and what else is kept.
    pub dir: std::path::PathBuf,
    /// When stored events are synced to disk (`HISTORY_FSYNC`).
    pub fsync: Fsync,
    pub fsync_interval_ms: u64,
    /// History on disk, all channels (`HISTORY_MAX_DISK_BYTES`).
    pub max_disk_bytes: u64,
}

impl HistoryConfig {
    /// How long events are kept: as configured, or a day on disk and half
    /// an hour in memory.
    pub fn max_age_minutes(&self) -> u64 {
        self.max_age_minutes.unwrap_or(match self.store {
            StoreKind::Disk => 24 * 60,
            StoreKind::Memory => 30,
        })
    }
}

/// Where history lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// On disk in `history.dir`, kept across restarts.
    Disk,
    /// In memory only: gone at every restart.
    Memory,
}

impl StoreKind {
    pub const WORDS: &[(&str, StoreKind)] =
        &[("disk", StoreKind::Disk), ("memory", StoreKind::Memory)];
}

/// When stored events are put on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Every `history.fsync_interval_ms`: a crash of the machine (not of
    /// the process) may lose that much.
    Interval,
    /// Before a publish is answered `202`.
    Always,
}

impl Fsync {
    pub const WORDS: &[(&str, Fsync)] = &[("interval", Fsync::Interval), ("always", Fsync::Always)];
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
    /// The most events a second one node can accept: a jump in a node's
    /// cluster sequence larger than it allows for the time since the
    /// node's number last moved is refused as forged, not counted as loss.
    pub max_node_events_per_sec: u64,
    /// Keep the cluster's events in a JetStream stream: nothing lost
    /// across NATS or node restarts, and ids that resume on any node.
    pub jetstream: bool,
    /// The stream's name (created if missing).
    pub stream: String,
    /// How long the stream keeps events; 0 = as long as its bytes allow.
    pub stream_max_age_minutes: u64,
    /// The most the stream holds; the oldest events go first.
    pub stream_max_bytes: u64,
    /// How long a publish waits for the stream to confirm it before it is
    /// answered 503.
    pub publish_timeout_secs: u64,
    /// Generic ingest rules (file only): NATS subjects mapped to channels.
    #[serde(default)]
    pub ingest: Vec<IngestRule>,
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

/// `POST /api/logs/publish`'s limits, and what every publish path shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    pub max_body_bytes: usize,
    pub max_event_bytes: usize,
    pub max_batch_events: usize,
    /// Request body bytes (decoded) per second per service, every publish
    /// path together; burst twice that; 0 = no limit.
    pub bytes_per_sec: u64,
    /// A body larger than this, as sent or once inflated, is decoded on
    /// the blocking pool under a decode slot.
    pub large_body_bytes: usize,
    /// Large bodies read and decoded at once, over all services.
    pub large_body_slots: usize,
    /// How long an `Idempotency-Key` and its answer are remembered.
    pub idempotency_window_secs: u64,
    /// Keys remembered at once, every service together; the oldest go
    /// first, counted.
    pub idempotency_max_keys: usize,
}

/// The shipper endpoints (OTLP's `/v1/logs`, Loki's push): their clients
/// batch by bytes or by time, not to loggate's 1000 events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// A request body, once decompressed.
    pub max_body_bytes: usize,
    /// Records in one request.
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

/// The SSE transport's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseConfig {
    /// A subscriber whose queue has stayed full this long with nothing
    /// written to its socket is disconnected: it is not reading.
    pub stall_timeout_secs: u64,
}

impl SseConfig {
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_secs(self.stall_timeout_secs)
    }
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
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
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
        Config::load_checked(file, env, &[])
    }

    /// As [`Config::load`], and also looks through every variable of the
    /// environment, `vars` (name, value), for names that look like a
    /// setting and are not one: warned about in development, refused in
    /// production.
    pub fn load_checked(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        vars: &[(String, String)],
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
        config.stray_env = strays::strays(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        config.validate()?;
        Ok(config)
    }

    /// Loads with the real process environment. A variable loggate reads
    /// whose value is not UTF-8 is refused rather than taken for unset.
    pub fn from_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            match value.into_string() {
                Ok(value) => vars.push((name.to_owned(), value)),
                Err(_) if ENV_NAMES.contains(&name) => {
                    return Err(ConfigError::new(name, "the value is not valid UTF-8"));
                }
                Err(_) => vars.push((name.to_owned(), String::new())),
            }
        }
        let lookup = |k: &str| {
            vars.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        };
        Config::load_checked(file, lookup, &vars)
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

    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.subscribe.keepalive_secs)
    }

    pub fn is_production(&self) -> bool {
        self.env == RunEnv::Production
    }
}
