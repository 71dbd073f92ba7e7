//! The one JSON error body every boundary answers with:
//! `{"error":{"code":"…","message":"…"}}`, plus `index` for a refused batch
//! element.
//!
//! Each boundary has its own error enum (`PublishError`, `SubscribeError`,
//! …) that names its status and stable code; they all render through
//! [`error_response`], so the body's shape is defined here only. Messages
//! may quote what a client sent; the body is written by
//! `event::write_json`, so a C1 control in it reaches a terminal as text.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

/// `Retry-After` of refusals that pass soon (shutting down, the
/// connection cap): a client should come back in a few seconds, not hammer.
pub const RETRY_SOON_SECS: u64 = 5;

/// Builds the JSON error response. `retry_after` (seconds) becomes a
/// `Retry-After` header, as 429 and 503 answers carry.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    index: Option<usize>,
    retry_after: Option<u64>,
) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Some(secs) = retry_after {
        res.insert_header((header::RETRY_AFTER, secs.max(1).to_string()));
    }
    let body = crate::event::json_string(&Body {
        error: Detail {
            code,
            message,
            index,
        },
    });
    res.content_type("application/json").body(body)
}

/// Adds the RFC 6750 challenge a 401 carries, so clients know a bearer
/// token is what is wanted (and, when one was sent, that it was refused).
pub fn with_bearer_challenge(mut res: HttpResponse, token_refused: bool) -> HttpResponse {
    let value = if token_refused {
        HeaderValue::from_static("Bearer realm=\"loggate\", error=\"invalid_token\"")
    } else {
        HeaderValue::from_static("Bearer realm=\"loggate\"")
    };
    res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    res
}

/// An error that is not tied to one boundary: unknown routes, bad query
/// strings, anything actix itself refuses before a handler runs.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let res = error_response(self.status, self.code, &self.message, None, None);
        if self.status == StatusCode::UNAUTHORIZED {
            return with_bearer_challenge(res, self.code != "missing_token");
        }
        res
    }
}
