//! `top_patterns`: messages grouped by template, the most frequent first,
//! each with counts and (when lines are on) one example.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{ToolError, clip};
use super::result::{Built, LevelCounts, time_text};
use super::select::{SCAN_PAGE, Selection, schema};
use super::{MAX_ROWS, ToolBox, ToolSpec};
use crate::ai::template::template;
use crate::event::Event;

/// Distinct templates tracked; later ones are counted as `other`, so a
/// flood of unique messages cannot grow the table.
const MAX_TEMPLATES: usize = 10_000;

pub struct TopPatterns;

#[derive(Debug, Default, Deserialize)]
pub struct Args {
    since: Option<Value>,
    until: Option<Value>,
    level: Option<String>,
    channels: Option<Vec<String>>,
}

/// One template's events.
struct Row<'e> {
    count: usize,
    example: &'e Event,
    first_ms: i64,
    last_ms: i64,
    levels: LevelCounts,
}

impl<'e> Row<'e> {
    fn new(e: &'e Event) -> Row<'e> {
        let mut levels = LevelCounts::default();
        levels.add(e.level);
        Row {
            count: 1,
            example: e,
            first_ms: e.times.timestamp_ms,
            last_ms: e.times.timestamp_ms,
            levels,
        }
    }

    fn add(&mut self, e: &Event) {
        self.count += 1;
        self.first_ms = self.first_ms.min(e.times.timestamp_ms);
        self.last_ms = self.last_ms.max(e.times.timestamp_ms);
        self.levels.add(e.level);
    }
}

impl ToolSpec for TopPatterns {
    const NAME: &'static str = "top_patterns";
    const DESCRIPTION: &'static str = "Groups messages by template (numbers, ids, hex, times and addresses replaced by placeholders) and gives the most frequent with counts and one example each. The cheapest way to see what is going wrong.";
    type Args = Args;

    fn parameters() -> Value {
        json!({"type": "object", "properties": {
            "since": schema::time(), "until": schema::time(),
            "level": schema::level(), "channels": schema::channels(),
        }})
    }

    fn run(tb: &ToolBox, a: Args, redacted: &mut usize) -> Result<Built, ToolError> {
        let selection = Selection {
            query: None,
            level: a.level.as_deref(),
            channels: a.channels.as_deref(),
            since: a.since.as_ref(),
            until: a.until.as_ref(),
        };
        let (events, more) = tb.scan(tb.query(selection, SCAN_PAGE)?);
        let mut rows: HashMap<String, Row<'_>> = HashMap::new();
        let mut other = 0usize;
        for e in &events {
            // Redact before templating: a template turns a secret's digits
            // into <num>, after which no rule would recognise it.
            let t = template(&tb.redactor.text(&e.message).0);
            let full = rows.len() >= MAX_TEMPLATES;
            match rows.get_mut(&t) {
                Some(r) => r.add(e),
                None if full => other += 1,
                None => {
                    rows.insert(t, Row::new(e));
                }
            }
        }
        let mut sorted: Vec<_> = rows.into_iter().collect();
        sorted.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
        let distinct = sorted.len();
        let listed: Vec<Value> = sorted
            .into_iter()
            .take(MAX_ROWS)
            .map(|(t, r)| row(tb, &t, &r, redacted))
            .collect();
        let returned = listed.len();
        let value = json!({
            "patterns": listed,
            "events_looked_at": events.len(),
            "distinct_patterns": distinct,
            "other_events": other,
            "returned": returned,
            "limit": MAX_ROWS,
            "truncated": distinct > MAX_ROWS || more || other > 0,
        });
        Ok(tb.fit(value, "patterns"))
    }
}

/// One template's row of the answer.
fn row(tb: &ToolBox, t: &str, r: &Row<'_>, redacted: &mut usize) -> Value {
    // The template's placeholders are the redactions it carries.
    *redacted += t.matches("[REDACTED:").count();
    let mut row = json!({
        "template": clip(t, tb.line_max),
        "count": r.count,
        "levels": r.levels.to_json(),
        "first": time_text(r.first_ms),
        "last": time_text(r.last_ms),
    });
    if tb.lines {
        let id = r.example.id.to_string();
        let (m, n) = tb.redactor.text(&r.example.message);
        *redacted += n;
        row["example"] = json!({"id": id, "channel": r.example.channel.as_str(), "message": clip(&m, tb.line_max)});
    }
    row
}
