//! Probes and metrics: `/healthz` (liveness, no dependencies), `/health`
//! (a JSON status for people) and `/metrics` (Prometheus text).

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics.connections;
    let status = if state.is_shutting_down() {
        "shutting_down"
    } else {
        "ok"
    };
    HttpResponse::Ok().json(json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "connections": {
            "total": state.connections.open(),
            "sse": m.with_label_values(&["sse"]).get(),
            "websocket": m.with_label_values(&["websocket"]).get(),
        },
        "sessions": state.gauges.sessions.load(Ordering::Relaxed),
        "session_actors": state.metrics.session_actors.get(),
        "subscriptions": state.gauges.subscriptions.load(Ordering::Relaxed),
        "events_accepted": state.gauges.events_accepted.load(Ordering::Relaxed),
        "nats": {"state": "disabled"},
    }))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
