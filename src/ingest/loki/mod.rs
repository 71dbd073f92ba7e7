//! The Loki push API: `POST /loki/api/v1/push`, as Promtail, Grafana
//! Alloy, Vector and Fluent Bit send it.
//!
//! Reads a push (snappy-compressed `logproto.PushRequest`, or Loki's JSON),
//! maps each entry onto loggate's event fields and hands the result to
//! [`validate`](super::validate()), so every rule of `/api/logs/publish`
//! holds here too. The request goes through
//! [`request::ingest`](super::request::ingest) like any publish; success is
//! Loki's `204`, refusals are Loki-shaped JSON.
//!
//! Mapping, per entry: stream label `service` (else `service_name`, `app`,
//! `job`; none: the token's service) → service, `workspace` → workspace,
//! `resource` → resource, the first readable of the labels `level`,
//! `severity`, `detected_level`, `lvl`, `loglevel` (else of the structured
//! metadata of those names, else a `level=`/`"level":` found in the line)
//! → level; the line → message; the entry's time → timestamp; every other
//! label and the structured metadata → `meta`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{TimeZone, Utc};
use prost::Message;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::compression::Packing;
use super::protobuf::count_at;
use super::request::{
    Endpoint, ParseInput, RequestLimits, check_count, ingest, media_type, unsupported,
};
use super::{PublishError, RawEvent, RawLogData, check_encoded, format_time, validate};
use crate::auth::Schemes;
use crate::event::{Level, NewEvent};
use crate::metrics::label::source;
use crate::state::AppState;

mod labels;

use labels::{Labels, check_labels};
pub use labels::{MAX_LABEL_NAME, MAX_LABEL_VALUE, MAX_LABELS, parse_labels};

/// Loki's push messages, field for field as Loki's `pkg/push/push.proto`
/// has them. Loki publishes no Rust crate; the one `tracing-loki` uses
/// (`loki-api`) predates structured metadata and another prost. A line is
/// read as bytes: Loki does not check UTF-8, so neither do its shippers,
/// and one bad byte should not refuse the push (it becomes U+FFFD).
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        /// `{name="value", …}`, Prometheus' label syntax.
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<prost_types::Timestamp>,
        #[prost(bytes = "vec", tag = "2")]
        pub line: Vec<u8>,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
}

pub use proto::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter};

/// The two bodies Loki reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Snappy-compressed protobuf; also what Loki assumes with no
    /// content type at all.
    SnappyProtobuf,
    Json,
}

fn format(req: &HttpRequest) -> Result<(Format, Packing), PublishError> {
    match media_type(req).as_deref() {
        None | Some("application/x-protobuf") => Ok((Format::SnappyProtobuf, Packing::Snappy)),
        Some("application/json") => Ok((Format::Json, Packing::Plain)),
        Some(found) => Err(unsupported(
            found,
            "application/x-protobuf (snappy) or application/json (Loki push)",
        )),
    }
}

/// A refused push, in the shape of Loki's (and Prometheus') API errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LokiError(PublishError);

impl ResponseError for LokiError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let error_type = match self.status_code() {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "bad_data",
        };
        let mut res = HttpResponse::build(self.status_code());
        if let Some(secs) = self.0.retry_after_secs() {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        let body = serde_json::json!({
            "status": "error",
            "errorType": error_type,
            "error": self.0.to_string(),
            "code": self.0.code(),
        });
        self.0.with_challenge(res.json(body))
    }
}

/// `POST /loki/api/v1/push`.
pub async fn push(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, LokiError> {
    let endpoint = Endpoint {
        source: source::LOKI,
        schemes: Schemes::BearerOrBasic,
        limits: RequestLimits::shipper(&state),
        format,
        // Loki's shippers say `snappy` of the protobuf body they send
        // compressed anyway; Loki takes it as a remark, so does loggate.
        own_encodings: &["snappy"],
        parse,
        idempotency: None,
    };
    ingest(&req, payload, &state, endpoint)
        .await
        .map_err(LokiError)?;
    Ok(HttpResponse::NoContent().finish())
}

/// One entry, whichever body it came in.
struct Entry<'a> {
    /// Unix nanoseconds; `None` for none given.
    nanos: Option<i128>,
    line: Cow<'a, str>,
    metadata: Labels<'a>,
}

