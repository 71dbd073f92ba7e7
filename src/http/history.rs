//! `GET /api/logs/history`: what history holds, page by page, as JSON or an
//! NDJSON download.
//!
//! Same channels, patterns, hierarchy, filters, auth and grants as a stream
//! (it goes through `session::authorize`), and a per-address rate limit
//! checked before any signature. History is read directly under its lock,
//! never through the registry's mailbox, and a page's work is bounded
//! (`registry::history::read`); the events come already encoded, so a page
//! is a concatenation of shared JSON, never a re-serialisation. Pages are
//! ordered by id and the cursor is the last id looked at, so each event
//! appears once across pages; a page may be short (even empty) with a
//! cursor when its filters rejected much, and the last page has none.
//! `before=end` gives the newest page and `prev_cursor` walks back from it
//! (what a viewer shows first); `last_id` is where a stream opened after
//! this page resumes without a gap.

use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut, BytesMut};
use chrono::DateTime;
use serde::Deserialize;

use crate::event::EventId;
use crate::limits::AddressLimit;
use crate::registry::history::{Direction, HistoryQuery};
use crate::session::{
    StreamQuery, SubscribeError, SubscribeRequest, authorize, check_address_limit,
};
use crate::state::AppState;

/// Events per page when `limit` is not given, and the most it may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Unknown parameters are refused (a typo must not widen the page).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    channels: Option<String>,
    token: Option<String>,
    level: Option<String>,
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    before: Option<String>,
    format: Option<String>,
}

/// RFC 3339 or epoch milliseconds, as publish accepts.
fn parse_time(name: &str, value: &str) -> Result<i64, SubscribeError> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            SubscribeError::InvalidParameter(format!(
                "{name}: {:?} is neither RFC 3339 (2025-09-25T10:30:00Z) nor epoch milliseconds",
                value.chars().take(40).collect::<String>()
            ))
        })
}

/// This run's id for `text`, named `name` in a refusal.
fn own_id(name: &str, text: &str, epoch: u64) -> Result<EventId, SubscribeError> {
    let id: EventId = text.trim().parse().map_err(|_| {
        SubscribeError::InvalidParameter(format!("{name} is not one this gateway handed out"))
    })?;
    if id.epoch != epoch {
        return Err(SubscribeError::InvalidParameter(format!(
            "{name} is from an earlier run of the gateway, whose history is gone; start again without it"
        )));
    }
    Ok(id)
}

/// Where the page starts: after `cursor`, or before `before` (an id, or
/// `end` for the newest events).
fn direction(p: &HistoryParams, epoch: u64) -> Result<Direction, SubscribeError> {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|c| !c.is_empty())
    }
    match (given(&p.cursor), given(&p.before)) {
        (Some(_), Some(_)) => Err(SubscribeError::InvalidParameter(
            "cursor pages forward and before pages backward; give one of them".into(),
        )),
        (Some(c), None) => Ok(Direction::After(own_id("cursor", c, epoch)?.seq)),
        (None, Some("end")) => Ok(Direction::Before(None)),
        (None, Some(b)) => Ok(Direction::Before(Some(own_id("before", b, epoch)?.seq))),
        (None, None) => Ok(Direction::After(0)),
    }
}

/// The page `p` asks for, checked.
fn page_query(
    p: HistoryParams,
    state: &AppState,
    req: &HttpRequest,
) -> Result<(HistoryQuery, bool), SubscribeError> {
    let direction = direction(&p, state.epoch())?;
    let stream_query = StreamQuery {
        channels: p.channels,
        token: None,
        level: p.level,
        q: p.q,
        last_event_id: None,
    };
    let request = SubscribeRequest::parse(&stream_query, state.config.subscribe.max_channels)?;
    authorize(req, p.token.as_deref(), &request.patterns, state)?;
    let time =
        |name: &str, v: &Option<String>| v.as_deref().map(|v| parse_time(name, v)).transpose();
    let limit = match p.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                SubscribeError::InvalidParameter(format!("limit must be 1 to {MAX_LIMIT}"))
            })?,
    };
    let ndjson = match p.format.as_deref() {
        None | Some("json") => false,
        Some("ndjson") => true,
        Some(_) => {
            return Err(SubscribeError::InvalidParameter(
                "format must be json or ndjson".into(),
            ));
        }
    };
    let query = HistoryQuery {
        patterns: request.patterns,
        filter: request.filter,
        since_ms: time("since", &p.since)?,
        until_ms: time("until", &p.until)?,
        direction,
        limit,
    };
    Ok((query, ndjson))
}

pub async fn history(
    req: HttpRequest,
    params: web::Query<HistoryParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, SubscribeError> {
    check_address_limit(&state, AddressLimit::History, state.client_ip(&req))?;
    let (query, ndjson) = page_query(params.into_inner(), &state, &req)?;
    // Read before history: the registry stores it after writing history,
    // so every event up to it is in the page or does not match, and a
    // stream resumed after it (or after the page's last event, if newer)
    // misses nothing.
    let last_seq = state.gauges.events_accepted.load(Ordering::Acquire);
    // The lock is held for the bounded query only, not for the response.
    let page = state.history.read().query(&query);
    let last_id = (last_seq > 0).then(|| EventId {
        epoch: state.epoch(),
        seq: last_seq,
    });

    let next = page.next_cursor.map(|id| id.to_string());
    let prev = page.prev_cursor.map(|id| id.to_string());
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    for (name, value) in [("X-Next-Cursor", &next), ("X-Prev-Cursor", &prev)] {
        if let Some(v) = value {
            res.insert_header((name, v.as_str()));
        }
    }
    let size: usize = page.events.iter().map(|e| e.size()).sum();
    let mut body = BytesMut::with_capacity(size + 128);
    if ndjson {
        for e in &page.events {
            body.put_slice(&e.json());
            body.put_u8(b'\n');
        }
        return Ok(res
            .content_type("application/x-ndjson")
            .insert_header((
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"loggate-history.ndjson\"",
            ))
            .body(body.freeze()));
    }
    body.put_slice(b"{\"logs\":[");
    for (i, e) in page.events.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(&e.json());
    }
    let tail = serde_json::json!({
        "next_cursor": next,
        "prev_cursor": prev,
        "last_id": last_id.map(|id| id.to_string()),
    })
    .to_string();
    // `{"next_cursor":…}` continues the object after the logs.
    body.put_slice(b"],");
    body.put_slice(&tail.as_bytes()[1..]);
    Ok(res.content_type("application/json").body(body.freeze()))
}
