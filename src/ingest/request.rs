//! The one path every HTTP ingest endpoint takes (`/api/logs/publish`,
//! OTLP's `/v1/logs`, Loki's push): token, content type, the byte rate,
//! the body under its limit and deadline (`crate::request_body`; decompressed
//! under the same limit), the endpoint's own parser, the event rate, the
//! registry, the metrics. The endpoints differ only in how they read a
//! body, their limits, and how they word a refusal.
//!
//! Where the work runs: a body over `publish.large_body_bytes` (as sent or
//! once inflated) is inflated and parsed on the blocking pool, holding a
//! decode slot ([`DecodeSlots`](crate::limits::decode_slots::DecodeSlots))
//! until that work is done, even if the client has gone; smaller ones stay
//! on the request's task. A request that declares a large body takes its
//! slot before reading it, so the slots bound the memory of large bodies
//! in flight too.
//!
//! An endpoint that takes an `Idempotency-Key` ([`Endpoint::idempotency`])
//! has it checked after the token, and asks `crate::idempotency` once the
//! body is read: a retry is answered from there (after its bytes, before
//! its events are counted, parsed or published); a request that claims
//! its key publishes in a task of its own, so the answer is remembered
//! even if the client goes away while the events are being published.
//!
//! The byte rate counts the body as the parser reads it (decoded). What
//! the headers already tell is checked before the body is read: a plain
//! body's `Content-Length` is its size, a compressed one is at least half
//! of it. The exact size is spent once known, before the parse.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use bytes::Bytes;

use super::compression::{
    Encoding, Inflating, Packing, content_encoding, gzip_stated_len, unpacked_len,
};
use super::rate::byte_refusal;
pub use super::rate::{spend_bytes, spend_events};
use super::{Limits, PublishError, Received};
use crate::auth::{Schemes, presented_service_token};
use crate::event::{EventId, NewEvent};
use crate::idempotency::{self, Begin, Claim};
use crate::limits::decode_slots::DecodeSlot;
use crate::metrics::label::limit;
use crate::registry::{Origin, Publish};
use crate::request_body::{BodyError, read_limited};
use crate::state::AppState;

/// The media type of a request, lower case, without parameters; `None`
/// when it sent none.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?;
    let text = value.to_str().unwrap_or("?");
    Some(
        text.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// A refusal of the request's content type, quoting at most 64 characters
/// of it.
pub fn unsupported(found: &str, expected: &'static str) -> PublishError {
    PublishError::UnsupportedMediaType {
        found: found.chars().take(64).collect(),
        expected,
    }
}

/// What a parser is given besides the body.
pub struct ParseInput<'a> {
    /// The token's service: every event must be its.
    pub service: &'a str,
    pub received: &'a Received,
    pub limits: Limits,
    /// The request body limit, which a decompressed body is held to too.
    pub body_limit: usize,
}

/// Refuses more records in one request than a batch may hold.
pub fn check_count(count: usize, input: &ParseInput<'_>) -> Result<(), PublishError> {
    let max = input.limits.max_batch_events;
    if count > max {
        return Err(PublishError::BatchTooLarge { count, max });
    }
    Ok(())
}

/// The limits of one endpoint's requests.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// The body, once decompressed.
    pub max_body_bytes: usize,
    pub events: Limits,
}

impl RequestLimits {
    /// `/api/logs/publish`'s: `publish.*`.
    pub fn publish(state: &AppState) -> Self {
        let p = &state.config.publish;
        RequestLimits {
            max_body_bytes: p.max_body_bytes,
            events: Limits {
                max_event_bytes: p.max_event_bytes,
                max_batch_events: p.max_batch_events,
            },
        }
    }

    /// The shipper endpoints': `ingest.*`, events as any publish's.
    pub fn shipper(state: &AppState) -> Self {
        let i = &state.config.ingest;
        RequestLimits {
            max_body_bytes: i.max_body_bytes,
            events: Limits {
                max_event_bytes: state.config.publish.max_event_bytes,
                max_batch_events: i.max_batch_events,
            },
        }
    }
}

/// Turns a body into validated events, all or none.
pub type Parse<T> = fn(T, &[u8], &ParseInput<'_>) -> Result<Vec<NewEvent>, PublishError>;

/// How an endpoint reads its requests.
pub struct Endpoint<T> {
    /// The metrics `source`.
    pub source: &'static str,
    /// Where the token may be shown.
    pub schemes: Schemes,
    pub limits: RequestLimits,
    /// Picks the body format (and what packing it carries) from the
    /// request; asked after the token is checked, so an unknown caller
    /// learns nothing about formats.
    pub format: fn(&HttpRequest) -> Result<(T, Packing), PublishError>,
    /// `Content-Encoding`s the format carries itself.
    pub own_encodings: &'static [&'static str],
    pub parse: Parse<T>,
    /// The route, part of a key's digest, if the endpoint takes an
    /// `Idempotency-Key`; `None`: the header is not read.
    pub idempotency: Option<&'static str>,
}

