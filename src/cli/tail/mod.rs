//! `loggate tail`: history, then the live stream from the last history id
//! (no duplicate, no gap at the seam), printed for a terminal or a pipe.
//!
//! Talks to `GET /api/logs/history` and `GET /api/logs/stream` (SSE), like
//! any client. Events go to stdout; notices (reconnecting, gap, lag) to
//! stderr, so `| jq` only ever sees events.
//!
//! What publishers wrote never drives the terminal: `-o text` shows every
//! control character in every field as an escape (`\x1b`, `\n`,
//! `\u009b`; see `cli::terminal`), so one event is one line; `-o raw`
//! does so when stdout is a terminal, and `-o json` there escapes a raw
//! DEL or C1 control as JSON (the gateway already does). To a pipe, `-o raw` and
//! `-o json` are the bytes the gateway sent. `--raw-control` prints the
//! characters themselves everywhere. Notices are always escaped.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use super::{Connection, Failure, Gateway, exit};
use crate::channel::ChannelPattern;
use crate::event::Level;

mod print;

use print::Printer;

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Channels or patterns (`logs:etl:ws1`, `logs:*:ws1`).
    #[arg(value_name = "CHANNEL")]
    pub channels: Vec<String>,
    /// Shorthand: the channel `logs:SERVICE[:WORKSPACE[:RESOURCE]]`.
    #[arg(long, short = 's')]
    pub service: Option<String>,
    #[arg(long, short = 'w', requires = "service")]
    pub workspace: Option<String>,
    #[arg(long, short = 'r', requires = "workspace")]
    pub resource: Option<String>,
    /// Follow (the default; accepted for habit's sake).
    #[arg(short = 'f', long = "follow", conflicts_with = "no_follow")]
    pub follow: bool,
    /// Print what history holds and exit.
    #[arg(long)]
    pub no_follow: bool,
    /// Lines of history first (0: none) [default: 10, or all of --since]
    #[arg(short = 'n', long = "tail", value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub tail: Option<u16>,
    /// History since this long ago (15m, 2h) or this time (RFC 3339); with
    /// -n, only the newest N of that.
    #[arg(long)]
    pub since: Option<String>,
    /// That level and worse.
    #[arg(long, short = 'l')]
    pub level: Option<String>,
    /// Only messages containing this text (case-insensitive).
    #[arg(long, short = 'q')]
    pub query: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    #[arg(long, value_enum, default_value_t = Timestamps::Short)]
    pub timestamps: Timestamps,
    /// Times in UTC rather than local time.
    #[arg(long)]
    pub utc: bool,
    /// Print control characters as they are, not shown as `\x1b`, `\n`,
    /// `\u009b`: whoever can publish then controls your terminal.
    #[arg(long)]
    pub raw_control: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Output {
    Text,
    Json,
    Raw,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Timestamps {
    Short,
    Rfc3339,
    None,
}

/// The end of a stream: why it stopped.
enum Ended {
    /// stdout went away (`| head`): a quiet, successful end.
    Closed,
    /// The connection dropped; resume from the last id.
    Dropped(String),
}

pub async fn run(args: TailArgs) -> Result<(), Failure> {
    let gateway = args.connection.resolve()?;
    let channels = channels_of(&args)?;
    if let Some(l) = &args.level
        && Level::parse(l).is_none()
    {
        return Err(Failure::new(
            exit::USAGE,
            format!("--level: unknown level {l:?}"),
        ));
    }
    let since = args.since.as_deref().map(since_of).transpose()?;
    let printer = Printer::new(&args);
    let mut filters = vec![("channels", channels.join(","))];
    if let Some(l) = &args.level {
        filters.push(("level", l.clone()));
    }
    if let Some(q) = &args.query {
        filters.push(("q", q.clone()));
    }
    let get = |path: &str, extra: &[(&str, String)]| {
        let mut r = gateway
            .client
            .get(format!("{}{path}", gateway.base))
            .query(&filters)
            .query(extra);
        if let Some(t) = &gateway.token {
            r = r.bearer_auth(t);
        }
        r
    };

    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let work = async {
        // History: the newest `-n` lines (of those since `--since`, if
        // given), or, with `--since` alone, all of them, page by page.
        let mut last_id: Option<String> = None;
        let mut query = match (&since, args.tail) {
            (_, Some(0)) => None,
            (None, n) => Some(vec![
                ("limit", n.unwrap_or(10).to_string()),
                ("before", "end".into()),
            ]),
            (Some(s), Some(n)) => Some(vec![
                ("limit", n.to_string()),
                ("since", s.clone()),
                ("before", "end".into()),
            ]),
            (Some(s), None) => Some(vec![("limit", "1000".into()), ("since", s.clone())]),
        };
        while let Some(q) = query.take() {
            let body = fetch(get("/api/logs/history", &q), &gateway).await?;
            let page: HistoryPage = serde_json::from_slice(&body)
                .map_err(|e| Failure::new(1, format!("history: unreadable answer: {e}")))?;
            for raw in &page.logs {
                let Ok(e) = serde_json::from_str::<Value>(raw.get()) else {
                    continue;
                };
                if !printer.event(raw.get(), &e) {
                    return Ok(());
                }
                if let Some(id) = e["id"].as_str() {
                    last_id = Some(id.to_owned());
                }
            }
            if let Some(id) = page.last_id {
                last_id = Some(id);
            }
            if let (Some(_), None, Some(cursor)) = (&since, args.tail, page.next_cursor) {
                let mut q = q;
                q.retain(|(k, _)| *k != "cursor");
                q.push(("cursor", cursor));
                query = Some(q);
            }
        }
        if args.no_follow {
            return Ok(());
        }
        // Live, resuming where history ended; again after every drop.
        let mut trouble_since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(200);
        loop {
            let mut extra = Vec::new();
            if let Some(id) = &last_id {
                extra.push(("lastEventId", id.clone()));
            }
            let answer = get("/api/logs/stream", &extra).send().await;
            let why = match answer {
                Ok(a) if a.status().is_success() => {
                    if trouble_since.take().is_some() {
                        printer.notice("connected again");
                    }
                    backoff = Duration::from_millis(200);
                    match stream(a, &printer, &mut last_id).await {
                        Ended::Closed => return Ok(()),
                        Ended::Dropped(why) => why,
                    }
                }
                Ok(a) => {
                    let status = a.status();
                    let text = super::body_within(a, super::MAX_ERROR_BODY)
                        .await
                        .unwrap_or_default();
                    let why = super::refusal(status, &text);
                    match status.as_u16() {
                        401 | 403 => return Err(Failure::new(exit::REFUSED, why)),
                        429 | 503 => why,
                        400 => return Err(Failure::new(exit::USAGE, why)),
                        _ => return Err(Failure::new(1, why)),
                    }
                }
                Err(e) => super::error_chain(&e),
            };
            let since = *trouble_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= gateway.retry_for || !gateway.retryable(&why) {
                return Err(gateway.gave_up(&why));
            }
            printer.notice(&format!("reconnecting: {why}"));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    };
    tokio::select! {
        r = work => r,
        _ = &mut interrupted => Err(Failure::new(exit::INTERRUPTED, "")),
    }
}

fn channels_of(args: &TailArgs) -> Result<Vec<String>, Failure> {
    let mut all = args.channels.clone();
    if let Some(s) = &args.service {
        let mut name = format!("logs:{s}");
        for part in [&args.workspace, &args.resource].into_iter().flatten() {
            name.push(':');
            name.push_str(part);
        }
        all.push(name);
    }
    if all.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            "name a channel (logs:etl:ws1, logs:*:ws1) or --service",
        ));
    }
    for c in &all {
        ChannelPattern::parse(c).map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    }
    Ok(all)
}

