//! The WebSocket transport: `GET /api/logs/ws`. Everything WebSocket-specific
//! lives in this file, so a move from actix-web-actors to actix-ws is a
//! one-file change.
//!
//! Same gate as SSE (`session::open`: channels, auth, grants, resume with
//! `lastEventId`, limits), then actix-web-actors' handshake. Outgoing frames
//! do *not* go through actix-web-actors' `WebsocketContext`, whose write
//! buffer has no bound: the response body is the shared [`OutboxBody`], so
//! a slow WebSocket client loses its oldest events and is told (`lag`),
//! exactly like an SSE one. Incoming frames are decoded from the request
//! payload with actix-http's codec and handled by the [`WsSession`] actor:
//! `subscribe` / `unsubscribe` messages (answered with the resulting set or
//! an `error` frame), ping/pong, close. A ping goes out every keepalive
//! interval; a peer silent for three intervals is closed as dead.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, ProtocolError};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use serde::Deserialize;

use super::body::OutboxBody;
use super::outbox::Push;
use super::{
    ClientGone, SessionCore, SessionId, StreamQuery, SubscribeError, SubscribeRequest, Transport,
};
use crate::auth::Grants;
use crate::channel::ChannelPattern;
use crate::event::{ws_frame_with_opcode, ws_text_frame};
use crate::http::AppState;
use crate::metrics::label;
use crate::registry::Subscribe;

/// Largest frame a client may send; subscribe messages are small. A frame
/// that *declares* more is refused from its header, before its payload is
/// read.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// A peer that sends nothing (not even a pong) for this many keepalive
/// intervals is closed as dead.
const DEAD_PEER_INTERVALS: u32 = 3;
/// How long a client closed by the gateway has to take its close frame and
/// hang up before the connection is dropped.
const ABORT_GRACE: Duration = Duration::from_secs(2);
/// Longest excerpt of client input an error reply quotes.
const MAX_ECHO_CHARS: usize = 32;

const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close codes (RFC 6455 §7.4.1) loggate sends, and why.
pub mod close {
    /// The client said goodbye; so do we.
    pub const NORMAL: u16 = 1000;
    /// Shutdown, or a peer that stopped answering pings.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame the codec could not read.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The token expired, or the client queued more replies than it read.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A frame declared more than [`super::MAX_CLIENT_FRAME`] bytes.
    pub const TOO_BIG: u16 = 1009;
}

fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    ws_frame_with_opcode(OP_CLOSE, &payload)
}

fn json_frame(value: serde_json::Value) -> Bytes {
    ws_text_frame(value.to_string().as_bytes())
}

/// What ends every WebSocket on graceful shutdown: a notice, then close
/// 1001 (going away).
pub fn shutdown_frame() -> Bytes {
    let mut b = BytesMut::new();
    b.extend_from_slice(&json_frame(
        serde_json::json!({"type": "shutdown", "reason": "server shutting down"}),
    ));
    b.extend_from_slice(&close_frame(close::GOING_AWAY, "server shutting down"));
    b.freeze()
}

fn expired_frame() -> Bytes {
    let mut b = BytesMut::new();
    b.extend_from_slice(&json_frame(
        serde_json::json!({"type": "expired", "reason": "token expired"}),
    ));
    b.extend_from_slice(&close_frame(close::POLICY_VIOLATION, "token expired"));
    b.freeze()
}

fn error_frame(code: &str, message: &str) -> Bytes {
    json_frame(serde_json::json!({"type": "error", "code": code, "message": message}))
}

/// A message a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Subscribe { channels: Vec<String> },
    Unsubscribe { channels: Vec<String> },
}

/// Why a client message was refused. The wording quotes at most a short,
/// truncated excerpt of what the client sent, and never the parser's own
/// diagnostics (which name Rust types and echo input in full).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientMessageError {
    #[error(
        "not JSON (column {column}): send {{\"type\":\"subscribe\"|\"unsubscribe\",\"channels\":[…]}}"
    )]
    NotJson { column: usize },
    #[error("unknown message type {0:?}: use subscribe or unsubscribe")]
    UnknownType(String),
    #[error(
        "expected {{\"type\":\"subscribe\"|\"unsubscribe\",\"channels\":[\"logs:…\"]}} and no other fields"
    )]
    WrongShape,
}

