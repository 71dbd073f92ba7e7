//! Event bodies as publishers send them, and what tests read back: the
//! messages of delivered events, sample values of the Prometheus text.

use serde_json::Value;

/// One event as `POST /api/logs/publish` takes it, at level `info`.
pub fn event(service: &str, ws: Option<&str>, res: Option<&str>, message: &str) -> Value {
    let mut e =
        serde_json::json!({"service": service, "logData": {"message": message, "level": "info"}});
    if let Some(w) = ws {
        e["workspace_id"] = w.into();
    }
    if let Some(r) = res {
        e["resource_id"] = r.into();
    }
    e
}

/// The `message` of each event.
pub fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["message"]
                .as_str()
                .unwrap_or_else(|| panic!("an event without a message: {e}"))
                .to_owned()
        })
        .collect()
}

/// The value of one sample line of Prometheus text, e.g.
/// `loggate_events_dropped_total{reason="slow_consumer",service="etl"}`.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}
