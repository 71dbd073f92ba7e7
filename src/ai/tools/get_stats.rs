//! `get_stats`: this chat's channels in history, the recent rate, counts
//! by level, and the gateway's uptime.
//!
//! This chat's channels only. Gateway-wide figures (connections, events
//! accepted, history held, drops) are the operator's, on the admin stats
//! endpoint: they would tell one tenant about the others' traffic, so the
//! tool box holds no handle on them at all.

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::ToolError;
use super::result::{Built, LevelCounts, time_text};
use super::select::SCAN_PAGE;
use super::{ToolBox, ToolSpec};
use crate::event::now_ms;

/// The windows of the event rate, in minutes, shortest first; the
/// counts by level cover the longest.
const WINDOWS_MIN: [i64; 3] = [1, 5, 15];
const MINUTE_MS: i64 = 60_000;

pub struct GetStats;

/// None: it counts the whole scope.
#[derive(Debug, Default, Deserialize)]
pub struct Args {}

impl ToolSpec for GetStats {
    const NAME: &'static str = "get_stats";
    const DESCRIPTION: &'static str = "For this chat's channels only: events history holds (with the oldest and newest time), the event rate over the last 1, 5 and 15 minutes, counts by level, and the gateway's uptime.";
    type Args = Args;

    fn parameters() -> Value {
        json!({"type": "object", "properties": {}})
    }

    fn run(tb: &ToolBox, _: Args, _: &mut usize) -> Result<Built, ToolError> {
        let (events, more) = tb.scan(tb.scope.whole(SCAN_PAGE));
        let now = now_ms();
        let longest = WINDOWS_MIN[WINDOWS_MIN.len() - 1] * MINUTE_MS;
        let mut windows = [0usize; WINDOWS_MIN.len()];
        let mut levels = LevelCounts::default();
        let (mut oldest, mut newest) = (i64::MAX, i64::MIN);
        for e in &events {
            oldest = oldest.min(e.times.timestamp_ms);
            newest = newest.max(e.times.timestamp_ms);
            let age = now - e.times.received_ms;
            if age > longest {
                continue;
            }
            for (w, minutes) in windows.iter_mut().zip(WINDOWS_MIN) {
                if age <= minutes * MINUTE_MS {
                    *w += 1;
                }
            }
            levels.add(e.level);
        }
        let seen = |ms| {
            if events.is_empty() {
                Value::Null
            } else {
                time_text(ms)
            }
        };
        let value = json!({
            "channels": tb.scope.patterns.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "uptime_seconds": tb.started.elapsed().as_secs(),
            "history_events": events.len(),
            "history_oldest": seen(oldest),
            "history_newest": seen(newest),
            "events_last_1m": windows[0],
            "events_last_5m": windows[1],
            "events_last_15m": windows[2],
            "per_second_last_1m": (windows[0] as f64 / 60.0 * 100.0).round() / 100.0,
            "by_level_last_15m": levels.to_json(),
            "complete": !more,
            "returned": 1,
            "limit": 1,
            "truncated": more,
        });
        Ok(tb.fit(value, ""))
    }
}
