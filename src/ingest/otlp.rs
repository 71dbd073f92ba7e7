//! OTLP/HTTP logs: `POST /v1/logs`, as the OpenTelemetry SDKs and the
//! Collector's `otlphttp` exporter send them.
//!
//! Reads an `ExportLogsServiceRequest` (protobuf or OTLP/JSON, through the
//! official generated types of `opentelemetry-proto`), maps each log record
//! onto loggate's event fields and hands the result to
//! [`validate`](super::validate()), so every rule of `/api/logs/publish`
//! holds here too. The request goes through
//! [`request::ingest`](super::request::ingest) like any publish; refusals
//! are answered as OTLP does, with a `google.rpc.Status` in the request's
//! encoding.
//!
//! Mapping, per record: resource attribute `service.name` → service (absent,
//! or an SDK's `unknown_service…` default: the token's service);
//! `loggate.workspace` → workspace; `loggate.resource`, else
//! `service.instance.id` when there is a workspace → resource (a record's
//! own attributes may set both loggate keys too); severity → level; body → message (structured bodies as
//! compact JSON); `timeUnixNano` (else `observedTimeUnixNano`) → timestamp;
//! the record's other attributes and its trace and span ids → `meta`.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine;
use chrono::{TimeZone, Utc};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::value::RawValue;

use super::compression::Packing;
use super::protobuf::count_at;
use super::request::{
    Endpoint, ParseInput, RequestLimits, check_count, ingest, media_type, unsupported,
};
use super::{PublishError, RawEvent, RawLogData, check_encoded, format_time, validate};
use crate::auth::Schemes;
use crate::event::NewEvent;
use crate::metrics::label::source;
use crate::state::AppState;

/// The two encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

impl Encoding {
    fn of(req: &HttpRequest) -> Result<Encoding, PublishError> {
        match media_type(req).as_deref() {
            Some(PROTOBUF) => Ok(Encoding::Protobuf),
            Some(JSON) => Ok(Encoding::Json),
            found => Err(unsupported(
                found.unwrap_or("(none)"),
                "application/x-protobuf or application/json (OTLP/HTTP)",
            )),
        }
    }

