//! Ingestion: turning what publishers send into validated [`NewEvent`]s.
//!
//! Owns the publish body formats (one event, a JSON array, NDJSON), the
//! event fields and their rules, and the [`PublishError`] every refusal maps
//! to. [`http`] holds the HTTP handlers; the checks in this file do not know
//! about HTTP so that other ingest paths apply the same rules. Validated
//! events go to the registry as one `Publish` message per request, which
//! makes a batch all-or-nothing: nothing is sent until every event passed.

pub mod http;

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::auth::AuthError;
use crate::channel::{ChannelError, ChannelName};
use crate::error::error_response;
use crate::event::{EventBody, EventTimes, Level, NewEvent};

/// Why a publish was refused. `index` names the refused element of a batch.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{}", at(*.index, format_args!("{message}")))]
    InvalidJson {
        index: Option<usize>,
        message: String,
    },
    #[error("{}", at(*.index, format_args!("{message}")))]
    InvalidEvent {
        index: Option<usize>,
        message: String,
    },
    #[error("{}", at(*.index, format_args!("{source}")))]
    InvalidChannel {
        index: Option<usize>,
        source: ChannelError,
    },
    #[error("{}", at(*.index, format_args!("unknown level {level:?}: use trace, debug, info, warn (warning), error (err) or fatal")))]
    InvalidLevel { index: Option<usize>, level: String },
    #[error("{}", at(*.index, format_args!("timestamp {value}: use RFC 3339 (2025-09-25T10:30:00Z) or epoch milliseconds")))]
    InvalidTimestamp { index: Option<usize>, value: String },
    #[error("{}", at(*.index, format_args!("this token publishes as service {token_service:?}, not {event_service:?}")))]
    ServiceMismatch {
        index: Option<usize>,
        token_service: String,
        event_service: String,
    },
    #[error("{}", at(*.index, format_args!("event is {size} bytes; the limit is {max}")))]
    EventTooLarge {
        index: Option<usize>,
        size: usize,
        max: usize,
    },
    #[error("request body is over the limit of {max} bytes")]
    BodyTooLarge { max: usize },
    #[error("{count} events in one request; the limit is {max}")]
    BatchTooLarge { count: usize, max: usize },
    #[error(
        "{count} events in one request is more than this service's rate limit lets through at once ({burst}, twice PUBLISH_RATE_PER_SEC); send smaller batches"
    )]
    BatchExceedsBurst { count: usize, burst: u32 },
    #[error("content type {0:?} is not supported: send application/json or application/x-ndjson")]
    UnsupportedMediaType(String),
    #[error(
        "publish rate limit of this service reached; retry in {}s",
        retry_after_secs
    )]
    RateLimited { retry_after_secs: u64 },
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

/// Prefixes a batch element's message with its index.
fn at(index: Option<usize>, msg: std::fmt::Arguments<'_>) -> String {
    match index {
        Some(i) => format!("event {i}: {msg}"),
        None => msg.to_string(),
    }
}

