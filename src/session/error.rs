//! Why a subscription (stream, WebSocket, history) was refused before it
//! started, and how each refusal is answered.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::auth::AuthError;
use crate::channel::ChannelError;
use crate::error::{RETRY_SOON_SECS, error_response, with_bearer_challenge};
use crate::limits::slots::SlotRefused;

/// Why a subscription was refused before its stream started.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("missing channels: pass ?channels=logs:{{service}}[:{{workspace}}[:{{resource}}]],…")]
    MissingChannels,
    #[error("{requested} channels requested; at most {max} per connection")]
    TooManyChannels { requested: usize, max: usize },
    #[error(transparent)]
    InvalidChannel(#[from] ChannelError),
    #[error("unknown level {0:?}: use trace, debug, info, warn, error or fatal")]
    InvalidLevel(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error(
        "Last-Event-ID {0:?} is not an event id of this gateway (ids look like 019ab2c3d4e5-000000000042)"
    )]
    InvalidLastEventId(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("too many new connections from this address; retry in {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the gateway holds its maximum of {0} subscriber connections; retry later")]
    ConnectionLimit(usize),
    #[error("this address holds its maximum of {0} subscriber connections; close one first")]
    AddressConnectionLimit(usize),
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("origin {0:?} is not in ALLOWED_ORIGINS")]
    ForbiddenOrigin(String),
}

impl From<SlotRefused> for SubscribeError {
    fn from(refused: SlotRefused) -> Self {
        match refused {
            SlotRefused::Full(max) => SubscribeError::ConnectionLimit(max),
            SlotRefused::AddressFull(max) => SubscribeError::AddressConnectionLimit(max),
        }
    }
}

impl SubscribeError {
    pub fn code(&self) -> &'static str {
        match self {
            SubscribeError::MissingChannels => "missing_channels",
            SubscribeError::TooManyChannels { .. } => "too_many_channels",
            SubscribeError::InvalidChannel(_) => "invalid_channel",
            SubscribeError::InvalidLevel(_) => "invalid_level",
            SubscribeError::InvalidLastEventId(_) => "invalid_last_event_id",
            SubscribeError::InvalidParameter(_) => "invalid_query",
            SubscribeError::Auth(e) => e.code(),
            SubscribeError::RateLimited { .. } => "rate_limited",
            SubscribeError::ConnectionLimit(_) => "connection_limit",
            SubscribeError::AddressConnectionLimit(_) => "address_connection_limit",
            SubscribeError::ShuttingDown => "shutting_down",
            SubscribeError::ForbiddenOrigin(_) => "forbidden_origin",
        }
    }
}

impl ResponseError for SubscribeError {
    fn status_code(&self) -> StatusCode {
        match self {
            SubscribeError::ConnectionLimit(_) | SubscribeError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SubscribeError::Auth(e) => e.status(),
            SubscribeError::ForbiddenOrigin(_) => StatusCode::FORBIDDEN,
            SubscribeError::RateLimited { .. } | SubscribeError::AddressConnectionLimit(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let retry = match self {
            SubscribeError::ConnectionLimit(_)
            | SubscribeError::AddressConnectionLimit(_)
            | SubscribeError::ShuttingDown => Some(RETRY_SOON_SECS),
            SubscribeError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let res = error_response(
            self.status_code(),
            self.code(),
            &self.to_string(),
            None,
            retry,
        );
        match self {
            SubscribeError::Auth(e) if self.status_code() == StatusCode::UNAUTHORIZED => {
                with_bearer_challenge(
                    res,
                    !matches!(e, AuthError::MissingToken | AuthError::CookieNotAccepted),
                )
            }
            _ => res,
        }
    }
}
