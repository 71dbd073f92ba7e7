//! The tools the model may call, and the walls around them.
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
//! `tool_result_max_bytes`. Message text and `meta` pass the
//! [`Redactor`] before they go into a result. Aggregating tools look at
//! the newest [`MAX_SCAN`] matching events, read page by page so the
//! history lock is held only briefly each time; they run on a blocking
//! thread (see `agent`), not on an HTTP worker.

use std::collections::HashMap;
use std::sync::Arc;

use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools, FunctionObject};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::redact::Redactor;
use super::template::template;
use crate::auth::Grants;
use crate::channel::{ChannelName, ChannelPattern};
use crate::delivery::filter::{Filter, MAX_QUERY_BYTES};
use crate::event::{Event, EventId, Level, now_ms};
use crate::registry::history::{Direction, HistoryQuery, SharedHistory};

/// Most events an aggregating tool looks at (the newest that match).
pub const MAX_SCAN: usize = 50_000;
/// Events read from history per lock.
const SCAN_PAGE: usize = 1000;
/// `search_logs` returns at most this many lines.
pub const MAX_SEARCH: usize = 100;
/// Rows of `count_by`, `top_patterns` and `list_channels`.
const MAX_ROWS: usize = 50;
/// Distinct templates `top_patterns` tracks; later ones are counted as
/// `other`, so a flood of unique messages cannot grow the table.
const MAX_TEMPLATES: usize = 10_000;
/// Lines `get_context` gives on each side.
const MAX_CONTEXT: usize = 50;

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
    pub epoch: u64,
    pub scope: Scope,
    /// False: no tool returns log lines (`AI_TOOLS_RETURN_LINES=false`).
    pub lines: bool,
    pub line_max: usize,
    pub result_max: usize,
    pub started: std::time::Instant,
}

/// One tool call's result.
#[derive(Debug)]
pub struct Outcome {
    /// The JSON text sent back to the model.
    pub content: String,
    /// False: the model named a tool that does not exist.
    pub known: bool,
    pub returned: usize,
    pub truncated: bool,
    pub error: Option<String>,
    pub redacted: usize,
    /// Event ids the result carried (for citations).
    pub ids: Vec<String>,
}

/// The tool names, in the order they are offered.
pub const NAMES: [&str; 6] = [
    "list_channels",
    "search_logs",
    "count_by",
    "top_patterns",
    "get_context",
    "get_stats",
];

/// The tool definitions sent to the model. Without lines, the tools that
/// return lines are not offered.
pub fn definitions(lines: bool) -> Vec<ChatCompletionTools> {
    let time = json!({"type": "string", "description": "RFC 3339 time, epoch milliseconds, or an age such as 15m, 2h, 1d (that long ago)"});
    let level = json!({"type": "string", "enum": ["trace", "debug", "info", "warn", "error", "fatal"], "description": "only this level and above"});
    let channels = json!({"type": "array", "items": {"type": "string"}, "description": "channel patterns such as logs:etl:ws1 or logs:*:ws1; default: every channel of this chat"});
    let mut tools = vec![
        (
            "list_channels",
            "Channels with events in history (within what this chat may read), with event counts and the time of the newest event.",
            json!({"type": "object", "properties": {}}),
        ),
        (
            "count_by",
            "Counts events grouped by one field: level, service, channel or resource. Counts, not lines.",
            json!({"type": "object", "properties": {
                "field": {"type": "string", "enum": ["level", "service", "channel", "resource"]},
                "since": time, "until": time, "level": level, "channels": channels,
            }, "required": ["field"]}),
        ),
        (
            "top_patterns",
            "Groups messages by template (numbers, ids, hex, times and addresses replaced by placeholders) and gives the most frequent with counts and one example each. The cheapest way to see what is going wrong.",
            json!({"type": "object", "properties": {
                "since": time, "until": time, "level": level, "channels": channels,
            }}),
        ),
        (
            "get_stats",
            "For this chat's channels only: events history holds (with the oldest and newest time), the event rate over the last 1, 5 and 15 minutes, counts by level, and the gateway's uptime.",
            json!({"type": "object", "properties": {}}),
        ),
    ];
    if lines {
        tools.insert(
            1,
            (
                "search_logs",
                "Finds log lines, newest first up to limit, by text (case-insensitive substring of the message), level, channels and time. Each line has an id to pass to get_context.",
                json!({"type": "object", "properties": {
                    "query": {"type": "string", "description": "text the message contains"},
                    "level": level, "channels": channels, "since": time, "until": time,
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH, "description": "default 50"},
                }}),
            ),
        );
        tools.push((
            "get_context",
            "The lines just before and after one event on its channel, by the event's id.",
            json!({"type": "object", "properties": {
                "id": {"type": "string"},
                "before": {"type": "integer", "minimum": 0, "maximum": MAX_CONTEXT, "description": "default 10"},
                "after": {"type": "integer", "minimum": 0, "maximum": MAX_CONTEXT, "description": "default 10"},
            }, "required": ["id"]}),
        ));
    }
    tools
        .into_iter()
        .map(|(name, description, parameters)| {
            ChatCompletionTools::Function(ChatCompletionTool {
                function: FunctionObject {
                    name: name.into(),
                    description: Some(description.into()),
                    parameters: Some(parameters),
                    strict: None,
                },
            })
        })
        .collect()
}