impl PublishError {
    /// Every code [`PublishError::code`] can answer, for metrics that
    /// exist before their first refusal.
    pub const CODES: &'static [&'static str] = &[
        "missing_token",
        "invalid_token",
        "invalid_json",
        "invalid_event",
        "invalid_channel",
        "invalid_level",
        "invalid_timestamp",
        "service_mismatch",
        "event_too_large",
        "body_too_large",
        "batch_too_large",
        "batch_exceeds_burst",
        "unsupported_media_type",
        "rate_limited",
        "shutting_down",
    ];

    /// The codes of a refused event, whatever its path (HTTP, NATS).
    pub const EVENT_CODES: &'static [&'static str] = &[
        "invalid_json",
        "invalid_event",
        "invalid_channel",
        "invalid_level",
        "invalid_timestamp",
        "event_too_large",
    ];

    /// The stable code of the JSON error body, also the metrics reason.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Auth(e) => e.code(),
            PublishError::InvalidJson { .. } => "invalid_json",
            PublishError::InvalidEvent { .. } => "invalid_event",
            PublishError::InvalidChannel { .. } => "invalid_channel",
            PublishError::InvalidLevel { .. } => "invalid_level",
            PublishError::InvalidTimestamp { .. } => "invalid_timestamp",
            PublishError::ServiceMismatch { .. } => "service_mismatch",
            PublishError::EventTooLarge { .. } => "event_too_large",
            PublishError::BodyTooLarge { .. } => "body_too_large",
            PublishError::BatchTooLarge { .. } => "batch_too_large",
            PublishError::BatchExceedsBurst { .. } => "batch_exceeds_burst",
            PublishError::UnsupportedMediaType(_) => "unsupported_media_type",
            PublishError::RateLimited { .. } => "rate_limited",
            PublishError::ShuttingDown => "shutting_down",
        }
    }

    fn index(&self) -> Option<usize> {
        match self {
            PublishError::InvalidJson { index, .. }
            | PublishError::InvalidEvent { index, .. }
            | PublishError::InvalidChannel { index, .. }
            | PublishError::InvalidLevel { index, .. }
            | PublishError::InvalidTimestamp { index, .. }
            | PublishError::ServiceMismatch { index, .. }
            | PublishError::EventTooLarge { index, .. } => *index,
            _ => None,
        }
    }
}

impl ResponseError for PublishError {
    fn status_code(&self) -> StatusCode {
        match self {
            PublishError::Auth(_) => StatusCode::UNAUTHORIZED,
            PublishError::ServiceMismatch { .. } => StatusCode::FORBIDDEN,
            PublishError::EventTooLarge { .. }
            | PublishError::BodyTooLarge { .. }
            | PublishError::BatchTooLarge { .. }
            | PublishError::BatchExceedsBurst { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PublishError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PublishError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            PublishError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let retry_after = match self {
            PublishError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            PublishError::ShuttingDown => Some(crate::error::RETRY_SOON_SECS),
            _ => None,
        };
        let res = error_response(
            self.status_code(),
            self.code(),
            &self.to_string(),
            self.index(),
            retry_after,
        );
        match self {
            PublishError::Auth(e) => crate::error::with_bearer_challenge(
                res,
                !matches!(e, AuthError::MissingServiceToken),
            ),
            _ => res,
        }
    }
}

/// The body format of a publish request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Ndjson,
}

/// Limits applied while parsing a body.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub max_batch_events: usize,
}

/// One event as publishers send it. Unknown fields are refused, so a typo
/// such as `workspaceId` is an error instead of an event on the wrong channel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent<'a> {
    #[serde(borrow, default)]
    pub service: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub workspace_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub resource_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub workflow_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(rename = "logData", borrow)]
    pub log_data: RawLogData<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogData<'a> {
    #[serde(borrow, default)]
    pub level: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    #[serde(borrow, default)]
    pub timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub meta: Option<&'a RawValue>,
}

/// RFC 3339 in UTC with the precision the input had; the form every
/// timestamp leaves loggate in.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The time of receipt: `received_at` as written, and in Unix ms.
#[derive(Debug, Clone)]
pub struct Received {
    pub text: String,
    pub ms: i64,
}

impl Received {
    pub fn now() -> Self {
        Self::at(Utc::now())
    }

    pub fn at(t: DateTime<Utc>) -> Self {
        Received {
            text: t.to_rfc3339_opts(SecondsFormat::Millis, true),
            ms: t.timestamp_millis(),
        }
    }
}

/// Accepts an RFC 3339 string or epoch milliseconds (integer or float).
/// Accepts an RFC 3339 string or epoch milliseconds (integer or float),
/// within the years 0000-9999 in UTC: the only years RFC 3339 can write,
/// so every timestamp loggate delivers is RFC 3339 again.
fn parse_timestamp(raw: &RawValue) -> Option<DateTime<Utc>> {
    use chrono::Datelike;
    let t = parse_any_timestamp(raw)?;
    (0..=9999).contains(&t.year()).then_some(t)
}

