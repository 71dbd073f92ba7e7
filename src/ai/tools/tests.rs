use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde_json::{Value, json};

use super::*;
use crate::event::{Level, now_ms};
use crate::metrics::label;
use crate::registry::history::HistoryLimits;

/// The fields a derived `Deserialize` struct reads, captured from the
/// list serde hands its deserializer.
pub(super) fn fields_of<A: DeserializeOwned>() -> &'static [&'static str] {
    struct Capture<'a>(&'a mut Option<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(de::Error::custom("captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = None;
    let _ = A::deserialize(Capture(&mut fields));
    fields.expect("tool arguments are a struct")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn each_schema_names_exactly_its_tools_arguments() {
    for tool in Tool::ALL {
        let e = tool.entry();
        let schema = (e.parameters)();
        assert_eq!(schema["type"], "object", "{}", e.name);
        let properties = schema["properties"].as_object().expect("properties");
        let in_schema = sorted(properties.keys().cloned().collect());
        let in_args = sorted((e.fields)().iter().map(|f| f.to_string()).collect());
        assert_eq!(in_schema, in_args, "{}", e.name);
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().expect("a name");
            assert!(properties.contains_key(required), "{}: {required}", e.name);
        }
    }
}

#[test]
fn names_are_unique_and_are_the_metric_labels() {
    let names: Vec<&str> = Tool::ALL.into_iter().map(Tool::name).collect();
    for (i, n) in names.iter().enumerate() {
        assert!(!names[..i].contains(n), "{n} twice");
        assert_eq!(Tool::from_name(n).map(Tool::name), Some(*n));
    }
    let mut labels = names.clone();
    labels.push(label::ai::UNKNOWN_TOOL);
    labels.sort_unstable();
    let mut registered = label::ai::TOOLS;
    registered.sort_unstable();
    assert_eq!(labels, registered);
    assert!(!names.contains(&label::ai::UNKNOWN_TOOL));
}

#[test]
fn definitions_offer_the_line_tools_only_with_lines() {
    let named = |lines| -> Vec<String> {
        definitions(lines)
            .into_iter()
            .map(|t| match t {
                ChatCompletionTools::Function(t) => t.function.name,
                ChatCompletionTools::Custom(_) => "custom".into(),
            })
            .collect()
    };
    assert_eq!(
        named(true),
        [
            "list_channels",
            "search_logs",
            "count_by",
            "top_patterns",
            "get_stats",
            "get_context"
        ]
    );
    assert_eq!(
        named(false),
        ["list_channels", "count_by", "top_patterns", "get_stats"]
    );
}

fn toolbox(lines: bool, scope: &[&str]) -> ToolBox {
    let history = SharedHistory::new(HistoryLimits {
        max_entries_per_channel: 100,
        max_age_ms: 3_600_000,
        max_bytes: usize::MAX,
        max_channels: 100,
    });
    let now = now_ms();
    let events = [
        ("logs:etl:ws1:job7", Level::Error, "disk full after 3 tries"),
        ("logs:etl:ws1:job7", Level::Error, "disk full after 4 tries"),
        ("logs:etl:ws1:job8", Level::Info, "started"),
        ("logs:faas:ws2:fn1", Level::Error, "theirs"),
    ];
    for (i, (channel, level, message)) in events.into_iter().enumerate() {
        let e = crate::event::testing::event(i as u64 + 1, channel, level, message, now);
        history.write().push(&e, now);
    }
    ToolBox {
        history,
        redactor: Arc::new(Redactor::new()),
        epoch: 1,
        scope: Scope::new(
            scope
                .iter()
                .map(|p| ChannelPattern::parse(p).unwrap())
                .collect(),
        ),
        lines,
        line_max: 500,
        result_max: 16_000,
        started: std::time::Instant::now(),
    }
}

fn content(o: &Outcome) -> Value {
    serde_json::from_str(&o.content).expect("JSON content")
}

#[test]
fn an_unknown_tool_is_an_error_naming_the_offered_tools() {
    for lines in [true, false] {
        let o = toolbox(lines, &["logs:etl:*"]).call("rm_rf", "{}");
        assert_eq!(o.tool, None);
        assert_eq!(o.label(), label::ai::UNKNOWN_TOOL);
        let e = o.error.clone().expect("an error");
        assert!(e.starts_with("no tool named \"rm_rf\"; the tools are: list_channels, "));
        assert_eq!(e.contains("search_logs"), lines, "{e}");
        assert_eq!(content(&o), json!({ "error": e }));
        assert_eq!(o.returned, 0);
    }
    // Never a fallthrough to another tool, whatever the arguments.
    let o = toolbox(true, &["logs:*"]).call("", "");
    assert_eq!((o.tool, o.returned), (None, 0));
}

#[test]
fn line_tools_are_refused_when_lines_are_off() {
    let tb = toolbox(false, &["logs:etl:*"]);
    for name in ["search_logs", "get_context"] {
        let o = tb.call(name, r#"{"id": "x"}"#);
        assert_eq!(o.tool.map(Tool::name), Some(name));
        assert!(o.error.unwrap().contains("turned off"));
    }
    assert!(
        tb.call("search_logs", "{")
            .error
            .unwrap()
            .contains("not a JSON object")
    );
}

#[test]
fn each_tool_answers_within_the_scope() {
    let tb = toolbox(true, &["logs:etl:*"]);
    let v = content(&tb.call("count_by", r#"{"field": "resource"}"#));
    assert_eq!(
        v["counts"],
        json!([{"value": "job7", "count": 2}, {"value": "job8", "count": 1}])
    );
    assert_eq!(v["total_events"], 3);

    let o = tb.call("search_logs", r#"{"query": "disk", "limit": "1"}"#);
    let v = content(&o);
    assert_eq!((o.returned, o.truncated), (1, true));
    assert_eq!(v["events"][0]["message"], "disk full after 4 tries");
    assert_eq!(o.ids, [v["events"][0]["id"].as_str().unwrap()]);

    let v = content(&tb.call("top_patterns", r#"{"level": "error"}"#));
    assert_eq!(v["patterns"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["patterns"][0]["count"], 2);
    assert_eq!(v["patterns"][0]["levels"], json!({"error": 2}));

    let v = content(&tb.call("list_channels", ""));
    assert_eq!(v["channels"][0]["channel"], "logs:etl:ws1:job7");
    assert_eq!(v["returned"], 2);

    let v = content(&tb.call("get_stats", ""));
    assert_eq!(v["history_events"], 3);
    assert_eq!(v["events_last_1m"], 3);
    assert_eq!(v["by_level_last_15m"], json!({"info": 1, "error": 2}));

    let id = crate::event::EventId { epoch: 1, seq: 2 }.to_string();
    let v = content(&tb.call(
        "get_context",
        &json!({"id": id, "before": 1, "after": 0}).to_string(),
    ));
    assert_eq!(v["events"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["events"][1]["target"], true);
}

#[test]
fn arguments_are_checked_before_history_is_read() {
    let tb = toolbox(true, &["logs:etl:*"]);
    let error =
        |name: &str, args: Value| tb.call(name, &args.to_string()).error.unwrap_or_default();
    assert_eq!(
        error("count_by", json!({})),
        "field must be one of level, service, channel, resource"
    );
    assert_eq!(error("get_context", json!({})), "id is required");
    assert!(error("get_context", json!({"id": "nope"})).starts_with("no event \"nope\""));
    // An id of theirs is the same answer as no id at all.
    let theirs = crate::event::EventId { epoch: 1, seq: 4 }.to_string();
    assert!(error("get_context", json!({ "id": theirs })).starts_with("no event"));
    assert!(
        error("search_logs", json!({"channels": ["logs:faas:*"]}))
            .contains("outside the channels of this chat (logs:etl:*)")
    );
    let many: Vec<String> = (0..33).map(|i| format!("logs:etl:ws{i}")).collect();
    assert_eq!(
        error("top_patterns", json!({ "channels": many })),
        "at most 32 channels per call"
    );
    assert!(error("search_logs", json!({"since": "soon"})).starts_with("since must be"));
    assert!(error("search_logs", json!({"limit": true})).starts_with("limit must be"));
    assert!(error("count_by", json!({"field": "level", "level": "loud"})).starts_with("level"));
}
