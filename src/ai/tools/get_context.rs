//! `get_context`: the lines around one event on its channel.

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{Count, ToolError, clip};
use super::result::Built;
use super::{ToolBox, ToolSpec};
use crate::event::EventId;

/// Lines given on each side at most.
const MAX_CONTEXT: usize = 50;
const BEFORE: Count = Count {
    name: "before",
    default: 10,
    min: 0,
    max: MAX_CONTEXT,
};
const AFTER: Count = Count {
    name: "after",
    ..BEFORE
};

pub struct GetContext;

#[derive(Debug, Default, Deserialize)]
pub struct Args {
    /// Required; optional here so that its absence is a refusal in words.
    id: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
}

impl ToolSpec for GetContext {
    const NAME: &'static str = "get_context";
    const DESCRIPTION: &'static str =
        "The lines just before and after one event on its channel, by the event's id.";
    const RETURNS_LINES: bool = true;
    type Args = Args;

    fn parameters() -> Value {
        json!({"type": "object", "properties": {
            "id": {"type": "string"},
            "before": {"type": "integer", "minimum": BEFORE.min, "maximum": BEFORE.max, "description": "default 10"},
            "after": {"type": "integer", "minimum": AFTER.min, "maximum": AFTER.max, "description": "default 10"},
        }, "required": ["id"]})
    }

    fn run(tb: &ToolBox, a: Args, redacted: &mut usize) -> Result<Built, ToolError> {
        let id_text = a.id.as_deref().map(str::trim).ok_or("id is required")?;
        let before = BEFORE.read(a.before.as_ref())?;
        let after = AFTER.read(a.after.as_ref())?;
        let not_found = || {
            ToolError(format!(
                "no event {:?} in this chat's history",
                clip(id_text, 40)
            ))
        };
        let id: EventId = id_text.parse().map_err(|_| not_found())?;
        if id.epoch != tb.epoch {
            return Err(not_found());
        }
        let found = tb
            .history
            .read()
            .around(&tb.scope.patterns, id.seq, before, after);
        // Outside the scope is the same answer as absent: the model learns
        // nothing of other tenants' ids.
        let Some((events, at)) = found.filter(|(ev, at)| tb.scope.matches(&ev[*at].channel)) else {
            return Err(not_found());
        };
        let lines: Vec<Value> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut l = tb.line(e, redacted);
                if i == at {
                    l["target"] = Value::Bool(true);
                }
                l
            })
            .collect();
        let returned = lines.len();
        let value = json!({
            "channel": events[at].channel.as_str(),
            "events": lines,
            "returned": returned,
            "limit": before + after + 1,
            "truncated": false,
            "order": "oldest first",
        });
        Ok(tb.fit(value, "events"))
    }
}