fn parse_any_timestamp(raw: &RawValue) -> Option<DateTime<Utc>> {
    match serde_json::from_str::<serde_json::Value>(raw.get()).ok()? {
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        serde_json::Value::Number(n) => {
            let ms = n.as_f64()?;
            if !ms.is_finite() {
                return None;
            }
            let micros = (ms * 1000.0).round();
            if micros.abs() > 8.0e18 {
                return None;
            }
            Utc.timestamp_micros(micros as i64).single()
        }
        _ => None,
    }
}

/// Deepest nesting `meta` may have. loggate passes `meta` on without
/// building a tree of it, so without this a 10,000-deep value would reach
/// every subscriber's JSON parser.
pub const MAX_META_DEPTH: usize = 32;

/// Calls `f(index, byte)` for every byte of a JSON text that lies outside
/// its strings (the quotes themselves included). The one place that knows
/// JSON's string and escape rules for the byte scans below.
fn outside_strings(text: &str, mut f: impl FnMut(usize, u8)) {
    let (mut in_string, mut escaped) = (false, false);
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        f(i, b);
    }
}

/// Nesting depth of a JSON text already known to be valid.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    outside_strings(text, |_, b| match b {
        b'[' | b'{' => {
            depth += 1;
            max = max.max(depth);
        }
        b']' | b'}' => depth = depth.saturating_sub(1),
        _ => {}
    });
    max
}

/// Whether every number in a JSON text already known to be valid fits a
/// 64-bit float. JSON allows any number of digits; a parser that reads
/// numbers as f64 (serde_json, Go, a browser's) refuses `1e400` or makes it
/// Infinity, so such a number in `meta` would break the event for them.
fn numbers_are_finite(text: &str) -> bool {
    let mut ok = true;
    // Where the number being read started.
    let mut start: Option<usize> = None;
    let mut end_number = |start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            ok &= text[s..end].parse::<f64>().is_ok_and(f64::is_finite);
        }
    };
    outside_strings(text, |i, b| {
        let in_number = matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
        match (start.is_some(), in_number) {
            (false, true) if b == b'-' || b.is_ascii_digit() => start = Some(i),
            (true, false) => end_number(&mut start, i),
            _ => {}
        }
    });
    end_number(&mut start, text.len());
    ok
}

/// `text`, valid JSON, without the whitespace between its tokens. JSON
/// allows raw line breaks there, and one left in `meta` would end an SSE
/// `data:` line early or split an NDJSON record in two, the second of the
/// publisher's choosing. Strings cannot hold raw control characters, so
/// they are copied as they are; key order and number spelling are kept.
/// Borrows when there is nothing to remove. On text that is not valid JSON
/// the result is unspecified, but it never panics.
pub fn minify_json(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    // `text[..copied]` has been dealt with.
    let mut copied = 0;
    outside_strings(text, |i, b| {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            // An ASCII byte is always a char boundary.
            out.push_str(&text[copied..i]);
            copied = i + 1;
        }
    });
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// `meta` as it is delivered: `null` dropped, its depth checked, and
/// compact (see [`minify_json`]).
pub(crate) fn clean_meta(
    meta: Option<&RawValue>,
    index: Option<usize>,
) -> Result<Option<Cow<'_, RawValue>>, PublishError> {
    let Some(meta) = meta.filter(|m| m.get() != "null") else {
        return Ok(None);
    };
    let invalid = |message: String| PublishError::InvalidEvent { index, message };
    if json_depth(meta.get()) > MAX_META_DEPTH {
        return Err(invalid(format!(
            "meta nests deeper than {MAX_META_DEPTH} levels"
        )));
    }
    if !numbers_are_finite(meta.get()) {
        return Err(invalid(
            "meta holds a number too large for a 64-bit float, which JSON parsers refuse or turn into Infinity".into(),
        ));
    }
    match minify_json(meta.get()) {
        Cow::Borrowed(_) => Ok(Some(Cow::Borrowed(meta))),
        Cow::Owned(text) => RawValue::from_string(text)
            .map(|m| Some(Cow::Owned(m)))
            .map_err(|e| invalid(format!("meta: {e}"))),
    }
}

