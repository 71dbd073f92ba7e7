//! The SSE transport: `GET /api/logs/stream`.
//!
//! One [`SseSession`] actor per client owns the session's life through its
//! [`SessionCore`]: registered before the response starts, a `: keepalive`
//! comment when the stream has been idle, deregistered the moment the client
//! goes away (the body's `Drop` sends `ClientGone`). The body is the shared
//! [`OutboxBody`], framing events as SSE.
//!
//! A reader that stops reading is not kept forever: actix stops polling
//! the body once the socket takes nothing more, so the outbox fills and
//! then stays full. When it has stayed full, with nothing taken from it
//! and no byte acknowledged by the client (Linux's `TCP_INFO`; elsewhere
//! the outbox alone decides), for `sse.stall_timeout_secs`, the session
//! resets the socket (as the WebSocket transport does with a client that
//! will not take its close frame) and counts the disconnect as `stalled`.
//! A slow reader that still makes progress stays: the kernel's send buffer
//! can feed it for many seconds before the body is polled again, but its
//! acknowledgements keep coming.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::gate::{StreamQuery, SubscribeRequest};
use super::socket::SocketHandle;
use super::writer::OutboxBody;
use super::{ClientGone, SessionCore, SubscribeError};
use crate::delivery::disconnect::Disconnect;
use crate::delivery::framing::Framing;
use crate::state::AppState;

/// How many times per stall timeout the outbox is looked at: a stalled
/// reader is dropped between one and 1 + 1/this timeouts after its queue
/// filled.
const STALL_CHECKS_PER_TIMEOUT: u32 = 4;

/// The session actor of one SSE client.
pub struct SseSession {
    core: SessionCore,
    keepalive: Duration,
    /// How long the outbox may stay full with nothing written.
    stall_timeout: Duration,
    /// Set once the session has dropped its client as stalled.
    stalled: bool,
    /// The client's acknowledged bytes at the last look, and when they
    /// last changed: progress the outbox cannot see.
    acked: Option<u64>,
    acked_changed: Instant,
    disconnects: prometheus::IntCounterVec,
    /// To reset the connection of a reader that stopped reading.
    socket: Option<SocketHandle>,
}

impl SseSession {
    /// Drops the client if its outbox has stayed full, with nothing taken
    /// and nothing acknowledged, for the stall timeout.
    fn check_stall(&mut self) {
        if self.stalled {
            return;
        }
        let acked = self.socket.as_ref().and_then(SocketHandle::bytes_acked);
        if acked != self.acked {
            self.acked = acked;
            self.acked_changed = Instant::now();
        }
        let Some(full_for) = self.core.outbox.full_for() else {
            return;
        };
        let stuck_for = full_for.min(self.acked_changed.elapsed());
        if stuck_for < self.stall_timeout {
            return;
        }
        self.stalled = true;
        self.disconnects
            .with_label_values(&[Disconnect::Stalled.label()])
            .inc();
        tracing::info!(
            session = %self.core.id,
            seconds = stuck_for.as_secs(),
            "disconnecting a reader whose queue stayed full"
        );
        self.core.outbox.kill();
        if let Some(socket) = &self.socket {
            socket.reset();
        }
    }
}

impl Actor for SseSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core.started(ctx);
        ctx.run_interval(self.keepalive, |act, _| {
            act.core.outbox.push_keepalive();
        });
        // The floor guards an unvalidated config (tests build their own).
        let every = (self.stall_timeout / STALL_CHECKS_PER_TIMEOUT).max(Duration::from_millis(50));
        ctx.run_interval(every, |act, _| act.check_stall());
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.core.stopping();
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.core.stopped();
    }
}

impl Handler<ClientGone> for SseSession {
    type Result = ();

    fn handle(&mut self, _: ClientGone, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// `GET /api/logs/stream`.
pub async fn stream(
    req: HttpRequest,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, SubscribeError> {
    let request = SubscribeRequest::parse(&query, state.config.subscribe.max_channels)?;
    let framing = Framing::Sse {
        retry_ms: state.config.subscribe.retry_ms,
    };
    let opened = super::gate::open(&req, &query, request, &state, framing).await?;
    let outbox = opened.core.outbox.clone();
    let socket = SocketHandle::of(&req);
    let resets = socket.is_some();
    let session = SseSession {
        core: opened.core,
        keepalive: state.config.keepalive(),
        stall_timeout: state.config.sse.stall_timeout(),
        stalled: false,
        acked: None,
        acked_changed: Instant::now(),
        disconnects: state.metrics.disconnects.clone(),
        socket,
    }
    .start();
    let body = OutboxBody::new(outbox, session.recipient(), &state.metrics, opened.slot)
        .reset_on_kill(resets);
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header(("X-Accel-Buffering", HeaderValue::from_static("no")))
        .streaming(body))
}
