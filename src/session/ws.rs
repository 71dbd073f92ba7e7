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
use super::{
    ClientGone, SessionCore, SessionId, StreamQuery, SubscribeError, SubscribeRequest, Transport,
};
use crate::auth::Grants;
use crate::channel::ChannelPattern;
use crate::event::{ws_frame_with_opcode, ws_text_frame};
use crate::http::AppState;
use crate::registry::Subscribe;

/// Largest frame a client may send; subscribe messages are small.
const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// A peer that sends nothing (not even a pong) for this many keepalive
/// intervals is closed as dead.
const DEAD_PEER_INTERVALS: u32 = 3;

const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

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
    b.extend_from_slice(&close_frame(1001, "server shutting down"));
    b.freeze()
}

fn expired_frame() -> Bytes {
    let mut b = BytesMut::new();
    b.extend_from_slice(&json_frame(
        serde_json::json!({"type": "expired", "reason": "token expired"}),
    ));
    b.extend_from_slice(&close_frame(1008, "token expired"));
    b.freeze()
}

fn error_frame(code: &str, message: &str) -> Bytes {
    json_frame(serde_json::json!({"type": "error", "code": code, "message": message}))
}

/// Messages a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ClientMessage {
    Subscribe { channels: Vec<String> },
    Unsubscribe { channels: Vec<String> },
}

/// Client frames decoded from the request payload.
struct ClientFrames {
    payload: web::Payload,
    codec: Codec,
    buf: BytesMut,
    done: bool,
}

impl ClientFrames {
    fn new(payload: web::Payload) -> Self {
        ClientFrames {
            payload,
            codec: Codec::new().max_size(MAX_CLIENT_FRAME),
            buf: BytesMut::new(),
            done: false,
        }
    }
}

/// The upgrade answer, or a 400 for a request that is not a handshake.
fn handshake(req: &HttpRequest) -> Result<actix_web::HttpResponseBuilder, SubscribeError> {
    actix_web_actors::ws::handshake(req)
        .map_err(|e| SubscribeError::InvalidParameter(format!("not a WebSocket handshake: {e}")))
}

impl Stream for ClientFrames {
    type Item = Result<Frame, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Err(e) => return Poll::Ready(Some(Err(e))),
                Ok(None) if this.done => return Poll::Ready(None),
                Ok(None) => {}
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.buf.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(ProtocolError::Io(std::io::Error::other(
                        e.to_string(),
                    )))));
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
}

impl WsSession {
    fn push(&self, frame: Bytes) {
        self.core.outbox.push_control(frame);
    }

    fn close(&mut self, code: u16, reason: &str) {
        self.core.outbox.close_with(Some(close_frame(code, reason)));
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
        let msg: ClientMessage = match serde_json::from_slice(text) {
            Ok(m) => m,
            Err(e) => {
                self.push(error_frame(
                    "invalid_message",
                    &format!(
                        "expected {{\"type\":\"subscribe\"|\"unsubscribe\",\"channels\":[…]}}: {e}"
                    ),
                ));
                return;
            }
        };
        let set = match self.next_set(&msg) {
            Ok(set) => set,
            Err((code, message)) => {
                self.push(error_frame(code, &message));
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
        ctx.wait(request.into_actor(self).map(move |res, act, _| match res {
            Ok(Ok(())) => {
                let channels: Vec<&str> = set.iter().map(|p| p.as_str()).collect();
                act.push(json_frame(
                    serde_json::json!({"type": answer, "channels": channels}),
                ));
                act.patterns = set;
            }
            _ => act.push(error_frame("shutting_down", "the gateway is shutting down")),
        }));
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core.started(ctx, expired_frame());
        ctx.run_interval(self.keepalive, |act, _| {
            if act.last_heard.elapsed() > act.keepalive * DEAD_PEER_INTERVALS {
                act.close(1001, "no answer to pings");
                return;
            }
            if !act.ping_outstanding {
                act.ping_outstanding = true;
                act.push(ws_frame_with_opcode(OP_PING, b"loggate"));
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
            Ok(Frame::Ping(payload)) => self.push(ws_frame_with_opcode(OP_PONG, &payload)),
            Ok(Frame::Pong(_)) => self.ping_outstanding = false,
            Ok(Frame::Close(_)) => self.close(1000, "bye"),
            Ok(Frame::Binary(_) | Frame::Continuation(_)) => {
                self.push(error_frame(
                    "invalid_message",
                    "send subscribe/unsubscribe as single text frames",
                ));
            }
            Err(e) => {
                tracing::debug!(session = %self.core.id, error = %e, "websocket protocol error");
                self.close(1002, "protocol error");
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
                    .push_control(ws_frame_with_opcode(OP_PONG, &payload));
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
    let mut response = handshake(&req)?;
    // A dashboard holds a connection like any subscriber.
    let slot = state.connections.try_acquire(Transport::WebSocket)?;
    let outbox = std::sync::Arc::new(super::outbox::Outbox::new(
        super::outbox::QueueLimits {
            max_events: 1,
            max_bytes: 1 << 20,
        },
        super::outbox::Filter::default(),
    ));
    outbox.push_control(json_frame(metrics_snapshot(&state)));
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
