//! The `Idempotency-Key` header and the digest of a request: what the
//! table is asked with. Pure functions of the request; no state.

use actix_web::http::header::HeaderMap;
use sha2::Digest as _;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The longest key, in characters (each one byte: visible ASCII).
pub const MAX_KEY_LEN: usize = 128;

/// An `Idempotency-Key` header that is not one key: answered
/// `400 invalid_idempotency_key` with this message, which never quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key: {0}")]
pub struct InvalidKey(pub String);

/// SHA-256 of what makes two requests the same request.
pub type Digest = [u8; 32];

/// A checked `Idempotency-Key`: 1 to [`MAX_KEY_LEN`] visible ASCII
/// characters (`!` to `~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(Box<str>);

impl Key {
    /// The key in `bytes`, or why it is not one.
    pub fn parse(bytes: &[u8]) -> Result<Key, InvalidKey> {
        if bytes.is_empty() {
            return Err(InvalidKey(format!(
                "is empty; send 1 to {MAX_KEY_LEN} visible ASCII characters"
            )));
        }
        if bytes.len() > MAX_KEY_LEN {
            return Err(InvalidKey(format!(
                "is {} bytes long; the limit is {MAX_KEY_LEN} visible ASCII characters",
                bytes.len()
            )));
        }
        if let Some(at) = bytes.iter().position(|b| !b.is_ascii_graphic()) {
            return Err(InvalidKey(format!(
                "byte {at} is not a visible ASCII character (! to ~; no spaces, control or non-ASCII characters)"
            )));
        }
        // Every byte is ASCII, so this is the same text.
        Ok(Key(String::from_utf8_lossy(bytes).into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The request's `Idempotency-Key`, if it sent one; more than one, or
/// one that is not a [`Key`], is refused.
pub fn key_of(headers: &HeaderMap) -> Result<Option<Key>, InvalidKey> {
    let mut values = headers.get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(InvalidKey("sent more than once; send one key".into()));
    }
    Key::parse(value.as_bytes()).map(Some)
}

/// What tells one request from another under the same key: the route,
/// the content type and the body bytes (as the parser reads them, so after
/// `Content-Encoding` is undone). Each part is length-prefixed, so no two
/// different requests run together into one input.
pub fn digest(route: &str, content_type: &str, body: &[u8]) -> Digest {
    let mut h = sha2::Sha256::new();
    for part in [route.as_bytes(), content_type.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    h.finalize().into()
}