/// A refusal the model reads and can correct.
struct ToolError(String);

impl<T: Into<String>> From<T> for ToolError {
    fn from(s: T) -> Self {
        ToolError(s.into())
    }
}

/// Arguments shared by the tools that select events.
#[derive(Debug, Default, Deserialize)]
struct Selection {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    since: Option<Value>,
    #[serde(default)]
    until: Option<Value>,
    #[serde(default)]
    limit: Option<Value>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    before: Option<Value>,
    #[serde(default)]
    after: Option<Value>,
}

/// A built result: the JSON object and what it carried.
struct Built {
    value: Map<String, Value>,
    returned: usize,
    truncated: bool,
    ids: Vec<String>,
}

impl ToolBox {
    /// Runs one call. Never fails: a bad call is an error result the model
    /// reads.
    pub fn call(&self, name: &str, arguments: &str) -> Outcome {
        let known = NAMES.contains(&name);
        let mut redacted = 0;
        let result = if !known {
            Err(ToolError(format!(
                "no tool named {:?}; the tools are: {}",
                name.chars().take(64).collect::<String>(),
                self.offered().join(", ")
            )))
        } else {
            let args = if arguments.trim().is_empty() {
                Ok(Selection::default())
            } else {
                serde_json::from_str::<Selection>(arguments).map_err(|_| {
                    ToolError("the arguments are not a JSON object of the tool's parameters".into())
                })
            };
            args.and_then(|a| self.run(name, &a, &mut redacted))
        };
        match result {
            Ok(built) => {
                let mut value = built.value;
                let returned = built.returned;
                let content = Value::Object(std::mem::take(&mut value)).to_string();
                Outcome {
                    content,
                    known,
                    returned,
                    truncated: built.truncated,
                    error: None,
                    redacted,
                    ids: built.ids,
                }
            }
            Err(ToolError(e)) => Outcome {
                content: json!({"error": e}).to_string(),
                known,
                returned: 0,
                truncated: false,
                error: Some(e),
                redacted,
                ids: Vec::new(),
            },
        }
    }

