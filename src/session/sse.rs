//! The SSE transport: `GET /api/logs/stream`.
//!
//! One [`SseSession`] actor per client owns the session's life through its
//! [`SessionCore`]: registered before the response starts, a `: keepalive`
//! comment when the stream has been idle, deregistered the moment the client
//! goes away (the body's `Drop` sends `ClientGone`). The body is the shared
//! [`OutboxBody`], framing events as SSE.

use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use super::body::OutboxBody;
use super::{
    ClientGone, SessionCore, SessionId, StreamQuery, SubscribeError, SubscribeRequest, Transport,
};
use crate::http::AppState;

const KEEPALIVE_FRAME: &[u8] = b": keepalive\n\n";

/// The frame that ends every stream on graceful shutdown.
pub fn shutdown_frame() -> Bytes {
    Bytes::from_static(b"event: shutdown\ndata: {\"reason\":\"server shutting down\"}\n\n")
}

/// The frame that ends a stream whose token expired.
fn expired_frame() -> Bytes {
    Bytes::from_static(b"event: expired\ndata: {\"reason\":\"token expired\"}\n\n")
}

/// The session actor of one SSE client.
pub struct SseSession {
    core: SessionCore,
    keepalive: Duration,
}

impl Actor for SseSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core.started(ctx, expired_frame());
        ctx.run_interval(self.keepalive, |act, _| {
            act.core
                .outbox
                .push_control_if_idle(Bytes::from_static(KEEPALIVE_FRAME));
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
    let retry_ms = state.config.subscribe.retry_ms;
    let opened = super::open(&req, &query, &state, Transport::Sse, |id, request| {
        ready_frame(id, request, retry_ms)
    })
    .await?;
    let outbox = opened.core.outbox.clone();
    let session = SseSession {
        core: opened.core,
        keepalive: state.config.keepalive(),
    }
    .start();
    let body = OutboxBody::new(
        outbox,
        Transport::Sse,
        session.recipient(),
        &state.metrics,
        opened.slot,
    );
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
