//! HTTP ingestion: `POST /api/logs/publish` and the dev-only `POST /test/logs`.
//!
//! `/api/logs/publish` goes through
//! [`request::ingest`](super::request::ingest): the token before the body,
//! the body under its limit (a lying `Content-Length` cannot make it read
//! more), every event validated, then the batch to the registry in one
//! `Publish` message; the answer lists the ids it assigned. `/test/logs`
//! counts against the same rate limits (events and bytes).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::compression::Packing;
use super::request::{
    Endpoint, ParseInput, RequestLimits, ingest, media_type, publish_events, spend_bytes,
    spend_events, unsupported,
};
use super::{BodyFormat, PublishError, RawEvent, RawLogData, parse_body};
use crate::auth::Schemes;
use crate::event::{EventId, IdText};
use crate::metrics::label::source;
use crate::state::AppState;

#[derive(Serialize)]
struct Accepted {
    accepted: usize,
    ids: Vec<IdText>,
}

fn body_format(req: &HttpRequest) -> Result<BodyFormat, PublishError> {
    let Some(essence) = media_type(req) else {
        return Ok(BodyFormat::Json);
    };
    match essence.as_str() {
        "application/json" | "text/json" => Ok(BodyFormat::Json),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(BodyFormat::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(BodyFormat::Ndjson),
        _ => Err(unsupported(
            &essence,
            "application/json or application/x-ndjson",
        )),
    }
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
    let endpoint = Endpoint {
        source: source::HTTP,
        // Bearer only: see `auth::service`.
        schemes: Schemes::Bearer,
        limits: RequestLimits::publish(&state),
        format: |req| Ok((body_format(req)?, Packing::Plain)),
        own_encodings: &[],
        parse: |format, body: &[u8], input: &ParseInput<'_>| {
            parse_body(body, format, input.service, input.received, input.limits)
        },
    };
    let ids = ingest(&req, payload, &state, endpoint).await?;
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

/// The rate limits `/test/logs` counts against: a configured service's own
/// (the synthetic event costs what a published one does), and one shared
/// budget for names no token holds, so that made-up names cannot grow the
/// limiters' tables.
fn test_logs_limit_key<'a>(state: &AppState, service: &'a str) -> &'a str {
    const OTHERS: &str = "(test/logs)";
    if state.tokens.services().any(|s| s == service) {
        service
    } else {
        OTHERS
    }
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
    // A message of C1 controls triples once escaped: past what other nodes
    // take, it is refused here as on every other path.
    let event = super::validate(raw, None, &received, None)
        .and_then(|e| super::check_encoded(e, state.config.publish.max_event_bytes, None))?;
    let key = test_logs_limit_key(&state, event.channel.service()).to_owned();
    // What it publishes is the event, not the small request that named it.
    spend_bytes(&state, &key, event.body_tail.len())?;
    spend_events(&state, &key, 1)?;
    let ids = publish_events(&state, vec![event]).await?;
    Ok(accepted(ids))
}
