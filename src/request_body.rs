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
use futures_util::{Stream, StreamExt};

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
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    read_stream(declared, payload, max).await
}

/// [`read_limited`] over any stream of chunks; `declared` is the
/// `Content-Length`, believed only for refusing early and sizing.
async fn read_stream<E: std::fmt::Display>(
    declared: Option<usize>,
    mut chunks: impl Stream<Item = Result<Bytes, E>> + Unpin,
    max: usize,
) -> Result<Bytes, BodyError> {
    if declared.is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge { max });
    }
    let read = async {
        let mut body = BytesMut::with_capacity(declared.unwrap_or(4096).min(max));
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
            if body.len() + chunk.len() > max {
                return Err(BodyError::TooLarge { max });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| BodyError::TimedOut)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    type Chunk = Result<Bytes, std::convert::Infallible>;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_coming_is_refused_at_the_deadline() {
        let first: Chunk = Ok(Bytes::from_static(b"{\"half\":"));
        let dripped = stream::iter([first]).chain(stream::pending());
        let e = read_stream(Some(100), dripped, 1 << 20).await.unwrap_err();
        assert!(matches!(e, BodyError::TimedOut), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_body_stops_at_the_limit() {
        let endless = stream::repeat_with(|| -> Chunk { Ok(Bytes::from_static(&[b'x'; 1024])) });
        let e = read_stream(None, endless, 64 * 1024).await.unwrap_err();
        assert!(
            matches!(e, BodyError::TooLarge { max } if max == 64 * 1024),
            "{e}"
        );
        let lying = stream::iter([Ok::<_, std::convert::Infallible>(Bytes::new())]);
        let e = read_stream(Some(1 << 30), lying, 64 * 1024)
            .await
            .unwrap_err();
        assert!(
            matches!(e, BodyError::TooLarge { .. }),
            "a declared length over the limit"
        );
    }

    #[tokio::test]
    async fn a_whole_body_is_read() {
        let parts: Vec<Chunk> = vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"c"))];
        let body = read_stream(Some(3), stream::iter(parts), 3).await.unwrap();
        assert_eq!(&body[..], b"abc");
    }
}
