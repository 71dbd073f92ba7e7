//! HTTP ingestion: `POST /api/logs/publish` and the dev-only `POST /test/logs`.
//!
//! `/api/logs/publish` goes through
//! [`request::ingest`](super::request::ingest): the token before the body,
//! the body under its limit (a lying `Content-Length` cannot make it read
//! more), every event validated, then the batch to the registry in one
//! `Publish` message; the answer lists the ids it assigned. `/test/logs`
//! counts against the same rate limits (events and bytes).
//!
//! Both take an `Idempotency-Key` (`crate::idempotency`): a retry within
//! the window is answered the first `202`, with its ids, and publishes
//! nothing. The key is the token's service's on `/api/logs/publish`, the
//! named service's on `/test/logs` (which has no token).

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
use crate::idempotency::{self, Begin};
use crate::metrics::label::source;
use crate::request_body::{BodyError, read_limited};
use crate::state::AppState;

/// The routes, as part of a key's digest: one key on both is two requests.
const PUBLISH_ROUTE: &str = "/api/logs/publish";
const TEST_LOGS_ROUTE: &str = "/test/logs";
/// `/test/logs`'s body: a few names and a message.
const TEST_LOGS_MAX_BODY: usize = 64 * 1024;

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
        idempotency: Some(PUBLISH_ROUTE),
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
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PublishError> {
    if state.is_shutting_down() {
        return Err(PublishError::ShuttingDown);
    }
    let key = idempotency::key_of(req.headers())?;
    if body_format(&req)? != BodyFormat::Json {
        return Err(unsupported(
            &media_type(&req).unwrap_or_default(),
            "application/json",
        ));
    }
    let body = read_limited(&req, payload, TEST_LOGS_MAX_BODY)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { max } => PublishError::BodyTooLarge { max },
            e => PublishError::InvalidBody {
                message: e.to_string(),
            },
        })?;
    let t: TestLogRequest =
        serde_json::from_slice(&body).map_err(|e| PublishError::InvalidJson {
            index: None,
            message: e.to_string(),
        })?;
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
    let claim = match key {
        Some(key) => {
            let content_type = media_type(&req).unwrap_or_default();
            let digest = idempotency::digest(TEST_LOGS_ROUTE, &content_type, &body);
            match state
                .idempotency
                .begin(event.channel.service(), &key, digest)
                .await?
            {
                Begin::Replay(ids) => return Ok(accepted(ids)),
                Begin::Claimed(claim) => Some(claim),
            }
        }
        None => None,
    };
    let limit_key = test_logs_limit_key(&state, event.channel.service()).to_owned();
    // What it publishes is the event, not the small request that named it.
    spend_bytes(&state, &limit_key, event.body_tail.len())?;
    spend_events(&state, &limit_key, 1)?;
    let ids = publish_events(&state, vec![event], claim).await?;
    Ok(accepted(ids))
}