/// One ingest request from its token to the registry's answer: the byte
/// rate, the body read and decompressed under the limit, parsed by the
/// endpoint, the event rate, then every event published together or none.
/// Refusals are counted under the endpoint's `source`.
pub async fn ingest<T: Copy + Send + 'static>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &web::Data<AppState>,
    endpoint: Endpoint<T>,
) -> Result<Vec<EventId>, PublishError> {
    let source = endpoint.source;
    let result = async {
        if state.is_shutting_down() {
            return Err(PublishError::ShuttingDown);
        }
        let token = presented_service_token(req.headers(), endpoint.schemes)?;
        let service = state.tokens.authenticate(token.as_deref())?;
        let key = match endpoint.idempotency {
            Some(_) => idempotency::key_of(req.headers())?,
            None => None,
        };
        let (format, packing) = (endpoint.format)(req)?;
        let encoding = content_encoding(req, endpoint.own_encodings)?;
        let read = read_body(
            req,
            payload,
            state,
            service,
            encoding,
            packing,
            &endpoint.limits,
        )
        .await?;
        let body = read.body;
        let size = unpacked_len(packing, &body)?;
        let max = endpoint.limits.max_body_bytes;
        if size > max {
            return Err(PublishError::BodyTooLarge { max });
        }
        let claim = match (endpoint.idempotency, key) {
            (Some(route), Some(key)) => {
                let digest =
                    idempotency::digest(route, &media_type(req).unwrap_or_default(), &body);
                match state.idempotency.begin(service, &key, digest).await? {
                    // Its bytes were sent and read as any request's were;
                    // its events are not published again, so not counted.
                    Begin::Replay(ids) => {
                        spend_bytes(state, service, size.saturating_sub(read.spent))?;
                        return Ok(ids);
                    }
                    Begin::Claimed(claim) => Some(claim),
                }
            }
            _ => None,
        };
        // The slot before the bytes: a request refused for want of a slot
        // has cost its service nothing.
        let slot = match (state.decode_slots.is_large(size), read.slot) {
            (true, None) => Some(take_slot(state).await?),
            (true, held) => held,
            (false, _) => None,
        };
        spend_bytes(state, service, size.saturating_sub(read.spent))?;
        let received = Received::now();
        let parse = endpoint.parse;
        let limits = endpoint.limits.events;
        let events = if let Some(slot) = slot {
            let service = service.to_owned();
            on_blocking_pool(slot, move || {
                parse(
                    format,
                    &body,
                    &parse_input(&service, &received, limits, max),
                )
            })
            .await?
            .0
        } else {
            parse(format, &body, &parse_input(service, &received, limits, max))?
        };
        let count = events.len();
        // Checked after parsing (the cost is per event) and before anything is
        // published, so a refused batch publishes nothing.
        spend_events(state, service, count)?;
        let ids = publish_events(state, events, claim).await?;
        state.metrics.published(service, source, count as u64);
        state.metrics.publish_batch_events.observe(count as f64);
        Ok(ids)
    }
    .await;
    if let Err(e) = &result {
        state.metrics.rejected(source, e.code());
        tracing::info!(source, code = e.code(), client = ?state.client_ip(req), "publish refused");
    }
    result
}

fn parse_input<'a>(
    service: &'a str,
    received: &'a Received,
    limits: Limits,
    body_limit: usize,
) -> ParseInput<'a> {
    ParseInput {
        service,
        received,
        limits,
        body_limit,
    }
}

/// A body read and its `Content-Encoding` undone.
struct ReadBody {
    body: Bytes,
    /// The decode slot it took, if it was large.
    slot: Option<DecodeSlot>,
    /// Bytes already spent from the byte rate for it.
    spent: usize,
}

/// The body, read under the limit and its `Content-Encoding` undone. A
/// body the byte rate cannot let through is refused before it is read
/// when its `Content-Length` says so, and a gzip body before it is
/// inflated, by the size its trailer states. What inflating turns up
/// beyond that (deflate has no trailer; a trailer can lie) is charged once
/// inflated, past the budget if need be: the work is done, and the debt
/// holds the service's next requests back until it is paid.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    service: &str,
    encoding: Encoding,
    packing: Packing,
    limits: &RequestLimits,
) -> Result<ReadBody, PublishError> {
    let max = limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared {
        if len > max {
            return Err(PublishError::BodyTooLarge { max });
        }
        let plain = encoding == Encoding::Identity && packing == Packing::Plain;
        // Compressed, a body is at least about as large as what was sent
        // (gzip and snappy grow incompressible data by a few bytes);
        // half of it is a bound no body can undercut.
        let least = if plain { len } else { len / 2 };
        if let Err(limited) = state.limits.peek_publish_bytes(service, least) {
            // More than the burst: only a plain body's size is exact.
            if limited.over_burst.is_none() || plain {
                return Err(byte_refusal(state, &limited, least));
            }
        }
    }
    // A body of unknown size may be large.
    let mut slot = match declared {
        Some(len) if !state.decode_slots.is_large(len) => None,
        _ => Some(take_slot(state).await?),
    };
    let body = read_limited(req, payload, max).await.map_err(|e| match e {
        BodyError::TooLarge { max } => PublishError::BodyTooLarge { max },
        e => PublishError::InvalidBody {
            message: e.to_string(),
        },
    })?;
    let mut spent = 0;
    if encoding == Encoding::Gzip
        && let Some(stated) = gzip_stated_len(&body)
    {
        if stated > max {
            return Err(PublishError::BodyTooLarge { max });
        }
        spend_bytes(state, service, stated)?;
        spent = stated;
    }
    // A clone of `Bytes` shares the buffer.
    let Some(mut inflating) = Inflating::new(encoding, body.clone(), max) else {
        return Ok(ReadBody { body, slot, spent });
    };
    drop(body);
    let slot = match slot.take() {
        Some(s) => s,
        None => {
            // A small body may still inflate to a large one: the first
            // part here, the rest on the blocking pool.
            if inflating.run(state.decode_slots.large_body_bytes)? {
                let body = inflating.finish();
                let spent = charge_inflated(state, service, spent, body.len())?;
                return Ok(ReadBody {
                    body,
                    slot: None,
                    spent,
                });
            }
            take_slot(state).await?
        }
    };
    let (body, slot) = on_blocking_pool(slot, move || {
        inflating.run(usize::MAX)?;
        Ok(inflating.finish())
    })
    .await?;
    let spent = charge_inflated(state, service, spent, body.len())?;
    Ok(ReadBody {
        body,
        slot: Some(slot),
        spent,
    })
}

