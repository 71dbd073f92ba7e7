//! `loggate channels [PATTERN]`: which channels hold history or have
//! subscribers, within what the token may read, as a table or as one JSON
//! object per line.
//!
//! Talks to `GET /api/logs/channels` like any client, following its cursor
//! page by page, at most [`MAX_PAGES`] pages and [`MAX_PAGE_BYTES`] each,
//! so a gateway (or something pretending to be one) that never stops
//! cannot keep it running or fill its memory. Channel names are checked
//! against the channel grammar and times are re-read before they are
//! printed: nothing the server sends reaches the terminal as a control
//! character.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{Connection, Failure, Gateway, exit};
use crate::channel::{ChannelName, ChannelPattern};

#[derive(clap::Args, Debug)]
pub struct ChannelsArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Only the channels this pattern reaches, and those below them
    /// (`logs:etl`, `logs:*:ws1`).
    #[arg(value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// `text`: a table; `json`: one object per line.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Output {
    Text,
    Json,
}

/// Channels asked for per page: the gateway's largest page.
const PAGE: usize = 1000;

/// Pages followed at most: 100,000 channels, as many as history keeps by
/// default.
pub const MAX_PAGES: usize = 100;

/// A page of 1,000 channels is about 150 KB; a larger answer is not one.
pub const MAX_PAGE_BYTES: usize = 4 << 20;

/// One page of `GET /api/logs/channels`.
#[derive(serde::Deserialize)]
struct Page {
    channels: Vec<Row>,
    next_cursor: Option<String>,
}

/// One channel, as printed with `-o json`.
#[derive(serde::Deserialize, serde::Serialize)]
struct Row {
    channel: String,
    events: u64,
    newest: Option<String>,
    subscribers: u64,
}

pub async fn run(args: ChannelsArgs) -> Result<(), Failure> {
    let gateway = args.connection.resolve()?;
    if let Some(p) = &args.pattern {
        ChannelPattern::parse(p).map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    }
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let work = async {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        for page_no in 0.. {
            if page_no == MAX_PAGES {
                eprintln!(
                    "loggate channels: stopped after {MAX_PAGES} pages; name a PATTERN to see the rest"
                );
                break;
            }
            let mut query = vec![("limit", PAGE.to_string())];
            if let Some(p) = &args.pattern {
                query.push(("pattern", p.clone()));
            }
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let body = fetch(&gateway, &query).await?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| {
                Failure::new(
                    1,
                    format!("unreadable answer: {}", printable(&e.to_string())),
                )
            })?;
            for row in page.channels {
                rows.push(checked(row)?);
            }
            match page.next_cursor {
                // A cursor that does not move on would page for ever.
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                Some(_) => return Err(Failure::new(1, "the gateway repeated its cursor")),
                None => break,
            }
        }
        print(&rows, args.output);
        Ok(())
    };
    tokio::select! {
        r = work => r,
        _ = &mut interrupted => Err(Failure::new(exit::INTERRUPTED, "")),
    }
}

/// A row fit to print: a name of the channel grammar, a time re-written
/// from what it parsed to.
fn checked(mut row: Row) -> Result<Row, Failure> {
    if ChannelName::parse(&row.channel).is_err() {
        return Err(Failure::new(
            1,
            format!(
                "the gateway listed {:?}, which is no channel name",
                printable(&row.channel)
            ),
        ));
    }
    row.newest = row.newest.map(|t| {
        chrono::DateTime::parse_from_rfc3339(&t)
            .map(|t| {
                t.to_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            })
            .unwrap_or_else(|_| printable(&t))
    });
    Ok(row)
}

/// `text` with control characters (and everything outside printable
/// ASCII, which a terminal might read as one) escaped.
fn printable(text: &str) -> String {
    text.chars()
        .take(500)
        .flat_map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                vec![c]
            } else {
                c.escape_default().collect()
            }
        })
        .collect()
}

fn print(rows: &[Row], output: Output) {
    let mut out = std::io::stdout().lock();
    let mut write = |line: String| writeln!(out, "{line}").is_ok();
    match output {
        Output::Json => {
            for row in rows {
                let Ok(line) = serde_json::to_string(row) else {
                    continue;
                };
                if !write(line) {
                    return;
                }
            }
        }
        Output::Text if rows.is_empty() => eprintln!("loggate channels: no channels"),
        Output::Text => {
            let width = rows
                .iter()
                .map(|r| r.channel.len())
                .max()
                .unwrap_or(0)
                .max("CHANNEL".len());
            let _ = write(format!(
                "{:<width$}  {:>8}  {:<24}  {:>11}",
                "CHANNEL", "EVENTS", "NEWEST", "SUBSCRIBERS"
            ));
            for r in rows {
                let line = format!(
                    "{:<width$}  {:>8}  {:<24}  {:>11}",
                    r.channel,
                    r.events,
                    r.newest.as_deref().unwrap_or("-"),
                    r.subscribers
                );
                if !write(line.trim_end().to_owned()) {
                    return;
                }
            }
        }
    }
    let _ = out.flush();
}

/// GETs one page, waiting out a gateway that cannot be reached (or is
/// busy) for `retry_for`.
async fn fetch(g: &Gateway, query: &[(&str, String)]) -> Result<Vec<u8>, Failure> {
    let started = Instant::now();
    loop {
        let mut request = g
            .client
            .get(format!("{}/api/logs/channels", g.base))
            .query(query)
            .timeout(Duration::from_secs(30));
        if let Some(t) = &g.token {
            request = request.bearer_auth(t);
        }
        let why = match request.send().await {
            Ok(a) if a.status().is_success() => {
                return super::body_within(a, MAX_PAGE_BYTES)
                    .await
                    .map_err(|e| Failure::new(1, printable(&e)));
            }
            Ok(a) => {
                let status = a.status();
                let text = super::body_within(a, super::MAX_ERROR_BODY)
                    .await
                    .unwrap_or_default();
                let why = printable(&super::refusal(status, &text));
                match status.as_u16() {
                    401 | 403 => return Err(Failure::new(exit::REFUSED, why)),
                    400 => return Err(Failure::new(exit::USAGE, why)),
                    429 | 503 => why,
                    _ => return Err(Failure::new(1, why)),
                }
            }
            Err(e) => printable(&super::error_chain(&e)),
        };
        if started.elapsed() >= g.retry_for || !g.retryable(&why) {
            return Err(g.gave_up(&why));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_from_the_server_reaches_a_terminal_raw() {
        assert_eq!(printable("plain: text"), "plain: text");
        assert_eq!(printable("a\u{1b}[2Jb\r\n"), "a\\u{1b}[2Jb\\r\\n");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        let row = |channel: &str, newest: &str| Row {
            channel: channel.into(),
            events: 1,
            newest: Some(newest.into()),
            subscribers: 0,
        };
        assert!(checked(row("logs:etl\u{1b}[2J", "2025-09-25T10:30:00Z")).is_err());
        let ok = checked(row("logs:etl:ws1", "2025-09-25T12:30:00+02:00")).unwrap();
        assert_eq!(ok.newest.as_deref(), Some("2025-09-25T10:30:00.000Z"));
        let odd = checked(row("logs:etl", "\u{1b}]0;pwned\u{7}")).unwrap();
        assert_eq!(odd.newest.as_deref(), Some("\\u{1b}]0;pwned\\u{7}"));
    }
}
