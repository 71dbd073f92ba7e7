//! `GET /api/logs/channels[?pattern=…][&limit=…][&cursor=…]`: which
//! channels exist, for a caller choosing what to watch (`loggate channels`,
//! the viewer's channel box).
//!
//! Lists the channels within the caller's grants that hold history or have
//! subscribers, each with the events history holds, when the newest of them
//! was received, and the sessions subscribed to exactly that name. Auth is
//! as for subscribing (`session::authorize`): `pattern` (a channel pattern,
//! with everything below it) must lie within the grants, else 403
//! `forbidden_channel`; without one the listing is everything the grants
//! reach (`AUTH_TOKEN` and open mode: everything). The page is walked along
//! those patterns only (`registry::history::list`), so another tenant's
//! channels are never looked at: they cannot show in the answer, its cursor
//! or its time. Pages are in the directory's order (segment by segment) and
//! the cursor is the last name looked at; a page's work is bounded, so a
//! page may be short, even empty, with a cursor, and the last has none.
//! History is read directly under its lock, never through the registry's
//! mailbox, and requests share history's per-address rate limit.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use crate::auth::Grants;
use crate::channel::{ChannelName, ChannelPattern};
use crate::error::error_response;
use crate::limits::AddressLimit;
use crate::session::{SubscribeError, authorize, check_address_limit};
use crate::state::AppState;

/// Channels per page when `limit` is not given, and the most it may ask.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Unknown parameters are refused (a typo must not widen the listing).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsParams {
    pattern: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    token: Option<String>,
}

/// Why a listing was refused.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// As a subscription would be: a bad pattern or limit, auth, grants,
    /// the rate limit.
    #[error(transparent)]
    Refused(#[from] SubscribeError),
    #[error("cursor: {0}; pass the next_cursor of the previous page")]
    InvalidCursor(crate::channel::ChannelError),
}

impl ListError {
    pub fn code(&self) -> &'static str {
        match self {
            ListError::Refused(e) => e.code(),
            ListError::InvalidCursor(_) => "invalid_cursor",
        }
    }
}

impl ResponseError for ListError {
    fn status_code(&self) -> StatusCode {
        match self {
            ListError::Refused(e) => e.status_code(),
            ListError::InvalidCursor(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ListError::Refused(e) => e.error_response(),
            ListError::InvalidCursor(_) => error_response(
                self.status_code(),
                self.code(),
                &self.to_string(),
                None,
                None,
            ),
        }
    }
}

/// The answer.
#[derive(Serialize)]
struct ChannelList {
    channels: Vec<ChannelRow>,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
struct ChannelRow {
    channel: String,
    events: usize,
    /// RFC 3339 (UTC, milliseconds); null without history.
    newest: Option<String>,
    subscribers: u32,
}

/// A parameter given and not blank.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn limit_of(p: &ChannelsParams) -> Result<usize, SubscribeError> {
    match given(&p.limit) {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                SubscribeError::InvalidParameter(format!("limit must be 1 to {MAX_LIMIT}"))
            }),
    }
}

pub async fn channels(
    req: HttpRequest,
    params: web::Query<ChannelsParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ListError> {
    check_address_limit(&state, AddressLimit::History, state.client_ip(&req))?;
    let p = params.into_inner();
    let pattern = given(&p.pattern)
        .map(ChannelPattern::parse)
        .transpose()
        .map_err(SubscribeError::from)?;
    let requested: Vec<ChannelPattern> = pattern.into_iter().collect();
    let credential = authorize(&req, p.token.as_deref(), &requested, &state)?;
    let limit = limit_of(&p)?;
    let after = given(&p.cursor)
        .map(ChannelName::parse)
        .transpose()
        .map_err(ListError::InvalidCursor)?;
    // What the page may reach: the pattern asked for (checked to lie
    // within the grants above), else the grants themselves.
    let within = match (requested.is_empty(), credential.grants) {
        (false, _) => Some(requested),
        (true, Grants::All) => None,
        (true, Grants::Patterns(grants)) => Some(grants),
    };
    // The lock is held for the bounded walk only, not for the response.
    let page = state
        .history
        .read()
        .list_channels(within.as_deref(), after.as_ref(), limit);
    let answer = ChannelList {
        channels: page
            .channels
            .into_iter()
            .map(|c| ChannelRow {
                channel: c.channel.as_str().to_owned(),
                events: c.events,
                newest: c
                    .newest_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
                subscribers: c.subscribers,
            })
            .collect(),
        next_cursor: page.next_cursor,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}
