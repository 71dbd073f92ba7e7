//! Ingestion's tests: the contract's event, refusals and their codes,
//! size limits, body formats, `meta` and timestamps.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::json::json_depth;
use super::*;
use crate::event::NewEvent;
use crate::event::{Event, EventId};

const LIMITS: Limits = Limits {
    max_event_bytes: 65536,
    max_batch_events: 1000,
};
const NOW: &str = "2025-09-25T10:31:00.123Z";

fn now() -> Received {
    Received::at(
        DateTime::parse_from_rfc3339(NOW)
            .unwrap()
            .with_timezone(&Utc),
    )
}

/// What a parser of a shipper's body is given for the etl token.
pub(super) fn input(received: &Received) -> request::ParseInput<'_> {
    request::ParseInput {
        service: "etl",
        received,
        limits: LIMITS,
        body_limit: 1 << 20,
    }
}

fn parse(body: &str) -> Result<Vec<NewEvent>, PublishError> {
    parse_body(body.as_bytes(), BodyFormat::Json, "etl", &now(), LIMITS)
}

/// The JSON a subscriber receives for `e`.
pub(super) fn json_of(e: NewEvent) -> serde_json::Value {
    let ev = Event::encode(EventId { epoch: 1, seq: 1 }, e);
    serde_json::from_slice(&ev.json()).unwrap()
}

#[test]
fn contract_example_becomes_the_delivered_event() {
    let body = r#"{"service":"etl","workspace_id":"ws1","resource_id":"job7",
        "logData":{"level":"INFO","message":"done","timestamp":"2025-09-25T10:30:00Z",
        "stream":"stdout","source":"api","meta":{"rows":12}}}"#;
    let mut events = parse(body).unwrap();
    let j = json_of(events.remove(0));
    assert_eq!(j["channel"], "logs:etl:ws1:job7");
    assert_eq!(j["service"], "etl");
    assert_eq!(j["workspace_id"], "ws1");
    assert_eq!(j["resource_id"], "job7");
    assert_eq!(j["level"], "info");
    assert_eq!(j["message"], "done");
    assert_eq!(j["timestamp"], "2025-09-25T10:30:00Z");
    assert_eq!(j["received_at"], NOW);
    assert_eq!(j["stream"], "stdout");
    assert_eq!(j["source"], "api");
    assert_eq!(j["meta"]["rows"], 12);
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys.len(), 12);
}

