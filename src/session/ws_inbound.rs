//! What WebSocket clients send, read safely: frames decoded with a bound
//! on their declared size, subscribe/unsubscribe messages decoded with
//! short, plain refusals, and the handshake checks (a real upgrade, an
//! allowed `Origin`). Shared by `/api/logs/ws` and the `/metrics/ws`
//! dashboard.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, ProtocolError};
use actix_web::{HttpRequest, web};
use bytes::BytesMut;
use futures_util::Stream;
use serde::Deserialize;

use super::SubscribeError;

/// Largest frame a client may send; subscribe messages are small. A frame
/// that *declares* more is refused from its header, before its payload is
/// read.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// Longest excerpt of client input an error reply quotes.
const MAX_ECHO_CHARS: usize = 32;

/// A message a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Subscribe { channels: Vec<String> },
    Unsubscribe { channels: Vec<String> },
}

/// Why a client message was refused. The wording quotes at most a short,
/// truncated excerpt of what the client sent, and never the parser's own
/// diagnostics (which name Rust types and echo input in full).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientMessageError {
    #[error(
        "not JSON (column {column}): send {{\"type\":\"subscribe\"|\"unsubscribe\",\"channels\":[…]}}"
    )]
    NotJson { column: usize },
    #[error("unknown message type {0:?}: use subscribe or unsubscribe")]
    UnknownType(String),
    #[error(
        "expected {{\"type\":\"subscribe\"|\"unsubscribe\",\"channels\":[\"logs:…\"]}} and no other fields"
    )]
    WrongShape,
}

/// The fields of a client message, read before its type is known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    channels: Vec<String>,
}

/// Truncates client text that an error reply quotes.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Decodes one text frame of a client.
pub fn decode_client_message(text: &[u8]) -> Result<ClientMessage, ClientMessageError> {
    let raw: RawClientMessage<'_> = serde_json::from_slice(text).map_err(|e| {
        if e.is_data() {
            ClientMessageError::WrongShape
        } else {
            ClientMessageError::NotJson { column: e.column() }
        }
    })?;
    match raw.kind.as_ref() {
        "subscribe" => Ok(ClientMessage::Subscribe {
            channels: raw.channels,
        }),
        "unsubscribe" => Ok(ClientMessage::Unsubscribe {
            channels: raw.channels,
        }),
        other => Err(ClientMessageError::UnknownType(excerpt(other))),
    }
}

/// The payload length a frame header declares, once its header is in
/// `buf` (RFC 6455 §5.2: 7 bits, or 16 or 64 more after 126 or 127).
pub fn declared_payload_len(buf: &[u8]) -> Option<u64> {
    let len7 = buf.get(1)? & 0x7F;
    match len7 {
        126 => Some(u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]))),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            Some(u64::from_be_bytes(bytes))
        }
        n => Some(u64::from(n)),
    }
}

/// Client frames decoded from the request payload. Bounded: a frame may
/// declare at most [`MAX_CLIENT_FRAME`] bytes, so the buffer holds at most
/// one frame plus one read. After an error nothing more is read: the
/// payload is held unread, so actix stops reading the socket too (dropping
/// it would make actix read and discard whatever the client keeps sending).
pub struct ClientFrames {
    payload: web::Payload,
    codec: Codec,
    buf: BytesMut,
    done: bool,
    failed: bool,
}

impl ClientFrames {
    pub fn new(payload: web::Payload) -> Self {
        ClientFrames {
            payload,
            codec: Codec::new().max_size(MAX_CLIENT_FRAME),
            buf: BytesMut::new(),
            done: false,
            failed: false,
        }
    }

    fn fail(&mut self, e: ProtocolError) -> Poll<Option<Result<Frame, ProtocolError>>> {
        self.failed = true;
        self.buf = BytesMut::new();
        Poll::Ready(Some(Err(e)))
    }
}

/// The upgrade answer, or a 400 for a request that is not a handshake.
pub fn handshake(req: &HttpRequest) -> Result<actix_web::HttpResponseBuilder, SubscribeError> {
    actix_web_actors::ws::handshake(req)
        .map_err(|e| SubscribeError::InvalidParameter(format!("not a WebSocket handshake: {e}")))
}

/// Refuses a browser page from an origin outside a listed
/// `ALLOWED_ORIGINS` (browsers apply no CORS to WebSockets, so this is
/// where the list applies). No `Origin` header means no browser, and a
/// page served by the gateway itself (same host) is always allowed. With
/// `*` every origin passes here, and the cookie is what is refused: the
/// gate's `authorize` takes it only from the gateway's own or a listed
/// origin, so another site cannot open a WebSocket with a visitor's cookie
/// (cross-site WebSocket hijacking).
pub fn check_origin(
    req: &HttpRequest,
    auth: &crate::config::AuthConfig,
) -> Result<(), SubscribeError> {
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    if auth.any_origin()
        || auth
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    if crate::auth::is_own_origin(origin, super::gate::header(req, "host")) {
        return Ok(());
    }
    Err(SubscribeError::ForbiddenOrigin(excerpt(origin)))
}

impl Stream for ClientFrames {
    type Item = Result<Frame, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Pending;
            }
            if declared_payload_len(&this.buf).is_some_and(|n| n > MAX_CLIENT_FRAME as u64) {
                return this.fail(ProtocolError::Overflow);
            }
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Err(e) => return this.fail(e),
                Ok(None) if this.done => return Poll::Ready(None),
                Ok(None) => {}
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.buf.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(e))) => {
                    return this.fail(ProtocolError::Io(std::io::Error::other(e.to_string())));
                }
                Poll::Ready(None) => this.done = true,
            }
        }
    }
}
