//! What a call reads: the arguments that select events (shared by the
//! tools that take them) with their schema, the checked channel patterns,
//! the history query, the paged scan, and one event as a redacted line.

use std::sync::Arc;

use serde_json::{Value, json};

use super::args::{self, ToolError, clip};
use super::{Scope, ToolBox};
use crate::channel::ChannelPattern;
use crate::delivery::filter::{Filter, MAX_QUERY_BYTES};
use crate::event::Event;
use crate::registry::history::{Direction, HistoryQuery};

/// Events read from history per lock.
pub const SCAN_PAGE: usize = 1000;
/// Channel patterns one call may name.
const MAX_CHANNELS: usize = 32;

/// The schemas of the selecting arguments, as the model sees them.
pub mod schema {
    use serde_json::{Value, json};

    pub fn time() -> Value {
        json!({"type": "string", "description": "RFC 3339 time, epoch milliseconds, or an age such as 15m, 2h, 1d (that long ago)"})
    }

    pub fn level() -> Value {
        json!({"type": "string", "enum": ["trace", "debug", "info", "warn", "error", "fatal"], "description": "only this level and above"})
    }

    pub fn channels() -> Value {
        json!({"type": "array", "items": {"type": "string"}, "description": "channel patterns such as logs:etl:ws1 or logs:*:ws1; default: every channel of this chat"})
    }
}

/// The selecting arguments of one call, borrowed from its `Args`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Selection<'a> {
    /// Text the message contains (`search_logs` only).
    pub query: Option<&'a str>,
    pub level: Option<&'a str>,
    pub channels: Option<&'a [String]>,
    pub since: Option<&'a Value>,
    pub until: Option<&'a Value>,
}

impl Scope {
    /// Every channel of the chat, as one query's patterns.
    pub(super) fn whole(&self, limit: usize) -> HistoryQuery {
        HistoryQuery {
            patterns: self.patterns.clone(),
            filter: Filter::default(),
            since_ms: None,
            until_ms: None,
            direction: Direction::Before(None),
            limit,
        }
    }

    fn list(&self) -> String {
        let names: Vec<&str> = self.patterns.iter().map(|p| p.as_str()).collect();
        names.join(", ")
    }
}

impl ToolBox {
    /// The checked patterns a call reads: its `channels`, each covered by
    /// the scope, or the whole scope.
    fn patterns(&self, channels: Option<&[String]>) -> Result<Vec<ChannelPattern>, ToolError> {
        let Some(names) = channels.filter(|c| !c.is_empty()) else {
            return Ok(self.scope.patterns.clone());
        };
        if names.len() > MAX_CHANNELS {
            return Err(format!("at most {MAX_CHANNELS} channels per call").into());
        }
        let mut out = Vec::new();
        for name in names {
            let p = ChannelPattern::parse(name.trim())
                .map_err(|e| format!("{:?} is not a channel pattern: {e}", clip(name, 80)))?;
            if !self.scope.covers(&p) {
                return Err(format!(
                    "{:?} is outside the channels of this chat ({}); ask only about those",
                    clip(name, 80),
                    self.scope.list()
                )
                .into());
            }
            out.push(p);
        }
        Ok(out)
    }

    /// The history query a selection asks for, newest first. Checked in
    /// this order: level, query, channels, since, until.
    pub(super) fn query(&self, s: Selection<'_>, limit: usize) -> Result<HistoryQuery, ToolError> {
        let level = args::level(s.level)?;
        let text = s.query.map(str::trim).filter(|q| !q.is_empty());
        if let Some(q) = text
            && q.len() > MAX_QUERY_BYTES
        {
            return Err(format!("query is at most {MAX_QUERY_BYTES} bytes").into());
        }
        Ok(HistoryQuery {
            patterns: self.patterns(s.channels)?,
            filter: Filter::new(level, text),
            since_ms: s.since.map(|v| args::time("since", v)).transpose()?,
            until_ms: s.until.map(|v| args::time("until", v)).transpose()?,
            direction: Direction::Before(None),
            limit,
        })
    }

    /// The newest events `q` matches, newest first, at most
    /// [`super::MAX_SCAN`]; true when history may hold more.
    pub(super) fn scan(&self, mut q: HistoryQuery) -> (Vec<Arc<Event>>, bool) {
        let mut out = Vec::new();
        q.limit = SCAN_PAGE;
        q.direction = Direction::Before(None);
        loop {
            // The lock is taken once per page: the registry waits at most
            // one page's work.
            let page = self.history.read().query(&q);
            out.extend(
                page.events
                    .into_iter()
                    .rev()
                    .filter(|e| self.scope.matches(&e.channel)),
            );
            match page.prev_cursor {
                Some(c) if out.len() < super::MAX_SCAN => {
                    q.direction = Direction::Before(Some(c.seq))
                }
                Some(_) => return (out, true),
                None => return (out, false),
            }
        }
    }

    /// One event as a tool line: trimmed and redacted.
    pub(super) fn line(&self, e: &Event, redacted: &mut usize) -> Value {
        let parsed: Value = serde_json::from_slice(&e.json()).unwrap_or(Value::Null);
        let (message, n) = self.redactor.text(&e.message);
        *redacted += n;
        let mut line = json!({
            "id": e.id.to_string(),
            "time": parsed.get("timestamp").cloned().unwrap_or(Value::Null),
            "level": e.level.as_str(),
            "channel": e.channel.as_str(),
            "message": clip(&message, self.line_max),
        });
        if let Some(mut meta) = parsed.get("meta").cloned() {
            *redacted += self.redactor.value(&mut meta);
            let text = meta.to_string();
            line["meta"] = if text.len() <= self.line_max / 2 {
                meta
            } else {
                Value::String(format!("{}…", clip(&text, self.line_max / 2)))
            };
        }
        line
    }
}
