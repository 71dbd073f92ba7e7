//! The WebSocket transport: `GET /api/logs/ws`. Everything that depends on
//! actix-web-actors lives in this file and `ws_inbound.rs`, so a move to
//! actix-ws stays small.
//!
//! Same gate as SSE (`session::gate`: channels, auth, grants, resume with
//! `lastEventId`, limits), then actix-web-actors' handshake; what clients
//! send is read by [`super::ws_inbound`]. Outgoing frames
//! do *not* go through actix-web-actors' `WebsocketContext`, whose write
//! buffer has no bound: the response body is the shared [`OutboxBody`], so
//! a slow WebSocket client loses its oldest events and is told (`lag`),
//! exactly like an SSE one. Incoming frames are decoded from the request
//! payload with actix-http's codec and handled by the [`WsSession`] actor:
//! `subscribe` / `unsubscribe` messages (answered with the resulting set or
//! an `error` frame), ping/pong, close. A ping goes out every keepalive
//! interval; a peer silent for three intervals is closed as dead.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{Frame, ProtocolError};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use super::gate::{StreamQuery, SubscribeRequest, parse_patterns};
use super::writer::OutboxBody;
use super::ws_inbound::{
    ClientFrames, ClientMessage, check_origin, decode_client_message, handshake,
};
use super::{ClientGone, SessionCore, SubscribeError};
use crate::auth::Grants;
use crate::channel::ChannelPattern;
use crate::delivery::disconnect::Disconnect;
use crate::delivery::framing::{Framing, close, close_frame, json_frame};
use crate::delivery::outbox::Push;
use crate::event::ws_frame::{opcode, ws_frame_with_opcode};
use crate::registry::Subscribe;
use crate::state::AppState;

/// A peer that sends nothing (not even a pong) for this many keepalive
/// intervals is closed as dead.
const DEAD_PEER_INTERVALS: u32 = 3;
/// How long a client closed by the gateway has to take its close frame and
/// hang up before the connection is dropped.
const ABORT_GRACE: Duration = Duration::from_secs(2);

fn error_frame(code: &str, message: &str) -> Bytes {
    json_frame(serde_json::json!({"type": "error", "code": code, "message": message}))
}

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
            self.abort(Disconnect::ControlOverflow, ctx);
        }
    }

    /// Ends the session now: what is queued is dropped, the close frame
    /// goes out, and the connection is dropped if the client has not hung
    /// up within [`ABORT_GRACE`]. Counted by its reason.
    fn abort(&mut self, why: Disconnect, ctx: &mut Context<Self>) {
        let (code, text) = why.close();
        if self.core.outbox.abort(close_frame(code, text)) {
            let reason = why.label();
            self.disconnects.with_label_values(&[reason]).inc();
            tracing::info!(session = %self.core.id, code, reason, "closing websocket");
            ctx.run_later(ABORT_GRACE, |act, _| {
                tracing::debug!(session = %act.core.id, "client did not hang up after its close frame; resetting");
                act.core.outbox.kill();
                if let Some(socket) = &act.socket {
                    socket.reset();
                }
            });
        }
    }

    /// The set a subscribe/unsubscribe would leave, checked by the rules
    /// of the query (the gate's own checks): valid patterns, covered by the
    /// grants, at most `max_channels`.
    fn next_set(&self, msg: &ClientMessage) -> Result<Vec<ChannelPattern>, SubscribeError> {
        let (channels, adding) = match msg {
            ClientMessage::Subscribe { channels } => (channels, true),
            ClientMessage::Unsubscribe { channels } => (channels, false),
        };
        let names: Vec<&str> = channels.iter().map(String::as_str).collect();
        let parsed = parse_patterns(&names, self.max_channels)?;
        let mut set = self.patterns.clone();
        if adding {
            self.grants.check(&parsed)?;
            for p in parsed {
                if !set.contains(&p) {
                    set.push(p);
                }
            }
            if set.len() > self.max_channels {
                return Err(SubscribeError::TooManyChannels {
                    requested: set.len(),
                    max: self.max_channels,
                });
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
            Err(e) => {
                self.reply(error_frame(e.code(), &e.to_string()), ctx);
                return;
            }
        };
        let answer = match msg {
            ClientMessage::Subscribe { .. } => "subscribed",
            ClientMessage::Unsubscribe { .. } => "unsubscribed",
        };
        let request = self.core.registry.send(Subscribe {
            session: self.core.id,
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
        self.core.started(ctx);
        ctx.run_interval(self.keepalive, |act, ctx| {
            if act.last_heard.elapsed() > act.keepalive * DEAD_PEER_INTERVALS {
                act.abort(Disconnect::DeadPeer, ctx);
                return;
            }
            if !act.ping_outstanding {
                act.ping_outstanding = true;
                act.reply(ws_frame_with_opcode(opcode::PING, b"loggate"), ctx);
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
                    .set_pong(ws_frame_with_opcode(opcode::PONG, &payload));
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
            Err(ProtocolError::Overflow) => self.abort(Disconnect::FrameTooLarge, ctx),
            Err(e) => {
                tracing::debug!(session = %self.core.id, error = %e, "websocket protocol error");
                self.abort(Disconnect::ProtocolError, ctx);
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
    let request = SubscribeRequest::parse(&query, state.config.subscribe.max_channels)?;
    check_origin(&req, &state.config.auth)?;
    let mut response = handshake(&req)?;
    let opened = super::gate::open(&req, &query, request, &state, Framing::WebSocket).await?;
    let outbox = opened.core.outbox.clone();
    let frames = ClientFrames::new(payload);
    let socket = super::socket::SocketHandle::of(&req);
    let resets = socket.is_some();
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
            socket,
        }
    });
    let body = OutboxBody::new(outbox, session.recipient(), &state.metrics, opened.slot)
        .reset_on_kill(resets);
    Ok(response.streaming(body))
}
