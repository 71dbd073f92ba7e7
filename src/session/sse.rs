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

use super::body::OutboxBody;
use super::gate::{StreamQuery, SubscribeRequest};
use super::{ClientGone, SessionCore, SubscribeError};
use crate::delivery::framing::Framing;
use crate::state::AppState;

/// The session actor of one SSE client.
pub struct SseSession {
    core: SessionCore,
    keepalive: Duration,
}

impl Actor for SseSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core.started(ctx);
        ctx.run_interval(self.keepalive, |act, _| {
            act.core.outbox.push_keepalive();
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
    let request = SubscribeRequest::parse(&query, state.config.subscribe.max_channels)?;
    let framing = Framing::Sse {
        retry_ms: state.config.subscribe.retry_ms,
    };
    let opened = super::gate::open(&req, &query, request, &state, framing).await?;
    let outbox = opened.core.outbox.clone();
    let session = SseSession {
        core: opened.core,
        keepalive: state.config.keepalive(),
    }
    .start();
    let body = OutboxBody::new(outbox, session.recipient(), &state.metrics, opened.slot);
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header(("X-Accel-Buffering", HeaderValue::from_static("no")))
        .streaming(body))
}
