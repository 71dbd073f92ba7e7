//! `count_by`: events counted by one field, not lines.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::ToolError;
use super::result::Built;
use super::select::{SCAN_PAGE, Selection, schema};
use super::{MAX_ROWS, ToolBox, ToolSpec};
use crate::event::Event;

pub struct CountBy;

#[derive(Debug, Default, Deserialize)]
pub struct Args {
    /// Required; optional here so that its absence is a refusal in words.
    field: Option<String>,
    since: Option<Value>,
    until: Option<Value>,
    level: Option<String>,
    channels: Option<Vec<String>>,
}

/// What events are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Level,
    Service,
    Channel,
    Resource,
}

impl Field {
    const ALL: [Field; 4] = [
        Field::Level,
        Field::Service,
        Field::Channel,
        Field::Resource,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Level => "level",
            Field::Service => "service",
            Field::Channel => "channel",
            Field::Resource => "resource",
        }
    }

    fn parse(text: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == text.trim())
    }

    fn of(self, e: &Event) -> &str {
        match self {
            Field::Level => e.level.as_str(),
            Field::Service => e.channel.service(),
            Field::Channel => e.channel.as_str(),
            Field::Resource => e.channel.resource().unwrap_or("(none)"),
        }
    }
}

impl ToolSpec for CountBy {
    const NAME: &'static str = "count_by";
    const DESCRIPTION: &'static str = "Counts events grouped by one field: level, service, channel or resource. Counts, not lines.";
    type Args = Args;

    fn parameters() -> Value {
        let fields: Vec<&str> = Field::ALL.into_iter().map(Field::name).collect();
        json!({"type": "object", "properties": {
            "field": {"type": "string", "enum": fields},
            "since": schema::time(), "until": schema::time(),
            "level": schema::level(), "channels": schema::channels(),
        }, "required": ["field"]})
    }

    fn run(tb: &ToolBox, a: Args, _: &mut usize) -> Result<Built, ToolError> {
        let field = a
            .field
            .as_deref()
            .and_then(Field::parse)
            .ok_or("field must be one of level, service, channel, resource")?;
        let selection = Selection {
            query: None,
            level: a.level.as_deref(),
            channels: a.channels.as_deref(),
            since: a.since.as_ref(),
            until: a.until.as_ref(),
        };
        let (events, more) = tb.scan(tb.query(selection, SCAN_PAGE)?);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for e in &events {
            *counts.entry(field.of(e)).or_default() += 1;
        }
        let mut rows: Vec<_> = counts.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let distinct = rows.len();
        let listed: Vec<Value> = rows
            .iter()
            .take(MAX_ROWS)
            .map(|(k, n)| json!({"value": k, "count": n}))
            .collect();
        let returned = listed.len();
        let value = json!({
            "field": field.name(),
            "counts": listed,
            "total_events": events.len(),
            "returned": returned,
            "limit": MAX_ROWS,
            "truncated": distinct > MAX_ROWS || more,
            "complete": !more,
        });
        Ok(tb.fit(value, "counts"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_one_of_four_names() {
        for f in Field::ALL {
            assert_eq!(Field::parse(f.name()), Some(f));
        }
        assert_eq!(Field::parse(" level "), Some(Field::Level));
        assert_eq!(Field::parse("Level"), None);
        assert_eq!(Field::parse("message"), None);
    }
}