    fn offered(&self) -> Vec<&'static str> {
        NAMES
            .iter()
            .copied()
            .filter(|n| self.lines || !matches!(*n, "search_logs" | "get_context"))
            .collect()
    }

    fn run(&self, name: &str, a: &Selection, redacted: &mut usize) -> Result<Built, ToolError> {
        if !self.lines && matches!(name, "search_logs" | "get_context") {
            return Err(format!(
                "{name} is turned off on this gateway (it would return log lines); use count_by or top_patterns"
            )
            .into());
        }
        match name {
            "list_channels" => self.list_channels(),
            "search_logs" => self.search_logs(a, redacted),
            "count_by" => self.count_by(a),
            "top_patterns" => self.top_patterns(a, redacted),
            "get_context" => self.get_context(a, redacted),
            _ => self.get_stats(),
        }
    }

    /// The checked patterns a call reads: its `channels`, each covered by
    /// the scope, or the whole scope.
    fn patterns(&self, a: &Selection) -> Result<Vec<ChannelPattern>, ToolError> {
        let Some(names) = a.channels.as_ref().filter(|c| !c.is_empty()) else {
            return Ok(self.scope.patterns.clone());
        };
        if names.len() > 32 {
            return Err("at most 32 channels per call".into());
        }
        let mut out = Vec::new();
        for name in names {
            let p = ChannelPattern::parse(name.trim())
                .map_err(|e| format!("{:?} is not a channel pattern: {e}", clip(name, 80)))?;
            if !self.scope.covers(&p) {
                return Err(format!(
                    "{:?} is outside the channels of this chat ({}); ask only about those",
                    clip(name, 80),
                    self.scope_list()
                )
                .into());
            }
            out.push(p);
        }
        Ok(out)
    }

    fn scope_list(&self) -> String {
        let names: Vec<&str> = self.scope.patterns.iter().map(|p| p.as_str()).collect();
        names.join(", ")
    }

    fn query(
        &self,
        a: &Selection,
        direction: Direction,
        limit: usize,
    ) -> Result<HistoryQuery, ToolError> {
        let level = match a.level.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(Level::parse(l).ok_or_else(|| {
                format!(
                    "level {:?} is not one of trace, debug, info, warn, error, fatal",
                    clip(l, 20)
                )
            })?),
        };
        let text = a.query.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if let Some(q) = text
            && q.len() > MAX_QUERY_BYTES
        {
            return Err(format!("query is at most {MAX_QUERY_BYTES} bytes").into());
        }
        Ok(HistoryQuery {
            patterns: self.patterns(a)?,
            filter: Filter::new(level, text),
            since_ms: a.since.as_ref().map(|v| time_arg("since", v)).transpose()?,
            until_ms: a.until.as_ref().map(|v| time_arg("until", v)).transpose()?,
            direction,
            limit,
        })
    }

    /// The newest events `q` matches, newest first, at most [`MAX_SCAN`];
    /// true when history may hold more.
    fn scan(&self, mut q: HistoryQuery) -> (Vec<Arc<Event>>, bool) {
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
                Some(c) if out.len() < MAX_SCAN => q.direction = Direction::Before(Some(c.seq)),
                Some(_) => return (out, true),
                None => return (out, false),
            }
        }
    }

    fn list_channels(&self) -> Result<Built, ToolError> {
        let q = HistoryQuery {
            patterns: self.scope.patterns.clone(),
            filter: Filter::default(),
            since_ms: None,
            until_ms: None,
            direction: Direction::Before(None),
            limit: SCAN_PAGE,
        };
        let (events, more) = self.scan(q);
        let mut by: HashMap<&str, (usize, i64, [usize; 6])> = HashMap::new();
        for e in &events {
            let row = by
                .entry(e.channel.as_str())
                .or_insert((0, i64::MIN, [0; 6]));
            row.0 += 1;
            row.1 = row.1.max(e.times.timestamp_ms);
            row.2[e.level as usize] += 1;
        }
        let mut rows: Vec<_> = by.into_iter().collect();
        rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        let total = rows.len();
        let listed: Vec<Value> = rows
            .iter()
            .take(MAX_ROWS)
            .map(|(ch, (n, newest, levels))| {
                json!({"channel": ch, "events": n, "newest": time_text(*newest), "by_level": level_map(levels)})
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
        Ok(self.fit(value, "channels"))
    }

    fn search_logs(&self, a: &Selection, redacted: &mut usize) -> Result<Built, ToolError> {
        let limit = int_arg("limit", a.limit.as_ref(), 50, 1, MAX_SEARCH)?;
        let q = self.query(a, Direction::Before(None), limit)?;
        let page = self.history.read().query(&q);
        let more = page.prev_cursor.is_some();
        let lines: Vec<Value> = page
            .events
            .iter()
            .rev()
            .filter(|e| self.scope.matches(&e.channel))
            .map(|e| self.line(e, redacted))
            .collect();
        let returned = lines.len();
        let value = json!({
            "events": lines,
            "returned": returned,
            "limit": limit,
            "truncated": more,
            "order": "newest first",
        });
        Ok(self.fit(value, "events"))
    }

    fn count_by(&self, a: &Selection) -> Result<Built, ToolError> {
        let field = a
            .field
            .as_deref()
            .map(str::trim)
            .filter(|f| ["level", "service", "channel", "resource"].contains(f))
            .ok_or("field must be one of level, service, channel, resource")?;
        let q = self.query(a, Direction::Before(None), SCAN_PAGE)?;
        let (events, more) = self.scan(q);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for e in &events {
            let key = match field {
                "level" => e.level.as_str(),
                "service" => e.channel.service(),
                "channel" => e.channel.as_str(),
                _ => e.channel.resource().unwrap_or("(none)"),
            };
            *counts.entry(key).or_default() += 1;
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
            "field": field,
            "counts": listed,
            "total_events": events.len(),
            "returned": returned,
            "limit": MAX_ROWS,
            "truncated": distinct > MAX_ROWS || more,
            "complete": !more,
        });
        Ok(self.fit(value, "counts"))
    }

    fn top_patterns(&self, a: &Selection, redacted: &mut usize) -> Result<Built, ToolError> {
        let q = self.query(a, Direction::Before(None), SCAN_PAGE)?;
        let (events, more) = self.scan(q);
        struct Row<'e> {
            count: usize,
            example: &'e Event,
            first_ms: i64,
            last_ms: i64,
            levels: [usize; 6],
        }
        let mut rows: HashMap<String, Row<'_>> = HashMap::new();
        let mut other = 0usize;
        for e in &events {
            // Redact before templating: a template turns a secret's digits
            // into <num>, after which no rule would recognise it.
            let t = template(&self.redactor.text(&e.message).0);
            let full = rows.len() >= MAX_TEMPLATES;
            match rows.get_mut(&t) {
                Some(r) => {
                    r.count += 1;
                    r.first_ms = r.first_ms.min(e.times.timestamp_ms);
                    r.last_ms = r.last_ms.max(e.times.timestamp_ms);
                    r.levels[e.level as usize] += 1;
                }
                None if full => other += 1,
                None => {
                    let mut levels = [0; 6];
                    levels[e.level as usize] = 1;
                    rows.insert(
                        t,
                        Row {
                            count: 1,
                            example: e,
                            first_ms: e.times.timestamp_ms,
                            last_ms: e.times.timestamp_ms,
                            levels,
                        },
                    );
                }
            }
        }
        let mut sorted: Vec<_> = rows.into_iter().collect();
        sorted.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
        let distinct = sorted.len();
        let listed: Vec<Value> = sorted
            .into_iter()
            .take(MAX_ROWS)
            .map(|(t, r)| {
                // The template's placeholders are the redactions it carries.
                *redacted += t.matches("[REDACTED:").count();
                let mut row = json!({
                    "template": clip(&t, self.line_max),
                    "count": r.count,
                    "levels": level_map(&r.levels),
                    "first": time_text(r.first_ms),
                    "last": time_text(r.last_ms),
                });
                if self.lines {
                    let id = r.example.id.to_string();
                    let (m, n) = self.redactor.text(&r.example.message);
                    *redacted += n;
                    row["example"] = json!({"id": id, "channel": r.example.channel.as_str(), "message": clip(&m, self.line_max)});
                }
                row
            })
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
        Ok(self.fit(value, "patterns"))
    }

    fn get_context(&self, a: &Selection, redacted: &mut usize) -> Result<Built, ToolError> {
        let id_text = a.id.as_deref().map(str::trim).ok_or("id is required")?;
        let before = int_arg("before", a.before.as_ref(), 10, 0, MAX_CONTEXT)?;
        let after = int_arg("after", a.after.as_ref(), 10, 0, MAX_CONTEXT)?;
        let not_found = || {
            ToolError(format!(
                "no event {:?} in this chat's history",
                clip(id_text, 40)
            ))
        };
        let id: EventId = id_text.parse().map_err(|_| not_found())?;
        if id.epoch != self.epoch {
            return Err(not_found());
        }
        let found = self
            .history
            .read()
            .around(&self.scope.patterns, id.seq, before, after);
        // Outside the scope is the same answer as absent: the model learns
        // nothing of other tenants' ids.
        let Some((events, at)) = found.filter(|(ev, at)| self.scope.matches(&ev[*at].channel))
        else {
            return Err(not_found());
        };
        let lines: Vec<Value> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut l = self.line(e, redacted);
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
        Ok(self.fit(value, "events"))
    }

    /// This chat's channels only. Gateway-wide figures (connections,
    /// events accepted, history held, drops) are the operator's, on the
    /// admin stats endpoint: they would tell one tenant about the others'
    /// traffic, so the tool box holds no handle on them at all.
    fn get_stats(&self) -> Result<Built, ToolError> {
        let q = HistoryQuery {
            patterns: self.scope.patterns.clone(),
            filter: Filter::default(),
            since_ms: None,
            until_ms: None,
            direction: Direction::Before(None),
            limit: SCAN_PAGE,
        };
        let (events, more) = self.scan(q);
        let now = now_ms();
        let mut windows = [0usize; 3];
        let mut levels = [0usize; 6];
        let (mut oldest, mut newest) = (i64::MAX, i64::MIN);
        for e in &events {
            oldest = oldest.min(e.times.timestamp_ms);
            newest = newest.max(e.times.timestamp_ms);
            let age = now - e.times.received_ms;
            if age > 15 * 60_000 {
                continue;
            }
            for (w, minutes) in windows.iter_mut().zip([1, 5, 15]) {
                if age <= minutes * 60_000 {
                    *w += 1;
                }
            }
            levels[e.level as usize] += 1;
        }
        let value = json!({
            "channels": self.scope.patterns.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "history_events": events.len(),
            "history_oldest": if events.is_empty() { Value::Null } else { time_text(oldest) },
            "history_newest": if events.is_empty() { Value::Null } else { time_text(newest) },
            "events_last_1m": windows[0],
            "events_last_5m": windows[1],
            "events_last_15m": windows[2],
            "per_second_last_1m": (windows[0] as f64 / 60.0 * 100.0).round() / 100.0,
            "by_level_last_15m": level_map(&levels),
            "complete": !more,
            "returned": 1,
            "limit": 1,
            "truncated": more,
        });
        Ok(self.fit(value, ""))
    }

    /// One event as a tool line: trimmed and redacted.
    fn line(&self, e: &Event, redacted: &mut usize) -> Value {
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

    /// Caps a result at `result_max` bytes by dropping rows of `list`
    /// from the end, marking it truncated.
    fn fit(&self, mut value: Value, list: &str) -> Built {
        let mut truncated = value["truncated"].as_bool().unwrap_or(false);
        loop {
            let size = value.to_string().len();
            let rows = value.get_mut(list).and_then(Value::as_array_mut);
            match rows {
                Some(rows) if size > self.result_max && !rows.is_empty() => {
                    let drop = (rows.len() / 4).max(1);
                    rows.truncate(rows.len() - drop);
                    truncated = true;
                }
                _ => break,
            }
        }
        let returned = value
            .get(list)
            .and_then(Value::as_array)
            .map_or(1, Vec::len);
        let ids = value
            .get(list)
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.get("id").or_else(|| r.get("example")?.get("id")))
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("returned".into(), returned.into());
            obj.insert("truncated".into(), truncated.into());
        }
        let Value::Object(map) = value else {
            unreachable!("tool results are objects")
        };
        Built {
            value: map,
            returned,
            truncated,
            ids,
        }
    }
}

