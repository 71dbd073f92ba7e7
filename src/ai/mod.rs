//! AI log analysis: `POST /api/logs/chat` (and `/chat`) answers a question
//! about the caller's logs with a tool-calling model on any
//! OpenAI-compatible server (OpenRouter, OpenAI, Ollama, vLLM).
//!
//! - [`http`]: the endpoint: body, auth and grants (as for subscribing),
//!   the per-caller rate limit, the JSON or `text/event-stream` answer,
//!   the audit log line.
//! - [`agent`]: the bounded loop of model rounds and tool calls.
//! - [`tools`]: what the model may call, one type per tool, fenced to the
//!   chat's channels.
//! - [`upstream`]: one round on the wire, bounded in bytes and time.
//! - [`redact`] and [`template`]: what leaves the building, and how
//!   messages group into patterns.
//!
//! It reads history directly (`SharedHistory`) and metrics; it never sends
//! to the registry, so a chat cannot occupy the registry's mailbox.

pub mod agent;
pub mod http;
pub mod redact;
pub mod template;
pub mod tools;
pub mod upstream;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use tokio::sync::Semaphore;

use crate::config::{AiConfig, ConfigError};
use crate::error::{RETRY_SOON_SECS, error_response};
use crate::session::SubscribeError;
use redact::Redactor;
use upstream::{Endpoint, UpstreamError};

/// What every chat shares: the settings, the model server's client, the
/// redactor, and the bound on chats at once.
pub struct Ai {
    pub config: Arc<AiConfig>,
    pub endpoint: Option<Endpoint>,
    pub client: reqwest::Client,
    pub redactor: Arc<Redactor>,
    pub running: Arc<Semaphore>,
}

impl Ai {
    pub fn new(config: &AiConfig) -> Result<Ai, ConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(upstream::CONNECT_TIMEOUT)
            // The key goes only to the configured server, never on to
            // wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::new("ai.base_url (AI_BASE_URL)", e.to_string()))?;
        let endpoint = config
            .api_key
            .clone()
            .filter(|_| config.enabled)
            .map(|key| Endpoint::new(&config.base_url, key));
        Ok(Ai {
            config: Arc::new(config.clone()),
            endpoint,
            client,
            redactor: Arc::new(Redactor::new()),
            running: Arc::new(Semaphore::new(config.max_concurrent)),
        })
    }
}

/// Why a chat was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(
        "AI analysis is off on this gateway: set OPENROUTER_API_KEY (or AI_API_KEY), and ai.enabled"
    )]
    Disabled,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is over {max} bytes")]
    TooLarge { max: usize },
    #[error("send the question as application/json, not {0:?}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    #[error("{max} chats are running; try again shortly")]
    Busy { max: usize },
    #[error("{}", .0.describe())]
    Upstream(UpstreamError),
}

impl ChatError {
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::Disabled => "ai_disabled",
            ChatError::InvalidRequest(_) => "invalid_request",
            ChatError::TooLarge { .. } => "payload_too_large",
            ChatError::UnsupportedMediaType(_) => "unsupported_media_type",
            ChatError::Subscribe(e) => e.code(),
            ChatError::Busy { .. } => "ai_busy",
            ChatError::Upstream(_) => "ai_upstream",
        }
    }
}

impl ResponseError for ChatError {
    fn status_code(&self) -> StatusCode {
        match self {
            ChatError::Disabled | ChatError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ChatError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ChatError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ChatError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ChatError::Subscribe(e) => e.status_code(),
            ChatError::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            // Its own rendering: Retry-After and the bearer challenge.
            ChatError::Subscribe(e) => e.error_response(),
            ChatError::Busy { .. } => error_response(
                self.status_code(),
                self.code(),
                &self.to_string(),
                None,
                Some(RETRY_SOON_SECS),
            ),
            _ => error_response(
                self.status_code(),
                self.code(),
                &self.to_string(),
                None,
                None,
            ),
        }
    }
}
