//! Authentication and authorisation: who may publish, who may read what.
//!
//! Owns two checks and the one error type they share:
//! - [`ServiceTokens`]: a publisher's token → its service, compared as
//!   SHA-256 digests in constant time (tokens may be configured as digests,
//!   so a config file can be committed without secrets).
//! - [`SubscriberAuth`]: a subscriber's JWT (HS256, RS256 or ES256, one
//!   algorithm fixed by configuration) or static `AUTH_TOKEN` → [`Grants`],
//!   and whether those grants cover every channel a request can match.
//!
//! It knows nothing of HTTP beyond which token a request presents; handlers
//! map [`AuthError`] to 401/403. Tokens never appear in logs or errors.

mod admin;
mod service;
mod subscriber;

pub use admin::AdminToken;
pub use service::{Schemes, ServiceTokens, presented_service_token};
pub use subscriber::{
    Claims, Credential, Grants, PageOrigin, SubscriberAuth, is_own_origin, mint_hs256,
    presented_subscriber_token,
};

/// Longest token looked at; anything longer is refused before parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a request was not authenticated or not authorised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing service token: send X-Service-Token or Authorization: Bearer")]
    MissingServiceToken,
    #[error("unknown service token")]
    UnknownServiceToken,
    #[error("missing token: send Authorization: Bearer, ?token= or cookie loggate_token")]
    MissingToken,
    /// Only the cookie was sent, from a page that may not use it.
    #[error(
        "missing token: cookie loggate_token is not accepted from this page's origin (only from the gateway's own pages and origins listed in ALLOWED_ORIGINS); send Authorization: Bearer or ?token="
    )]
    CookieNotAccepted,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("channel {0:?} is not granted by this token")]
    NotGranted(String),
}

impl AuthError {
    /// The stable code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingServiceToken
            | AuthError::MissingToken
            | AuthError::CookieNotAccepted => "missing_token",
            AuthError::UnknownServiceToken | AuthError::InvalidToken(_) => "invalid_token",
            AuthError::NotGranted(_) => "forbidden_channel",
        }
    }

    /// 401 for no or bad credentials, 403 for good credentials that do not
    /// reach far enough.
    pub fn status(&self) -> actix_web::http::StatusCode {
        match self {
            AuthError::NotGranted(_) => actix_web::http::StatusCode::FORBIDDEN,
            _ => actix_web::http::StatusCode::UNAUTHORIZED,
        }
    }
}
