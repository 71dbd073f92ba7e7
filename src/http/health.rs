//! Probes and metrics: `/healthz` (liveness, no dependencies), `/health`
//! (a JSON status for people) and `/metrics` (Prometheus text).

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::connections::ConnectionCounts;
use crate::error::RETRY_SOON_SECS;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

pub async fn health(state: web::Data<AppState>, ai: web::Data<crate::ai::Ai>) -> HttpResponse {
    let status = if state.is_shutting_down() {
        "shutting_down"
    } else {
        "ok"
    };
    HttpResponse::Ok().json(json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "connections": ConnectionCounts::of(&state),
        "sessions": state.gauges.sessions.load(Ordering::Relaxed),
        "session_actors": state.metrics.session_actors.get(),
        "subscriptions": state.gauges.subscriptions.load(Ordering::Relaxed),
        "events_accepted": state.gauges.events_accepted.load(Ordering::Relaxed),
        "nats": state.links_json(),
        "history": history_json(&state),
        "ai": ai.to_json(),
    }))
}

/// Where history is kept and whether the store keeps up: `degraded` while
/// its writes fail (events are still delivered live, not stored).
fn history_json(state: &AppState) -> serde_json::Value {
    let m = &state.metrics;
    let store = if state.config.nats.jetstream {
        "jetstream"
    } else {
        match state.config.history.store {
            crate::config::StoreKind::Disk => "disk",
            crate::config::StoreKind::Memory => "memory",
        }
    };
    let mut json = json!({
        "store": store,
        "events_in_memory": m.history_events.get(),
    });
    if store == "disk" {
        json["state"] = if m.history_disk_degraded.get() != 0 {
            "degraded"
        } else {
            "ok"
        }
        .into();
        json["disk_bytes"] = m.history_disk_bytes.get().into();
        json["write_errors"] = m.history_write_errors.get().into();
    }
    json
}

/// `GET /ready`: 200 when the gateway should get traffic; 503 while it is
/// shutting down or while a configured NATS link is down.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let down: Vec<&str> = state
        .nats
        .iter()
        .filter(|l| !l.is_connected())
        .map(|l| l.name())
        .collect();
    let reason = if state.is_shutting_down() {
        Some("shutting down".to_owned())
    } else if !down.is_empty() {
        Some(format!("NATS link down: {}", down.join(", ")))
    } else {
        None
    };
    match reason {
        None => HttpResponse::Ok().json(json!({"ready": true})),
        Some(r) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", RETRY_SOON_SECS.to_string()))
            .json(json!({"ready": false, "reason": r, "nats": state.links_json()})),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    for link in &state.nats {
        state
            .metrics
            .nats_connected
            .with_label_values(&[link.name()])
            .set(i64::from(link.is_connected()));
    }
    state
        .metrics
        .sync_log_drops(crate::logging::dropped_lines());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