/// The fields of a client message, read before its type is known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    channels: Vec<String>,
}

/// Truncates client text that an error reply quotes.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Decodes one text frame of a client.
pub fn decode_client_message(text: &[u8]) -> Result<ClientMessage, ClientMessageError> {
    let raw: RawClientMessage<'_> = serde_json::from_slice(text).map_err(|e| {
        if e.is_data() {
            ClientMessageError::WrongShape
        } else {
            ClientMessageError::NotJson { column: e.column() }
        }
    })?;
    match raw.kind.as_ref() {
        "subscribe" => Ok(ClientMessage::Subscribe {
            channels: raw.channels,
        }),
        "unsubscribe" => Ok(ClientMessage::Unsubscribe {
            channels: raw.channels,
        }),
        other => Err(ClientMessageError::UnknownType(excerpt(other))),
    }
}

/// The payload length a frame header declares, once its header is in
/// `buf` (RFC 6455 §5.2: 7 bits, or 16 or 64 more after 126 or 127).
pub fn declared_payload_len(buf: &[u8]) -> Option<u64> {
    let len7 = buf.get(1)? & 0x7F;
    match len7 {
        126 => Some(u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]))),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            Some(u64::from_be_bytes(bytes))
        }
        n => Some(u64::from(n)),
    }
}

/// Client frames decoded from the request payload. Bounded: a frame may
/// declare at most [`MAX_CLIENT_FRAME`] bytes, so the buffer holds at most
/// one frame plus one read. After an error nothing more is read: the
/// payload is held unread, so actix stops reading the socket too (dropping
/// it would make actix read and discard whatever the client keeps sending).
pub struct ClientFrames {
    payload: web::Payload,
    codec: Codec,
    buf: BytesMut,
    done: bool,
    failed: bool,
}

impl ClientFrames {
    fn new(payload: web::Payload) -> Self {
        ClientFrames {
            payload,
            codec: Codec::new().max_size(MAX_CLIENT_FRAME),
            buf: BytesMut::new(),
            done: false,
            failed: false,
        }
    }

    fn fail(&mut self, e: ProtocolError) -> Poll<Option<Result<Frame, ProtocolError>>> {
        self.failed = true;
        self.buf = BytesMut::new();
        Poll::Ready(Some(Err(e)))
    }
}

/// The upgrade answer, or a 400 for a request that is not a handshake.
fn handshake(req: &HttpRequest) -> Result<actix_web::HttpResponseBuilder, SubscribeError> {
    actix_web_actors::ws::handshake(req)
        .map_err(|e| SubscribeError::InvalidParameter(format!("not a WebSocket handshake: {e}")))
}

/// Refuses a browser page from an origin outside `ALLOWED_ORIGINS`: with
/// cookie auth, any site could otherwise open a WebSocket with a visitor's
/// cookie (cross-site WebSocket hijacking; browsers apply no CORS to
/// WebSockets). No `Origin` header means no browser, and a page served by
/// the gateway itself (same host) is always allowed.
pub fn check_origin(
    req: &HttpRequest,
    auth: &crate::config::AuthConfig,
) -> Result<(), SubscribeError> {
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    if auth.any_origin()
        || auth
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let host = origin.split_once("://").map(|(_, h)| h);
    let own = req.headers().get(actix_web::http::header::HOST);
    if let (Some(host), Some(own)) = (host, own)
        && own.as_bytes().eq_ignore_ascii_case(host.as_bytes())
    {
        return Ok(());
    }
    Err(SubscribeError::ForbiddenOrigin(excerpt(origin)))
}

impl Stream for ClientFrames {
    type Item = Result<Frame, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Pending;
            }
            if declared_payload_len(&this.buf).is_some_and(|n| n > MAX_CLIENT_FRAME as u64) {
                return this.fail(ProtocolError::Overflow);
            }
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Err(e) => return this.fail(e),
                Ok(None) if this.done => return Poll::Ready(None),
                Ok(None) => {}
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.buf.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(e))) => {
                    return this.fail(ProtocolError::Io(std::io::Error::other(e.to_string())));
                }
                Poll::Ready(None) => this.done = true,
            }
        }
    }
}

