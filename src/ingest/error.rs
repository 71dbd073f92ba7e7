//! Why a publish (or any event from outside) was refused: the one error
//! type of ingestion, its stable codes and its HTTP answer.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::auth::AuthError;
use crate::channel::ChannelError;
use crate::error::error_response;

/// Why a publish was refused. `index` names the refused element of a batch.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{}", at(*.index, format_args!("{message}")))]
    InvalidJson {
        index: Option<usize>,
        message: String,
    },
    #[error("{}", at(*.index, format_args!("{message}")))]
    InvalidEvent {
        index: Option<usize>,
        message: String,
    },
    #[error("{}", at(*.index, format_args!("{source}")))]
    InvalidChannel {
        index: Option<usize>,
        source: ChannelError,
    },
    #[error("{}", at(*.index, format_args!("unknown level {level:?}: use trace, debug, info, warn (warning), error (err) or fatal")))]
    InvalidLevel { index: Option<usize>, level: String },
    #[error("{}", at(*.index, format_args!("timestamp {value}: use RFC 3339 (2025-09-25T10:30:00Z) or epoch milliseconds")))]
    InvalidTimestamp { index: Option<usize>, value: String },
    #[error("{}", at(*.index, format_args!("this token publishes as service {token_service:?}, not {event_service:?}")))]
    ServiceMismatch {
        index: Option<usize>,
        token_service: String,
        event_service: String,
    },
    #[error("{}", at(*.index, format_args!("event is {size} bytes; the limit is {max}")))]
    EventTooLarge {
        index: Option<usize>,
        size: usize,
        max: usize,
    },
    #[error("request body is over the limit of {max} bytes")]
    BodyTooLarge { max: usize },
    #[error("{count} events in one request; the limit is {max}")]
    BatchTooLarge { count: usize, max: usize },
    #[error(
        "{count} events in one request is more than this service's rate limit lets through at once ({burst}, twice PUBLISH_RATE_PER_SEC); send smaller batches"
    )]
    BatchExceedsBurst { count: usize, burst: u64 },
    #[error(
        "this request is {size} bytes once decoded, more than this service's byte rate ever lets through at once ({burst}, twice PUBLISH_BYTES_PER_SEC); send smaller requests"
    )]
    BodyExceedsBurst { size: usize, burst: u64 },
    #[error("content type {found:?} is not supported here: send {expected}")]
    UnsupportedMediaType {
        found: String,
        expected: &'static str,
    },
    #[error("content encoding {0:?} is not supported: send gzip or an uncompressed body")]
    UnsupportedEncoding(String),
    /// The body could not be decoded: bad gzip, snappy or protobuf.
    #[error("{message}")]
    InvalidBody { message: String },
    #[error(
        "publish rate limit of this service reached; retry in {}s",
        retry_after_secs
    )]
    RateLimited { retry_after_secs: u64 },
    #[error(
        "publish byte rate of this service (PUBLISH_BYTES_PER_SEC) reached; retry in {}s",
        retry_after_secs
    )]
    BytesRateLimited { retry_after_secs: u64 },
    /// Every decode slot stayed taken for the whole wait.
    #[error(
        "the gateway is decoding as many large requests as it may at once; retry in {}s",
        retry_after_secs
    )]
    IngestBusy { retry_after_secs: u64 },
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// JetStream mode: the stream did not confirm the events in time.
    #[error("{message}")]
    NatsUnavailable { message: String },
    /// `HISTORY_FSYNC=always`: the events could not be put on disk (a full
    /// disk, I/O errors); none of them was delivered.
    #[error("the events could not be stored on disk; none was published, retry shortly")]
    StorageUnavailable,
    /// An `Idempotency-Key` header that is not 1–128 visible ASCII
    /// characters, or more than one.
    #[error("Idempotency-Key: {message}")]
    InvalidIdempotencyKey { message: String },
    /// The key was already used by this service, within its window, for
    /// another request (body, content type or route).
    #[error(
        "this Idempotency-Key was already used by this service for a different request; use a new key for new events"
    )]
    IdempotencyKeyReused,
    /// A request with the same key is still being published, past the
    /// wait for its outcome.
    #[error(
        "a request with this Idempotency-Key is still being published; retry in {retry_after_secs}s for its answer"
    )]
    IdempotencyKeyInUse { retry_after_secs: u64 },
}

impl From<crate::idempotency::InvalidKey> for PublishError {
    fn from(e: crate::idempotency::InvalidKey) -> Self {
        PublishError::InvalidIdempotencyKey { message: e.0 }
    }
}

impl From<crate::idempotency::Refused> for PublishError {
    fn from(e: crate::idempotency::Refused) -> Self {
        use crate::idempotency::Refused;
        match e {
            Refused::Reused => PublishError::IdempotencyKeyReused,
            Refused::InUse { retry_after_secs } => {
                PublishError::IdempotencyKeyInUse { retry_after_secs }
            }
        }
    }
}