    /// The encoding an answer takes: the request's, JSON when it named
    /// neither.
    fn answer(req: &HttpRequest) -> Encoding {
        Encoding::of(req).unwrap_or(Encoding::Json)
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// `google.rpc.Status`, the body of every OTLP refusal. googleapis' type,
/// not OTLP's, so `opentelemetry-proto` does not carry it; `details` is
/// left out (it is optional and loggate has none to give).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A refused OTLP request: the publish refusal, answered in OTLP's shape.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct OtlpError {
    error: PublishError,
    encoding: Encoding,
}

impl OtlpError {
    /// The gRPC code OTLP pairs with each HTTP status.
    fn grpc_code(&self) -> i32 {
        match self.status_code() {
            StatusCode::UNAUTHORIZED => 16,        // UNAUTHENTICATED
            StatusCode::FORBIDDEN => 7,            // PERMISSION_DENIED
            StatusCode::TOO_MANY_REQUESTS => 8,    // RESOURCE_EXHAUSTED
            StatusCode::SERVICE_UNAVAILABLE => 14, // UNAVAILABLE
            _ => 3,                                // INVALID_ARGUMENT
        }
    }
}

impl ResponseError for OtlpError {
    fn status_code(&self) -> StatusCode {
        self.error.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = Status {
            code: self.grpc_code(),
            message: format!("{} ({})", self.error, self.error.code()),
        };
        let body = match self.encoding {
            Encoding::Protobuf => status.encode_to_vec(),
            Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
        };
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(self.encoding.content_type());
        if let Some(secs) = self.error.retry_after_secs() {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        self.error.with_challenge(res.body(body))
    }
}

/// `POST /v1/logs`.
pub async fn export(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OtlpError> {
    let encoding = Encoding::answer(&req);
    let endpoint = Endpoint {
        source: source::OTLP,
        schemes: Schemes::BearerOrBasic,
        limits: RequestLimits::shipper(&state),
        format: |req| Ok((Encoding::of(req)?, Packing::Plain)),
        own_encodings: &[],
        parse,
        idempotency: None,
    };
    ingest(&req, payload, &state, endpoint)
        .await
        .map_err(|error| OtlpError { error, encoding })?;
    // All or nothing, so nothing is ever rejected in part: the answer's
    // partial success is present and empty, which OTLP reads as full
    // success.
    let body = match encoding {
        Encoding::Protobuf => ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess::default()),
        }
        .encode_to_vec(),
        Encoding::Json => br#"{"partialSuccess":{}}"#.to_vec(),
    };
    Ok(HttpResponse::Ok()
        .content_type(encoding.content_type())
        .body(body))
}

/// Decodes an export request and validates every record in it.
pub fn parse(
    encoding: Encoding,
    body: &[u8],
    input: &ParseInput<'_>,
) -> Result<Vec<NewEvent>, PublishError> {
    let request = match encoding {
        Encoding::Protobuf => {
            // resource_logs (1) → scope_logs (2) → log_records (2)
            if let Some(count) = count_at(body, &[1, 2, 2]) {
                check_count(count, input)?;
            }
            ExportLogsServiceRequest::decode(body).map_err(|e| PublishError::InvalidBody {
                message: format!("not an OTLP ExportLogsServiceRequest: {e}"),
            })?
        }
        Encoding::Json => serde_json::from_slice(body).map_err(|e| PublishError::InvalidJson {
            index: None,
            message: format!("not an OTLP/JSON ExportLogsServiceRequest: {e}"),
        })?,
    };
    let count: usize = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    check_count(count, input)?;
    let mut events = Vec::with_capacity(count);
    for resource_logs in &request.resource_logs {
        let attrs = resource_logs
            .resource
            .as_ref()
            .map_or(&[][..], |r| &r.attributes[..]);
        let resource = ResourceIds::of(attrs);
        for record in resource_logs.scope_logs.iter().flat_map(|s| &s.log_records) {
            let index = Some(events.len());
            let event = map_record(record, &resource, input, index)?;
            events.push(check_encoded(event, input.limits.max_event_bytes, index)?);
        }
    }
    Ok(events)
}

const SERVICE_NAME: &str = "service.name";
const SERVICE_INSTANCE: &str = "service.instance.id";
const WORKSPACE: &str = "loggate.workspace";
const RESOURCE: &str = "loggate.resource";

/// The ids a resource gives all its records.
struct ResourceIds<'a> {
    service: Option<&'a str>,
    workspace: Option<&'a str>,
    resource: Option<Cow<'a, str>>,
    /// `resource` is `service.instance.id`, not `loggate.resource`.
    implicit: bool,
}

fn string_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().rev().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        }
    })
}

impl<'a> ResourceIds<'a> {
    fn of(attrs: &'a [KeyValue]) -> Self {
        // SDKs name a service they were not told about `unknown_service`
        // (`unknown_service:java`…): that is no name, so the token's holds.
        let service =
            string_attr(attrs, SERVICE_NAME).filter(|s| !s.starts_with("unknown_service"));
        let explicit = string_attr(attrs, RESOURCE).map(Cow::Borrowed);
        let implicit = explicit.is_none();
        let resource = explicit
            .or_else(|| string_attr(attrs, SERVICE_INSTANCE).and_then(segment_from_instance_id));
        ResourceIds {
            service,
            workspace: string_attr(attrs, WORKSPACE),
            resource,
            implicit,
        }
    }
}