/// The session actor of one WebSocket client.
pub struct WsSession {
    core: SessionCore,
    grants: Grants,
    patterns: Vec<ChannelPattern>,
    max_channels: usize,
    keepalive: Duration,
    last_heard: Instant,
    /// A ping is out and unanswered: do not queue another behind it.
    ping_outstanding: bool,
    disconnects: prometheus::IntCounterVec,
    /// To reset a client that does not take its close frame after an abort.
    socket: Option<super::socket::SocketHandle>,
}

impl WsSession {
    /// Queues a reply to the client; a client that makes the gateway queue
    /// more replies than it reads is closed.
    fn reply(&mut self, frame: Bytes, ctx: &mut Context<Self>) {
        if self.core.outbox.push_control(frame) == Push::Overflow {
            self.abort(
                close::POLICY_VIOLATION,
                "too many unread replies",
                label::disconnect::CONTROL_OVERFLOW,
                ctx,
            );
        }
    }

    /// Ends the session now: what is queued is dropped, the close frame
    /// goes out, and the connection is dropped if the client has not hung
    /// up within [`ABORT_GRACE`]. Counted by `reason`.
    fn abort(&mut self, code: u16, text: &str, reason: &str, ctx: &mut Context<Self>) {
        if self.core.outbox.abort(close_frame(code, text)) {
            self.disconnects.with_label_values(&[reason]).inc();
            tracing::info!(session = %self.core.id, code, reason, "closing websocket");
            ctx.run_later(ABORT_GRACE, |act, _| {
                act.core.outbox.kill();
                if let Some(socket) = &act.socket {
                    socket.reset();
                }
            });
        }
    }

    /// The set a subscribe/unsubscribe would leave, checked under the same
    /// rules as the query: valid patterns, covered by the grants, at most
    /// `max_channels`.
    fn next_set(&self, msg: &ClientMessage) -> Result<Vec<ChannelPattern>, (&'static str, String)> {
        let (channels, adding) = match msg {
            ClientMessage::Subscribe { channels } => (channels, true),
            ClientMessage::Unsubscribe { channels } => (channels, false),
        };
        if channels.len() > self.max_channels {
            return Err((
                "too_many_channels",
                format!("at most {} channels", self.max_channels),
            ));
        }
        let mut parsed = Vec::with_capacity(channels.len());
        for c in channels {
            let p = ChannelPattern::parse(c).map_err(|e| ("invalid_channel", e.to_string()))?;
            if adding && !self.grants.allows(&p) {
                return Err((
                    "forbidden_channel",
                    format!("channel {:?} is not granted by this token", p.as_str()),
                ));
            }
            parsed.push(p);
        }
        let mut set = self.patterns.clone();
        if adding {
            for p in parsed {
                if !set.contains(&p) {
                    set.push(p);
                }
            }
            if set.len() > self.max_channels {
                return Err((
                    "too_many_channels",
                    format!("at most {} channels per connection", self.max_channels),
                ));
            }
        } else {
            set.retain(|p| !parsed.contains(p));
        }
        Ok(set)
    }

