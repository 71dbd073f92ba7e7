//! `POST /api/logs/chat` and `POST /chat`.
//!
//! Checks in this order, so that refusals cost little: AI switched on (503
//! `ai_disabled`), the body (bounded, JSON, known fields), the credential
//! and its grants over the requested channels (401/403, as for
//! subscribing), the caller's rate limit (429), a free chat slot (503
//! `ai_busy`). Then the agent runs; its answer is one JSON object, or with
//! `Accept: text/event-stream` a stream of `event: tool`, `event: token`
//! and a final `event: done` (or `event: error`). A streaming chat whose
//! model server fails before anything was sent still gets the plain 502.
//! Every chat ends with one audit log line: who (a digest), which tools,
//! tokens, outcome; never the question or the answer.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::agent::{self, Chat, Failed, Progress, Stop, Summary};
use super::tools::{Scope, ToolBox};
use super::{Ai, ChatError};
use crate::auth::Grants;
use crate::channel::ChannelPattern;
use crate::limits::CallerKey;
use crate::metrics::label::{ai as label, limit};
use crate::request_body::{BodyError, read_limited};
use crate::session::gate::parse_patterns;
use crate::session::{SubscribeError, authorize};
use crate::state::AppState;

/// A question's body beyond the question itself (the channel list).
const BODY_SLACK: usize = 16 * 1024;
/// Progress events waiting for a streaming client.
const PROGRESS_QUEUE: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatBody {
    message: String,
    #[serde(default)]
    channels: Option<Vec<String>>,
}