/// `service.instance.id` as a channel segment. Nobody chose it for
/// loggate (a UUID, a host name, a pod name), so characters a segment
/// cannot hold become `_` and it is cut to 64, where an explicit
/// `loggate.resource` would be refused instead.
fn segment_from_instance_id(id: &str) -> Option<Cow<'_, str>> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.len() <= 64 && id.chars().all(valid) {
        return Some(Cow::Borrowed(id));
    }
    let segment: String = id
        .chars()
        .map(|c| if valid(c) { c } else { '_' })
        .take(64)
        .collect();
    (!segment.is_empty()).then_some(Cow::Owned(segment))
}

/// OTLP's severity number (1–24, four per level) as a level name.
fn severity_level(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

/// An attribute value as JSON. Bytes are base64, as OTLP/JSON writes them;
/// a double JSON cannot hold (NaN, ±Infinity) becomes its name.
fn any_to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &value.value {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or_else(|| J::String(d.to_string()), J::Number)
        }
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(any_to_json).collect()),
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map_or(J::Null, any_to_json);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
        Some(Value::BytesValue(b)) => {
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // An index into a dictionary only profiles carry.
        Some(Value::StringValueStrindex(i)) => J::from(*i),
    }
}

/// A record's body as a message: a string as it is, anything else as
/// compact JSON, nothing as an empty line.
fn body_message(body: Option<&AnyValue>) -> Cow<'_, str> {
    match body.and_then(|b| b.value.as_ref()) {
        None => Cow::Borrowed(""),
        Some(Value::StringValue(s)) => Cow::Borrowed(s),
        Some(_) => Cow::Owned(body.map(any_to_json).unwrap_or_default().to_string()),
    }
}

fn invalid(index: Option<usize>, message: String) -> PublishError {
    PublishError::InvalidEvent { index, message }
}

/// A JSON string as a raw value, for the fields `validate` reads raw.
fn raw_string(text: &str) -> Result<Box<RawValue>, serde_json::Error> {
    RawValue::from_string(serde_json::to_string(text)?)
}

