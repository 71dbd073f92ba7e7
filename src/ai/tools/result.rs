//! The shape of a tool's answer: counts by level, times as text, and
//! [`fit`], which bounds the whole answer in bytes. Pure: no history.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::event::Level;

/// Every level, in order; [`LevelCounts`] is indexed by `level as usize`.
pub const LEVELS: [Level; 6] = Level::ALL;

/// Events counted per level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelCounts([usize; LEVELS.len()]);

impl LevelCounts {
    pub fn add(&mut self, level: Level) {
        self.0[level as usize] += 1;
    }

    /// `{"warn": 3, "error": 1}`: the levels seen, none at zero.
    pub fn to_json(self) -> Value {
        let mut m = Map::new();
        for l in LEVELS {
            let n = self.0[l as usize];
            if n > 0 {
                m.insert(l.as_str().into(), n.into());
            }
        }
        Value::Object(m)
    }
}

/// A time as RFC 3339 with milliseconds, or null when out of range.
pub fn time_text(ms: i64) -> Value {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// A built result: the JSON object and what it carried.
#[derive(Debug)]
pub struct Built {
    pub value: Map<String, Value>,
    pub returned: usize,
    pub truncated: bool,
    /// Event ids the rows carry (for citations).
    pub ids: Vec<String>,
}

/// Caps a result at `max_bytes` by dropping rows of its array `list` from
/// the end (a quarter at a time), marking it truncated; then sets
/// `returned` to the rows left (1 for a result without rows) and collects
/// the ids the rows carry, their own or their `example`'s.
pub fn fit(mut value: Value, list: &str, max_bytes: usize) -> Built {
    let mut truncated = value["truncated"].as_bool().unwrap_or(false);
    loop {
        let size = value.to_string().len();
        let rows = value.get_mut(list).and_then(Value::as_array_mut);
        match rows {
            Some(rows) if size > max_bytes && !rows.is_empty() => {
                let drop = (rows.len() / 4).max(1);
                rows.truncate(rows.len() - drop);
                truncated = true;
            }
            _ => break,
        }
    }
    let rows = value.get(list).and_then(Value::as_array);
    let returned = rows.map_or(1, Vec::len);
    let ids = rows
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.get("id").or_else(|| r.get("example")?.get("id")))
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut map = match value {
        Value::Object(map) => map,
        // Every tool builds an object; anything else is carried whole.
        other => Map::from_iter([("result".to_owned(), other)]),
    };
    map.insert("returned".into(), returned.into());
    map.insert("truncated".into(), truncated.into());
    Built {
        value: map,
        returned,
        truncated,
        ids,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn level_counts_name_only_the_levels_seen_in_order() {
        let mut c = LevelCounts::default();
        assert_eq!(c.to_json(), json!({}));
        c.add(Level::Error);
        c.add(Level::Trace);
        c.add(Level::Error);
        assert_eq!(c.to_json(), json!({"trace": 1, "error": 2}));
        // The table covers every level: the last one has its slot.
        c.add(Level::Fatal);
        assert_eq!(c.to_json()["fatal"], 1);
    }

    #[test]
    fn times_are_rfc3339_with_milliseconds() {
        assert_eq!(
            time_text(1_700_000_000_123),
            json!("2023-11-14T22:13:20.123Z")
        );
        assert_eq!(time_text(i64::MAX), Value::Null);
    }

    fn rows(n: usize) -> Value {
        let rows: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("id-{i}"), "message": "x".repeat(100)}))
            .collect();
        json!({"events": rows, "returned": n, "truncated": false})
    }

    #[test]
    fn a_result_within_bounds_is_kept_whole() {
        let b = fit(rows(3), "events", 10_000);
        assert_eq!((b.returned, b.truncated), (3, false));
        assert_eq!(b.ids, ["id-0", "id-1", "id-2"]);
        assert_eq!(b.value["returned"], 3);
        assert_eq!(b.value["truncated"], false);
    }

    #[test]
    fn a_result_over_bounds_loses_rows_from_the_end_and_says_so() {
        let b = fit(rows(40), "events", 2_000);
        assert!(Value::Object(b.value.clone()).to_string().len() <= 2_000);
        assert!(b.returned > 0 && b.returned < 40, "{}", b.returned);
        assert!(b.truncated);
        assert_eq!(b.ids.first().map(String::as_str), Some("id-0"));
        assert_eq!(b.ids.len(), b.returned);
        assert_eq!(b.value["returned"], b.returned);
        assert_eq!(b.value["truncated"], true);
    }

    #[test]
    fn a_result_keeps_its_own_truncation_and_rows_give_example_ids() {
        let v =
            json!({"patterns": [{"template": "t", "example": {"id": "e-1"}}], "truncated": true});
        let b = fit(v, "patterns", 10_000);
        assert_eq!((b.returned, b.truncated), (1, true));
        assert_eq!(b.ids, ["e-1"]);
    }

    #[test]
    fn a_result_without_rows_counts_as_one_and_is_never_emptied() {
        let b = fit(json!({"uptime_seconds": 5, "truncated": false}), "", 1);
        assert_eq!((b.returned, b.truncated), (1, false));
        let b = fit(json!({"events": [], "truncated": false}), "events", 1);
        assert_eq!((b.returned, b.truncated), (0, false));
    }
}
