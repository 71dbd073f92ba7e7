//! The tools the model may call, and the walls around them.
//!
//! Each tool is one type in its own file ([`ToolSpec`]): its name, its
//! description, its arguments (a serde struct, with the JSON schema the
//! model sees beside it and held to it by a unit test), its limits and its
//! run. [`Tool`] lists them once; that list drives the definitions sent to
//! the model, the names offered, the dispatch of a call and the
//! `ai_tool_calls_total` labels. A name outside it is an error result the
//! model reads, never some other tool.
//!
//! Every tool reads loggate's own history through [`SharedHistory`] (never
//! through the registry's mailbox), and only inside the chat's [`Scope`]:
//! the channels the caller asked about, which the handler has checked
//! against its grants. A `channels` argument the model invents is refused
//! unless the scope covers it, and every event a tool returns is checked
//! against the scope once more, so no argument can reach another tenant.
//! Figures are the scope's too: `get_stats` counts this chat's channels
//! in history, and the tool box holds no gateway-wide counter (connections,
//! events accepted, history held) that could tell of other tenants.
//!
//! Answers are compact JSON with `returned`, `limit` and `truncated`; each
//! line is trimmed to `line_max_bytes` and the whole result to
//! `tool_result_max_bytes` (`result::fit`). Message text and `meta` pass
//! the [`Redactor`] before they go into a result. Aggregating tools look at
//! the newest [`MAX_SCAN`] matching events, read page by page so the
//! history lock is held only briefly each time; they run on a blocking
//! thread (see `agent`), not on an HTTP worker.

mod args;
mod count_by;
mod get_context;
mod get_stats;
mod list_channels;
mod result;
mod search_logs;
mod select;
mod top_patterns;

use std::sync::Arc;

use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools, FunctionObject};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::redact::Redactor;
use crate::auth::Grants;
use crate::channel::{ChannelName, ChannelPattern};
use crate::registry::history::SharedHistory;
use args::ToolError;
pub use args::clip;
use result::Built;

use count_by::CountBy;
use get_context::GetContext;
use get_stats::GetStats;
use list_channels::ListChannels;
use search_logs::SearchLogs;
use top_patterns::TopPatterns;

/// Most events an aggregating tool looks at (the newest that match).
pub const MAX_SCAN: usize = 50_000;
/// Rows of `count_by`, `top_patterns` and `list_channels`.
const MAX_ROWS: usize = 50;
/// Bytes of an unknown tool's name quoted back to the model.
const MAX_NAME_ECHO: usize = 64;

/// The channels one chat may read.
#[derive(Debug, Clone)]
pub struct Scope {
    patterns: Vec<ChannelPattern>,
}

impl Scope {
    pub fn new(patterns: Vec<ChannelPattern>) -> Scope {
        Scope { patterns }
    }

    pub fn patterns(&self) -> &[ChannelPattern] {
        &self.patterns
    }

    fn covers(&self, p: &ChannelPattern) -> bool {
        Grants::Patterns(self.patterns.clone()).allows(p)
    }

    fn matches(&self, channel: &ChannelName) -> bool {
        self.patterns.iter().any(|p| p.matches(channel))
    }
}

/// What the tools read and how much they may send.
///
/// No metrics and no registry gauges: those count every tenant's traffic.
#[derive(Clone)]
pub struct ToolBox {
    pub history: SharedHistory,
    pub redactor: Arc<Redactor>,
    /// This run's epoch: an event id of another run is not in history.
    pub epoch: u64,
    pub scope: Scope,
    /// False: no tool returns log lines (`AI_TOOLS_RETURN_LINES=false`).
    pub lines: bool,
    pub line_max: usize,
    pub result_max: usize,
    /// The gateway's start, for `get_stats`' uptime.
    pub started: std::time::Instant,
}

/// One tool call's result.
#[derive(Debug)]
pub struct Outcome {
    /// The JSON text sent back to the model.
    pub content: String,
    /// The tool called; `None`: the model named a tool that does not exist.
    pub tool: Option<Tool>,
    pub returned: usize,
    pub truncated: bool,
    pub error: Option<String>,
    pub redacted: usize,
    /// Event ids the result carried (for citations).
    pub ids: Vec<String>,
}

impl Outcome {
    /// A call that ended without a result (its thread failed).
    pub fn failed(tool: Option<Tool>) -> Outcome {
        let error = "the tool failed";
        Outcome {
            content: json!({ "error": error }).to_string(),
            tool,
            returned: 0,
            truncated: false,
            error: Some(error.into()),
            redacted: 0,
            ids: Vec::new(),
        }
    }

    /// The `tool` label of `ai_tool_calls_total`.
    pub fn label(&self) -> &'static str {
        self.tool
            .map_or(crate::metrics::label::ai::UNKNOWN_TOOL, Tool::name)
    }
}

