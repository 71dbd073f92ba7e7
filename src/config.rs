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
    ("JWT_SECRET", "subscriber JWT authentication"),
    ("JWT_PUBLIC_KEY_FILE", "subscriber JWT authentication"),
    ("AUTH_TOKEN", "subscriber bearer tokens"),
    ("ADMIN_TOKEN", "the /admin endpoints"),
    ("ALLOWED_ORIGINS", "CORS"),
    ("LOG_BUFFER_MAX_ENTRIES", "history"),
    ("LOG_BUFFER_MAX_AGE_MINUTES", "history"),
    ("PUBLISH_RATE_PER_SEC", "publish rate limits"),
    ("CONNECT_RATE_PER_IP", "connection rate limits"),
    ("NATS_URL", "the NATS cluster bridge"),
    ("FLY_ORG", "Fly.io log ingest"),
    ("ORG_SLUG", "Fly.io log ingest"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunEnv {
    Development,
    Production,
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
    /// Service name → token.
    pub service_tokens: BTreeMap<String, String>,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub max_connections: usize,
    pub shutdown_timeout_secs: u64,
    /// Take the client address from `Fly-Client-IP` / `X-Forwarded-For`.
    pub trust_proxy: bool,
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
        if let Some(v) = env("TRUST_PROXY") {
            self.server.trust_proxy = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" | "" => false,
                _ => {
                    return Err(ConfigError::new(
                        "TRUST_PROXY",
                        format!("{v:?} is neither true nor false"),
                    ));
                }
            };
        }
        if let Some(v) = env("LOGGATE_ENV") {
            self.env = match v.trim().to_ascii_lowercase().as_str() {
                "production" | "prod" => RunEnv::Production,
                "development" | "dev" | "" => RunEnv::Development,
                _ => {
                    return Err(ConfigError::new(
                        "LOGGATE_ENV",
                        format!("{v:?} is neither \"production\" nor \"development\""),
                    ));
                }
            };
        }
        if let Some(v) = env("SERVICE_TOKENS") {
            self.service_tokens = parse_service_tokens(&v)?;
        }
        if let Some(v) = env("RUST_LOG") {
            self.log.filter = v;
        }
        if let Some(v) = env("LOG_FORMAT") {
            self.log.format = match v.trim().to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" | "" => LogFormat::Text,
                _ => {
                    return Err(ConfigError::new(
                        "LOG_FORMAT",
                        format!("{v:?} is neither \"text\" nor \"json\""),
                    ));
                }
            };
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

        if self.service_tokens.is_empty() {
            return Err(ConfigError::new(
                "service_tokens (SERVICE_TOKENS)",
                "no service can publish; configure at least one service=token",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (service, token) in &self.service_tokens {
            check_service_name(service)?;
            if token.len() < 8 {
                return Err(ConfigError::new(
                    format!("service_tokens.{service}"),
                    "token is shorter than 8 characters",
                ));
            }
            if !seen.insert(token) {
                return Err(ConfigError::new(
                    format!("service_tokens.{service}"),
                    "the same token is configured for two services",
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.filter).map_err(|e| {
            ConfigError::new(
                "log.filter (RUST_LOG)",
                format!("{:?}: {e}", self.log.filter),
            )
        })?;

        if self.env == RunEnv::Production {
            if let Some((service, _)) = self
                .service_tokens
                .iter()
                .find(|(_, t)| DEV_TOKENS.contains(&t.as_str()))
            {
                return Err(ConfigError::new(
                    "SERVICE_TOKENS",
                    format!(
                        "LOGGATE_ENV=production refuses the dev token of service {service:?}; set SERVICE_TOKENS=service=secret,…"
                    ),
                ));
            }
            return Err(ConfigError::new(
                "LOGGATE_ENV",
                "production refuses open subscriptions, and this build has no subscriber authentication yet",
            ));
        }
        Ok(())
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

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_timeout_secs)
    }

    pub fn is_production(&self) -> bool {
        self.env == RunEnv::Production
    }
}

fn parse_env<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, format!("{value:?} is not {what}")))
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
fn parse_service_tokens(value: &str) -> Result<BTreeMap<String, String>, ConfigError> {
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
        if out.insert(service.to_owned(), token.to_owned()).is_some() {
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
        assert_eq!(c.service_tokens["etl"], "l5-etl-token");
        assert_eq!(c.service_tokens["faas"], "faas-token");
        assert_eq!(c.service_tokens["function"], "function-token");
        assert_eq!(c.service_tokens["analytics"], "analytics-token");
        assert_eq!(c.server.max_connections, 10_000);
        assert_eq!(c.publish.max_event_bytes, 64 * 1024);
        assert_eq!(c.publish.max_body_bytes, 1024 * 1024);
        assert_eq!(c.publish.max_batch_events, 1000);
        assert_eq!(c.subscribe.max_channels, 32);
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
        assert_eq!(c.service_tokens["billing"], "secret-one");
        assert_eq!(c.log.filter, "debug");
        assert!(c.server.trust_proxy);
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
            (&[("JWT_SECRET", "x")], "JWT_SECRET"),
            (&[("NATS_URL", "nats://x")], "NATS_URL"),
        ];
        for (vars, key) in cases {
            let err = load_with(vars, None).expect_err(&format!("{vars:?} should fail"));
            assert!(err.to_string().contains(key), "{vars:?}: {err}");
        }
    }

    #[test]
    fn production_refuses_dev_tokens_and_open_subscriptions() {
        let err = load_with(&[("LOGGATE_ENV", "production")], None).unwrap_err();
        assert!(err.to_string().contains("dev token"), "{err}");
        let err = load_with(
            &[
                ("LOGGATE_ENV", "production"),
                ("SERVICE_TOKENS", "etl=a-real-secret"),
            ],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("open subscriptions"), "{err}");
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

        let err = load_with(&[], Some(&dir.join("missing.toml"))).unwrap_err();
        assert_eq!(err.key, "--config");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
