//! HTTP ingestion: `POST /api/logs/publish` and the dev-only `POST /test/logs`.
//!
//! Authenticates the service token before reading the body, reads the body
//! under the byte limit (a lying `Content-Length` cannot make it read more),
//! parses and validates every event, then hands the batch to the registry in
//! one `Publish` message and answers with the ids it assigned.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{BodyFormat, Limits, PublishError, RawEvent, RawLogData, parse_body};
use crate::event::{EventId, IdText, NewEvent};
use crate::registry::{Origin, Publish};
use crate::state::AppState;

#[derive(Serialize)]
struct Accepted {
    accepted: usize,
    ids: Vec<IdText>,
}

fn presented_token(req: &HttpRequest) -> Option<&str> {
    if let Some(v) = req.headers().get("x-service-token") {
        return v.to_str().ok();
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

fn body_format(req: &HttpRequest) -> Result<BodyFormat, PublishError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(BodyFormat::Json);
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/json" => Ok(BodyFormat::Json),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(BodyFormat::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(BodyFormat::Ndjson),
        _ => Err(PublishError::UnsupportedMediaType(
            text.chars().take(64).collect(),
        )),
    }
}

/// Reads the body, refusing as soon as it passes `max` bytes.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<BytesMut, PublishError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(PublishError::BodyTooLarge { max });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(4096).min(max));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| PublishError::InvalidJson {
            index: None,
            message: format!("could not read the request body: {e}"),
        })?;
        if body.len() + chunk.len() > max {
            return Err(PublishError::BodyTooLarge { max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends validated events to the registry; their ids come back in order.
async fn publish_events(
    state: &AppState,
    events: Vec<NewEvent>,
) -> Result<Vec<EventId>, PublishError> {
    state
        .registry
        .send(Publish {
            events,
            origin: Origin::Local,
        })
        .await
        .map_err(|_| PublishError::ShuttingDown)?
        .map_err(|_| PublishError::ShuttingDown)
}

fn accepted(ids: Vec<EventId>) -> HttpResponse {
    HttpResponse::Accepted().json(Accepted {
        accepted: ids.len(),
        ids: ids.iter().map(EventId::text).collect(),
    })
}

/// `POST /api/logs/publish`.
pub async fn publish(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PublishError> {
    let result = publish_inner(&req, payload, &state).await;
    if let Err(e) = &result {
        state.metrics.rejected(e.code());
        tracing::info!(code = e.code(), client = ?state.client_ip(&req), "publish refused");
    }
    result
}

async fn publish_inner(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, PublishError> {
    if state.is_shutting_down() {
        return Err(PublishError::ShuttingDown);
    }
    let service = state.tokens.authenticate(presented_token(req))?;
    let format = body_format(req)?;
    let publish = &state.config.publish;
    let body = read_body(req, payload, publish.max_body_bytes).await?;
    let received_at = super::Received::now();
    let limits = Limits {
        max_event_bytes: publish.max_event_bytes,
        max_batch_events: publish.max_batch_events,
    };
    let events = parse_body(&body, format, service, &received_at, limits)?;
    let count = events.len();
    // Checked after parsing (the cost is per event) and before anything is
    // published, so a refused batch publishes nothing.
    if let Err(limited) = state.limits.check_publish(service, count) {
        if let Some(burst) = limited.over_burst {
            return Err(PublishError::BatchExceedsBurst { count, burst });
        }
        state
            .metrics
            .rate_limited
            .with_label_values(&[crate::metrics::label::limit::PUBLISH])
            .inc();
        return Err(PublishError::RateLimited {
            retry_after_secs: limited.retry_after_secs(),
        });
    }
    let ids = if count == 0 {
        Vec::new()
    } else {
        publish_events(state, events).await?
    };
    state
        .metrics
        .events_published
        .with_label_values(&[state.metrics.service_label(service)])
        .inc_by(count as u64);
    state.metrics.publish_batch_events.observe(count as f64);
    Ok(accepted(ids))
}

/// Body of `POST /test/logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestLogRequest {
    service: String,
    #[serde(default)]
    workspace_id: Option<String>,
    #[serde(default)]
    workflow_id: Option<String>,
    #[serde(default)]
    resource_id: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// `POST /test/logs`: publishes one synthetic event without a service token.
/// Not routed at all when `LOGGATE_ENV=production`.
pub async fn test_logs(
    body: web::Json<TestLogRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PublishError> {
    if state.is_shutting_down() {
        return Err(PublishError::ShuttingDown);
    }
    let t = body.into_inner();
    let received = super::Received::now();
    let message = t
        .message
        .unwrap_or_else(|| format!("test event from /test/logs at {}", received.text));
    let raw = RawEvent {
        service: Some(t.service.into()),
        workspace_id: t.workspace_id.map(Into::into),
        resource_id: t.resource_id.map(Into::into),
        workflow_id: t.workflow_id.map(Into::into),
        channel: None,
        log_data: RawLogData {
            level: t.level.map(Into::into),
            message: message.into(),
            timestamp: None,
            stream: None,
            source: Some("loggate-test".into()),
            meta: None,
        },
    };
    let event = super::validate(raw, None, &received, None)?;
    let ids = publish_events(&state, vec![event]).await?;
    Ok(accepted(ids))
}
