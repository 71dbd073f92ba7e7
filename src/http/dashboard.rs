//! `GET /metrics/ws` (admin token): a JSON snapshot of the gateway's
//! metrics every second, for live dashboards. A WebSocket like a
//! subscriber's (same frame reading, same bounded outbox and body, a
//! connection slot), but it carries snapshots, not events.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_http::ws::{Frame, ProtocolError};
use actix_web::{HttpRequest, HttpResponse, web};

use super::connections::ConnectionCounts;
use crate::delivery::Transport;
use crate::delivery::filter::Filter;
use crate::delivery::framing::{Framing, close, close_frame, json_frame};
use crate::delivery::outbox::{Outbox, QueueLimits};
use crate::event::ws_frame::{opcode, ws_frame_with_opcode};
use crate::session::writer::OutboxBody;
use crate::session::ws_inbound::{ClientFrames, check_origin, handshake};
use crate::session::{ClientGone, SubscribeError};
use crate::state::AppState;

/// How often `/metrics/ws` pushes a snapshot.
const METRICS_PUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The session of one `/metrics/ws` dashboard.
pub struct MetricsSession {
    outbox: Arc<Outbox>,
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
                    .set_pong(ws_frame_with_opcode(opcode::PONG, &payload));
            }
            Ok(Frame::Close(_)) | Err(_) => self
                .outbox
                .close_with(Some(close_frame(close::NORMAL, "bye"))),
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
    serde_json::json!({
        "type": "metrics",
        "uptime_seconds": state.started.elapsed().as_secs(),
        "connections": ConnectionCounts::of(state),
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
        "nats": state.links_json(),
    })
}

/// `GET /metrics/ws` (admin token): a JSON metrics snapshot every second.
pub async fn metrics_websocket(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    super::admin::check_admin(&req, &state)?;
    check_origin(&req, &state.config.auth)?;
    let mut response = handshake(&req)?;
    // A dashboard holds a connection like any subscriber.
    let slot = state
        .connections
        .try_acquire(Transport::WebSocket, state.client_ip(&req))
        .map_err(SubscribeError::from)?;
    let limits = QueueLimits {
        max_events: 1,
        max_bytes: 1 << 20,
    };
    let outbox = Arc::new(Outbox::new(limits, Filter::default(), Framing::WebSocket));
    outbox.push_control_if_idle(json_frame(metrics_snapshot(&state)));
    let frames = ClientFrames::new(payload);
    let session = MetricsSession::create(|ctx| {
        ctx.add_stream(frames);
        MetricsSession {
            outbox: outbox.clone(),
            state: state.clone(),
        }
    });
    let body = OutboxBody::new(outbox, session.recipient(), &state.metrics, slot);
    Ok(response.streaming(body))
}
