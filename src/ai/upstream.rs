//! One round with the model server: a chat-completions request out, the
//! answer (text, tool calls, usage) back, streamed or whole.
//!
//! The request is async-openai's type (`chat-completion-types` only). The
//! answer is read leniently into loggate's own types (`wire`): only the
//! fields loggate uses, none of them required, any `finish_reason`
//! accepted, since OpenRouter, Ollama, vLLM and llama.cpp's server each
//! differ from the spec somewhere. The transport is loggate's own reqwest
//! client, because the round has to be
//! bounded in ways async-openai's client is not: one deadline for the whole
//! chat, a cap on the bytes read (a whole answer, each streamed frame, the
//! stream in total), no retries of its own (a retry costs the caller money
//! and time the chat's deadline already counts). A failure is described by
//! its kind and the server's status, never by the server's body, which may
//! echo the prompt or hold anything.

use std::time::Duration;

use async_openai::types::chat::CreateChatCompletionRequest;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::metrics::label::ai as label;
use crate::sse_reader::FrameReader;

/// A whole (not streamed) answer is read this far and no further.
const MAX_ANSWER_BYTES: usize = 4 << 20;
/// One streamed frame.
const MAX_FRAME_BYTES: usize = 1 << 20;
/// A streamed answer, all frames together.
const MAX_STREAM_BYTES: usize = 8 << 20;
/// Tool calls taken from one answer; more are dropped.
pub const MAX_TOOL_CALLS: usize = 16;
/// One tool call's arguments.
const MAX_ARGUMENT_BYTES: usize = 64 << 10;

/// A tool call the model asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it (maybe not valid JSON).
    pub arguments: String,
}

/// Tokens the server reported for one round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

/// What the model answered in one round.
#[derive(Debug, Default)]
pub struct Round {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// `None` when the server did not say (then the agent estimates).
    pub usage: Option<Usage>,
    /// The model the server says answered.
    pub model: Option<String>,
    /// Why the server says the model stopped, as it said it (the last one
    /// a stream gave): `stop`, `length`, `tool_calls`, or anything else.
    pub finish_reason: Option<String>,
}

/// Why a round failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// The server answered with this non-success status.
    Status(u16),
    /// No answer: connection refused, reset, TLS, DNS.
    Transport(String),
    /// The chat's deadline passed while waiting.
    Timeout,
    /// The answer was not the chat-completions format.
    Garbage(&'static str),
    /// The answer was larger than loggate reads.
    TooLarge,
}

impl UpstreamError {
    /// The `reason` label of `ai_upstream_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Status(_) => label::STATUS,
            UpstreamError::Transport(_) => label::TRANSPORT,
            UpstreamError::Timeout => label::TIMEOUT,
            UpstreamError::Garbage(_) => label::GARBAGE,
            UpstreamError::TooLarge => label::TOO_LARGE,
        }
    }

    /// For the caller: what went wrong, never what the server said.
    pub fn describe(&self) -> String {
        match self {
            UpstreamError::Status(s) => format!("the model server answered HTTP {s}"),
            UpstreamError::Transport(e) => format!("the model server could not be reached: {e}"),
            UpstreamError::Timeout => "the model server did not answer in time".into(),
            UpstreamError::Garbage(what) => {
                format!("the model server's answer was not chat-completions JSON ({what})")
            }
            UpstreamError::TooLarge => "the model server's answer was too large".into(),
        }
    }
}

/// Where and how to reach the model server.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub api_key: crate::config::Secret,
}

impl Endpoint {
    pub fn new(base_url: &str, api_key: crate::config::Secret) -> Endpoint {
        Endpoint {
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
        }
    }
}

/// Sends one request and reads its answer by `deadline`. When the request
/// streams, `on_text` gets each piece of answer text as it arrives.
pub async fn complete(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    request: &CreateChatCompletionRequest,
    deadline: Instant,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Round, UpstreamError> {
    let send = client
        .post(&endpoint.url)
        .bearer_auth(endpoint.api_key.expose())
        // OpenRouter shows the calling app by these; others ignore them.
        .header("X-Title", "loggate")
        .header("HTTP-Referer", "https://github.com/loggate/loggate")
        .json(request)
        .send();
    let answer = tokio::time::timeout_at(deadline, send)
        .await
        .map_err(|_| UpstreamError::Timeout)?
        .map_err(|e| UpstreamError::Transport(transport_error(&e)))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(UpstreamError::Status(status.as_u16()));
    }
    if request.stream == Some(true) {
        read_stream(answer, deadline, on_text).await
    } else {
        read_whole(answer, deadline).await
    }
}

