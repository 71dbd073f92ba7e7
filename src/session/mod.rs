//! Subscriber sessions: what SSE and WebSocket connections have in common.
//!
//! Owns the parsing of a subscribe request (channels, [`filter`]s), the
//! connection caps (total and per client address), and the
//! [`outbox::Outbox`] each session drains through its [`body`]. The
//! transports live beside it: [`sse`] and [`ws`] (one actor and one body
//! stream per client); [`socket`] lets a session reset a connection actix
//! would wait on. A session talks to the registry only through messages
//! (`Subscribe` when it starts, `SessionClosed` when it stops); the registry
//! talks to a session only by offering events to its outbox.

pub mod body;
pub mod filter;
pub mod outbox;
pub mod socket;
pub mod sse;
pub mod ws;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Deserialize;

use crate::auth::AuthError;
use crate::channel::{ChannelError, ChannelPattern};
use crate::config::Config;
use crate::event::Level;
use crate::http::error::{error_response, with_bearer_challenge};
use crate::limits::{AddressKey, AddressLimit};
use crate::metrics::{Metrics, label};
use filter::Filter;
use outbox::QueueLimits;

/// A session's response body was dropped: its client is gone.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct ClientGone;

/// Identifies one subscriber connection for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Sse,
    WebSocket,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::WebSocket => "websocket",
        }
    }
}

/// Why a subscription was refused before its stream started.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("missing channels: pass ?channels=logs:{{service}}[:{{workspace}}[:{{resource}}]],…")]
    MissingChannels,
    #[error("{requested} channels requested; at most {max} per connection")]
    TooManyChannels { requested: usize, max: usize },
    #[error(transparent)]
    InvalidChannel(#[from] ChannelError),
    #[error("unknown level {0:?}: use trace, debug, info, warn, error or fatal")]
    InvalidLevel(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error(
        "Last-Event-ID {0:?} is not an event id of this gateway (ids look like 019ab2c3d4e5-000000000042)"
    )]
    InvalidLastEventId(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("too many new connections from this address; retry in {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the gateway holds its maximum of {0} subscriber connections; retry later")]
    ConnectionLimit(usize),
    #[error("this address holds its maximum of {0} subscriber connections; close one first")]
    AddressConnectionLimit(usize),
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("origin {0:?} is not in ALLOWED_ORIGINS")]
    ForbiddenOrigin(String),
}

impl SubscribeError {
    pub fn code(&self) -> &'static str {
        match self {
            SubscribeError::MissingChannels => "missing_channels",
            SubscribeError::TooManyChannels { .. } => "too_many_channels",
            SubscribeError::InvalidChannel(_) => "invalid_channel",
            SubscribeError::InvalidLevel(_) => "invalid_level",
            SubscribeError::InvalidLastEventId(_) => "invalid_last_event_id",
            SubscribeError::InvalidParameter(_) => "invalid_query",
            SubscribeError::Auth(e) => e.code(),
            SubscribeError::RateLimited { .. } => "rate_limited",
            SubscribeError::ConnectionLimit(_) => "connection_limit",
            SubscribeError::AddressConnectionLimit(_) => "address_connection_limit",
            SubscribeError::ShuttingDown => "shutting_down",
            SubscribeError::ForbiddenOrigin(_) => "forbidden_origin",
        }
    }
}