/// `15m`, `2h` (ago) or an RFC 3339 time, as the RFC 3339 the gateway takes.
fn since_of(text: &str) -> Result<String, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t
            .to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    let ago = super::parse_duration(text)
        .map_err(|e| Failure::new(exit::USAGE, format!("--since: {e}")))?;
    let ago = chrono::Duration::from_std(ago)
        .map_err(|e| Failure::new(exit::USAGE, format!("--since: {e}")))?;
    Ok((chrono::Utc::now() - ago).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A history page holds at most 1,000 events; 256 KiB each (four times
/// the default `publish.max_event_bytes`) is far more than real pages.
const MAX_HISTORY_PAGE: usize = 256 << 20;

/// The largest event a gateway can be configured to take
/// (`publish.max_body_bytes` is at most 64 MiB), with its framing: a
/// smaller cap would drop and re-fetch the same large event for ever.
const MAX_FRAME: usize = 65 << 20;

/// One page of `GET /api/logs/history`; events are kept as the gateway
/// wrote them, so `-o json` prints them byte for byte.
#[derive(serde::Deserialize)]
struct HistoryPage {
    logs: Vec<Box<serde_json::value::RawValue>>,
    next_cursor: Option<String>,
    last_id: Option<String>,
}

/// GETs a body, waiting out a gateway that cannot be reached for
/// `retry_for`.
async fn fetch(request: reqwest::RequestBuilder, g: &Gateway) -> Result<Vec<u8>, Failure> {
    let started = Instant::now();
    loop {
        let Some(attempt) = request.try_clone() else {
            return Err(Failure::new(1, "request cannot be repeated"));
        };
        match attempt.timeout(Duration::from_secs(30)).send().await {
            Ok(a) if a.status().is_success() => {
                return super::body_within(a, MAX_HISTORY_PAGE)
                    .await
                    .map_err(|e| Failure::new(1, format!("history: {e}")));
            }
            Ok(a) => {
                let status = a.status();
                let text = super::body_within(a, super::MAX_ERROR_BODY)
                    .await
                    .unwrap_or_default();
                let why = super::refusal(status, &text);
                let code = match status.as_u16() {
                    401 | 403 => exit::REFUSED,
                    400 => exit::USAGE,
                    429 | 503 if started.elapsed() < g.retry_for => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    _ => 1,
                };
                return Err(Failure::new(code, why));
            }
            Err(e) => {
                let why = super::error_chain(&e);
                if started.elapsed() >= g.retry_for || !g.retryable(&why) {
                    return Err(g.gave_up(&why));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Reads SSE frames until the connection ends; prints logs, notices gaps
/// and lags, and keeps the last id for the resume. A frame is bounded
/// (`MAX_FRAME`): a gateway, or something pretending, that never ends one
/// is dropped.
async fn stream(
    answer: reqwest::Response,
    printer: &Printer,
    last_id: &mut Option<String>,
) -> Ended {
    let mut body = answer.bytes_stream();
    let mut frames = crate::sse_reader::FrameReader::new(MAX_FRAME);
    loop {
        let chunk = match tokio::time::timeout(Duration::from_secs(45), body.next()).await {
            Err(_) => return Ended::Dropped("no keepalive for 45 s".into()),
            Ok(None) => return Ended::Dropped("the gateway closed the stream".into()),
            Ok(Some(Err(e))) => return Ended::Dropped(super::error_chain(&e)),
            Ok(Some(Ok(c))) => c,
        };
        let Ok(complete) = frames.push(&chunk) else {
            return Ended::Dropped("a frame over 65 MiB".into());
        };
        for frame in complete {
            match frame.event.as_str() {
                "log" => {
                    if let Ok(e) = serde_json::from_str::<Value>(&frame.data)
                        && !printer.event(&frame.data, &e)
                    {
                        return Ended::Closed;
                    }
                    if frame.id.is_some() {
                        *last_id = frame.id;
                    }
                }
                "gap" => printer.notice(&format!("gap: {}", frame.data)),
                "lag" => printer.notice(&format!("lag: {}", frame.data)),
                "shutdown" => printer.notice("the gateway is shutting down"),
                _ => {}
            }
        }
    }
}