/// Charges what inflated beyond the `spent` bytes its trailer stated, past
/// the budget if need be; the bytes now spent. A body larger than the
/// burst is refused all the same, as one that stated its size would be.
fn charge_inflated(
    state: &AppState,
    service: &str,
    spent: usize,
    inflated: usize,
) -> Result<usize, PublishError> {
    if inflated <= spent {
        return Ok(spent);
    }
    state.limits.charge_publish_bytes(service, inflated - spent);
    let burst = state.limits.publish_bytes_burst();
    if burst > 0 && inflated as u64 > burst {
        return Err(PublishError::BodyExceedsBurst {
            size: inflated,
            burst,
        });
    }
    Ok(inflated)
}

/// A decode slot, waiting for one up to the wait; refused and counted if
/// none came free.
async fn take_slot(state: &AppState) -> Result<DecodeSlot, PublishError> {
    state.decode_slots.acquire().await.map_err(|busy| {
        state
            .metrics
            .rate_limited
            .with_label_values(&[limit::DECODE_SLOTS])
            .inc();
        PublishError::IngestBusy {
            retry_after_secs: busy.waited.as_secs().max(1),
        }
    })
}

/// Runs `work` on the blocking pool and hands the slot back with its
/// result, for more work. The slot goes with the work and is freed when
/// the work ends, not when the request does: a client that hangs up
/// cannot leave more work running than there are slots.
async fn on_blocking_pool<R: Send + 'static>(
    slot: DecodeSlot,
    work: impl FnOnce() -> Result<R, PublishError> + Send + 'static,
) -> Result<(R, DecodeSlot), PublishError> {
    let done = tokio::task::spawn_blocking(move || work().map(|r| (r, slot))).await;
    match done {
        Ok(done) => done,
        // A panic in the parser: the request fails as it would have had it
        // run here.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is going away.
        Err(_) => Err(PublishError::ShuttingDown),
    }
}

/// Sends validated events to the registry, or in JetStream mode to the
/// cluster stream; their ids come back in order. With a claimed
/// `Idempotency-Key` the ids are remembered under it: the sending runs in
/// a task of its own, which completes the claim even if this request's
/// future is dropped (its client gone) once the events may be published.
pub async fn publish_events(
    state: &web::Data<AppState>,
    events: Vec<NewEvent>,
    claim: Option<Claim>,
) -> Result<Vec<EventId>, PublishError> {
    let Some(claim) = claim else {
        return send_events(state, events, None).await;
    };
    let state = web::Data::clone(state);
    let sending = actix_web::rt::spawn(async move {
        let ids = send_events(&state, events, Some(&claim.msg_id_base())).await?;
        claim.complete(&ids);
        Ok(ids)
    });
    match sending.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is going away.
        Err(_) => Err(PublishError::ShuttingDown),
    }
}

async fn send_events(
    state: &AppState,
    events: Vec<NewEvent>,
    msg_ids: Option<&str>,
) -> Result<Vec<EventId>, PublishError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(jetstream) = &state.jetstream {
        return jetstream.publish(&events, msg_ids).await.map_err(|e| {
            PublishError::NatsUnavailable {
                message: e.to_string(),
            }
        });
    }
    let (stored, on_disk) = tokio::sync::oneshot::channel();
    let ids = state
        .registry
        .send(Publish {
            events,
            origin: Origin::Local,
            stored: Some(stored),
        })
        .await
        .map_err(|_| PublishError::ShuttingDown)?
        .map_err(|_| PublishError::ShuttingDown)?;
    match on_disk.await {
        Ok(true) => Ok(ids),
        Ok(false) => Err(PublishError::StorageUnavailable),
        Err(_) => Err(PublishError::ShuttingDown),
    }
}