    fn on_text(&mut self, text: &[u8], ctx: &mut Context<Self>) {
        let msg = match decode_client_message(text) {
            Ok(m) => m,
            Err(e) => {
                self.reply(error_frame("invalid_message", &e.to_string()), ctx);
                return;
            }
        };
        let set = match self.next_set(&msg) {
            Ok(set) => set,
            Err((code, message)) => {
                self.reply(error_frame(code, &message), ctx);
                return;
            }
        };
        let answer = match msg {
            ClientMessage::Subscribe { .. } => "subscribed",
            ClientMessage::Unsubscribe { .. } => "unsubscribed",
        };
        let request = self.core.registry.send(Subscribe {
            session: self.core.id,
            transport: Transport::WebSocket,
            outbox: self.core.outbox.clone(),
            patterns: set.clone(),
            resume: None,
        });
        // `wait`: later client messages are handled only after this one is
        // registered and answered, so answers keep the clients' order.
        ctx.wait(
            request
                .into_actor(self)
                .map(move |res, act, ctx| match res {
                    Ok(Ok(())) => {
                        let channels: Vec<&str> = set.iter().map(|p| p.as_str()).collect();
                        act.reply(
                            json_frame(serde_json::json!({"type": answer, "channels": channels})),
                            ctx,
                        );
                        act.patterns = set;
                    }
                    _ => act.reply(
                        error_frame("shutting_down", "the gateway is shutting down"),
                        ctx,
                    ),
                }),
        );
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core.started(ctx, expired_frame());
        ctx.run_interval(self.keepalive, |act, ctx| {
            if act.last_heard.elapsed() > act.keepalive * DEAD_PEER_INTERVALS {
                act.abort(
                    close::GOING_AWAY,
                    "no answer to pings",
                    label::disconnect::DEAD_PEER,
                    ctx,
                );
                return;
            }
            if !act.ping_outstanding {
                act.ping_outstanding = true;
                act.reply(ws_frame_with_opcode(OP_PING, b"loggate"), ctx);
            }
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.core.stopping();
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.core.stopped();
    }
}

impl StreamHandler<Result<Frame, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<Frame, ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(Frame::Text(text)) => self.on_text(&text, ctx),
            Ok(Frame::Ping(payload)) => {
                self.core
                    .outbox
                    .set_pong(ws_frame_with_opcode(OP_PONG, &payload));
            }
            Ok(Frame::Pong(_)) => self.ping_outstanding = false,
            Ok(Frame::Close(_)) => self
                .core
                .outbox
                .close_with(Some(close_frame(close::NORMAL, "bye"))),
            Ok(Frame::Binary(_) | Frame::Continuation(_)) => {
                self.reply(
                    error_frame(
                        "invalid_message",
                        "send subscribe/unsubscribe as single text frames",
                    ),
                    ctx,
                );
            }
            Err(ProtocolError::Overflow) => self.abort(
                close::TOO_BIG,
                "frame too large",
                label::disconnect::FRAME_TOO_LARGE,
                ctx,
            ),
            Err(e) => {
                tracing::debug!(session = %self.core.id, error = %e, "websocket protocol error");
                self.abort(
                    close::PROTOCOL_ERROR,
                    "protocol error",
                    label::disconnect::PROTOCOL_ERROR,
                    ctx,
                );
            }
        }
    }

    /// The client's side of the connection ended; the body ends with it.
    fn finished(&mut self, _: &mut Self::Context) {}
}

impl Handler<ClientGone> for WsSession {
    type Result = ();

