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

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut, BytesMut};
use chrono::DateTime;
use serde::Deserialize;

use crate::event::EventId;
use crate::limits::AddressLimit;
use crate::registry::history::HistoryQuery;
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

pub async fn history(
    req: HttpRequest,
    params: web::Query<HistoryParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, SubscribeError> {
    let p = params.into_inner();
    check_address_limit(&state, AddressLimit::History, state.client_ip(&req))?;
    let stream_query = StreamQuery {
        channels: p.channels,
        token: None,
        level: p.level,
        q: p.q,
        last_event_id: None,
    };
    let request = SubscribeRequest::parse(&stream_query, state.config.subscribe.max_channels)?;
    authorize(&req, p.token.as_deref(), &request.patterns, &state)?;

    let since_ms = p
        .since
        .as_deref()
        .map(|v| parse_time("since", v))
        .transpose()?;
    let until_ms = p
        .until
        .as_deref()
        .map(|v| parse_time("until", v))
        .transpose()?;
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
    let after_seq = match p.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => {
            let id: EventId = c.parse().map_err(|_| {
                SubscribeError::InvalidParameter("cursor is not one this gateway handed out".into())
            })?;
            if id.epoch != state.epoch {
                return Err(SubscribeError::InvalidParameter(
                    "cursor is from an earlier run of the gateway, whose history is gone; start again without it".into(),
                ));
            }
            id.seq
        }
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
        since_ms,
        until_ms,
        after_seq,
        limit,
    };
    // The lock is held for the bounded query only, not for the response.
    let page = state.history.read().query(&query);

    let size: usize = page.events.iter().map(|e| e.size()).sum();
    let mut body = BytesMut::with_capacity(size + 64);
    let cursor = page.next_cursor.map(|id| id.to_string());
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(c) = &cursor {
        res.insert_header(("X-Next-Cursor", c.as_str()));
    }
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
    body.put_slice(b"],\"next_cursor\":");
    body.put_slice(
        serde_json::to_string(&cursor)
            .unwrap_or_else(|_| "null".into())
            .as_bytes(),
    );
    body.put_u8(b'}');
    Ok(res.content_type("application/json").body(body.freeze()))
}
