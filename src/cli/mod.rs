//! The terminal side of loggate: `loggate publish`, `loggate tail` and
//! `loggate channels`. These are HTTP clients of a gateway, in the same binary: they
//! talk to it only through its public endpoints, never through the
//! library's internals, so what they do is what any client can do.
//!
//! Owns the options every command shares (`--url`, `--token`,
//! `--token-file`, `--ca-file`, `--profile`), the HTTP client and the exit
//! codes of the contract; `profile` reads the named profiles.

pub mod channels;
pub mod profile;
pub mod publish;
pub mod tail;
mod terminal;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit codes from the contract.
pub mod exit {
    pub const USAGE: u8 = 2;
    pub const REFUSED: u8 = 3;
    pub const UNREACHABLE: u8 = 4;
    pub const INTERRUPTED: u8 = 130;
}

/// Where the gateway is and who we are to it: flags, then the
/// environment, then the profile, then the built-in default.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// The gateway's address [default: http://localhost:3002, or the profile's]
    #[arg(long, env = "LOGGATE_URL", value_name = "URL")]
    pub url: Option<String>,
    /// The token to present (for publish: a service token).
    #[arg(
        long,
        env = "LOGGATE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Read the token from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Trust only this CA (PEM) for https, instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// A named profile from ~/.config/loggate/cli.toml (url, token, ...).
    #[arg(long, env = "LOGGATE_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Give up when the gateway cannot be reached for this long (30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub retry_for: Duration,
}

pub const DEFAULT_URL: &str = "http://localhost:3002";

/// A failure that ends a command, with the exit code it ends with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// A gateway to talk to, resolved from a `Connection`: checked address,
/// token, and the HTTP client for it.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// `http(s)://host:port[/prefix]`, without a trailing slash.
    pub base: String,
    pub token: Option<String>,
    pub retry_for: Duration,
    pub client: reqwest::Client,
}

impl Connection {
    /// Lays the flags and environment over the profile, checks the result
    /// and builds the client.
    pub fn resolve(&self) -> Result<Gateway, Failure> {
        let profile = profile::load(self.profile.as_deref())?;
        let url = self
            .url
            .clone()
            .or(profile.url)
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(file)) => read_token(file)?,
            (None, None) => match (profile.token, &profile.token_file) {
                (Some(t), _) => Some(t),
                (None, Some(file)) => read_token(file)?,
                (None, None) => None,
            },
        };
        let ca_file = self.ca_file.clone().or(profile.ca_file);
        Ok(Gateway {
            base: base_of(&url)?,
            token: token.filter(|t| !t.is_empty()),
            retry_for: self.retry_for,
            client: client(ca_file.as_deref())?,
        })
    }
}

impl Gateway {
    /// The end of retrying: the gateway stayed out of reach for `retry_for`.
    pub fn gave_up(&self, why: &str) -> Failure {
        Failure::new(
            exit::UNREACHABLE,
            format!(
                "cannot reach {} (gave up after {:?}): {why}",
                self.base, self.retry_for
            ),
        )
    }

    /// Whether a failed request is worth retrying. A certificate the client
    /// does not trust will not become trusted by waiting: it ends at once,
    /// as unreachable, with what rustls said.
    pub fn retryable(&self, why: &str) -> bool {
        !why.contains("invalid peer certificate")
    }
}

/// The base URL without a trailing slash, checked.
fn base_of(url: &str) -> Result<String, Failure> {
    let base = url.trim_end_matches('/');
    match reqwest::Url::parse(base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(base.to_owned())
        }
        _ => Err(Failure::new(
            exit::USAGE,
            format!("--url: expected http(s)://host[:port], got {url:?}"),
        )),
    }
}

fn read_token(path: &Path) -> Result<Option<String>, Failure> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().next().map(|l| l.trim().to_owned()))
        .map_err(|e| Failure::new(exit::USAGE, format!("token file {}: {e}", path.display())))
}

/// The HTTP client every command uses: https with the system's roots, or
/// only the given CA.
fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, Failure> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("loggate-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let ca = |e: &dyn std::fmt::Display| {
            Failure::new(exit::USAGE, format!("CA file {}: {e}", path.display()))
        };
        let pem = std::fs::read(path).map_err(|e| ca(&e))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca(&e))?;
        if certs.is_empty() {
            return Err(ca(&"no certificate in it"));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder
        .build()
        .map_err(|e| Failure::new(1, format!("cannot set up HTTP: {}", error_chain(&e))))
}

/// An error body is read this far and no further.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Reads a response body of at most `max` bytes: a server (or something
/// in between) that sends more, or never stops, is cut off rather than
/// let fill memory.
pub async fn body_within(answer: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    let mut chunks = answer.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| error_chain(&e))?;
        if body.len() + chunk.len() > max {
            return Err(format!("answer larger than {} KiB", max / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The gateway's own words from an error body, or the status.
pub fn refusal(status: reqwest::StatusCode, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let said = parsed.as_ref().and_then(|v| {
        let e = v.get("error")?;
        Some(format!(
            "{}: {}",
            e.get("code")?.as_str()?,
            e.get("message")?.as_str()?
        ))
    });
    match said {
        Some(s) => format!("{status}: {s}"),
        None => status.to_string(),
    }
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `500ms`, `30s`, `15m`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 30s, 15m or 2h, got {text:?}"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (ms, s, m, h, d)"
            ));
        }
    };
    if !seconds.is_finite() || !(0.0..=366.0 * 86400.0).contains(&seconds) {
        return Err(format!("duration out of range: {text:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Runs a command's future on a small runtime and turns its end into an
/// exit code, printing a failure's message on stderr.
pub fn run<F>(name: &str, f: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loggate {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // The message may quote the gateway (or what it quoted of a
            // publisher's text): shown, not obeyed, by the terminal.
            if !f.message.is_empty() {
                eprintln!(
                    "loggate {name}: {}",
                    terminal::visible(f.message.as_bytes())
                );
            }
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(base_of("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(base_of("https://h/logs/").unwrap(), "https://h/logs");
        assert_eq!(base_of("h:1").unwrap_err().code, exit::USAGE);
        assert_eq!(base_of("ftp://h").unwrap_err().code, exit::USAGE);
        assert_eq!(base_of("http://").unwrap_err().code, exit::USAGE);
    }

    #[test]
    fn refusals_carry_the_gateways_words() {
        let body = br#"{"error":{"code":"unauthorized","message":"unknown service token"}}"#;
        assert_eq!(
            refusal(reqwest::StatusCode::UNAUTHORIZED, body),
            "401 Unauthorized: unauthorized: unknown service token"
        );
        assert_eq!(
            refusal(reqwest::StatusCode::BAD_GATEWAY, b"<html>"),
            "502 Bad Gateway"
        );
    }
}