/// Prefixes a batch element's message with its index.
fn at(index: Option<usize>, msg: std::fmt::Arguments<'_>) -> String {
    match index {
        Some(i) => format!("event {i}: {msg}"),
        None => msg.to_string(),
    }
}

impl PublishError {
    /// Every code [`PublishError::code`] can answer, for metrics that
    /// exist before their first refusal (a unit test holds the two together).
    pub const CODES: &'static [&'static str] = &[
        "missing_token",
        "invalid_token",
        "invalid_json",
        "invalid_event",
        "invalid_channel",
        "invalid_level",
        "invalid_timestamp",
        "service_mismatch",
        "event_too_large",
        "body_too_large",
        "batch_too_large",
        "batch_exceeds_burst",
        "body_exceeds_burst",
        "unsupported_media_type",
        "unsupported_encoding",
        "invalid_body",
        "rate_limited",
        "ingest_busy",
        "shutting_down",
        "nats_unavailable",
        "storage_unavailable",
        "invalid_idempotency_key",
        "idempotency_key_reused",
        "idempotency_key_in_use",
    ];

    /// The codes of a refused event, whatever its path (HTTP, NATS).
    pub const EVENT_CODES: &'static [&'static str] = &[
        "invalid_json",
        "invalid_event",
        "invalid_channel",
        "invalid_level",
        "invalid_timestamp",
        "event_too_large",
    ];

    /// The stable code of the JSON error body, also the metrics reason.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Auth(e) => e.code(),
            PublishError::InvalidJson { .. } => "invalid_json",
            PublishError::InvalidEvent { .. } => "invalid_event",
            PublishError::InvalidChannel { .. } => "invalid_channel",
            PublishError::InvalidLevel { .. } => "invalid_level",
            PublishError::InvalidTimestamp { .. } => "invalid_timestamp",
            PublishError::ServiceMismatch { .. } => "service_mismatch",
            PublishError::EventTooLarge { .. } => "event_too_large",
            PublishError::BodyTooLarge { .. } => "body_too_large",
            PublishError::BatchTooLarge { .. } => "batch_too_large",
            PublishError::BatchExceedsBurst { .. } => "batch_exceeds_burst",
            PublishError::BodyExceedsBurst { .. } => "body_exceeds_burst",
            PublishError::UnsupportedMediaType { .. } => "unsupported_media_type",
            PublishError::UnsupportedEncoding(_) => "unsupported_encoding",
            PublishError::InvalidBody { .. } => "invalid_body",
            PublishError::RateLimited { .. } | PublishError::BytesRateLimited { .. } => {
                "rate_limited"
            }
            PublishError::IngestBusy { .. } => "ingest_busy",
            PublishError::ShuttingDown => "shutting_down",
            PublishError::NatsUnavailable { .. } => "nats_unavailable",
            PublishError::StorageUnavailable => "storage_unavailable",
            PublishError::InvalidIdempotencyKey { .. } => "invalid_idempotency_key",
            PublishError::IdempotencyKeyReused => "idempotency_key_reused",
            PublishError::IdempotencyKeyInUse { .. } => "idempotency_key_in_use",
        }
    }

    /// The `Retry-After` a refusal carries: when retrying can succeed.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            PublishError::RateLimited { retry_after_secs }
            | PublishError::BytesRateLimited { retry_after_secs }
            | PublishError::IngestBusy { retry_after_secs }
            | PublishError::IdempotencyKeyInUse { retry_after_secs } => Some(*retry_after_secs),
            PublishError::ShuttingDown
            | PublishError::NatsUnavailable { .. }
            | PublishError::StorageUnavailable => Some(crate::error::RETRY_SOON_SECS),
            _ => None,
        }
    }

    /// `res` with the `WWW-Authenticate` challenge a refused token gets,
    /// whatever the shape of the error body.
    pub fn with_challenge(&self, res: HttpResponse) -> HttpResponse {
        match self {
            PublishError::Auth(e) => crate::error::with_bearer_challenge(
                res,
                !matches!(e, AuthError::MissingServiceToken),
            ),
            _ => res,
        }
    }

    /// The refused element of a batch, when the refusal names one.
    pub fn index(&self) -> Option<usize> {
        match self {
            PublishError::InvalidJson { index, .. }
            | PublishError::InvalidEvent { index, .. }
            | PublishError::InvalidChannel { index, .. }
            | PublishError::InvalidLevel { index, .. }
            | PublishError::InvalidTimestamp { index, .. }
            | PublishError::ServiceMismatch { index, .. }
            | PublishError::EventTooLarge { index, .. } => *index,
            _ => None,
        }
    }
}

