//! The SSE transport: `GET /api/logs/stream`.
//!
//! One [`SseSession`] actor per client owns the session's life: it is
//! registered with the registry before the response starts, pushes a
//! `: keepalive` comment when the stream has been idle, and tells the
//! registry `SessionClosed` when it stops. The response body is an
//! [`SseBody`] stream that drains the session's outbox, concatenating every
//! queued frame into one chunk so a busy session costs one socket write per
//! batch rather than one per event. When the client goes away actix drops
//! the body; its `Drop` stops the actor, which deregisters at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use prometheus::IntCounter;

use super::outbox::{Item, Outbox};
use super::{ConnectionGuard, SessionId, StreamQuery, SubscribeError, SubscribeRequest, Transport};
use crate::http::AppState;
use crate::registry::{Registry, SessionClosed, Subscribe};

/// Upper bound on one chunk handed to actix. A chunk of dozens of frames
/// already makes one write out of many; larger chunks only pin memory,
/// because actix copies each chunk into its write buffer and keeps it there
/// while a slow client's socket is full (so a slow connection holds at most
/// about this much plus actix's own 32 KiB buffer).
const MAX_CHUNK_BYTES: usize = 16 * 1024;

const KEEPALIVE_FRAME: &[u8] = b": keepalive\n\n";

/// The frame that ends every stream on graceful shutdown.
pub fn shutdown_frame() -> Bytes {
    Bytes::from_static(b"event: shutdown\ndata: {\"reason\":\"server shutting down\"}\n\n")
}

/// The frame that ends a stream whose token expired.
fn expired_frame() -> Bytes {
    Bytes::from_static(b"event: expired\ndata: {\"reason\":\"token expired\"}\n\n")
}

/// Expiry timers further out than this are not armed (tokio's timer wheel
/// tops out near two years, and a token valid that long is as good as
/// permanent).
const MAX_EXPIRY_TIMER: Duration = Duration::from_secs(365 * 24 * 3600);

/// The session actor of one SSE client.
pub struct SseSession {
    id: SessionId,
    /// Counts live session actors, so a leak shows in `/health`.
    alive: prometheus::IntGauge,
    outbox: Arc<Outbox>,
    registry: Addr<Registry>,
    keepalive: Duration,
    /// The credential's expiry: the stream ends then, so a token stops
    /// granting access when it says it does.
    expires_at: Option<SystemTime>,
}

/// The client's body stream was dropped: the client is gone.
#[derive(Message)]
#[rtype(result = "()")]
struct ClientGone;

impl Actor for SseSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.alive.inc();
        if let Some(at) = self.expires_at {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            if left < MAX_EXPIRY_TIMER {
                ctx.run_later(left, |act, _| act.outbox.close_with(Some(expired_frame())));
            }
        }
        ctx.run_interval(self.keepalive, |act, _| {
            act.outbox
                .push_control_if_idle(Bytes::from_static(KEEPALIVE_FRAME));
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.outbox.close_with(None);
        // One message per session, bounded by the connection cap; `do_send`
        // cannot be called from `stopping` any other way without a context.
        self.registry.do_send(SessionClosed { session: self.id });
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.alive.dec();
    }
}

impl Handler<ClientGone> for SseSession {
    type Result = ();