impl ResponseError for SubscribeError {
    fn status_code(&self) -> StatusCode {
        match self {
            SubscribeError::ConnectionLimit(_) | SubscribeError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SubscribeError::Auth(e) => e.status(),
            SubscribeError::ForbiddenOrigin(_) => StatusCode::FORBIDDEN,
            SubscribeError::RateLimited { .. } | SubscribeError::AddressConnectionLimit(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let retry = match self {
            SubscribeError::ConnectionLimit(_)
            | SubscribeError::AddressConnectionLimit(_)
            | SubscribeError::ShuttingDown => Some(5),
            SubscribeError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let res = error_response(
            self.status_code(),
            self.code(),
            &self.to_string(),
            None,
            retry,
        );
        match self {
            SubscribeError::Auth(e) if self.status_code() == StatusCode::UNAUTHORIZED => {
                with_bearer_challenge(res, !matches!(e, AuthError::MissingToken))
            }
            _ => res,
        }
    }
}

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
        // Counted before anything is parsed: 10,000 channels cost nothing.
        if names.len() > max_channels {
            return Err(SubscribeError::TooManyChannels {
                requested: names.len(),
                max: max_channels,
            });
        }
        let mut patterns = Vec::with_capacity(names.len());
        for name in names {
            let p = ChannelPattern::parse(name)?;
            if !patterns.contains(&p) {
                patterns.push(p);
            }
        }
        let min_level = match query.level.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(l) => Some(
                Level::parse(l)
                    .ok_or_else(|| SubscribeError::InvalidLevel(l.chars().take(32).collect()))?,
            ),
        };
        let q = query.q.as_deref();
        if let Some(q) = q
            && q.len() > filter::MAX_QUERY_BYTES
        {
            return Err(SubscribeError::InvalidParameter(format!(
                "q is {} bytes; at most {} are accepted",
                q.len(),
                filter::MAX_QUERY_BYTES
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
/// cover every requested channel: the one gate of streams and history.
pub fn authorize(
    req: &actix_web::HttpRequest,
    query_token: Option<&str>,
    request: &SubscribeRequest,
    state: &crate::http::AppState,
) -> Result<crate::auth::Credential, SubscribeError> {
    let token = crate::auth::presented_token(
        header(req, "authorization"),
        query_token,
        header(req, "cookie"),
        state.subscriber_auth.accepts_cookie(),
    );
    let credential = state.subscriber_auth.authenticate(token)?;
    credential.grants.check(&request.patterns)?;
    Ok(credential)
}

/// Applies a per-address rate limit, counting a refusal. Checked before
/// any signature, so a flood of bad tokens costs no crypto.
pub fn check_address_limit(
    state: &crate::http::AppState,
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
) -> Result<Option<crate::event::EventId>, SubscribeError> {
    match header.or(query).map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| SubscribeError::InvalidLastEventId(text.chars().take(64).collect())),
    }
}

/// Expiry timers further out than this are not armed (tokio's timer wheel
/// tops out near two years, and a token valid that long is as good as
/// permanent).
const MAX_EXPIRY_TIMER: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// What every session actor owns, whatever its transport: its id, its
/// outbox, its registration, and the expiry of its credential.
pub struct SessionCore {
    pub id: SessionId,
    pub outbox: Arc<outbox::Outbox>,
    pub registry: actix::Addr<crate::registry::Registry>,
    /// Counts live session actors, so a leak shows in `/health`.
    alive: prometheus::IntGauge,
    /// The stream ends then, so a token stops granting access when it says.
    expires_at: Option<std::time::SystemTime>,
    /// For the close log line.
    opened: std::time::Instant,
    transport: Transport,
}

impl SessionCore {
    /// Call from `Actor::started`: counts the actor and arms the expiry,
    /// which ends the stream with `expired` (the transport's wording).
    pub fn started<A>(&self, ctx: &mut actix::Context<A>, expired: bytes::Bytes)
    where
        A: actix::Actor<Context = actix::Context<A>>,
    {
        use actix::AsyncContext;
        self.alive.inc();
        if let Some(at) = self.expires_at {
            let left = at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            if left < MAX_EXPIRY_TIMER {
                let outbox = Arc::clone(&self.outbox);
                ctx.run_later(left, move |_, _| outbox.close_with(Some(expired)));
            }
        }
    }

    /// Call from `Actor::stopping`: closes the outbox and deregisters.
    pub fn stopping(&self) {
        tracing::info!(
            session = %self.id,
            transport = self.transport.as_str(),
            seconds = self.opened.elapsed().as_secs(),
            "connection closed"
        );
        self.outbox.close_with(None);
        // One message per session, bounded by the connection cap.
        self.registry
            .do_send(crate::registry::SessionClosed { session: self.id });
    }

    /// Call from `Actor::stopped`.
    pub fn stopped(&self) {
        self.alive.dec();
    }
}

/// A subscriber admitted and registered, its stream not yet started.
pub struct Opened {
    pub core: SessionCore,
    pub slot: ConnectionGuard,
    pub request: SubscribeRequest,
    pub grants: crate::auth::Grants,
}

/// The gate of every stream, SSE or WebSocket: parses the request, applies
/// the connection rate limit (before any signature is checked), authorises,
/// takes a connection slot, queues the transport's `ready` frame, and
/// registers with the registry, replaying history first when resuming.
pub async fn open(
    req: &actix_web::HttpRequest,
    query: &StreamQuery,
    state: &crate::http::AppState,
    transport: Transport,
    ready: impl FnOnce(SessionId, &SubscribeRequest) -> bytes::Bytes,
) -> Result<Opened, SubscribeError> {
    let result = open_inner(req, query, state, transport, ready).await;
    if let Err(e) = &result {
        tracing::info!(
            transport = transport.as_str(),
            client = ?crate::http::client_ip(req, state.config.server.trust_proxy),
            code = e.code(),
            "subscription refused"
        );
    }
    result
}

async fn open_inner(
    req: &actix_web::HttpRequest,
    query: &StreamQuery,
    state: &crate::http::AppState,
    transport: Transport,
    ready: impl FnOnce(SessionId, &SubscribeRequest) -> bytes::Bytes,
) -> Result<Opened, SubscribeError> {
    let request = SubscribeRequest::parse(query, state.config.subscribe.max_channels)?;
    if state.is_shutting_down() {
        return Err(SubscribeError::ShuttingDown);
    }
    let client = crate::http::client_ip(req, state.config.server.trust_proxy);
    check_address_limit(state, AddressLimit::Connect, client)?;
    let credential = authorize(req, query.token.as_deref(), &request, state)?;
    let resume = resume_point(header(req, "last-event-id"), query.last_event_id.as_deref())?;
    let slot = state.connections.try_acquire(transport, client)?;
    let id = state.next_session_id();
    let outbox = Arc::new(outbox::Outbox::new(
        queue_limits(&state.config),
        request.filter.clone(),
    ));
    outbox.push_control(ready(id, &request));
    state
        .registry
        .send(crate::registry::Subscribe {
            session: id,
            transport,
            outbox: Arc::clone(&outbox),
            patterns: request.patterns.clone(),
            resume,
        })
        .await
        .map_err(|_| SubscribeError::ShuttingDown)?
        .map_err(|_| SubscribeError::ShuttingDown)?;
    tracing::info!(session = %id, client = ?client, transport = transport.as_str(), channels = request.patterns.len(), resume = resume.is_some(), "connection opened");
    Ok(Opened {
        core: SessionCore {
            id,
            outbox,
            registry: state.registry.clone(),
            alive: state.metrics.session_actors.clone(),
            expires_at: credential.expires_at,
            opened: std::time::Instant::now(),
            transport,
        },
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

/// Counts subscriber connections against `MAX_CONNECTIONS`, and those of
/// each client address against `MAX_CONNECTIONS_PER_IP`, so one address
/// cannot take every slot. A slot is held by a [`ConnectionGuard`] and
/// freed the moment the guard drops, which is when the client's stream is
/// dropped. The per-address table holds only addresses with a connection
/// open, so it is bounded by `MAX_CONNECTIONS`.
#[derive(Debug)]
pub struct Connections {
    open: AtomicUsize,
    max: usize,
    /// 0: no per-address cap.
    max_per_address: usize,
    per_address: Mutex<HashMap<AddressKey, usize>>,
    metrics: Arc<Metrics>,
}

impl Connections {
    pub fn new(max: usize, max_per_address: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Connections {
            open: AtomicUsize::new(0),
            max,
            max_per_address,
            per_address: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    fn per_address(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, usize>> {
        // Plain counts: a panic elsewhere cannot leave them inconsistent
        // with anything but themselves.
        self.per_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reject(&self, reason: &str) {
        self.metrics
            .connections_rejected
            .with_label_values(&[reason])
            .inc();
    }

    pub fn try_acquire(
        self: &Arc<Self>,
        transport: Transport,
        client: Option<IpAddr>,
    ) -> Result<ConnectionGuard, SubscribeError> {
        let address = client
            .map(AddressKey::from)
            .filter(|_| self.max_per_address > 0);
        let mut table = address.map(|_| self.per_address());
        if let (Some(key), Some(table)) = (&address, &table)
            && table.get(key).is_some_and(|n| *n >= self.max_per_address)
        {
            self.reject(label::rejected::PER_ADDRESS_LIMIT);
            return Err(SubscribeError::AddressConnectionLimit(self.max_per_address));
        }
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        if taken.is_err() {
            self.reject(label::rejected::CONNECTION_LIMIT);
            return Err(SubscribeError::ConnectionLimit(self.max));
        }
        if let (Some(key), Some(table)) = (address, table.as_mut()) {
            *table.entry(key).or_default() += 1;
        }
        drop(table);
        self.metrics
            .connections
            .with_label_values(&[transport.as_str()])
            .inc();
        Ok(ConnectionGuard {
            owner: Arc::clone(self),
            transport,
            address,
        })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
pub struct ConnectionGuard {
    owner: Arc<Connections>,
    transport: Transport,
    address: Option<AddressKey>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(key) = &self.address {
            let mut table = self.owner.per_address();
            if let Some(n) = table.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    table.remove(key);
                }
            }
        }
        self.owner.open.fetch_sub(1, Ordering::AcqRel);
        self.owner
            .metrics
            .connections
            .with_label_values(&[self.transport.as_str()])
            .dec();
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

    #[test]
    fn connection_cap_frees_on_drop() {
        let c = Connections::new(2, 0, Arc::new(Metrics::new(["etl"], &[])));
        let a = c.try_acquire(Transport::Sse, None).unwrap();
        let _b = c.try_acquire(Transport::Sse, None).unwrap();
        assert!(c.try_acquire(Transport::Sse, None).is_err());
        drop(a);
        assert!(c.try_acquire(Transport::Sse, None).is_ok());
    }

    #[test]
    fn per_address_cap_leaves_room_for_others_and_forgets_idle_addresses() {
        let c = Connections::new(10, 2, Arc::new(Metrics::new(["etl"], &[])));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = c.try_acquire(Transport::Sse, Some(a)).unwrap();
        let _a2 = c.try_acquire(Transport::WebSocket, Some(a)).unwrap();
        assert!(matches!(
            c.try_acquire(Transport::Sse, Some(a)),
            Err(SubscribeError::AddressConnectionLimit(2))
        ));
        assert_eq!(c.open(), 2, "a refusal takes no slot");
        let _b1 = c.try_acquire(Transport::Sse, Some(b)).unwrap();
        drop(a1);
        assert!(c.try_acquire(Transport::Sse, Some(a)).is_ok());
        drop(_b1);
        assert!(!c.per_address().contains_key(&AddressKey::from(b)));
    }
}