fn empty_to_none(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.filter(|s| !s.is_empty())
}

/// Checks one event and encodes it (without id). `service` is the
/// publisher's authenticated service, `None` only for trusted internal
/// sources such as `/test/logs`.
pub fn validate(
    raw: RawEvent<'_>,
    service: Option<&str>,
    received: &Received,
    index: Option<usize>,
) -> Result<NewEvent, PublishError> {
    let received_at = received.text.as_str();
    let invalid = |message: String| PublishError::InvalidEvent { index, message };
    let workspace = empty_to_none(raw.workspace_id);
    let resource = match (
        empty_to_none(raw.resource_id),
        empty_to_none(raw.workflow_id),
    ) {
        (Some(r), Some(w)) if r != w => {
            return Err(invalid(
                "resource_id and workflow_id (its alias) disagree".into(),
            ));
        }
        (r, w) => r.or(w),
    };
    let event_service = empty_to_none(raw.service);
    let channel = match empty_to_none(raw.channel) {
        Some(text) => {
            let c = ChannelName::parse(&text)
                .map_err(|source| PublishError::InvalidChannel { index, source })?;
            let agrees = event_service.as_deref().is_none_or(|s| s == c.service())
                && workspace
                    .as_deref()
                    .is_none_or(|w| Some(w) == c.workspace())
                && resource.as_deref().is_none_or(|r| Some(r) == c.resource());
            if !agrees {
                return Err(invalid(format!(
                    "the ids given disagree with channel {:?}",
                    c.as_str()
                )));
            }
            c
        }
        None => {
            let Some(s) = event_service.as_deref() else {
                return Err(invalid("missing field `service` (or `channel`)".into()));
            };
            ChannelName::from_parts(s, workspace.as_deref(), resource.as_deref())
                .map_err(|source| PublishError::InvalidChannel { index, source })?
        }
    };
    if let Some(token_service) = service
        && token_service != channel.service()
    {
        return Err(PublishError::ServiceMismatch {
            index,
            token_service: token_service.to_owned(),
            event_service: channel.service().to_owned(),
        });
    }
    let log = raw.log_data;
    let level = match log.level.as_deref() {
        None => Level::Info,
        Some(l) => Level::parse(l).ok_or_else(|| PublishError::InvalidLevel {
            index,
            level: l.chars().take(32).collect(),
        })?,
    };
    let (timestamp, timestamp_ms) = match log.timestamp {
        None => (received_at.to_owned(), received.ms),
        Some(raw) if raw.get() == "null" => (received_at.to_owned(), received.ms),
        Some(raw) => {
            let t = parse_timestamp(raw).ok_or_else(|| PublishError::InvalidTimestamp {
                index,
                value: raw.get().chars().take(48).collect(),
            })?;
            (format_time(t), t.timestamp_millis())
        }
    };
    let meta = clean_meta(log.meta, index)?;
    let body = EventBody {
        channel: channel.as_str(),
        service: channel.service(),
        workspace_id: channel.workspace(),
        resource_id: channel.resource(),
        level,
        message: &log.message,
        timestamp: &timestamp,
        received_at,
        stream: log.stream.as_deref().filter(|s| !s.is_empty()),
        source: log.source.as_deref().filter(|s| !s.is_empty()),
        meta: meta.as_deref(),
    };
    let times = EventTimes {
        timestamp_ms,
        received_ms: received.ms,
    };
    Ok(NewEvent::new(channel.clone(), level, times, &body))
}

fn json_error(index: Option<usize>, e: serde_json::Error) -> PublishError {
    PublishError::InvalidJson {
        index,
        message: e.to_string(),
    }
}

