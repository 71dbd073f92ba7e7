//! The agent loop: ask the model, run the tools it calls, give it their
//! results, until it answers or a bound stops it.
//!
//! The question is redacted like the log lines before it goes anywhere
//! (people paste what they are looking at, secrets and all), and counts
//! in the answer's `redacted`.
//!
//! Bounds, each ending the chat cleanly with what the model has said so
//! far (`stopped` names which): `max_tool_rounds` rounds that may call
//! tools (then one last round with tools switched off, asking for the
//! answer), `max_total_tokens` over all rounds (the server's count, or an
//! estimate of a quarter token per byte when it gives none), and the
//! chat's deadline. A round's tool calls are capped
//! ([`upstream::MAX_TOOL_CALLS`]); a tool the model makes up gets an error
//! result it can correct, counted as `unknown`.
//!
//! The model server's `finish_reason` is passed on as it came
//! (`finish_reason` in the answer, beside `stopped`, which names loggate's
//! own bounds). Any value ends a round like `stop`, the spec's five and
//! the ones it does not list (OpenRouter's `error` when a provider fails
//! midway): whether the chat goes on depends only on whether the round
//! called tools, and what the model said before is the answer.
//!
//! Tools run on tokio's blocking pool: an aggregation over tens of
//! thousands of events must not hold an HTTP worker. Progress goes to an
//! optional bounded channel (the streaming answer): a client that stops
//! reading stalls its own chat, and one that leaves ends it.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestUserMessage, ChatCompletionStreamOptions, ChatCompletionToolChoiceOption,
    CreateChatCompletionRequest, FunctionCall, ToolChoiceOptions,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::tools::{self, ToolBox};
use super::upstream::{self, Endpoint, Round, UpstreamError};
use crate::config::AiConfig;
use crate::metrics::Metrics;
use crate::metrics::label::ai as label;

/// What a streaming chat tells its client, in order.
#[derive(Debug)]
pub enum Progress {
    /// A tool call, with what it returned.
    Tool(Value),
    /// A piece of answer text.
    Token(String),
}

/// The bound that ended a chat before the model answered on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Asked to answer without tools, the model called tools again.
    MaxToolRounds,
    /// `max_total_tokens` over all rounds was reached.
    TokenBudget,
    /// The chat's deadline passed.
    Timeout,
    /// The streaming client went away.
    Cancelled,
}

impl Stop {
    /// `stopped` in the answer and the audit line.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::MaxToolRounds => "max_tool_rounds",
            Stop::TokenBudget => "token_budget",
            Stop::Timeout => "timeout",
            Stop::Cancelled => "cancelled",
        }
    }

    /// The `outcome` of `ai_chats_total`: a client that left is not a
    /// bound reached.
    pub fn outcome(self) -> &'static str {
        match self {
            Stop::Cancelled => label::CANCELLED,
            _ => label::STOPPED,
        }
    }

    /// Why, in the words of a partial answer.
    fn why(self) -> &'static str {
        match self {
            Stop::Timeout => "the time allowed for one chat ran out",
            Stop::TokenBudget => "the token budget of one chat was used up",
            Stop::Cancelled => "the client went away",
            Stop::MaxToolRounds => "the model kept calling tools past the limit of rounds",
        }
    }
}

/// A finished chat: the contract's answer, and what the audit log needs.
#[derive(Debug)]
pub struct Summary {
    pub response: String,
    pub model: String,
    pub tools_called: Vec<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub processing_time_ms: u64,
    pub redacted: usize,
    pub rounds: usize,
    /// Which bound ended the chat, when one did.
    pub stopped: Option<Stop>,
    /// Why the model server says the last round ended, as it said it
    /// (`stop`, `length`, `tool_calls`, OpenRouter's `error`, …).
    pub finish_reason: Option<String>,
    /// Event ids the answer names that tools returned.
    pub cited_ids: Vec<String>,
}

impl Summary {
    pub fn to_json(&self) -> Value {
        json!({
            "response": self.response,
            "model": self.model,
            "tools_called": self.tools_called,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
            "processing_time_ms": self.processing_time_ms,
            "redacted": self.redacted,
            "stopped": self.stopped.map(Stop::as_str),
            "finish_reason": self.finish_reason,
            "cited_ids": self.cited_ids,
        })
    }
}

/// A chat that failed: the model server did, before or after progress.
#[derive(Debug)]
pub struct Failed {
    pub error: UpstreamError,
    /// Tool calls made before it failed (for the audit log).
    pub tools_called: Vec<String>,
}

/// One chat's inputs.
pub struct Chat {
    pub question: String,
    pub toolbox: ToolBox,
    pub config: Arc<AiConfig>,
    pub endpoint: Endpoint,
    pub client: reqwest::Client,
    pub metrics: Arc<Metrics>,
    /// Set for a streaming answer.
    pub progress: Option<mpsc::Sender<Progress>>,
}