#[test]
fn aliases_defaults_and_channel_form() {
    let e = parse(r#"{"service":"etl","workspace_id":"ws1","workflow_id":"wf","logData":{"message":"m","level":"WARNING"}}"#).unwrap();
    let j = json_of(e.into_iter().next().unwrap());
    assert_eq!(j["channel"], "logs:etl:ws1:wf");
    assert_eq!(j["level"], "warn");
    assert_eq!(j["timestamp"], NOW, "missing timestamp takes receipt time");
    assert!(j.get("meta").is_none() && j.get("stream").is_none());

    let e = parse(r#"{"service":"etl","logData":{"message":"m","level":"ERR"}}"#).unwrap();
    let j = json_of(e.into_iter().next().unwrap());
    assert_eq!(j["channel"], "logs:etl");
    assert_eq!(j["level"], "error");
    assert!(j.get("workspace_id").is_none());

    let e = parse(
        r#"{"channel":"logs:etl:ws1:job7","logData":{"message":"m","timestamp":1758796200000}}"#,
    )
    .unwrap();
    let j = json_of(e.into_iter().next().unwrap());
    assert_eq!(j["workspace_id"], "ws1");
    assert_eq!(j["timestamp"], "2025-09-25T10:30:00Z");
}

#[test]
fn refusals_have_codes_and_indexes() {
    let cases = [
        ("", "invalid_json"),
        ("{", "invalid_json"),
        (r#"{"service":"etl"}"#, "invalid_event"),
        (
            r#"{"service":"etl","logData":{"message":1}}"#,
            "invalid_event",
        ),
        (
            r#"{"service":"etl","workspaceId":"x","logData":{"message":"m"}}"#,
            "invalid_event",
        ),
        (r#"{"logData":{"message":"m"}}"#, "invalid_event"),
        (
            r#"{"service":"etl","workspace_id":"w.1","logData":{"message":"m"}}"#,
            "invalid_channel",
        ),
        (
            r#"{"channel":"logs:etl:*","logData":{"message":"m"}}"#,
            "invalid_channel",
        ),
        (
            r#"{"channel":"logs:etl:a","service":"faas","logData":{"message":"m"}}"#,
            "invalid_event",
        ),
        (
            r#"{"service":"etl","logData":{"message":"m","level":"loud"}}"#,
            "invalid_level",
        ),
        (
            r#"{"service":"etl","logData":{"message":"m","timestamp":"yesterday"}}"#,
            "invalid_timestamp",
        ),
        (
            r#"{"service":"etl","logData":{"message":"m","timestamp":true}}"#,
            "invalid_timestamp",
        ),
        (
            r#"{"service":"etl","logData":{"message":"m","timestamp":1e300}}"#,
            "invalid_timestamp",
        ),
        (
            r#"{"service":"faas","logData":{"message":"m"}}"#,
            "service_mismatch",
        ),
        (
            r#"{"service":"etl","resource_id":"a","workflow_id":"b","workspace_id":"w","logData":{"message":"m"}}"#,
            "invalid_event",
        ),
    ];
    for (body, code) in cases {
        let err = parse(body)
            .err()
            .unwrap_or_else(|| panic!("{body} should fail"));
        assert_eq!(err.code(), code, "{body}: {err}");
    }
    let batch = r#"[{"service":"etl","logData":{"message":"ok"}},{"service":"etl","logData":{"message":"m","level":"nope"}}]"#;
    let err = parse(batch).unwrap_err();
    assert_eq!(err.code(), "invalid_level");
    assert_eq!(err.index(), Some(1));
    assert!(err.to_string().starts_with("event 1: "));
}

#[test]
fn meta_depth_is_bounded() {
    let nested = |n: usize| {
        format!(
            r#"{{"service":"etl","logData":{{"message":"m","meta":{}1{}}}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    assert!(parse(&nested(MAX_META_DEPTH)).is_ok());
    assert_eq!(
        parse(&nested(MAX_META_DEPTH + 1)).unwrap_err().code(),
        "invalid_event"
    );
    // Brackets inside strings do not count.
    let quoted = format!(
        r#"{{"service":"etl","logData":{{"message":"m","meta":{{"s":"{}\"{}"}}}}}}"#,
        "[".repeat(100),
        "{".repeat(100)
    );
    assert!(parse(&quoted).is_ok(), "{quoted}");
    assert_eq!(json_depth(r#"{"a":[1,{"b":"]]]"}]}"#), 3);
}

// Found by fuzzing (`scripts/fuzz.sh`, target publish_body; rules and
// fly reach the same code).
#[test]
fn timestamps_leave_as_rfc3339_or_are_refused() {
    for ts in [
        "253402300800000", // 10000-01-01T00:00:00Z in epoch ms
        "1e15",
        "-1e14",
        r#""9999-12-31T23:59:59-23:59""#, // valid RFC 3339, year 10000 in UTC
        r#""0000-01-01T00:00:00+23:59""#,
    ] {
        let body = format!(r#"{{"service":"etl","logData":{{"message":"m","timestamp":{ts}}}}}"#);
        assert_eq!(
            parse(&body).unwrap_err().code(),
            "invalid_timestamp",
            "{ts}"
        );
    }
    for ts in [
        r#""9999-12-31T23:59:59Z""#,
        r#""0000-01-01T00:00:00Z""#,
        "0",
    ] {
        let body = format!(r#"{{"service":"etl","logData":{{"message":"m","timestamp":{ts}}}}}"#);
        let j = json_of(parse(&body).unwrap().remove(0));
        let t = j["timestamp"].as_str().unwrap();
        assert!(DateTime::parse_from_rfc3339(t).is_ok(), "{ts} became {t}");
    }
}

#[test]
fn meta_numbers_beyond_f64_do_not_reach_subscribers() {
    for meta in [
        "1e400",
        "[1,-2.5e62000003]",
        r#"{"a":111111111111111111111111111111E11111111}"#,
        r#"{"x":"1e999 in a string is fine","n":1e309}"#,
    ] {
        let body = format!(r#"{{"service":"etl","logData":{{"message":"m","meta":{meta}}}}}"#);
        assert_eq!(parse(&body).unwrap_err().code(), "invalid_event", "{meta}");
    }
    for meta in [
        r#"{"big":123456789012345678901234567890,"small":-1.5e-400,"s":"1e999"}"#,
        "[0,-0,1E+2,1.7976931348623157e308]",
    ] {
        let body = format!(r#"{{"service":"etl","logData":{{"message":"m","meta":{meta}}}}}"#);
        let ev = Event::encode(
            EventId { epoch: 1, seq: 1 },
            parse(&body).unwrap().remove(0),
        );
        assert!(serde_json::from_slice::<serde_json::Value>(&ev.json()).is_ok());
    }
}

#[test]
fn minify_removes_whitespace_between_tokens_only() {
    let cases = [
        ("{\"a\":1}", "{\"a\":1}"),
        (" {\r\n \"a\" :\t[ 1 ,\r2 ]\n}\n", "{\"a\":[1,2]}"),
        // Spaces and escapes inside strings are data.
        (r#"{ "k e y" : "a b\n\t" }"#, r#"{"k e y":"a b\n\t"}"#),
        (
            r#"[ "\"", "\\", "\\\" ]" , 1 ]"#,
            r#"["\"","\\","\\\" ]",1]"#,
        ),
        (r#"[ "\\" , "x y" ]"#, r#"["\\","x y"]"#),
        // Key order, duplicates and number spelling stay as written.
        (
            r#"{"z": 1.50e3, "a": -0, "z": 1E+2}"#,
            r#"{"z":1.50e3,"a":-0,"z":1E+2}"#,
        ),
        (r#""\u00e9 \u2028""#, r#""\u00e9 \u2028""#),
        (
            "{\"\u{e9}\" : \"\u{2028} x\"}",
            "{\"\u{e9}\":\"\u{2028} x\"}",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(minify_json(input), want, "{input:?}");
        assert!(
            serde_json::from_str::<serde_json::Value>(want).is_ok(),
            "{want}"
        );
    }
    assert!(matches!(minify_json("[1,2]"), Cow::Borrowed(_)));
    // Not JSON: any result, but no panic.
    let _ = minify_json("\"\\");
    let _ = minify_json(" \u{e9} \" \u{e9}");
}

#[test]
fn meta_is_delivered_compact() {
    let body = "{\"service\":\"etl\",\"logData\":{\"message\":\"m\",\"meta\":{\r\n\"a\" :\n[1,\r\"x\\ny\"]\n}}}";
    let e = parse(body).unwrap().remove(0);
    let text = std::str::from_utf8(&e.body_tail).unwrap();
    assert!(text.ends_with(r#","meta":{"a":[1,"x\ny"]}}"#), "{text}");
    assert!(!text.contains(['\n', '\r']), "{text}");
}

#[test]
fn size_limits() {
    let big = format!(
        r#"{{"service":"etl","logData":{{"message":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    assert_eq!(parse(&big).unwrap_err().code(), "event_too_large");
    let one = r#"{"service":"etl","logData":{"message":"m"}}"#;
    let many = format!("[{}]", vec![one; 1001].join(","));
    assert_eq!(parse(&many).unwrap_err().code(), "batch_too_large");
    let ok = format!("[{}]", vec![one; 1000].join(","));
    assert_eq!(parse(&ok).unwrap().len(), 1000);
}

/// A raw C1 control (two bytes) is delivered as `\u009b` (six): an event
/// within `max_event_bytes` as sent may grow past what other nodes take
/// (`ENCODING_HEADROOM` more), and is refused at the publish, in either
/// body format, rather than by them.
#[test]
fn events_grown_by_escapes_past_the_headroom_are_refused() {
    let event = |n: usize| {
        format!(
            r#"{{"service":"etl","logData":{{"message":"{}"}}}}"#,
            "\u{9b}".repeat(n)
        )
    };
    // 1,000 of them grow by 4,000 bytes; 200 by 800, within the headroom.
    let grown = event(1000);
    assert!(grown.len() < 4096);
    let limits = Limits {
        max_event_bytes: 4096,
        ..LIMITS
    };
    for format in [BodyFormat::Json, BodyFormat::Ndjson] {
        let refused = parse_body(grown.as_bytes(), format, "etl", &now(), limits).unwrap_err();
        assert_eq!(refused.code(), "event_too_large", "{format:?}");
        let kept = parse_body(event(200).as_bytes(), format, "etl", &now(), limits).unwrap();
        let j = json_of(kept.into_iter().next().unwrap());
        assert_eq!(j["message"], "\u{9b}".repeat(200));
    }
}

#[test]
fn ndjson_and_bad_utf8() {
    let body = "{\"service\":\"etl\",\"logData\":{\"message\":\"a\"}}\r\n\n{\"service\":\"etl\",\"logData\":{\"message\":\"b\"}}\n";
    let events = parse_body(body.as_bytes(), BodyFormat::Ndjson, "etl", &now(), LIMITS).unwrap();
    assert_eq!(events.len(), 2);
    let bad = b"{\"service\":\"etl\",\"logData\":{\"message\":\"\xff\xfe\"}}";
    let err = parse_body(bad, BodyFormat::Json, "etl", &now(), LIMITS).unwrap_err();
    assert_eq!(err.code(), "invalid_json");
    let err = parse_body(bad, BodyFormat::Ndjson, "etl", &now(), LIMITS).unwrap_err();
    assert_eq!(err.code(), "invalid_json");
}