fn map_record(
    record: &LogRecord,
    resource: &ResourceIds<'_>,
    input: &ParseInput<'_>,
    index: Option<usize>,
) -> Result<NewEvent, PublishError> {
    let own = &record.attributes;
    let workspace = string_attr(own, WORKSPACE).or(resource.workspace);
    let resource_id = match string_attr(own, RESOURCE) {
        Some(r) => Some(Cow::Borrowed(r)),
        // An instance id is set by SDKs and agents on their own; without a
        // workspace there is no channel level for it, so it is left out
        // rather than refused.
        None if workspace.is_none() && resource.implicit => None,
        None => resource.resource.clone(),
    };
    let level = severity_level(record.severity_number)
        .or_else(|| {
            let text = record.severity_text.as_str();
            crate::event::Level::parse(text).map(|l| l.as_str())
        })
        .unwrap_or("info");
    let nanos = match record.time_unix_nano {
        0 => record.observed_time_unix_nano,
        t => t,
    };
    let timestamp = match nanos {
        0 => None,
        n => {
            let t = i64::try_from(n)
                .ok()
                .map(|n| Utc.timestamp_nanos(n))
                .ok_or_else(|| invalid(index, format!("timeUnixNano {n} is out of range")))?;
            Some(raw_string(&format_time(t)).map_err(|e| invalid(index, e.to_string()))?)
        }
    };
    let mut meta = serde_json::Map::new();
    for kv in own {
        if kv.key != WORKSPACE && kv.key != RESOURCE {
            let value = kv
                .value
                .as_ref()
                .map_or(serde_json::Value::Null, any_to_json);
            meta.insert(kv.key.clone(), value);
        }
    }
    if !record.trace_id.is_empty() {
        meta.insert("trace_id".into(), hex::encode(&record.trace_id).into());
    }
    if !record.span_id.is_empty() {
        meta.insert("span_id".into(), hex::encode(&record.span_id).into());
    }
    if !record.event_name.is_empty() {
        meta.insert("event_name".into(), record.event_name.clone().into());
    }
    let meta = if meta.is_empty() {
        None
    } else {
        Some(
            serde_json::value::to_raw_value(&meta)
                .map_err(|e| invalid(index, format!("attributes: {e}")))?,
        )
    };
    let raw = RawEvent {
        service: Some(Cow::Borrowed(resource.service.unwrap_or(input.service))),
        workspace_id: workspace.map(Cow::Borrowed),
        resource_id,
        workflow_id: None,
        channel: None,
        log_data: RawLogData {
            level: Some(Cow::Borrowed(level)),
            message: body_message(record.body.as_ref()),
            timestamp: timestamp.as_deref(),
            stream: None,
            source: Some(Cow::Borrowed("otlp")),
            meta: meta.as_deref(),
        },
    };
    validate(raw, Some(input.service), input.received, index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Received;
    use crate::ingest::tests::{input, json_of};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn request(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn run(req: &ExportLogsServiceRequest) -> Result<Vec<serde_json::Value>, PublishError> {
        let received = Received::now();
        let events = parse(Encoding::Protobuf, &req.encode_to_vec(), &input(&received))?;
        Ok(events.into_iter().map(json_of).collect())
    }

    #[test]
    fn a_record_maps_onto_an_event() {
        let record = LogRecord {
            time_unix_nano: 1_758_796_200_123_456_789,
            severity_number: 13,
            severity_text: "WARNING".into(),
            body: Some(AnyValue {
                value: Some(Value::StringValue("disk almost full".into())),
            }),
            attributes: vec![
                string("disk", "/dev/sda"),
                KeyValue {
                    key: "free_pct".into(),
                    value: Some(AnyValue {
                        value: Some(Value::IntValue(3)),
                    }),
                    ..Default::default()
                },
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            ..Default::default()
        };
        let req = request(
            vec![
                string("service.name", "etl"),
                string("loggate.workspace", "ws1"),
                string("service.instance.id", "pod-7.eu"),
            ],
            vec![record],
        );
        let events = run(&req).unwrap();
        let e = &events[0];
        assert_eq!(e["channel"], "logs:etl:ws1:pod-7_eu");
        assert_eq!(e["level"], "warn");
        assert_eq!(e["message"], "disk almost full");
        assert_eq!(e["timestamp"], "2025-09-25T10:30:00.123456789Z");
        assert_eq!(e["source"], "otlp");
        assert_eq!(e["meta"]["disk"], "/dev/sda");
        assert_eq!(e["meta"]["free_pct"], 3);
        assert_eq!(e["meta"]["trace_id"], "ab".repeat(16));
        assert_eq!(e["meta"]["span_id"], "0101010101010101");
    }

    #[test]
    fn the_token_names_an_unnamed_service_and_records_may_set_their_ids() {
        let record = LogRecord {
            severity_text: "err".into(),
            body: Some(AnyValue {
                value: Some(Value::KvlistValue(
                    opentelemetry_proto::tonic::common::v1::KeyValueList {
                        values: vec![string("k", "v")],
                    },
                )),
            }),
            attributes: vec![
                string("loggate.resource", "job7"),
                string("loggate.workspace", "w2"),
            ],
            ..Default::default()
        };
        let req = request(
            vec![string("service.name", "unknown_service:rust")],
            vec![record],
        );
        let e = &run(&req).unwrap()[0];
        assert_eq!(e["channel"], "logs:etl:w2:job7");
        assert_eq!(e["level"], "error");
        assert_eq!(e["message"], r#"{"k":"v"}"#);
        assert!(
            e.get("meta").is_none(),
            "the loggate keys are not meta: {e}"
        );
    }

    #[test]
    fn another_service_is_refused_naming_the_first_offender() {
        let ok = LogRecord::default();
        let req = ExportLogsServiceRequest {
            resource_logs: vec![
                request(
                    vec![string("service.name", "etl")],
                    vec![ok.clone(), ok.clone()],
                )
                .resource_logs
                .remove(0),
                request(vec![string("service.name", "faas")], vec![ok])
                    .resource_logs
                    .remove(0),
            ],
        };
        let e = run(&req).unwrap_err();
        assert_eq!(e.code(), "service_mismatch");
        assert_eq!(e.index(), Some(2));
        assert!(e.to_string().contains("faas"), "{e}");
    }

    #[test]
    fn an_instance_id_without_a_workspace_is_left_out() {
        let req = request(
            vec![
                string("service.name", "etl"),
                string("service.instance.id", "i-1"),
            ],
            vec![LogRecord::default()],
        );
        assert_eq!(run(&req).unwrap()[0]["channel"], "logs:etl");
        let req = request(
            vec![string("loggate.resource", "job7")],
            vec![LogRecord::default()],
        );
        assert_eq!(run(&req).unwrap_err().code(), "invalid_channel");
    }

    #[test]
    fn an_explicit_bad_resource_is_refused_not_mended() {
        let req = request(
            vec![string("loggate.resource", "has.dot")],
            vec![LogRecord::default()],
        );
        assert_eq!(run(&req).unwrap_err().code(), "invalid_channel");
    }

    #[test]
    fn more_records_than_a_batch_holds_are_refused_before_mapping() {
        let req = request(vec![], vec![LogRecord::default(); 1001]);
        assert_eq!(run(&req).unwrap_err().code(), "batch_too_large");
    }

    #[test]
    fn a_body_of_empty_records_is_refused_before_it_is_decoded() {
        // 1 MiB of two-byte empty records would decode to ~100 MB.
        let mut scope = Vec::new();
        for _ in 0..(1 << 19) {
            scope.extend_from_slice(&[0x12, 0x00]);
        }
        let wrap = |field: u8, inner: &[u8]| {
            let mut out = vec![field];
            prost::encoding::encode_varint(inner.len() as u64, &mut out);
            out.extend_from_slice(inner);
            out
        };
        let body = wrap(0x0a, &wrap(0x12, &scope));
        assert_eq!(count_at(&body, &[1, 2, 2]), Some(1 << 19));
        let received = Received::now();
        let e = parse(Encoding::Protobuf, &body, &input(&received)).unwrap_err();
        assert_eq!(e.code(), "batch_too_large");
    }

    #[test]
    fn truncated_protobuf_is_invalid_body() {
        let req = request(
            vec![string("service.name", "etl")],
            vec![LogRecord::default()],
        );
        let bytes = req.encode_to_vec();
        let received = Received::now();
        let e = parse(
            Encoding::Protobuf,
            &bytes[..bytes.len() - 3],
            &input(&received),
        )
        .unwrap_err();
        assert_eq!(e.code(), "invalid_body");
    }

    /// The fuzz target's seeds are requests it accepts, so fuzzing starts
    /// from inside the mapping, not at the decoder's first refusal.
    #[test]
    fn the_fuzz_seeds_are_accepted() {
        let received = Received::now();
        let seeds: [(Encoding, &[u8]); 2] = [
            (
                Encoding::Protobuf,
                include_bytes!("../../fuzz/seeds/otlp/protobuf"),
            ),
            (Encoding::Json, include_bytes!("../../fuzz/seeds/otlp/json")),
        ];
        for (encoding, seed) in seeds {
            let events = parse(encoding, seed, &input(&received)).unwrap();
            assert_eq!(events.len(), 1, "{encoding:?}");
        }
    }

    #[test]
    fn instance_ids_become_segments() {
        assert_eq!(segment_from_instance_id("abc-1").as_deref(), Some("abc-1"));
        assert_eq!(segment_from_instance_id("a.b c").as_deref(), Some("a_b_c"));
        assert_eq!(
            segment_from_instance_id(&"x".repeat(100)).unwrap().len(),
            64
        );
        assert_eq!(segment_from_instance_id("").as_deref(), Some(""));
    }
}
