//! Request bodies read under a byte limit and a deadline, for every
//! handler that reads one whole (ingest, AI chat). A lying
//! `Content-Length` cannot make it read more, and a client that drips its
//! body cannot hold the request open for longer than the deadline.
//! Handlers map [`BodyError`] onto their own error type.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

/// How long a whole body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is over the limit of {max} bytes")]
    TooLarge { max: usize },
    #[error("could not read the request body: {0}")]
    Read(String),
    #[error("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs())]
    TimedOut,
}

/// Reads the whole body, refusing as soon as it passes `max` bytes or
/// takes longer than [`BODY_TIMEOUT`].
pub async fn read_limited(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
) -> Result<Bytes, BodyError> {
    tokio::time::timeout(BODY_TIMEOUT, read(req, payload, max))
        .await
        .map_err(|_| BodyError::TimedOut)?
}

async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge { max });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(4096).min(max));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge { max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