    fn handle(&mut self, _: ClientGone, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// The response body of one SSE client.
pub struct SseBody {
    outbox: Arc<Outbox>,
    session: Addr<SseSession>,
    delivered: IntCounter,
    /// Held for the life of the stream: dropping it frees the slot.
    _slot: ConnectionGuard,
}

impl Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let batch = match this.outbox.poll_batch(cx, MAX_CHUNK_BYTES) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(b)) => b,
        };
        let events = batch
            .items
            .iter()
            .filter(|i| matches!(i, Item::Event(_)))
            .count() as u64;
        this.delivered.inc_by(events);
        // The common idle case: one frame, handed over without a copy.
        if let ([Item::Event(e)], 0) = (batch.items.as_slice(), batch.lagged) {
            return Poll::Ready(Some(Ok(e.sse_frame().clone())));
        }
        let size: usize = batch.items.iter().map(sse_len).sum();
        let mut buf = BytesMut::with_capacity(size + 48);
        if batch.lagged > 0 {
            buf.put_slice(b"event: lag\ndata: {\"dropped\":");
            buf.put_slice(batch.lagged.to_string().as_bytes());
            buf.put_slice(b"}\n\n");
        }
        for item in &batch.items {
            match item {
                Item::Event(e) => buf.put_slice(e.sse_frame()),
                Item::Control(b) => buf.put_slice(b),
                Item::Gap(g) => {
                    buf.put_slice(b"event: gap\ndata: ");
                    buf.put_slice(g.to_json().as_bytes());
                    buf.put_slice(b"\n\n");
                }
            }
        }
        Poll::Ready(Some(Ok(buf.freeze())))
    }
}

fn sse_len(item: &Item) -> usize {
    match item {
        Item::Event(e) => e.sse_frame().len(),
        Item::Control(b) => b.len(),
        Item::Gap(_) => 128,
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        self.session.do_send(ClientGone);
    }
}

/// `GET /api/logs/stream`.
pub async fn stream(
    req: HttpRequest,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, SubscribeError> {
    let request = SubscribeRequest::parse(&query, state.config.subscribe.max_channels)?;
    if state.is_shutting_down() {
        return Err(SubscribeError::ShuttingDown);
    }
    let client = crate::http::client_ip(&req, state.config.server.trust_proxy);
    // Before the token is verified: signature checks are the costly part,
    // and a flood from one address must not buy them.
    if let Err(limited) = state.limits.check_connect(client) {
        let limit = if limited.table_full {
            "connect_table_full"
        } else {
            "connect"
        };
        state.metrics.rate_limited.with_label_values(&[limit]).inc();
        return Err(SubscribeError::RateLimited {
            retry_after_secs: limited.retry_after.as_secs_f64().ceil().max(1.0) as u64,
        });
    }
    let credential = super::authorize(&req, query.token.as_deref(), &request, &state)?;
    let resume = super::resume_point(
        super::header(&req, "last-event-id"),
        query.last_event_id.as_deref(),
    )?;
    let slot = state.connections.try_acquire(Transport::Sse)?;
    let id = state.next_session_id();
    let outbox = Arc::new(Outbox::new(
        super::queue_limits(&state.config),
        request.filter.clone(),
    ));
    outbox.push_control(ready_frame(id, &request, state.config.subscribe.retry_ms));
    state
        .registry
        .send(Subscribe {
            session: id,
            transport: Transport::Sse,
            outbox: Arc::clone(&outbox),
            patterns: request.patterns.clone(),
            resume,
        })
        .await
        .map_err(|_| SubscribeError::ShuttingDown)?
        .map_err(|_| SubscribeError::ShuttingDown)?;
    tracing::debug!(session = %id, client = ?client, channels = request.patterns.len(), "sse session opened");
    let session = SseSession {
        id,
        alive: state.metrics.session_actors.clone(),
        outbox: Arc::clone(&outbox),
        registry: state.registry.clone(),
        keepalive: state.config.keepalive(),
        expires_at: credential.expires_at,
    }
    .start();
    let body = SseBody {
        outbox,
        session,
        delivered: state.metrics.delivered(Transport::Sse.as_str()),
        _slot: slot,
    };
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header(("X-Accel-Buffering", HeaderValue::from_static("no")))
        .streaming(body))
}

fn ready_frame(id: SessionId, request: &SubscribeRequest, retry_ms: u64) -> Bytes {
    let channels: Vec<&str> = request.patterns.iter().map(|p| p.as_str()).collect();
    let data = serde_json::json!({
        "connection_id": id.to_string(),
        "channels": channels,
    });
    Bytes::from(format!(
        "retry: {retry_ms}\n\nevent: ready\ndata: {data}\n\n"
    ))
}