/// Decodes a push and validates every entry in it.
pub fn parse(
    format: Format,
    body: &[u8],
    input: &ParseInput<'_>,
) -> Result<Vec<NewEvent>, PublishError> {
    match format {
        Format::SnappyProtobuf => {
            let raw = unsnappy(body, input)?;
            // streams (1) → entries (2)
            if let Some(count) = count_at(&raw, &[1, 2]) {
                check_count(count, input)?;
            }
            let push = PushRequest::decode(&raw[..]).map_err(|e| PublishError::InvalidBody {
                message: format!("not a Loki PushRequest: {e}"),
            })?;
            let count = push.streams.iter().map(|s| s.entries.len()).sum();
            check_count(count, input)?;
            let mut events = Vec::with_capacity(count);
            for stream in &push.streams {
                let labels =
                    parse_labels(&stream.labels).map_err(|message| PublishError::InvalidEvent {
                        index: Some(events.len()),
                        message,
                    })?;
                for e in &stream.entries {
                    let entry = Entry {
                        nanos: e
                            .timestamp
                            .as_ref()
                            .map(|t| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)),
                        line: String::from_utf8_lossy(&e.line),
                        metadata: e
                            .structured_metadata
                            .iter()
                            .map(|p| (Cow::Borrowed(&p.name[..]), Cow::Borrowed(&p.value[..])))
                            .collect(),
                    };
                    let index = Some(events.len());
                    events.push(map_entry(&labels, entry, input, index)?);
                }
            }
            Ok(events)
        }
        Format::Json => {
            let push: JsonPush<'_> =
                serde_json::from_slice(body).map_err(|e| PublishError::InvalidJson {
                    index: None,
                    message: format!("not a Loki push: {e}"),
                })?;
            let count = push.streams.iter().map(|s| s.values.len()).sum();
            check_count(count, input)?;
            let mut events = Vec::with_capacity(count);
            for stream in push.streams {
                let index = Some(events.len());
                let labels: Labels<'_> = stream.stream.into_iter().collect();
                check_labels(&labels)
                    .map_err(|message| PublishError::InvalidEvent { index, message })?;
                for JsonEntry(ts, line, metadata) in stream.values {
                    let index = Some(events.len());
                    let nanos =
                        ts.trim()
                            .parse::<i128>()
                            .map_err(|_| PublishError::InvalidTimestamp {
                                index,
                                value: ts.chars().take(48).collect(),
                            })?;
                    let entry = Entry {
                        nanos: Some(nanos),
                        line,
                        metadata: metadata.into_iter().flatten().collect(),
                    };
                    events.push(map_entry(&labels, entry, input, index)?);
                }
            }
            Ok(events)
        }
    }
}

/// The snappy block inflated, its declared size checked against the body
/// limit before anything is allocated.
fn unsnappy(body: &[u8], input: &ParseInput<'_>) -> Result<Vec<u8>, PublishError> {
    let bad = |e: snap::Error| PublishError::InvalidBody {
        message: format!("the body is not snappy-compressed protobuf: {e}"),
    };
    // The same bound as a gzip body's: the request limit holds for what
    // is parsed, so a small snappy bomb costs no more than a body at it.
    let max = input.body_limit;
    if snap::raw::decompress_len(body).map_err(bad)? > max {
        return Err(PublishError::BodyTooLarge { max });
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(bad)
}

/// Loki's JSON push body.
#[derive(Deserialize)]
struct JsonPush<'a> {
    #[serde(borrow)]
    streams: Vec<JsonStream<'a>>,
}

#[derive(Deserialize)]
struct JsonStream<'a> {
    #[serde(borrow, default)]
    stream: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow)]
    values: Vec<JsonEntry<'a>>,
}

/// `["<unix ns>", "<line>"]` or `["<unix ns>", "<line>", {metadata}]`.
struct JsonEntry<'a>(
    Cow<'a, str>,
    Cow<'a, str>,
    Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
);

impl<'de: 'a, 'a> Deserialize<'de> for JsonEntry<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = JsonEntry<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"["<unix epoch in nanoseconds>", "<log line>", {optional metadata}]"#)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let ts: Cow<'a, str> = seq
                    .next_element::<Borrowed<'a>>()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?
                    .0;
                let line: Cow<'a, str> = seq
                    .next_element::<Borrowed<'a>>()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?
                    .0;
                let metadata = seq.next_element()?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(4, &self));
                }
                Ok(JsonEntry(ts, line, metadata))
            }
        }
        d.deserialize_seq(Visitor(std::marker::PhantomData))
    }
}