/// One tool: its name and description for the model, its arguments and
/// their schema, and its run.
pub trait ToolSpec {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// True: it returns log lines, so it is off when lines are.
    const RETURNS_LINES: bool = false;
    /// The arguments, read from the model's JSON; unknown fields are
    /// ignored, and every field is optional (a missing required one is a
    /// refusal the tool words itself).
    type Args: DeserializeOwned + Default;
    /// The JSON schema of [`ToolSpec::Args`] sent to the model.
    fn parameters() -> Value;
    /// Runs the call; `redacted` counts the redactions its result holds.
    fn run(tb: &ToolBox, args: Self::Args, redacted: &mut usize) -> Result<Built, ToolError>;
}

/// Every tool, in the order they are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    ListChannels,
    SearchLogs,
    CountBy,
    TopPatterns,
    GetStats,
    GetContext,
}

/// One tool's [`ToolSpec`] with its type erased, for the list.
struct Entry {
    name: &'static str,
    description: &'static str,
    returns_lines: bool,
    parameters: fn() -> Value,
    run: fn(&ToolBox, &str, &mut usize) -> Result<Built, ToolError>,
    /// The fields of its `Args`, to hold the schema to them.
    #[cfg(test)]
    fields: fn() -> &'static [&'static str],
}

fn entry<T: ToolSpec>() -> Entry {
    Entry {
        name: T::NAME,
        description: T::DESCRIPTION,
        returns_lines: T::RETURNS_LINES,
        parameters: T::parameters,
        run: run::<T>,
        #[cfg(test)]
        fields: tests::fields_of::<T::Args>,
    }
}

/// Reads a call's arguments, then runs it unless it returns lines on a
/// gateway that sends none.
fn run<T: ToolSpec>(
    tb: &ToolBox,
    arguments: &str,
    redacted: &mut usize,
) -> Result<Built, ToolError> {
    let args = args::parse::<T::Args>(arguments)?;
    if T::RETURNS_LINES && !tb.lines {
        return Err(format!(
            "{} is turned off on this gateway (it would return log lines); use count_by or top_patterns",
            T::NAME
        )
        .into());
    }
    T::run(tb, args, redacted)
}

impl Tool {
    pub const ALL: [Tool; 6] = [
        Tool::ListChannels,
        Tool::SearchLogs,
        Tool::CountBy,
        Tool::TopPatterns,
        Tool::GetStats,
        Tool::GetContext,
    ];

    fn entry(self) -> Entry {
        match self {
            Tool::ListChannels => entry::<ListChannels>(),
            Tool::SearchLogs => entry::<SearchLogs>(),
            Tool::CountBy => entry::<CountBy>(),
            Tool::TopPatterns => entry::<TopPatterns>(),
            Tool::GetStats => entry::<GetStats>(),
            Tool::GetContext => entry::<GetContext>(),
        }
    }

    /// The name the model calls it by, and its metric label.
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether a chat that may (or may not) see log lines is offered it.
    fn offered(self, lines: bool) -> bool {
        lines || !self.entry().returns_lines
    }

    fn definition(self) -> ChatCompletionTools {
        let e = self.entry();
        ChatCompletionTools::Function(ChatCompletionTool {
            function: FunctionObject {
                name: e.name.into(),
                description: Some(e.description.into()),
                parameters: Some((e.parameters)()),
                strict: None,
            },
        })
    }
}

/// The tool definitions sent to the model. Without lines, the tools that
/// return lines are not offered.
pub fn definitions(lines: bool) -> Vec<ChatCompletionTools> {
    Tool::ALL
        .into_iter()
        .filter(|t| t.offered(lines))
        .map(Tool::definition)
        .collect()
}

impl ToolBox {
    /// Runs one call. Never fails: a bad call is an error result the model
    /// reads.
    pub fn call(&self, name: &str, arguments: &str) -> Outcome {
        let tool = Tool::from_name(name);
        let mut redacted = 0;
        let result = match tool {
            Some(t) => (t.entry().run)(self, arguments, &mut redacted),
            None => Err(ToolError(format!(
                "no tool named {:?}; the tools are: {}",
                name.chars().take(MAX_NAME_ECHO).collect::<String>(),
                self.offered().join(", ")
            ))),
        };
        match result {
            Ok(built) => Outcome {
                content: Value::Object(built.value).to_string(),
                tool,
                returned: built.returned,
                truncated: built.truncated,
                error: None,
                redacted,
                ids: built.ids,
            },
            Err(ToolError(e)) => Outcome {
                content: json!({ "error": e }).to_string(),
                tool,
                returned: 0,
                truncated: false,
                error: Some(e),
                redacted,
                ids: Vec::new(),
            },
        }
    }

    fn offered(&self) -> Vec<&'static str> {
        Tool::ALL
            .into_iter()
            .filter(|t| t.offered(self.lines))
            .map(Tool::name)
            .collect()
    }

    /// Bounds a result to `result_max` bytes (`result::fit`).
    fn fit(&self, value: Value, list: &str) -> Built {
        result::fit(value, list, self.result_max)
    }
}

#[cfg(test)]
mod tests;