impl ResponseError for PublishError {
    fn status_code(&self) -> StatusCode {
        match self {
            PublishError::Auth(_) => StatusCode::UNAUTHORIZED,
            PublishError::ServiceMismatch { .. } => StatusCode::FORBIDDEN,
            PublishError::EventTooLarge { .. }
            | PublishError::BodyTooLarge { .. }
            | PublishError::BatchTooLarge { .. }
            | PublishError::BatchExceedsBurst { .. }
            | PublishError::BodyExceedsBurst { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PublishError::UnsupportedMediaType { .. } | PublishError::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            PublishError::RateLimited { .. } | PublishError::BytesRateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            PublishError::ShuttingDown
            | PublishError::NatsUnavailable { .. }
            | PublishError::StorageUnavailable
            | PublishError::IngestBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PublishError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            PublishError::IdempotencyKeyInUse { .. } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let res = error_response(
            self.status_code(),
            self.code(),
            &self.to_string(),
            self.index(),
            self.retry_after_secs(),
        );
        self.with_challenge(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant. The match below has no wildcard, so a new
    /// variant does not compile until it is added here, and then the test
    /// holds `CODES` to its code.
    fn one_of_each() -> Vec<PublishError> {
        let index = None;
        let message = String::new();
        let all = vec![
            PublishError::Auth(AuthError::MissingServiceToken),
            PublishError::Auth(AuthError::UnknownServiceToken),
            PublishError::InvalidJson {
                index,
                message: message.clone(),
            },
            PublishError::InvalidEvent {
                index,
                message: message.clone(),
            },
            PublishError::InvalidChannel {
                index,
                source: ChannelError::Empty,
            },
            PublishError::InvalidLevel {
                index,
                level: message.clone(),
            },
            PublishError::InvalidTimestamp {
                index,
                value: message.clone(),
            },
            PublishError::ServiceMismatch {
                index,
                token_service: message.clone(),
                event_service: message.clone(),
            },
            PublishError::EventTooLarge {
                index,
                size: 2,
                max: 1,
            },
            PublishError::BodyTooLarge { max: 1 },
            PublishError::BatchTooLarge { count: 2, max: 1 },
            PublishError::BatchExceedsBurst { count: 2, burst: 1 },
            PublishError::BodyExceedsBurst { size: 2, burst: 1 },
            PublishError::UnsupportedMediaType {
                found: message.clone(),
                expected: "",
            },
            PublishError::UnsupportedEncoding(message.clone()),
            PublishError::InvalidBody {
                message: message.clone(),
            },
            PublishError::RateLimited {
                retry_after_secs: 1,
            },
            PublishError::BytesRateLimited {
                retry_after_secs: 1,
            },
            PublishError::IngestBusy {
                retry_after_secs: 1,
            },
            PublishError::ShuttingDown,
            PublishError::NatsUnavailable {
                message: message.clone(),
            },
            PublishError::StorageUnavailable,
            PublishError::InvalidIdempotencyKey { message },
            PublishError::IdempotencyKeyReused,
            PublishError::IdempotencyKeyInUse {
                retry_after_secs: 1,
            },
        ];
        for e in &all {
            match e {
                PublishError::Auth(_)
                | PublishError::InvalidJson { .. }
                | PublishError::InvalidEvent { .. }
                | PublishError::InvalidChannel { .. }
                | PublishError::InvalidLevel { .. }
                | PublishError::InvalidTimestamp { .. }
                | PublishError::ServiceMismatch { .. }
                | PublishError::EventTooLarge { .. }
                | PublishError::BodyTooLarge { .. }
                | PublishError::BatchTooLarge { .. }
                | PublishError::BatchExceedsBurst { .. }
                | PublishError::BodyExceedsBurst { .. }
                | PublishError::UnsupportedMediaType { .. }
                | PublishError::UnsupportedEncoding(_)
                | PublishError::InvalidBody { .. }
                | PublishError::RateLimited { .. }
                | PublishError::BytesRateLimited { .. }
                | PublishError::IngestBusy { .. }
                | PublishError::ShuttingDown
                | PublishError::NatsUnavailable { .. }
                | PublishError::StorageUnavailable
                | PublishError::InvalidIdempotencyKey { .. }
                | PublishError::IdempotencyKeyReused
                | PublishError::IdempotencyKeyInUse { .. } => {}
            }
        }
        all
    }

    #[test]
    fn codes_are_exactly_what_code_answers() {
        let mut answered: Vec<&str> = one_of_each().iter().map(PublishError::code).collect();
        answered.sort_unstable();
        answered.dedup();
        let mut listed = PublishError::CODES.to_vec();
        listed.sort_unstable();
        assert_eq!(answered, listed);
    }

    #[test]
    fn event_codes_are_codes_of_one_event() {
        for code in PublishError::EVENT_CODES {
            assert!(PublishError::CODES.contains(code), "{code}");
            let of_event = one_of_each().into_iter().any(|e| {
                e.code() == *code
                    && matches!(
                        e,
                        PublishError::InvalidJson { .. }
                            | PublishError::InvalidEvent { .. }
                            | PublishError::InvalidChannel { .. }
                            | PublishError::InvalidLevel { .. }
                            | PublishError::InvalidTimestamp { .. }
                            | PublishError::EventTooLarge { .. }
                    )
            });
            assert!(of_event, "{code} is not a refusal of one event");
        }
    }
}
