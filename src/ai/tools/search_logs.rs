//! `search_logs`: log lines by text, level, channels and time, newest
//! first.

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{Count, ToolError};
use super::result::Built;
use super::select::{Selection, schema};
use super::{ToolBox, ToolSpec};

/// `search_logs` returns at most this many lines.
pub const MAX_SEARCH: usize = 100;
const LIMIT: Count = Count {
    name: "limit",
    default: 50,
    min: 1,
    max: MAX_SEARCH,
};

pub struct SearchLogs;

#[derive(Debug, Default, Deserialize)]
pub struct Args {
    query: Option<String>,
    level: Option<String>,
    channels: Option<Vec<String>>,
    since: Option<Value>,
    until: Option<Value>,
    /// A whole number, or a string of one: models send both.
    limit: Option<Value>,
}

impl ToolSpec for SearchLogs {
    const NAME: &'static str = "search_logs";
    const DESCRIPTION: &'static str = "Finds log lines, newest first up to limit, by text (case-insensitive substring of the message), level, channels and time. Each line has an id to pass to get_context.";
    const RETURNS_LINES: bool = true;
    type Args = Args;

    fn parameters() -> Value {
        json!({"type": "object", "properties": {
            "query": {"type": "string", "description": "text the message contains"},
            "level": schema::level(), "channels": schema::channels(),
            "since": schema::time(), "until": schema::time(),
            "limit": {"type": "integer", "minimum": LIMIT.min, "maximum": LIMIT.max, "description": "default 50"},
        }})
    }

    fn run(tb: &ToolBox, a: Args, redacted: &mut usize) -> Result<Built, ToolError> {
        let limit = LIMIT.read(a.limit.as_ref())?;
        let selection = Selection {
            query: a.query.as_deref(),
            level: a.level.as_deref(),
            channels: a.channels.as_deref(),
            since: a.since.as_ref(),
            until: a.until.as_ref(),
        };
        let q = tb.query(selection, limit)?;
        let page = tb.history.read().query(&q);
        let more = page.prev_cursor.is_some();
        let lines: Vec<Value> = page
            .events
            .iter()
            .rev()
            .filter(|e| tb.scope.matches(&e.channel))
            .map(|e| tb.line(e, redacted))
            .collect();
        let returned = lines.len();
        let value = json!({
            "events": lines,
            "returned": returned,
            "limit": limit,
            "truncated": more,
            "order": "newest first",
        });
        Ok(tb.fit(value, "events"))
    }
}