/// A failed parse of one event: `invalid_event` when the JSON was well
/// formed but not an event (a missing, unknown or repeated field),
/// `invalid_json` otherwise.
pub(crate) fn event_error(index: Option<usize>, e: serde_json::Error) -> PublishError {
    if e.is_data() {
        PublishError::InvalidEvent {
            index,
            message: e.to_string(),
        }
    } else {
        json_error(index, e)
    }
}

/// How much larger than what its publisher sent an event may become once
/// validated: the channel and its ids spelled out, `received_at`, a
/// `timestamp` when none was given, `level`; together under 400 bytes
/// (`meta` only shrinks, strings are escaped no longer than JSON required).
/// Nodes accept events from one another up to `max_event_bytes` plus this,
/// so an event one node accepted at the limit is never refused by another.
pub const ENCODING_HEADROOM: usize = 1024;

/// Refuses an event whose encoding grew past what other nodes accept, as a
/// line of text can (invalid UTF-8 and control characters take more room
/// once escaped).
pub(crate) fn check_encoded(
    event: NewEvent,
    max_event_bytes: usize,
) -> Result<NewEvent, PublishError> {
    let size = event.body_tail.len() + 1;
    let max = max_event_bytes.saturating_add(ENCODING_HEADROOM);
    if size > max {
        return Err(PublishError::EventTooLarge {
            index: None,
            size,
            max,
        });
    }
    Ok(event)
}

/// Refuses a payload over `max` bytes before it is parsed.
pub(crate) fn check_size(size: usize, max: usize) -> Result<(), PublishError> {
    if size > max {
        return Err(PublishError::EventTooLarge {
            index: None,
            size,
            max,
        });
    }
    Ok(())
}

fn parse_one(
    text: &RawValue,
    service: &str,
    received_at: &Received,
    index: Option<usize>,
    limits: Limits,
) -> Result<NewEvent, PublishError> {
    let size = text.get().len();
    if size > limits.max_event_bytes {
        return Err(PublishError::EventTooLarge {
            index,
            size,
            max: limits.max_event_bytes,
        });
    }
    let raw: RawEvent<'_> = serde_json::from_str(text.get()).map_err(|e| event_error(index, e))?;
    validate(raw, Some(service), received_at, index)
}

