//! The gate every subscriber passes, whatever its transport: the request
//! (channels, filters, resume point), the per-address connection rate limit
//! (before any signature is checked), authentication and grants, a
//! connection slot, and registration with the registry. History requests go
//! through the same request parsing and the same [`authorize`].

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;

use super::SubscribeError;
use super::core::SessionCore;
use crate::channel::ChannelPattern;
use crate::config::Config;
use crate::delivery::filter::{Filter, MAX_QUERY_BYTES};
use crate::delivery::framing::Framing;
use crate::delivery::outbox::{Outbox, QueueLimits};
use crate::event::{EventId, Level};
use crate::limits::AddressLimit;
use crate::limits::slots::ConnectionGuard;
use crate::state::AppState;

/// The query of `/api/logs/stream` and `/api/logs/ws`. Unknown parameters
/// are refused, as unknown publish fields are: `chanels=` must not quietly
/// subscribe to nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    pub channels: Option<String>,
    /// A subscriber JWT (or `AUTH_TOKEN`), for clients such as `EventSource`
    /// that cannot set headers.
    pub token: Option<String>,
    /// Resume after this event id (the `Last-Event-ID` header wins).
    #[serde(rename = "lastEventId")]
    pub last_event_id: Option<String>,
    pub level: Option<String>,
    pub q: Option<String>,
}

/// A checked subscribe request.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    pub patterns: Vec<ChannelPattern>,
    pub filter: Filter,
}

/// Channel names as a subscription's patterns: at most `max` (counted
/// before anything is parsed, so 10,000 names cost nothing), each valid,
/// duplicates dropped. The rule of the query and of WebSocket messages.
pub fn parse_patterns(names: &[&str], max: usize) -> Result<Vec<ChannelPattern>, SubscribeError> {
    if names.len() > max {
        return Err(SubscribeError::TooManyChannels {
            requested: names.len(),
            max,
        });
    }
    let mut patterns = Vec::with_capacity(names.len());
    for name in names {
        let p = ChannelPattern::parse(name)?;
        if !patterns.contains(&p) {
            patterns.push(p);
        }
    }
    Ok(patterns)
}

impl SubscribeRequest {
    pub fn parse(query: &StreamQuery, max_channels: usize) -> Result<Self, SubscribeError> {
        let raw = query.channels.as_deref().unwrap_or_default();
        let names: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Err(SubscribeError::MissingChannels);
        }
        let patterns = parse_patterns(&names, max_channels)?;
        let min_level = match query.level.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(l) => Some(
                Level::parse(l)
                    .ok_or_else(|| SubscribeError::InvalidLevel(l.chars().take(32).collect()))?,
            ),
        };
        let q = query.q.as_deref();
        if let Some(q) = q
            && q.len() > MAX_QUERY_BYTES
        {
            return Err(SubscribeError::InvalidParameter(format!(
                "q is {} bytes; at most {MAX_QUERY_BYTES} are accepted",
                q.len(),
            )));
        }
        Ok(SubscribeRequest {
            patterns,
            filter: Filter::new(min_level, q),
        })
    }
}

/// A request header as text. A header that is present but not text still
/// counts as present (as an empty, invalid value), so it cannot fall
/// through to the next token source.
pub fn header<'a>(req: &'a actix_web::HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).map(|v| v.to_str().unwrap_or(""))
}

/// Authenticates the subscriber behind `req` and checks that its grants
/// cover every requested channel: the one gate of streams (SSE and the
/// WebSocket handshake), history and chat. The cookie counts only from the
/// pages `auth::PageOrigin` allows; from any other it is as if not sent.
pub fn authorize(
    req: &actix_web::HttpRequest,
    query_token: Option<&str>,
    patterns: &[ChannelPattern],
    state: &AppState,
) -> Result<crate::auth::Credential, SubscribeError> {
    use crate::auth::{AuthError, PageOrigin, presented_subscriber_token};
    let auth = &state.subscriber_auth;
    let page = PageOrigin {
        origin: header(req, "origin"),
        fetch_site: header(req, "sec-fetch-site"),
        host: header(req, "host"),
    };
    let cookies = header(req, "cookie");
    let cookie_ok = auth.accepts_cookie_from(&page);
    let token = presented_subscriber_token(
        header(req, "authorization"),
        query_token,
        cookies,
        cookie_ok,
    );
    let credential = auth.authenticate(token).map_err(|e| {
        // Say why a cookie that was sent did not count.
        let ignored = !cookie_ok
            && auth.accepts_cookie()
            && presented_subscriber_token(None, None, cookies, true).is_some();
        match e {
            AuthError::MissingToken if ignored => AuthError::CookieNotAccepted,
            e => e,
        }
    })?;
    credential.grants.check(patterns)?;
    Ok(credential)
}

