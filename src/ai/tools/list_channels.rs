//! `list_channels`: the chat's channels with events in history, with
//! counts and the newest event's time.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::ToolError;
use super::result::{Built, LevelCounts, time_text};
use super::select::SCAN_PAGE;
use super::{MAX_ROWS, ToolBox, ToolSpec};

pub struct ListChannels;

/// None: it lists the whole scope.
#[derive(Debug, Default, Deserialize)]
pub struct Args {}

/// One channel's row: events, the newest time, counts by level.
#[derive(Default)]
struct Row {
    events: usize,
    newest_ms: Option<i64>,
    levels: LevelCounts,
}

impl ToolSpec for ListChannels {
    const NAME: &'static str = "list_channels";
    const DESCRIPTION: &'static str = "Channels with events in history (within what this chat may read), with event counts and the time of the newest event.";
    type Args = Args;

    fn parameters() -> Value {
        json!({"type": "object", "properties": {}})
    }

    fn run(tb: &ToolBox, _: Args, _: &mut usize) -> Result<Built, ToolError> {
        let (events, more) = tb.scan(tb.scope.whole(SCAN_PAGE));
        let mut by: HashMap<&str, Row> = HashMap::new();
        for e in &events {
            let row = by.entry(e.channel.as_str()).or_default();
            row.events += 1;
            row.newest_ms = row.newest_ms.max(Some(e.times.timestamp_ms));
            row.levels.add(e.level);
        }
        let mut rows: Vec<_> = by.into_iter().collect();
        rows.sort_by(|a, b| b.1.events.cmp(&a.1.events).then(a.0.cmp(b.0)));
        let total = rows.len();
        let listed: Vec<Value> = rows
            .iter()
            .take(MAX_ROWS)
            .map(|(ch, r)| {
                json!({
                    "channel": ch,
                    "events": r.events,
                    "newest": time_text(r.newest_ms.unwrap_or(i64::MIN)),
                    "by_level": r.levels.to_json(),
                })
            })
            .collect();
        let returned = listed.len();
        let value = json!({
            "channels": listed,
            "returned": returned,
            "limit": MAX_ROWS,
            "truncated": total > MAX_ROWS || more,
            "events_looked_at": events.len(),
        });
        Ok(tb.fit(value, "channels"))
    }
}