fn system_prompt(toolbox: &ToolBox, now: &str) -> String {
    let channels: Vec<&str> = toolbox
        .scope
        .patterns()
        .iter()
        .map(|p| p.as_str())
        .collect();
    let lines = if toolbox.lines {
        "search_logs and get_context return log lines; each line has an id."
    } else {
        "This gateway sends no log lines to you: only counts and message patterns."
    };
    format!(
        "You are loggate's log analyst. loggate is a real-time log gateway; you answer questions \
         about the logs of the channels {channels} (channel names are logs:SERVICE:WORKSPACE:RESOURCE) \
         using the tools, which read the gateway's recent history (it holds recent events only). \
         The time now is {now}. {lines} Start broad (top_patterns, count_by), then narrow. \
         When you refer to an event, give its id in backticks, e.g. `{example}`. \
         Secrets in the logs were replaced by placeholders such as [REDACTED:email]; never guess them. \
         Answer concisely in Markdown; say plainly when the history holds nothing relevant.",
        channels = channels.join(", "),
        example = "00006569c5a0-000000000042",
    )
}

/// Runs the chat to its end.
pub async fn run(chat: Chat) -> Result<Summary, Failed> {
    let started = Instant::now();
    let cfg = &chat.config;
    let deadline = started + std::time::Duration::from_secs(cfg.timeout_secs);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // The question leaves the building too, under the same rules as the
    // log lines: people paste what they are looking at.
    let (question, redacted) = chat.toolbox.redactor.text(&chat.question);
    chat.metrics.ai_redactions.inc_by(redacted as u64);
    let mut messages: Vec<ChatCompletionRequestMessage> = vec![
        ChatCompletionRequestSystemMessage::from(system_prompt(&chat.toolbox, &now)).into(),
        ChatCompletionRequestUserMessage::from(&*question).into(),
    ];
    let definitions = tools::definitions(chat.toolbox.lines);
    let streaming = chat.progress.is_some();
    let mut s = Summary {
        response: String::new(),
        model: cfg.model.clone(),
        tools_called: Vec::new(),
        prompt_tokens: 0,
        completion_tokens: 0,
        processing_time_ms: 0,
        redacted,
        rounds: 0,
        stopped: None,
        finish_reason: None,
        cited_ids: Vec::new(),
    };
    let mut seen_ids: BTreeSet<String> = BTreeSet::new();
    // Everything the model said, for a partial answer.
    let mut said = String::new();
    let mut gone = false;
    loop {
        let tool_round = s.rounds < cfg.max_tool_rounds;
        let request = CreateChatCompletionRequest {
            model: cfg.model.clone(),
            messages: messages.clone(),
            tools: Some(definitions.clone()),
            tool_choice: Some(ChatCompletionToolChoiceOption::Mode(if tool_round {
                ToolChoiceOptions::Auto
            } else {
                ToolChoiceOptions::None
            })),
            max_completion_tokens: Some(cfg.max_completion_tokens),
            stream: streaming.then_some(true),
            stream_options: streaming.then_some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            ..Default::default()
        };
        let request_bytes = serde_json::to_vec(&request).map_or(0, |b| b.len());
        let progress = chat.progress.clone();
        let mut forwarded = String::new();
        let mut on_text = |t: &str| {
            forwarded.push_str(t);
            if let Some(p) = &progress {
                // try_send: the round is already bounded; a client that does
                // not read its tokens loses them here, and the done event
                // still carries the whole answer.
                let _ = p.try_send(Progress::Token(t.to_owned()));
            }
        };
        let result = upstream::complete(
            &chat.client,
            &chat.endpoint,
            &request,
            deadline,
            &mut on_text,
        )
        .await;
        s.rounds += 1;
        // A streaming client that went away ends the chat: nobody reads
        // the answer, and more rounds would only cost tokens.
        if chat.progress.as_ref().is_some_and(|p| p.is_closed()) {
            gone = true;
        }
        let round: Round = match result {
            Ok(r) => r,
            Err(UpstreamError::Timeout) => {
                chat.metrics
                    .ai_upstream_errors
                    .with_label_values(&[label::TIMEOUT])
                    .inc();
                // What was streamed before the deadline is the partial answer.
                said.push_str(&forwarded);
                s.stopped = Some(Stop::Timeout);
                break;
            }
            Err(error) => {
                chat.metrics
                    .ai_upstream_errors
                    .with_label_values(&[error.reason()])
                    .inc();
                return Err(Failed {
                    error,
                    tools_called: s.tools_called,
                });
            }
        };
        if let Some(m) = round.model.as_ref().filter(|m| !m.is_empty()) {
            s.model = m.chars().take(200).collect();
        }
        // Any reason is read as a stop (the tool calls, if any, decide
        // whether the chat goes on) and passed on for the caller to see.
        s.finish_reason = round
            .finish_reason
            .as_deref()
            .map(|r| r.chars().filter(|c| !c.is_control()).take(64).collect());
        let usage = round.usage.unwrap_or(upstream::Usage {
            prompt: (request_bytes / 4) as u64,
            completion: (round.content.len() / 4) as u64,
        });
        s.prompt_tokens += usage.prompt;
        s.completion_tokens += usage.completion;
        if !round.content.is_empty() {
            if !said.is_empty() {
                said.push_str("\n\n");
            }
            said.push_str(&round.content);
        }
        if round.tool_calls.is_empty() {
            s.response = round.content;
            if s.response.trim().is_empty()
                && let Some(reason) = &s.finish_reason
            {
                s.response = format!(
                    "(No answer: the model server ended with finish_reason {reason:?} and no text.)"
                );
            }
            break;
        }
        if gone {
            s.stopped = Some(Stop::Cancelled);
            break;
        }
        if !tool_round {
            // Asked to answer without tools, it called tools again.
            s.stopped = Some(Stop::MaxToolRounds);
            break;
        }
        messages.push(
            ChatCompletionRequestAssistantMessage {
                content: (!round.content.is_empty()).then(|| round.content.clone().into()),
                tool_calls: Some(
                    round
                        .tool_calls
                        .iter()
                        .map(|c| {
                            ChatCompletionMessageToolCalls::Function(
                                ChatCompletionMessageToolCall {
                                    id: c.id.clone(),
                                    function: FunctionCall {
                                        name: c.name.clone(),
                                        arguments: c.arguments.clone(),
                                    },
                                },
                            )
                        })
                        .collect(),
                ),
                ..Default::default()
            }
            .into(),
        );
        for call in &round.tool_calls {
            let toolbox = chat.toolbox.clone();
            let (name, arguments) = (call.name.clone(), call.arguments.clone());
            let outcome = tokio::task::spawn_blocking(move || toolbox.call(&name, &arguments))
                .await
                .unwrap_or_else(|_| tools::Outcome::failed(tools::Tool::from_name(&call.name)));
            let metric_name = outcome.label();
            chat.metrics
                .ai_tool_calls
                .with_label_values(&[metric_name])
                .inc();
            chat.metrics.ai_redactions.inc_by(outcome.redacted as u64);
            s.redacted += outcome.redacted;
            s.tools_called.push(tools::clip(metric_name, 64));
            seen_ids.extend(outcome.ids.iter().cloned());
            if let Some(p) = &chat.progress {
                let arguments: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
                let event = json!({
                    "name": tools::clip(&call.name, 64),
                    "arguments": arguments,
                    "returned": outcome.returned,
                    "truncated": outcome.truncated,
                    "error": outcome.error,
                });
                if p.send(Progress::Tool(event)).await.is_err() {
                    gone = true;
                }
            }
            messages.push(
                ChatCompletionRequestToolMessage {
                    content: outcome.content.into(),
                    tool_call_id: call.id.clone(),
                }
                .into(),
            );
        }
        if gone {
            s.stopped = Some(Stop::Cancelled);
            break;
        }
        if s.prompt_tokens + s.completion_tokens >= cfg.max_total_tokens {
            s.stopped = Some(Stop::TokenBudget);
            break;
        }
        if Instant::now() >= deadline {
            s.stopped = Some(Stop::Timeout);
            break;
        }
    }
    if let Some(stop) = s.stopped
        && s.response.is_empty()
    {
        let why = stop.why();
        s.response = if said.trim().is_empty() {
            format!("(No answer: {why} before the model gave one.)")
        } else {
            format!("{}\n\n(Stopped early: {why}.)", said.trim())
        };
    }
    s.cited_ids = seen_ids
        .into_iter()
        .filter(|id| s.response.contains(id.as_str()))
        .collect();
    s.processing_time_ms = started.elapsed().as_millis() as u64;
    chat.metrics
        .ai_tokens
        .with_label_values(&[label::PROMPT])
        .inc_by(s.prompt_tokens);
    chat.metrics
        .ai_tokens
        .with_label_values(&[label::COMPLETION])
        .inc_by(s.completion_tokens);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Stop; 4] = [
        Stop::MaxToolRounds,
        Stop::TokenBudget,
        Stop::Timeout,
        Stop::Cancelled,
    ];

    #[test]
    fn each_stop_has_its_own_name_and_words() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[..i] {
                assert_ne!(a.as_str(), b.as_str());
                assert_ne!(a.why(), b.why());
            }
        }
    }

    #[test]
    fn only_a_client_that_left_counts_as_cancelled() {
        for stop in ALL {
            let want = if stop == Stop::Cancelled {
                label::CANCELLED
            } else {
                label::STOPPED
            };
            assert_eq!(stop.outcome(), want, "{stop:?}");
            assert!(label::OUTCOMES.contains(&stop.outcome()));
        }
    }
}
