//! The rules of an event, whichever way it arrived (HTTP, NATS): its
//! channel and ids, level, timestamp, `meta`, and size once encoded.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::value::RawValue;

use super::PublishError;
use super::json::clean_meta;
use super::wire::{RawEvent, Received, format_time};
use crate::channel::ChannelName;
use crate::event::{EventBody, EventTimes, Level, NewEvent};

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
    let (timestamp, timestamp_ms): (Cow<'_, str>, i64) = match log.timestamp {
        None => (Cow::Borrowed(received_at), received.ms),
        Some(raw) if raw.get() == "null" => (Cow::Borrowed(received_at), received.ms),
        Some(raw) => {
            let t = parse_timestamp(raw).ok_or_else(|| PublishError::InvalidTimestamp {
                index,
                value: raw.get().chars().take(48).collect(),
            })?;
            (Cow::Owned(format_time(t)), t.timestamp_millis())
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

/// How much larger than what its publisher sent an event may become once
/// validated: the channel and its ids spelled out, `received_at`, a
/// `timestamp` when none was given, `level`; together under 400 bytes
/// (`meta` only shrinks). Strings grow where loggate escapes what JSON
/// allows raw (C1 controls, U+2028, U+2029: `event::write_json`) and
/// where a line of text was not JSON; every path refuses an event grown
/// past this ([`check_encoded`]). Nodes accept events from one another up
/// to `max_event_bytes` plus this, so an event one node accepted is never
/// refused by another.
pub const ENCODING_HEADROOM: usize = 1024;

/// Refuses an event whose encoding grew past what other nodes accept, as a
/// line of text can (invalid UTF-8 and control characters take more room
/// once escaped).
pub fn check_encoded(
    event: NewEvent,
    max_event_bytes: usize,
    index: Option<usize>,
) -> Result<NewEvent, PublishError> {
    let size = event.body_tail.len() + 1;
    let max = max_event_bytes.saturating_add(ENCODING_HEADROOM);
    if size > max {
        return Err(PublishError::EventTooLarge { index, size, max });
    }
    Ok(event)
}

/// Refuses a payload over `max` bytes before it is parsed.
pub fn check_size(size: usize, max: usize) -> Result<(), PublishError> {
    if size > max {
        return Err(PublishError::EventTooLarge {
            index: None,
            size,
            max,
        });
    }
    Ok(())
}