/// Applies a per-address rate limit, counting a refusal. Checked before
/// any signature, so a flood of bad tokens costs no crypto.
pub fn check_address_limit(
    state: &AppState,
    which: AddressLimit,
    client: Option<IpAddr>,
) -> Result<(), SubscribeError> {
    state
        .limits
        .check_address(which, client)
        .map_err(|limited| {
            state
                .metrics
                .rate_limited
                .with_label_values(&[which.label(&limited)])
                .inc();
            SubscribeError::RateLimited {
                retry_after_secs: limited.retry_after_secs(),
            }
        })
}

/// The resume point: the `Last-Event-ID` header (what `EventSource` sends
/// on reconnect, so newer) or else the `lastEventId` query parameter.
pub fn resume_point(
    header: Option<&str>,
    query: Option<&str>,
) -> Result<Option<EventId>, SubscribeError> {
    match header.or(query).map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| SubscribeError::InvalidLastEventId(text.chars().take(64).collect())),
    }
}

/// A subscriber admitted and registered, its stream not yet started.
pub struct Opened {
    pub core: SessionCore,
    pub slot: ConnectionGuard,
    pub request: SubscribeRequest,
    pub grants: crate::auth::Grants,
}

/// Opens a stream for `request` (already parsed from `query`): applies the
/// connection rate limit, authorises, takes a connection slot, queues the
/// transport's `ready` frame, and registers with the registry, replaying
/// history first when resuming. A refusal is logged.
pub async fn open(
    req: &actix_web::HttpRequest,
    query: &StreamQuery,
    request: SubscribeRequest,
    state: &AppState,
    framing: Framing,
) -> Result<Opened, SubscribeError> {
    let transport = framing.transport();
    let client = state.client_ip(req);
    let result = admit(req, query, request, state, framing, client).await;
    if let Err(e) = &result {
        tracing::info!(
            transport = transport.as_str(),
            client = ?client,
            code = e.code(),
            "subscription refused"
        );
    }
    result
}

async fn admit(
    req: &actix_web::HttpRequest,
    query: &StreamQuery,
    request: SubscribeRequest,
    state: &AppState,
    framing: Framing,
    client: Option<IpAddr>,
) -> Result<Opened, SubscribeError> {
    if state.is_shutting_down() {
        return Err(SubscribeError::ShuttingDown);
    }
    check_address_limit(state, AddressLimit::Connect, client)?;
    let credential = authorize(req, query.token.as_deref(), &request.patterns, state)?;
    let resume = resume_point(header(req, "last-event-id"), query.last_event_id.as_deref())?;
    let slot = state.connections.try_acquire(framing.transport(), client)?;
    let id = state.next_session_id();
    let outbox = Arc::new(Outbox::new(
        queue_limits(&state.config),
        request.filter.clone(),
        framing,
    ));
    outbox.push_control(framing.ready(id, &request.patterns));
    state
        .registry
        .send(crate::registry::Subscribe {
            session: id,
            outbox: Arc::clone(&outbox),
            patterns: request.patterns.clone(),
            resume,
        })
        .await
        .map_err(|_| SubscribeError::ShuttingDown)?
        .map_err(|_| SubscribeError::ShuttingDown)?;
    tracing::info!(session = %id, client = ?client, transport = framing.transport().as_str(), channels = request.patterns.len(), resume = resume.is_some(), "connection opened");
    Ok(Opened {
        core: SessionCore::new(id, outbox, state, credential.expires_at),
        slot,
        request,
        grants: credential.grants,
    })
}

/// Per-connection queue limits from the configuration.
pub fn queue_limits(config: &Config) -> QueueLimits {
    QueueLimits {
        max_events: config.subscribe.queue_max_events,
        max_bytes: config.subscribe.queue_max_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(channels: &str) -> StreamQuery {
        StreamQuery {
            channels: Some(channels.into()),
            ..Default::default()
        }
    }

    #[test]
    fn parses_and_dedupes_channels() {
        let r = SubscribeRequest::parse(&q("logs:etl, logs:*:ws1,logs:etl,"), 32).unwrap();
        let names: Vec<&str> = r.patterns.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, ["logs:etl", "logs:*:ws1"]);
    }

    #[test]
    fn refuses_bad_requests() {
        assert!(matches!(
            SubscribeRequest::parse(&StreamQuery::default(), 32),
            Err(SubscribeError::MissingChannels)
        ));
        assert!(matches!(
            SubscribeRequest::parse(&q(" , "), 32),
            Err(SubscribeError::MissingChannels)
        ));
        let many = vec!["logs:a"; 33].join(",");
        assert!(matches!(
            SubscribeRequest::parse(&q(&many), 32),
            Err(SubscribeError::TooManyChannels {
                requested: 33,
                max: 32
            })
        ));
        assert!(matches!(
            SubscribeRequest::parse(&q("logs:etl:ws.1"), 32),
            Err(SubscribeError::InvalidChannel(_))
        ));
        let bad_level = StreamQuery {
            level: Some("loud".into()),
            ..q("logs:etl")
        };
        assert!(matches!(
            SubscribeRequest::parse(&bad_level, 32),
            Err(SubscribeError::InvalidLevel(_))
        ));
    }
}
