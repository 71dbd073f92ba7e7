//! `/admin/*`: operator endpoints behind `Authorization: Bearer $ADMIN_TOKEN`.
//!
//! Every path under `/admin` passes the guard first, known or not, so the
//! endpoint list is not discoverable without the token. Without a configured
//! admin token the whole scope answers 403.

use super::connections::ConnectionCounts;
use crate::error::ApiError;
use crate::registry::{ChannelCounts, GetStats};
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, web};
use serde_json::json;

/// How many channels `/admin/logs/stats` lists.
const TOP_CHANNELS: usize = 50;

pub fn scope() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope("/admin")
        .wrap(from_fn(require_admin))
        .route("/logs/stats", web::get().to(stats))
        .default_service(web::to(super::not_found))
}

async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no state"))?;
    check_admin(req.request(), state)?;
    next.call(req).await
}

/// `Authorization: Bearer $ADMIN_TOKEN`, compared in constant time: 403
/// when no admin token is configured, 401 when it is missing or wrong.
pub fn check_admin(req: &actix_web::HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin endpoints are off: set ADMIN_TOKEN to use them",
        ));
    };
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !expected.accepts(presented) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "send Authorization: Bearer <ADMIN_TOKEN>",
        ));
    }
    Ok(())
}

/// `GET /admin/logs/stats`.
async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let unavailable = |_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the registry has stopped",
        )
    };
    let registry = state.registry.send(GetStats).await.map_err(unavailable)?;
    let channels = state
        .registry
        .send(ChannelCounts { top: TOP_CHANNELS })
        .await
        .map_err(unavailable)?;
    let m = &state.metrics;
    let services: serde_json::Map<String, serde_json::Value> = state
        .tokens
        .services()
        .map(|s| {
            let dropped: u64 = crate::metrics::label::dropped::ALL
                .iter()
                .map(|r| m.events_dropped.with_label_values(&[r, s]).get())
                .sum();
            let published = m.published_total(s);
            let delivered = m.events_fanned_out.with_label_values(&[s]).get();
            (
                s.to_owned(),
                json!({"published": published, "delivered": delivered, "dropped": dropped}),
            )
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "uptime_seconds": state.started.elapsed().as_secs(),
        "connections": ConnectionCounts::of(&state),
        "sessions": registry.sessions,
        "subscriptions": registry.subscriptions,
        "events_accepted": registry.last_seq,
        "history": registry.history,
        "channels": channels
            .iter()
            .map(|c| json!({"channel": c.channel, "subscribers": c.total()}))
            .collect::<Vec<_>>(),
        "services": services,
        "rate_limits": {"tracked_addresses": state.limits.tracked_addresses()},
        "nats": state.links_json(),
    })))
}

/// `GET /api/logs/stream/status` (admin token): connections by transport,
/// and the busiest channels' subscribers by transport (at most 50).
pub async fn stream_status(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_admin(&req, &state)?;
    let channels = state
        .registry
        .send(ChannelCounts { top: TOP_CHANNELS })
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the registry has stopped",
            )
        })?;
    let by_channel: serde_json::Map<String, serde_json::Value> = channels
        .into_iter()
        .map(|c| {
            let counts = ConnectionCounts {
                sse: c.sse as i64,
                websocket: c.websocket as i64,
                total: None,
            };
            (c.channel, json!(counts))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "status": if state.is_shutting_down() { "shutting_down" } else { "active" },
        "connections": {
            "global": ConnectionCounts::of(&state).without_total(),
            "channels": by_channel,
        },
    })))
}