/// reqwest's error chain, without the URL (it may carry credentials).
fn transport_error(e: &reqwest::Error) -> String {
    let mut text = if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(300).collect()
}

async fn read_whole(answer: reqwest::Response, deadline: Instant) -> Result<Round, UpstreamError> {
    let mut body = Vec::new();
    let mut chunks = answer.bytes_stream();
    loop {
        let next = tokio::time::timeout_at(deadline, chunks.next())
            .await
            .map_err(|_| UpstreamError::Timeout)?;
        match next {
            None => break,
            Some(Err(e)) => return Err(UpstreamError::Transport(transport_error(&e))),
            Some(Ok(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(UpstreamError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
    let parsed: wire::Answer =
        serde_json::from_slice(&body).map_err(|_| UpstreamError::Garbage("unreadable answer"))?;
    let choice = parsed
        .choices
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or(UpstreamError::Garbage("no choices"))?;
    let message = choice.message.unwrap_or_default();
    let mut round = Round {
        content: message.text(),
        usage: parsed.usage.as_ref().and_then(wire::usage),
        model: parsed.model,
        finish_reason: choice.finish_reason,
        ..Round::default()
    };
    for (i, call) in message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if round.tool_calls.len() >= MAX_TOOL_CALLS {
            break;
        }
        let function = call.function.unwrap_or_default();
        let arguments = wire::arguments(function.arguments);
        if arguments.len() > MAX_ARGUMENT_BYTES {
            return Err(UpstreamError::TooLarge);
        }
        round.tool_calls.push(ToolCall {
            id: call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("call_{i}")),
            name: function.name.unwrap_or_default(),
            arguments,
        });
    }
    Ok(round)
}

async fn read_stream(
    answer: reqwest::Response,
    deadline: Instant,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Round, UpstreamError> {
    let mut round = Round::default();
    let mut calls = Calls::default();
    let mut frames = FrameReader::new(MAX_FRAME_BYTES);
    let mut read = 0usize;
    let mut chunks = answer.bytes_stream();
    let mut done = false;
    while !done {
        let next = tokio::time::timeout_at(deadline, chunks.next())
            .await
            .map_err(|_| UpstreamError::Timeout)?;
        let chunk = match next {
            // A stream that ends without [DONE] still ends the round:
            // some servers (older Ollama) do not send it.
            None => break,
            Some(Err(e)) => return Err(UpstreamError::Transport(transport_error(&e))),
            Some(Ok(c)) => c,
        };
        read += chunk.len();
        if read > MAX_STREAM_BYTES {
            return Err(UpstreamError::TooLarge);
        }
        let complete = frames.push(&chunk).map_err(|_| UpstreamError::TooLarge)?;
        for frame in complete {
            let data = frame.data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let piece: wire::Answer = serde_json::from_str(data)
                .map_err(|_| UpstreamError::Garbage("unreadable stream chunk"))?;
            if round.model.is_none() {
                round.model = piece.model;
            }
            if let Some(u) = piece.usage.as_ref().and_then(wire::usage) {
                round.usage = Some(u);
            }
            let Some(choice) = piece.choices.unwrap_or_default().into_iter().next() else {
                continue;
            };
            if let Some(reason) = choice.finish_reason {
                round.finish_reason = Some(reason);
            }
            let delta = choice.delta.or(choice.message).unwrap_or_default();
            let text = delta.text();
            if !text.is_empty() {
                if round.content.len() + text.len() > MAX_STREAM_BYTES {
                    return Err(UpstreamError::TooLarge);
                }
                on_text(&text);
                round.content.push_str(&text);
            }
            for (position, part) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                calls.add(position, part)?;
            }
        }
    }
    round.tool_calls = calls.finish();
    Ok(round)
}

/// A streamed answer's tool calls, put together from their pieces.
///
/// The spec keys each piece by `index`. Servers that leave it out
/// (older Ollama, which sends each call whole) are read by `id`: a piece
/// with an id not seen yet starts a call, one without continues the last.
#[derive(Default)]
struct Calls {
    /// (index, or the id when there was none; the call).
    calls: Vec<(CallKey, ToolCall)>,
}

#[derive(PartialEq, Eq)]
enum CallKey {
    Index(u64),
    Id(String),
}

impl Calls {
    fn add(&mut self, position: usize, part: wire::ToolCall) -> Result<(), UpstreamError> {
        let id = part.id.filter(|id| !id.is_empty());
        let key = match (part.index, &id) {
            (Some(i), _) => Some(CallKey::Index(i)),
            (None, Some(id)) => Some(CallKey::Id(id.clone())),
            // Neither: the continuation of the last call, or the first.
            (None, None) if self.calls.is_empty() => Some(CallKey::Index(position as u64)),
            (None, None) => None,
        };
        let at = match key {
            None => self.calls.len() - 1,
            Some(key) => match self.calls.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None if self.calls.len() < MAX_TOOL_CALLS => {
                    self.calls.push((key, ToolCall::default()));
                    self.calls.len() - 1
                }
                // Calls past the cap are dropped, as in a whole answer.
                None => return Ok(()),
            },
        };
        let call = &mut self.calls[at].1;
        if let Some(id) = id {
            call.id = id;
        }
        if let Some(f) = part.function {
            if let Some(name) = f.name {
                call.name.push_str(&name);
            }
            call.arguments.push_str(&wire::arguments(f.arguments));
        }
        if call.arguments.len() > MAX_ARGUMENT_BYTES || call.name.len() > 256 {
            return Err(UpstreamError::TooLarge);
        }
        Ok(())
    }

    fn finish(self) -> Vec<ToolCall> {
        let mut calls: Vec<ToolCall> = self.calls.into_iter().map(|(_, c)| c).collect();
        for (i, call) in calls.iter_mut().enumerate() {
            if call.id.is_empty() {
                call.id = format!("call_{i}");
            }
        }
        calls
    }
}

/// The parts of a chat-completions answer (whole, or one streamed chunk)
/// that loggate reads, and nothing else: servers differ in the rest.
/// OpenRouter adds `provider`, `native_finish_reason` and a
/// `finish_reason` of `error`; llama.cpp's server adds `timings` and may
/// leave out `id`, `created` and `usage`; vLLM adds `stop_reason` and
/// sends `"tool_calls": []`; Ollama may send a call without `index`.
/// Every field is optional here, and unknown ones are ignored: a missing
/// `choices` is "no choices", not "unreadable".
mod wire {
    use serde::Deserialize;
    use serde_json::Value;

    use super::Usage;

    #[derive(Debug, Default, Deserialize)]
    pub struct Answer {
        #[serde(default)]
        pub model: Option<String>,
        #[serde(default)]
        pub choices: Option<Vec<Choice>>,
        #[serde(default)]
        pub usage: Option<Value>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct Choice {
        #[serde(default)]
        pub message: Option<Message>,
        #[serde(default)]
        pub delta: Option<Message>,
        /// Any string: the spec's five, OpenRouter's `error`, or whatever
        /// a server says; passed on, never refused.
        #[serde(default)]
        pub finish_reason: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct Message {
        /// A string, or a list of parts (`{"type":"text","text":…}`).
        #[serde(default)]
        pub content: Option<Value>,
        #[serde(default)]
        pub tool_calls: Option<Vec<ToolCall>>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct ToolCall {
        #[serde(default)]
        pub index: Option<u64>,
        #[serde(default)]
        pub id: Option<String>,
        #[serde(default)]
        pub function: Option<Function>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct Function {
        #[serde(default)]
        pub name: Option<String>,
        /// JSON text as the spec says, or (some servers) the object itself.
        #[serde(default)]
        pub arguments: Option<Value>,
    }

    impl Message {
        /// The answer text, however it was sent.
        pub fn text(&self) -> String {
            match &self.content {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect(),
                _ => String::new(),
            }
        }
    }

    pub fn arguments(arguments: Option<Value>) -> String {
        match arguments {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
        }
    }

    /// Token counts, when the server gave at least one.
    pub fn usage(usage: &Value) -> Option<Usage> {
        let count = |name: &str| usage.get(name).and_then(Value::as_u64);
        let (prompt, completion) = (count("prompt_tokens"), count("completion_tokens"));
        if prompt.is_none() && completion.is_none() {
            return None;
        }
        Some(Usage {
            prompt: prompt.unwrap_or(0),
            completion: completion.unwrap_or(0),
        })
    }
}

/// The connect timeout of the model server's client; the chat's deadline
/// bounds everything else.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