fn level_map(counts: &[usize; 6]) -> Value {
    const LEVELS: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];
    let mut m = Map::new();
    for l in LEVELS {
        let n = counts[l as usize];
        if n > 0 {
            m.insert(l.as_str().into(), n.into());
        }
    }
    Value::Object(m)
}

fn time_text(ms: i64) -> Value {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn int_arg(
    name: &str,
    v: Option<&Value>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ToolError> {
    let Some(v) = v else { return Ok(default) };
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Null => return Ok(default),
        _ => None,
    }
    .filter(|n| n.is_finite())
    .ok_or_else(|| format!("{name} must be a whole number"))?;
    Ok((n.max(0.0) as usize).clamp(min, max))
}

/// A time argument: RFC 3339, epoch milliseconds, or an age (`15m`).
fn time_arg(name: &str, v: &Value) -> Result<i64, ToolError> {
    let bad = || {
        ToolError(format!(
            "{name} must be RFC 3339, epoch milliseconds, or an age such as 15m, 2h, 1d"
        ))
    };
    let text = match v {
        Value::Number(n) => return n.as_i64().ok_or_else(bad),
        Value::String(s) => s.trim(),
        _ => return Err(bad()),
    };
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit.trim().trim_end_matches(" ago") {
        "s" | "sec" | "secs" | "seconds" => 1000,
        "m" | "min" | "mins" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return Err(bad()),
    };
    Ok(now_ms().saturating_sub(n.saturating_mul(unit_ms)))
}
