//! The one path every HTTP ingest endpoint takes (`/api/logs/publish`,
//! OTLP's `/v1/logs`, Loki's push): token, content type, body under its
//! limit and deadline (`crate::body`; decompressed under the same limit),
//! the endpoint's own parser, the publish rate limit, the registry, the
//! metrics. The endpoints differ only in how they read a body and how they
//! word a refusal.

use std::io::Read;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use bytes::Bytes;

use super::{Limits, PublishError, Received};
use crate::auth::{Schemes, presented_service_token};
use crate::body::{BodyError, read_limited};
use crate::event::{EventId, NewEvent};
use crate::registry::{Origin, Publish};
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

/// How the body is compressed (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Not compressed, or compressed in a way the parser itself undoes
    /// (Loki's snappy).
    Identity,
    Gzip,
    /// zlib, which is what HTTP's `deflate` means.
    Deflate,
}

/// The request's `Content-Encoding`; `own` names encodings the endpoint's
/// parser undoes itself.
fn content_encoding(req: &HttpRequest, own: &[&str]) -> Result<Encoding, PublishError> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("?").trim();
    match text.to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        e if own.contains(&e) => Ok(Encoding::Identity),
        _ => Err(PublishError::UnsupportedEncoding(
            text.chars().take(64).collect(),
        )),
    }
}

/// Everything `decoder` reads, refused as soon as it passes `max` bytes:
/// the body limit holds for what is parsed, so a small bomb costs no more
/// than a body at the limit.
fn inflate(decoder: impl Read, name: &str, hint: usize, max: usize) -> Result<Bytes, PublishError> {
    let mut out = Vec::with_capacity(hint.saturating_mul(4).min(max));
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| PublishError::InvalidBody {
            message: format!("the body is not valid {name}: {e}"),
        })?;
    if out.len() > max {
        return Err(PublishError::BodyTooLarge { max });
    }
    Ok(Bytes::from(out))
}

/// A gzip body inflated, refused as soon as it passes `max` bytes.
pub fn gunzip(body: &[u8], max: usize) -> Result<Bytes, PublishError> {
    inflate(
        flate2::read::MultiGzDecoder::new(body),
        "gzip",
        body.len(),
        max,
    )
}

/// How an endpoint reads its requests.
pub struct Endpoint<F, P> {
    /// The metrics `source`.
    pub source: &'static str,
    /// Where the token may be shown.
    pub schemes: Schemes,
    pub limits: RequestLimits,
    /// Picks the body format from the request; asked after the token is
    /// checked, so an unknown caller learns nothing about formats.
    pub format: F,
    /// `Content-Encoding`s the parser undoes itself.
    pub own_encodings: &'static [&'static str],
    /// Turns the body into validated events, all or none.
    pub parse: P,
}

/// One ingest request from its token to the registry's answer: the body
/// read and decompressed under the limit, parsed by the endpoint, the rate
/// limit, then every event published together or none. Refusals are
/// counted under the endpoint's `source`.
pub async fn ingest<T, F, P>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    endpoint: Endpoint<F, P>,
) -> Result<Vec<EventId>, PublishError>
where
    F: FnOnce(&HttpRequest) -> Result<T, PublishError>,
    P: FnOnce(T, &[u8], &ParseInput<'_>) -> Result<Vec<NewEvent>, PublishError>,
{
    let source = endpoint.source;
    let result = async {
        if state.is_shutting_down() {
            return Err(PublishError::ShuttingDown);
        }
        let token = presented_service_token(req.headers(), endpoint.schemes)?;
        let service = state.tokens.authenticate(token.as_deref())?;
        let format = (endpoint.format)(req)?;
        let encoding = content_encoding(req, endpoint.own_encodings)?;
        let max = endpoint.limits.max_body_bytes;
        let mut body = read_limited(req, payload, max).await.map_err(|e| match e {
            BodyError::TooLarge { max } => PublishError::BodyTooLarge { max },
            e => PublishError::InvalidBody {
                message: e.to_string(),
            },
        })?;
        body = match encoding {
            Encoding::Identity => body,
            Encoding::Gzip => gunzip(&body, max)?,
            Encoding::Deflate => inflate(
                flate2::read::ZlibDecoder::new(&body[..]),
                "deflate (zlib)",
                body.len(),
                max,
            )?,
        };
        let received = Received::now();
        let input = ParseInput {
            service,
            received: &received,
            limits: endpoint.limits.events,
            body_limit: max,
        };
        let events = (endpoint.parse)(format, &body, &input)?;
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

/// Sends validated events to the registry, or in JetStream mode to the
/// cluster stream; their ids come back in order.
pub async fn publish_events(
    state: &AppState,
    events: Vec<NewEvent>,
) -> Result<Vec<EventId>, PublishError> {
    if let Some(stream) = &state.stream {
        return stream
            .publish(&events)
            .await
            .map_err(|message| PublishError::NatsUnavailable { message });
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gunzip_inflates_up_to_the_limit_and_no_further() {
        let data = vec![b'a'; 10_000];
        let packed = gzip(&data);
        assert_eq!(gunzip(&packed, 10_000).unwrap().len(), 10_000);
        assert!(matches!(
            gunzip(&packed, 9_999),
            Err(PublishError::BodyTooLarge { max: 9_999 })
        ));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // 100 MiB of zeros packs into about 100 KiB.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 200 * 1024);
        assert!(matches!(
            gunzip(&bomb, 1 << 20),
            Err(PublishError::BodyTooLarge { .. })
        ));
    }

    #[test]
    fn bad_gzip_is_invalid_body() {
        let e = gunzip(b"not gzip at all", 1 << 20).unwrap_err();
        assert_eq!(e.code(), "invalid_body");
        let mut truncated = gzip(b"hello world, hello world");
        truncated.truncate(truncated.len() / 2);
        assert_eq!(
            gunzip(&truncated, 1 << 20).unwrap_err().code(),
            "invalid_body"
        );
    }
}
