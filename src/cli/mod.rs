//! The terminal side of loggate: `loggate publish` (and, next, `loggate
//! tail`). These are HTTP clients of a gateway, in the same binary: they
//! talk to it only through its public endpoints, never through the
//! library's internals, so what they do is what any client can do.
//!
//! Owns the options every command shares (`--url`, `--token`,
//! `--token-file`), the HTTP client and the exit codes of the contract.

pub mod publish;
pub mod tail;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit codes from the contract.
pub mod exit {
    pub const USAGE: u8 = 2;
    pub const REFUSED: u8 = 3;
    pub const UNREACHABLE: u8 = 4;
    pub const INTERRUPTED: u8 = 130;
}

/// Where the gateway is and who we are to it.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// The gateway's address.
    #[arg(
        long,
        env = "LOGGATE_URL",
        default_value = "http://localhost:3002",
        value_name = "URL"
    )]
    pub url: String,
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
    /// Give up when the gateway cannot be reached for this long (30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub retry_for: Duration,
}

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

impl Connection {
    /// The end of retrying: the gateway stayed out of reach for `retry_for`.
    pub fn gave_up(&self, why: &str) -> Failure {
        Failure::new(
            exit::UNREACHABLE,
            format!(
                "cannot reach {} (gave up after {:?}): {why}",
                self.url.trim_end_matches('/'),
                self.retry_for
            ),
        )
    }

    /// The base URL without a trailing slash, checked.
    pub fn base(&self) -> Result<String, Failure> {
        let base = self.url.trim_end_matches('/');
        if base.starts_with("https://") {
            // Not built in yet (see Cargo.toml): say so rather than fail
            // with a connection error.
            return Err(Failure::new(
                exit::USAGE,
                format!(
                    "--url {:?}: https is not built into this loggate yet; use http:// (or a local TLS-terminating proxy)",
                    self.url
                ),
            ));
        }
        if !base.starts_with("http://") {
            return Err(Failure::new(
                exit::USAGE,
                format!("--url: expected http://host:port, got {:?}", self.url),
            ));
        }
        Ok(base.to_owned())
    }

    pub fn token(&self) -> Result<Option<String>, Failure> {
        match &self.token_file {
            None => Ok(self.token.clone().filter(|t| !t.is_empty())),
            Some(path) => std::fs::read_to_string(path)
                .map(|s| s.lines().next().map(|l| l.trim().to_owned()))
                .map_err(|e| {
                    Failure::new(exit::USAGE, format!("--token-file {}: {e}", path.display()))
                }),
        }
    }
}

/// The HTTP client every command uses.
pub fn client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("loggate-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::new(1, format!("cannot set up HTTP: {e}")))
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
            if !f.message.is_empty() {
                eprintln!("loggate {name}: {}", f.message);
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
        let at = |url: &str| Connection {
            url: url.into(),
            token: None,
            token_file: None,
            retry_for: Duration::from_secs(1),
        };
        assert_eq!(at("http://h:1/").base().unwrap(), "http://h:1");
        assert_eq!(at("https://h").base().unwrap_err().code, exit::USAGE);
        assert_eq!(at("h:1").base().unwrap_err().code, exit::USAGE);
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