/// Parses and validates a whole publish body for `service`. All or nothing:
/// the first bad event fails the request.
pub fn parse_body(
    body: &[u8],
    format: BodyFormat,
    service: &str,
    received_at: &Received,
    limits: Limits,
) -> Result<Vec<NewEvent>, PublishError> {
    match format {
        BodyFormat::Json => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            match first {
                None => Err(PublishError::InvalidJson {
                    index: None,
                    message: "empty body: send one event, an array of events, or NDJSON".into(),
                }),
                Some(b'[') => {
                    let items: Vec<&RawValue> =
                        serde_json::from_slice(body).map_err(|e| json_error(None, e))?;
                    if items.len() > limits.max_batch_events {
                        return Err(PublishError::BatchTooLarge {
                            count: items.len(),
                            max: limits.max_batch_events,
                        });
                    }
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| parse_one(item, service, received_at, Some(i), limits))
                        .collect()
                }
                Some(_) => {
                    let item: &RawValue =
                        serde_json::from_slice(body).map_err(|e| json_error(None, e))?;
                    Ok(vec![parse_one(item, service, received_at, None, limits)?])
                }
            }
        }
        BodyFormat::Ndjson => {
            let lines: Vec<&[u8]> = body
                .split(|b| *b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
                .collect();
            if lines.len() > limits.max_batch_events {
                return Err(PublishError::BatchTooLarge {
                    count: lines.len(),
                    max: limits.max_batch_events,
                });
            }
            lines
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    if line.len() > limits.max_event_bytes {
                        return Err(PublishError::EventTooLarge {
                            index: Some(i),
                            size: line.len(),
                            max: limits.max_event_bytes,
                        });
                    }
                    let item: &RawValue =
                        serde_json::from_slice(line).map_err(|e| json_error(Some(i), e))?;
                    parse_one(item, service, received_at, Some(i), limits)
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventId};

    const LIMITS: Limits = Limits {
        max_event_bytes: 65536,
        max_batch_events: 1000,
    };
    const NOW: &str = "2025-09-25T10:31:00.123Z";

    fn now() -> Received {
        Received::at(
            DateTime::parse_from_rfc3339(NOW)
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    fn parse(body: &str) -> Result<Vec<NewEvent>, PublishError> {
        parse_body(body.as_bytes(), BodyFormat::Json, "etl", &now(), LIMITS)
    }

    fn json_of(e: NewEvent) -> serde_json::Value {
        let ev = Event::encode(EventId { epoch: 1, seq: 1 }, e);
        serde_json::from_slice(&ev.json()).unwrap()
    }

    #[test]
    fn contract_example_becomes_the_delivered_event() {
        let body = r#"{"service":"etl","workspace_id":"ws1","resource_id":"job7",
            "logData":{"level":"INFO","message":"done","timestamp":"2025-09-25T10:30:00Z",
            "stream":"stdout","source":"api","meta":{"rows":12}}}"#;
        let mut events = parse(body).unwrap();
        let j = json_of(events.remove(0));
        assert_eq!(j["channel"], "logs:etl:ws1:job7");
        assert_eq!(j["service"], "etl");
        assert_eq!(j["workspace_id"], "ws1");
        assert_eq!(j["resource_id"], "job7");
        assert_eq!(j["level"], "info");
        assert_eq!(j["message"], "done");
        assert_eq!(j["timestamp"], "2025-09-25T10:30:00Z");
        assert_eq!(j["received_at"], NOW);
        assert_eq!(j["stream"], "stdout");
        assert_eq!(j["source"], "api");
        assert_eq!(j["meta"]["rows"], 12);
        let keys: Vec<&str> = j.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 12);
    }

    #[test]
    fn aliases_defaults_and_channel_form() {
        let e = parse(r#"{"service":"etl","workspace_id":"ws1","workflow_id":"wf","logData":{"message":"m","level":"WARNING"}}"#).unwrap();
        let j = json_of(e.into_iter().next().unwrap());
        assert_eq!(j["channel"], "logs:etl:ws1:wf");
        assert_eq!(j["level"], "warn");
        assert_eq!(j["timestamp"], NOW, "missing timestamp takes receipt time");
        assert!(j.get("meta").is_none() && j.get("stream").is_none());

        let e = parse(r#"{"service":"etl","logData":{"message":"m","level":"ERR"}}"#).unwrap();
        let j = json_of(e.into_iter().next().unwrap());
        assert_eq!(j["channel"], "logs:etl");
        assert_eq!(j["level"], "error");
        assert!(j.get("workspace_id").is_none());

        let e = parse(r#"{"channel":"logs:etl:ws1:job7","logData":{"message":"m","timestamp":1758796200000}}"#).unwrap();
        let j = json_of(e.into_iter().next().unwrap());
        assert_eq!(j["workspace_id"], "ws1");
        assert_eq!(j["timestamp"], "2025-09-25T10:30:00Z");
    }

    #[test]
    fn refusals_have_codes_and_indexes() {
        let cases = [
            ("", "invalid_json"),
            ("{", "invalid_json"),
            (r#"{"service":"etl"}"#, "invalid_event"),
            (
                r#"{"service":"etl","logData":{"message":1}}"#,
                "invalid_event",
            ),
            (
                r#"{"service":"etl","workspaceId":"x","logData":{"message":"m"}}"#,
                "invalid_event",
            ),
            (r#"{"logData":{"message":"m"}}"#, "invalid_event"),
            (
                r#"{"service":"etl","workspace_id":"w.1","logData":{"message":"m"}}"#,
                "invalid_channel",
            ),
            (
                r#"{"channel":"logs:etl:*","logData":{"message":"m"}}"#,
                "invalid_channel",
            ),
            (
                r#"{"channel":"logs:etl:a","service":"faas","logData":{"message":"m"}}"#,
                "invalid_event",
            ),
            (
                r#"{"service":"etl","logData":{"message":"m","level":"loud"}}"#,
                "invalid_level",
            ),
            (
                r#"{"service":"etl","logData":{"message":"m","timestamp":"yesterday"}}"#,
                "invalid_timestamp",
            ),
            (
                r#"{"service":"etl","logData":{"message":"m","timestamp":true}}"#,
                "invalid_timestamp",
            ),
            (
                r#"{"service":"etl","logData":{"message":"m","timestamp":1e300}}"#,
                "invalid_timestamp",
            ),
            (
                r#"{"service":"faas","logData":{"message":"m"}}"#,
                "service_mismatch",
            ),
            (
                r#"{"service":"etl","resource_id":"a","workflow_id":"b","workspace_id":"w","logData":{"message":"m"}}"#,
                "invalid_event",
            ),
        ];
        for (body, code) in cases {
            let err = parse(body)
                .err()
                .unwrap_or_else(|| panic!("{body} should fail"));
            assert_eq!(err.code(), code, "{body}: {err}");
        }
        let batch = r#"[{"service":"etl","logData":{"message":"ok"}},{"service":"etl","logData":{"message":"m","level":"nope"}}]"#;
        let err = parse(batch).unwrap_err();
        assert_eq!(err.code(), "invalid_level");
        assert_eq!(err.index(), Some(1));
        assert!(err.to_string().starts_with("event 1: "));
    }

    #[test]
    fn meta_depth_is_bounded() {
        let nested = |n: usize| {
            format!(
                r#"{{"service":"etl","logData":{{"message":"m","meta":{}1{}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(parse(&nested(MAX_META_DEPTH)).is_ok());
        assert_eq!(
            parse(&nested(MAX_META_DEPTH + 1)).unwrap_err().code(),
            "invalid_event"
        );
        // Brackets inside strings do not count.
        let quoted = format!(
            r#"{{"service":"etl","logData":{{"message":"m","meta":{{"s":"{}\"{}"}}}}}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(parse(&quoted).is_ok(), "{quoted}");
        assert_eq!(json_depth(r#"{"a":[1,{"b":"]]]"}]}"#), 3);
    }

    // Found by fuzzing (`scripts/fuzz.sh`, target publish_body; rules and
    // fly reach the same code).
    #[test]
    fn timestamps_leave_as_rfc3339_or_are_refused() {
        for ts in [
            "253402300800000", // 10000-01-01T00:00:00Z in epoch ms
            "1e15",
            "-1e14",
            r#""9999-12-31T23:59:59-23:59""#, // valid RFC 3339, year 10000 in UTC
            r#""0000-01-01T00:00:00+23:59""#,
        ] {
            let body =
                format!(r#"{{"service":"etl","logData":{{"message":"m","timestamp":{ts}}}}}"#);
            assert_eq!(
                parse(&body).unwrap_err().code(),
                "invalid_timestamp",
                "{ts}"
            );
        }
        for ts in [
            r#""9999-12-31T23:59:59Z""#,
            r#""0000-01-01T00:00:00Z""#,
            "0",
        ] {
            let body =
                format!(r#"{{"service":"etl","logData":{{"message":"m","timestamp":{ts}}}}}"#);
            let j = json_of(parse(&body).unwrap().remove(0));
            let t = j["timestamp"].as_str().unwrap();
            assert!(DateTime::parse_from_rfc3339(t).is_ok(), "{ts} became {t}");
        }
    }

    #[test]
    fn meta_numbers_beyond_f64_do_not_reach_subscribers() {
        for meta in [
            "1e400",
            "[1,-2.5e62000003]",
            r#"{"a":111111111111111111111111111111E11111111}"#,
            r#"{"x":"1e999 in a string is fine","n":1e309}"#,
        ] {
            let body = format!(r#"{{"service":"etl","logData":{{"message":"m","meta":{meta}}}}}"#);
            assert_eq!(parse(&body).unwrap_err().code(), "invalid_event", "{meta}");
        }
        for meta in [
            r#"{"big":123456789012345678901234567890,"small":-1.5e-400,"s":"1e999"}"#,
            "[0,-0,1E+2,1.7976931348623157e308]",
        ] {
            let body = format!(r#"{{"service":"etl","logData":{{"message":"m","meta":{meta}}}}}"#);
            let ev = Event::encode(
                EventId { epoch: 1, seq: 1 },
                parse(&body).unwrap().remove(0),
            );
            assert!(serde_json::from_slice::<serde_json::Value>(&ev.json()).is_ok());
        }
    }

    #[test]
    fn minify_removes_whitespace_between_tokens_only() {
        let cases = [
            ("{\"a\":1}", "{\"a\":1}"),
            (" {\r\n \"a\" :\t[ 1 ,\r2 ]\n}\n", "{\"a\":[1,2]}"),
            // Spaces and escapes inside strings are data.
            (r#"{ "k e y" : "a b\n\t" }"#, r#"{"k e y":"a b\n\t"}"#),
            (
                r#"[ "\"", "\\", "\\\" ]" , 1 ]"#,
                r#"["\"","\\","\\\" ]",1]"#,
            ),
            (r#"[ "\\" , "x y" ]"#, r#"["\\","x y"]"#),
            // Key order, duplicates and number spelling stay as written.
            (
                r#"{"z": 1.50e3, "a": -0, "z": 1E+2}"#,
                r#"{"z":1.50e3,"a":-0,"z":1E+2}"#,
            ),
            (r#""\u00e9 \u2028""#, r#""\u00e9 \u2028""#),
            (
                "{\"\u{e9}\" : \"\u{2028} x\"}",
                "{\"\u{e9}\":\"\u{2028} x\"}",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(minify_json(input), want, "{input:?}");
            assert!(
                serde_json::from_str::<serde_json::Value>(want).is_ok(),
                "{want}"
            );
        }
        assert!(matches!(minify_json("[1,2]"), Cow::Borrowed(_)));
        // Not JSON: any result, but no panic.
        let _ = minify_json("\"\\");
        let _ = minify_json(" \u{e9} \" \u{e9}");
    }

    #[test]
    fn meta_is_delivered_compact() {
        let body = "{\"service\":\"etl\",\"logData\":{\"message\":\"m\",\"meta\":{\r\n\"a\" :\n[1,\r\"x\\ny\"]\n}}}";
        let e = parse(body).unwrap().remove(0);
        let text = std::str::from_utf8(&e.body_tail).unwrap();
        assert!(text.ends_with(r#","meta":{"a":[1,"x\ny"]}}"#), "{text}");
        assert!(!text.contains(['\n', '\r']), "{text}");
    }

    #[test]
    fn size_limits() {
        let big = format!(
            r#"{{"service":"etl","logData":{{"message":"{}"}}}}"#,
            "x".repeat(70_000)
        );
        assert_eq!(parse(&big).unwrap_err().code(), "event_too_large");
        let one = r#"{"service":"etl","logData":{"message":"m"}}"#;
        let many = format!("[{}]", vec![one; 1001].join(","));
        assert_eq!(parse(&many).unwrap_err().code(), "batch_too_large");
        let ok = format!("[{}]", vec![one; 1000].join(","));
        assert_eq!(parse(&ok).unwrap().len(), 1000);
    }

    #[test]
    fn ndjson_and_bad_utf8() {
        let body = "{\"service\":\"etl\",\"logData\":{\"message\":\"a\"}}\r\n\n{\"service\":\"etl\",\"logData\":{\"message\":\"b\"}}\n";
        let events =
            parse_body(body.as_bytes(), BodyFormat::Ndjson, "etl", &now(), LIMITS).unwrap();
        assert_eq!(events.len(), 2);
        let bad = b"{\"service\":\"etl\",\"logData\":{\"message\":\"\xff\xfe\"}}";
        let err = parse_body(bad, BodyFormat::Json, "etl", &now(), LIMITS).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
        let err = parse_body(bad, BodyFormat::Ndjson, "etl", &now(), LIMITS).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
    }
}