/// `POST /api/logs/chat`.
pub async fn chat(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    ai: web::Data<super::Ai>,
) -> Result<HttpResponse, ChatError> {
    let Some(endpoint) = ai.endpoint.clone() else {
        return Err(ChatError::Disabled);
    };
    if state
        .shutting_down
        .load(std::sync::atomic::Ordering::Acquire)
    {
        return Err(SubscribeError::ShuttingDown.into());
    }
    check_content_type(&req)?;
    let max = ai.config.max_message_bytes + BODY_SLACK;
    let body = read_limited(&req, payload, max)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { max } => ChatError::TooLarge { max },
            e => ChatError::InvalidRequest(e.to_string()),
        })?;
    let body: ChatBody = serde_json::from_slice(&body).map_err(|e| {
        ChatError::InvalidRequest(format!(
            "the body must be {{\"message\": \"…\", \"channels\": [\"logs:…\"]}}: {}",
            crate::ai::tools::clip(&e.to_string(), 200)
        ))
    })?;
    let question = body.message.trim();
    if question.is_empty() {
        return Err(ChatError::InvalidRequest("message is empty".into()));
    }
    if question.len() > ai.config.max_message_bytes {
        return Err(ChatError::InvalidRequest(format!(
            "message is {} bytes; at most {} are accepted",
            question.len(),
            ai.config.max_message_bytes
        )));
    }
    let requested = match &body.channels {
        Some(names) if !names.is_empty() => {
            let names: Vec<&str> = names.iter().map(|n| n.trim()).collect();
            Some(parse_patterns(&names, state.config.subscribe.max_channels)?)
        }
        _ => None,
    };
    let token = query_token(&req);
    let credential = authorize(
        &req,
        token.as_deref(),
        requested.as_deref().unwrap_or_default(),
        &state,
    )?;
    // The default is everything the credential grants.
    let patterns = match (requested, &credential.grants) {
        (Some(p), _) => p,
        (None, Grants::Patterns(granted)) => granted.clone(),
        (None, Grants::All) => vec![ChannelPattern::parse("logs:*").map_err(SubscribeError::from)?],
    };
    if patterns.is_empty() {
        return Err(ChatError::Subscribe(SubscribeError::MissingChannels));
    }
    let caller = caller_key(&req, &state);
    state.limits.check_chat(&caller).map_err(|limited| {
        let which = if limited.table_full {
            limit::CHAT_TABLE_FULL
        } else {
            limit::CHAT
        };
        state.metrics.rate_limited.with_label_values(&[which]).inc();
        ChatError::Subscribe(SubscribeError::RateLimited {
            retry_after_secs: limited.retry_after_secs(),
        })
    })?;
    let permit = ai
        .running
        .clone()
        .try_acquire_owned()
        .map_err(|_| ChatError::Busy {
            max: ai.config.max_concurrent,
        })?;

    let toolbox = ToolBox {
        history: state.history.clone(),
        redactor: ai.redactor.clone(),
        epoch: state.epoch(),
        scope: Scope::new(patterns),
        lines: ai.config.tools_return_lines,
        line_max: ai.config.line_max_bytes,
        result_max: ai.config.tool_result_max_bytes,
        started: state.started,
    };
    let audit = Audit {
        caller: hex::encode(&caller[..6]),
        channels: toolbox.scope.patterns().len(),
    };
    let streaming = wants_stream(&req);
    let (tx, rx) = if streaming {
        let (tx, rx) = mpsc::channel(PROGRESS_QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let chat = Chat {
        question: question.to_owned(),
        toolbox,
        config: ai.config.clone(),
        endpoint,
        client: ai.client.clone(),
        metrics: state.metrics.clone(),
        progress: tx,
    };
    let metrics = state.metrics.clone();
    let Some(mut rx) = rx else {
        let result = agent::run(chat).await;
        drop(permit);
        return match finish(&audit, &metrics, result) {
            Ok(summary) => Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .body(crate::event::json_string(&summary.to_json()))),
            Err(e) => Err(ChatError::Upstream(e.error)),
        };
    };

    // Streaming: the agent runs on its own task and reports through `rx`;
    // the end (done or error) comes through `end`.
    let (end_tx, mut end_rx) = tokio::sync::oneshot::channel();
    actix_web::rt::spawn(async move {
        let result = agent::run(chat).await;
        drop(permit);
        let _ = end_tx.send(finish(&audit, &metrics, result));
    });
    // Wait for the first sign of life: a model server that fails at once
    // gets its 502 as a status, not inside a 200 stream.
    let first = tokio::select! {
        p = rx.recv() => match p {
            Some(p) => First::Progress(p),
            // The agent dropped its sender: it has ended.
            None => First::End((&mut end_rx).await.ok()),
        },
        end = &mut end_rx => First::End(end.ok()),
    };
    let body = match first {
        First::End(Some(Err(failed))) => return Err(ChatError::Upstream(failed.error)),
        First::End(end) => {
            futures_util::stream::once(async move { Ok::<Bytes, actix_web::Error>(end_frame(end)) })
                .boxed_local()
        }
        First::Progress(p) => futures_util::stream::once(async move { Ok(progress_frame(&p)) })
            .chain(futures_util::stream::unfold(
                (rx, Some(end_rx)),
                |(mut rx, end_rx)| async move {
                    let end_rx = end_rx?;
                    match rx.recv().await {
                        Some(p) => Some((Ok(progress_frame(&p)), (rx, Some(end_rx)))),
                        None => Some((Ok(end_frame(end_rx.await.ok())), (rx, None))),
                    }
                },
            ))
            .boxed_local(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", HeaderValue::from_static("no")))
        .streaming(body))
}

enum First {
    Progress(Progress),
    End(Option<Result<Summary, Failed>>),
}

fn progress_frame(p: &Progress) -> Bytes {
    match p {
        Progress::Tool(v) => frame("tool", &v.to_string()),
        Progress::Token(t) => frame("token", &json!({ "text": t }).to_string()),
    }
}

fn end_frame(end: Option<Result<Summary, Failed>>) -> Bytes {
    match end {
        Some(Ok(summary)) => frame("done", &summary.to_json().to_string()),
        Some(Err(failed)) => {
            let e = ChatError::Upstream(failed.error);
            frame(
                "error",
                &json!({"error": {"code": e.code(), "message": e.to_string()}}).to_string(),
            )
        }
        None => frame(
            "error",
            &json!({"error": {"code": "internal", "message": "the chat ended without an answer"}})
                .to_string(),
        ),
    }
}

/// One SSE frame; `data` is one line of JSON. The model's words can
/// quote log lines, so the C1 controls and U+2028/9 leave escaped, as in
/// every other JSON loggate writes (`event::write_json`).
fn frame(event: &str, data: &str) -> Bytes {
    let data = crate::event::escape_json_text(data);
    let mut b = BytesMut::with_capacity(event.len() + data.len() + 16);
    b.extend_from_slice(b"event: ");
    b.extend_from_slice(event.as_bytes());
    b.extend_from_slice(b"\ndata: ");
    b.extend_from_slice(data.as_bytes());
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

/// Who and what of one chat, for its audit line.
struct Audit {
    caller: String,
    channels: usize,
}

/// Counts the chat and writes its audit line.
fn finish(
    audit: &Audit,
    metrics: &crate::metrics::Metrics,
    result: Result<Summary, Failed>,
) -> Result<Summary, Failed> {
    match &result {
        Ok(s) => {
            let outcome = s.stopped.map_or(label::ANSWERED, Stop::outcome);
            metrics.ai_chats.with_label_values(&[outcome]).inc();
            tracing::info!(
                target: "loggate::ai::audit",
                caller = %audit.caller,
                channels = audit.channels,
                tools = ?s.tools_called,
                rounds = s.rounds,
                prompt_tokens = s.prompt_tokens,
                completion_tokens = s.completion_tokens,
                redacted = s.redacted,
                outcome,
                stopped = s.stopped.map_or("", Stop::as_str),
                ms = s.processing_time_ms,
                "chat"
            );
        }
        Err(f) => {
            metrics
                .ai_chats
                .with_label_values(&[label::UPSTREAM_ERROR])
                .inc();
            tracing::warn!(
                target: "loggate::ai::audit",
                caller = %audit.caller,
                channels = audit.channels,
                tools = ?f.tools_called,
                outcome = label::UPSTREAM_ERROR,
                reason = f.error.reason(),
                "chat failed: {}",
                f.error.describe()
            );
        }
    }
    result
}

fn wants_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

fn check_content_type(req: &HttpRequest) -> Result<(), ChatError> {
    let Some(v) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = v.to_str().unwrap_or_default();
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(());
    }
    Err(ChatError::UnsupportedMediaType(
        text.chars().take(64).collect(),
    ))
}

/// `?token=` for clients that cannot set a header.
fn query_token(req: &HttpRequest) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("token").cloned())
}

/// The rate limit's key: a digest of the presented credential, or of the
/// client's address when none is needed (open mode) or none was sent.
fn caller_key(req: &HttpRequest, state: &AppState) -> CallerKey {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let query = query_token(req);
    let token = crate::auth::presented_subscriber_token(
        header("authorization"),
        query.as_deref(),
        header("cookie"),
        state.subscriber_auth.accepts_cookie(),
    );
    let digest = match token {
        Some(t) if !state.subscriber_auth.is_open() => crate::digest::sha256(t.as_bytes()),
        _ => {
            let ip = state.client_ip(req).map(crate::limits::AddressKey::from);
            crate::digest::sha256(format!("{ip:?}").as_bytes())
        }
    };
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

impl Ai {
    /// For `/health` and stats: whether chat is on, and where it goes.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "enabled": self.endpoint.is_some(),
            "model": self.config.model,
            "tools_return_lines": self.config.tools_return_lines,
        })
    }
}