/// A string borrowed from the body when it has no escapes.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

/// The labels that name where an event goes, in the order they are tried.
const SERVICE_LABELS: [&str; 4] = ["service", "service_name", "app", "job"];
/// The labels (and structured metadata) that may carry the level, in the
/// order they are tried: `level` (Promtail, Alloy, winston-loki, pino-loki),
/// `severity` (python-logging-loki), `detected_level` (what Loki itself
/// adds), then the short spellings some loggers use.
pub const LEVEL_KEYS: [&str; 5] = ["level", "severity", "detected_level", "lvl", "loglevel"];

/// The first of `pairs` (labels or metadata) that names a level it can be
/// read as, in [`LEVEL_KEYS`] order; the last pair of a name wins, as it
/// does for every label. Its name, so that it is not kept in `meta` too.
fn level_of<'a>(pairs: &'a [(Cow<'_, str>, Cow<'_, str>)]) -> Option<(&'a str, Level)> {
    LEVEL_KEYS.iter().find_map(|key| {
        let (name, value) = pairs.iter().rev().find(|(n, _)| n == key)?;
        Some((name.as_ref(), Level::parse(value)?))
    })
}

/// A level a line states about itself: a top-level `level`, `lvl` or
/// `severity` of a JSON object, or `level=` / `lvl=` of logfmt.
pub fn level_in_line(line: &str) -> Option<Level> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('{') {
        #[derive(Deserialize)]
        struct Fields<'a> {
            #[serde(borrow, alias = "lvl", alias = "severity")]
            level: Option<Cow<'a, str>>,
        }
        return serde_json::from_str::<Fields<'_>>(trimmed)
            .ok()?
            .level
            .and_then(|l| Level::parse(&l));
    }
    for key in ["level=", "lvl="] {
        let mut from = 0;
        while let Some(at) = line[from..].find(key) {
            let start = from + at;
            from = start + key.len();
            // A whole key: at the start or after a space.
            if start > 0 && !line.as_bytes()[start - 1].is_ascii_whitespace() {
                continue;
            }
            let value = &line[from..];
            let value = match value.strip_prefix('"') {
                Some(v) => v.split('"').next().unwrap_or_default(),
                None => value.split_ascii_whitespace().next().unwrap_or_default(),
            };
            return Level::parse(value);
        }
    }
    None
}