    fn handle(&mut self, _: ClientGone, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// `GET /api/logs/ws`.
pub async fn websocket(
    req: HttpRequest,
    query: web::Query<StreamQuery>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, SubscribeError> {
    // Invalid channels are a 400 before the upgrade, as is a request that
    // is not a WebSocket handshake at all.
    SubscribeRequest::parse(&query, state.config.subscribe.max_channels)?;
    check_origin(&req, &state.config.auth)?;
    let mut response = handshake(&req)?;
    let opened = super::open(&req, &query, &state, Transport::WebSocket, ready_frame).await?;
    let outbox = opened.core.outbox.clone();
    let frames = ClientFrames::new(payload);
    let session = WsSession::create(|ctx| {
        ctx.add_stream(frames);
        WsSession {
            core: opened.core,
            grants: opened.grants,
            patterns: opened.request.patterns,
            max_channels: state.config.subscribe.max_channels,
            keepalive: state.config.keepalive(),
            last_heard: Instant::now(),
            ping_outstanding: false,
            disconnects: state.metrics.disconnects.clone(),
            socket: super::socket::SocketHandle::of(&req),
        }
    });
    let body = OutboxBody::new(
        outbox,
        Transport::WebSocket,
        session.recipient(),
        &state.metrics,
        opened.slot,
    );
    Ok(response.streaming(body))
}

/// How often `/metrics/ws` pushes a snapshot.
const METRICS_PUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The session of one `/metrics/ws` dashboard.
pub struct MetricsSession {
    outbox: std::sync::Arc<super::outbox::Outbox>,
    state: web::Data<AppState>,
}

impl Actor for MetricsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(METRICS_PUSH_INTERVAL, |act, _| {
            // Only when idle: a dashboard that stopped reading gets no pile
            // of stale snapshots, just the next one when it reads again.
            act.outbox
                .push_control_if_idle(json_frame(metrics_snapshot(&act.state)));
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.outbox.close_with(None);
        Running::Stop
    }
}

impl StreamHandler<Result<Frame, ProtocolError>> for MetricsSession {
    fn handle(&mut self, item: Result<Frame, ProtocolError>, _: &mut Self::Context) {
        match item {
            Ok(Frame::Ping(payload)) => {
                self.outbox
                    .set_pong(ws_frame_with_opcode(OP_PONG, &payload));
            }
            Ok(Frame::Close(_)) | Err(_) => self.outbox.close_with(Some(close_frame(1000, "bye"))),
            Ok(_) => {}
        }
    }

    fn finished(&mut self, _: &mut Self::Context) {}
}

impl Handler<ClientGone> for MetricsSession {
    type Result = ();

    fn handle(&mut self, _: ClientGone, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// A JSON snapshot of the gateway's metrics for live dashboards, read from
/// the same counters `/metrics` exposes.
fn metrics_snapshot(state: &AppState) -> serde_json::Value {
    let m = &state.metrics;
    let sum = |v: &prometheus::IntCounterVec| -> u64 {
        use prometheus::core::Collector;
        v.collect()
            .iter()
            .flat_map(|f| {
                f.get_metric()
                    .iter()
                    .map(|m| m.get_counter().get_value() as u64)
            })
            .sum()
    };
    let conn = |t: &str| m.connections.with_label_values(&[t]).get();
    serde_json::json!({
        "type": "metrics",
        "uptime_seconds": state.started.elapsed().as_secs(),
        "connections": {"sse": conn("sse"), "websocket": conn("websocket"), "total": state.connections.open()},
        "events_published": sum(&m.events_published),
        "events_delivered": sum(&m.events_delivered),
        "events_dropped": sum(&m.events_dropped),
        "publish_rejected": sum(&m.publish_rejected),
        "rate_limited": sum(&m.rate_limited),
        "subscriptions": m.subscriptions.get(),
        "history": {
            "events": m.history_events.get(),
            "bytes": m.history_bytes.get(),
            "channels": m.history_channels.get(),
        },
        "nats": crate::http::health::nats_json(state),
    })
}

/// `GET /metrics/ws` (admin token): a JSON metrics snapshot every second.
pub async fn metrics_websocket(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    crate::http::admin::check_admin(&req, &state)?;
    check_origin(&req, &state.config.auth)?;
    let mut response = handshake(&req)?;
    // A dashboard holds a connection like any subscriber.
    let client = crate::http::client_ip(&req, state.config.server.trust_proxy);
    let slot = state
        .connections
        .try_acquire(Transport::WebSocket, client)?;
    let outbox = std::sync::Arc::new(super::outbox::Outbox::new(
        super::outbox::QueueLimits {
            max_events: 1,
            max_bytes: 1 << 20,
        },
        super::filter::Filter::default(),
    ));
    outbox.push_control_if_idle(json_frame(metrics_snapshot(&state)));
    let frames = ClientFrames::new(payload);
    let session = MetricsSession::create(|ctx| {
        ctx.add_stream(frames);
        MetricsSession {
            outbox: outbox.clone(),
            state: state.clone(),
        }
    });
    let body = OutboxBody::new(
        outbox,
        Transport::WebSocket,
        session.recipient(),
        &state.metrics,
        slot,
    );
    Ok(response.streaming(body))
}

fn ready_frame(id: SessionId, request: &SubscribeRequest) -> Bytes {
    let channels: Vec<&str> = request.patterns.iter().map(|p| p.as_str()).collect();
    json_frame(serde_json::json!({
        "type": "ready",
        "connection_id": id.to_string(),
        "channels": channels,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_codec::Decoder;

    /// Frames built by hand here decode with actix-http's own client codec.
    #[test]
    fn frames_decode_with_a_standard_codec() {
        let mut client = Codec::new().client_mode().max_size(1 << 20);
        for size in [0usize, 5, 125, 126, 65_535, 65_536, 200_000] {
            let payload = "x".repeat(size);
            let mut buf = BytesMut::from(&ws_text_frame(payload.as_bytes())[..]);
            match client.decode(&mut buf).unwrap() {
                Some(Frame::Text(t)) => assert_eq!(t.len(), size),
                other => panic!("{size}: {other:?}"),
            }
        }
        let mut buf = BytesMut::from(&close_frame(1001, "bye")[..]);
        match client.decode(&mut buf).unwrap() {
            Some(Frame::Close(Some(reason))) => {
                assert_eq!(u16::from(reason.code), 1001);
                assert_eq!(reason.description.as_deref(), Some("bye"));
            }
            other => panic!("{other:?}"),
        }
    }
}