fn map_entry(
    labels: &[(Cow<'_, str>, Cow<'_, str>)],
    entry: Entry<'_>,
    input: &ParseInput<'_>,
    index: Option<usize>,
) -> Result<NewEvent, PublishError> {
    let max = input.limits.max_event_bytes;
    let size = entry.line.len();
    if size > max {
        return Err(PublishError::EventTooLarge { index, size, max });
    }
    let label = |name: &str| {
        labels
            .iter()
            .rev()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_ref())
    };
    let service_label = SERVICE_LABELS
        .iter()
        .find(|name| label(name).is_some_and(|v| !v.starts_with("unknown_service")))
        .copied();
    let service = service_label.and_then(label).unwrap_or(input.service);
    // The first level that can be read: the stream's labels, the entry's
    // metadata, the line. One that cannot be read stays in `meta`.
    let label_level = level_of(labels);
    let metadata_level = match label_level {
        Some(_) => None,
        None => level_of(&entry.metadata),
    };
    let level = label_level
        .or(metadata_level)
        .map(|(_, l)| l)
        .or_else(|| level_in_line(&entry.line))
        .unwrap_or(Level::Info);
    let mut meta = serde_json::Map::new();
    for (name, value) in labels {
        let consumed = Some(name.as_ref()) == service_label
            || name == "workspace"
            || name == "resource"
            || Some(name.as_ref()) == label_level.map(|(n, _)| n);
        if !consumed {
            meta.insert(name.to_string(), value.as_ref().into());
        }
    }
    for (name, value) in &entry.metadata {
        if Some(name.as_ref()) != metadata_level.map(|(n, _)| n) {
            meta.insert(name.to_string(), value.as_ref().into());
        }
    }
    let meta = if meta.is_empty() {
        None
    } else {
        Some(
            serde_json::value::to_raw_value(&meta).map_err(|e| PublishError::InvalidEvent {
                index,
                message: format!("labels: {e}"),
            })?,
        )
    };
    let timestamp = match entry.nanos {
        None | Some(0) => None,
        Some(n) => {
            let t = i64::try_from(n)
                .ok()
                .map(|n| Utc.timestamp_nanos(n))
                .ok_or_else(|| PublishError::InvalidTimestamp {
                    index,
                    value: n.to_string(),
                })?;
            let text = serde_json::to_string(&format_time(t)).unwrap_or_default();
            Some(
                RawValue::from_string(text).map_err(|e| PublishError::InvalidEvent {
                    index,
                    message: e.to_string(),
                })?,
            )
        }
    };
    let raw = RawEvent {
        service: Some(Cow::Borrowed(service)),
        workspace_id: label("workspace").map(Cow::Borrowed),
        resource_id: label("resource").map(Cow::Borrowed),
        workflow_id: None,
        channel: None,
        log_data: RawLogData {
            level: Some(Cow::Borrowed(level.as_str())),
            message: entry.line,
            timestamp: timestamp.as_deref(),
            stream: None,
            source: Some(Cow::Borrowed("loki")),
            meta: meta.as_deref(),
        },
    };
    let event = validate(raw, Some(input.service), input.received, index)?;
    check_encoded(event, max, index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Received;
    use crate::ingest::tests::{input, json_of};

    fn events(format: Format, body: &[u8]) -> Result<Vec<serde_json::Value>, PublishError> {
        let received = Received::now();
        Ok(parse(format, body, &input(&received))?
            .into_iter()
            .map(json_of)
            .collect())
    }

    fn snappy(push: &PushRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&push.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn labels_parse_with_escapes_and_refuse_what_prometheus_would() {
        let labels = parse_labels(r#"{service="etl", msg="a \"q\" \\ b\n",job="x"}"#).unwrap();
        assert_eq!(labels[0], ("service".into(), "etl".into()));
        assert_eq!(labels[1].1, "a \"q\" \\ b\n");
        assert_eq!(labels[2], ("job".into(), "x".into()));
        assert!(parse_labels("{}").unwrap().is_empty());
        for bad in [
            r#"service="etl""#,
            r#"{service="etl""#,
            r#"{service=etl}"#,
            r#"{service="etl" job="x"}"#,
            r#"{1service="etl"}"#,
            r#"{service="e\qtl"}"#,
            r#"{service="unterminated}"#,
        ] {
            assert!(parse_labels(bad).is_err(), "{bad} parsed");
        }
        let many: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}=\"v\"")).collect();
        let text = format!("{{{}}}", many.join(","));
        assert!(parse_labels(&text).unwrap_err().contains("more than"));
        let long = format!("{{a=\"{}\"}}", "x".repeat(MAX_LABEL_VALUE + 1));
        assert!(parse_labels(&long).is_err());
    }

    /// The fuzz target's seeds are pushes it accepts (see the OTLP twin).
    #[test]
    fn the_fuzz_seeds_are_accepted() {
        let proto = include_bytes!("../../../fuzz/seeds/loki/protobuf");
        let e = &events(Format::SnappyProtobuf, proto).unwrap()[0];
        assert_eq!(
            (&e["channel"], &e["level"]),
            (&"logs:etl:ws1".into(), &"warn".into())
        );
        assert_eq!(e["meta"]["host"], "h\"1");
        let json = include_bytes!("../../../fuzz/seeds/loki/json");
        assert_eq!(events(Format::Json, json).unwrap()[0]["level"], "error");
        let labels = include_str!("../../../fuzz/seeds/loki/labels");
        assert_eq!(parse_labels(labels).unwrap().len(), 3);
    }

    #[test]
    fn levels_are_found_in_json_and_logfmt_lines() {
        assert_eq!(
            level_in_line(r#"{"msg":"x","level":"WARN"}"#),
            Some(Level::Warn)
        );
        assert_eq!(level_in_line(r#"{"severity":"error"}"#), Some(Level::Error));
        assert_eq!(level_in_line("ts=1 level=debug msg=hi"), Some(Level::Debug));
        assert_eq!(level_in_line(r#"lvl="fatal" msg=x"#), Some(Level::Fatal));
        assert_eq!(level_in_line("nolevel=warn msg"), None);
        assert_eq!(level_in_line("plain text"), None);
        assert_eq!(level_in_line("{not json level=warn"), None);
    }

    #[test]
    fn a_protobuf_push_maps_labels_metadata_and_time() {
        let push = PushRequest {
            streams: vec![StreamAdapter {
                labels:
                    r#"{job="etl", workspace="ws1", resource="job7", level="warning", host="h1"}"#
                        .into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(prost_types::Timestamp {
                        seconds: 1_758_796_200,
                        nanos: 5,
                    }),
                    line: b"disk \xff full".to_vec(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "trace_id".into(),
                        value: "abc".into(),
                    }],
                }],
                hash: 0,
            }],
        };
        let e = &events(Format::SnappyProtobuf, &snappy(&push)).unwrap()[0];
        assert_eq!(e["channel"], "logs:etl:ws1:job7");
        assert_eq!(e["level"], "warn");
        assert_eq!(e["message"], "disk \u{fffd} full");
        assert_eq!(e["timestamp"], "2025-09-25T10:30:00.000000005Z");
        assert_eq!(e["source"], "loki");
        assert_eq!(e["meta"], serde_json::json!({"host":"h1","trace_id":"abc"}));
    }

    #[test]
    fn a_json_push_takes_the_tokens_service_and_a_level_from_the_line() {
        let body = serde_json::json!({"streams":[{"stream":{"region":"eu","level":"strange"},
            "values":[["1758796200000000000","level=error msg=boom"],
                      ["1758796200000000001","hi",{"detected_level":"debug"}]]}]});
        let got = events(Format::Json, body.to_string().as_bytes()).unwrap();
        assert_eq!(got[0]["channel"], "logs:etl");
        // The label's level cannot be read: it stays in meta, the line's counts.
        assert_eq!(got[0]["level"], "error");
        assert_eq!(
            got[0]["meta"],
            serde_json::json!({"region":"eu","level":"strange"})
        );
        assert_eq!(
            got[1]["level"], "debug",
            "metadata, when the label cannot be read"
        );
        assert_eq!(
            got[1]["meta"],
            serde_json::json!({"region":"eu","level":"strange"})
        );
        assert_eq!(got[0]["timestamp"], "2025-09-25T10:30:00Z");
    }

    #[test]
    fn refusals_name_their_entry() {
        let json = |v: serde_json::Value| events(Format::Json, v.to_string().as_bytes());
        let e = json(serde_json::json!({"streams":[
            {"stream":{"service":"etl"},"values":[["1","a"]]},
            {"stream":{"app":"faas"},"values":[["1","b"]]}]}))
        .unwrap_err();
        assert_eq!((e.code(), e.index()), ("service_mismatch", Some(1)));
        let e = json(serde_json::json!({"streams":[{"stream":{},"values":[["soon","a"]]}]}))
            .unwrap_err();
        assert_eq!(e.code(), "invalid_timestamp");
        let e = json(serde_json::json!({"streams":[{"stream":{"bad-name":"x"},"values":[]}]}))
            .unwrap_err();
        assert_eq!(e.code(), "invalid_event");
        let e = json(serde_json::json!({"streams":[{"stream":{},"values":[["1"]]}]})).unwrap_err();
        assert_eq!(e.code(), "invalid_json");
        let e = json(
            serde_json::json!({"streams":[{"stream":{"workspace":"a.b"},"values":[["1","x"]]}]}),
        )
        .unwrap_err();
        assert_eq!(e.code(), "invalid_channel");
    }

    #[test]
    fn a_snappy_bomb_is_refused_by_its_declared_size() {
        let push = PushRequest {
            streams: vec![StreamAdapter {
                labels: "{}".into(),
                entries: vec![EntryAdapter {
                    line: vec![b'a'; 2 << 20],
                    ..Default::default()
                }],
                hash: 0,
            }],
        };
        let packed = snappy(&push);
        assert!(packed.len() < 200 * 1024);
        let e = events(Format::SnappyProtobuf, &packed).unwrap_err();
        assert_eq!(e.code(), "body_too_large");
        assert_eq!(
            events(Format::SnappyProtobuf, b"\x05garbage")
                .unwrap_err()
                .code(),
            "invalid_body"
        );
        let mut truncated = snappy(&PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{a="b"}"#.into(),
                ..Default::default()
            }],
        });
        truncated.truncate(truncated.len() - 2);
        assert_eq!(
            events(Format::SnappyProtobuf, &truncated)
                .unwrap_err()
                .code(),
            "invalid_body"
        );
    }
}
