//! OTLP/HTTP logs at `POST /v1/logs`, sent by the real OpenTelemetry logs
//! SDK and its OTLP exporter (protobuf and JSON, gzip, Basic auth), read
//! back by a real SSE subscriber; a collector's 10,000-record batch; and
//! what a hostile client sends, refused as OTLP does.

use std::collections::HashMap;
use std::io::Write;
use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue as ProtoValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as ProtoRecord, ResourceLogs, ScopeLogs};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLoggerProvider};
use prost::Message;
use reqwest::StatusCode;
use serde_json::Value;
use testkit::*;

fn resource(attrs: &[(&'static str, &'static str)]) -> Resource {
    Resource::builder_empty()
        .with_attributes(attrs.iter().map(|(k, v)| KeyValue::new(*k, *v)))
        .build()
}

fn exporter(
    gw: &InProcessGateway,
    protocol: Protocol,
    compression: Option<Compression>,
) -> opentelemetry_otlp::LogExporter {
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {ETL_TOKEN}"))]);
    let mut builder = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_endpoint(gw.url("/v1/logs"))
        .with_protocol(protocol)
        .with_headers(headers);
    if let Some(c) = compression {
        builder = builder.with_compression(c);
    }
    builder.build().expect("exporter")
}

/// Emits records through the SDK's logger (simple processor: one export
/// per record), on a blocking thread as the SDK's processor blocks.
/// `None`: the SDK's own resource (`service.name` `unknown_service`).
async fn emit_through_sdk(exporter: opentelemetry_otlp::LogExporter, resource: Option<Resource>) {
    tokio::task::spawn_blocking(move || {
        let mut provider = SdkLoggerProvider::builder().with_simple_exporter(exporter);
        if let Some(resource) = resource {
            provider = provider.with_resource(resource);
        }
        let provider = provider.build();
        let logger = provider.logger("loggate-test");
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Warn);
        record.set_severity_text("WARN");
        record.set_body(AnyValue::String("disk almost full".into()));
        record.set_timestamp(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_758_796_200_123),
        );
        record.add_attribute("disk", "/dev/sda");
        record.add_attribute("free_pct", 3);
        record.set_trace_context(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            Some(TraceFlags::SAMPLED),
        );
        logger.emit(record);
        let mut second = logger.create_log_record();
        second.set_severity_number(Severity::Error2);
        second.set_body(AnyValue::String("second".into()));
        logger.emit(second);
        provider.shutdown().expect("provider shuts down");
    })
    .await
    .expect("SDK thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_streams_logs_live_in_both_encodings_and_gzip() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl:ws1").await;
    let cases = [
        (Protocol::HttpBinary, None),
        (Protocol::HttpJson, None),
        (Protocol::HttpBinary, Some(Compression::Gzip)),
        (Protocol::HttpJson, Some(Compression::Gzip)),
    ];
    for (protocol, compression) in cases {
        let what = format!("{protocol:?} {compression:?}");
        let res = resource(&[
            ("service.name", "etl"),
            ("loggate.workspace", "ws1"),
            ("service.instance.id", "pod-7"),
        ]);
        emit_through_sdk(exporter(&gw, protocol, compression), Some(res)).await;
        let got = sub.logs(2).await;
        let e = &got[0];
        assert_eq!(e["channel"], "logs:etl:ws1:pod-7", "{what}: {e}");
        assert_eq!(e["level"], "warn", "{what}");
        assert_eq!(e["message"], "disk almost full", "{what}");
        assert_eq!(e["timestamp"], "2025-09-25T10:30:00.123Z", "{what}");
        assert_eq!(e["source"], "otlp", "{what}");
        assert_eq!(e["meta"]["disk"], "/dev/sda", "{what}");
        assert_eq!(e["meta"]["free_pct"], 3, "{what}");
        assert_eq!(
            e["meta"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{what}"
        );
        assert_eq!(e["meta"]["span_id"], "00f067aa0ba902b7", "{what}");
        assert_eq!(got[1]["level"], "error", "{what}");
        assert_eq!(got[1]["message"], "second", "{what}");
    }
    assert_eq!(
        gw.metric(r#"loggate_events_published_total{service="etl",source="otlp"}"#)
            .await,
        Some(8.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_told_only_the_url_and_token_lands_on_the_tokens_service() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl").await;
    emit_through_sdk(exporter(&gw, Protocol::HttpBinary, None), None).await;
    let got = sub.logs(2).await;
    assert_eq!(got[0]["channel"], "logs:etl", "{}", got[0]);
    assert_eq!(got[0]["message"], "disk almost full");
    assert_eq!(got[1]["channel"], "logs:etl");
}

/// One record straight through the exporter, so its result is the test's.
async fn export_one(
    exporter: &mut opentelemetry_otlp::LogExporter,
    res: &Resource,
) -> Result<(), String> {
    exporter.set_resource(res);
    let provider = SdkLoggerProvider::builder().build();
    let logger = provider.logger("loggate-test");
    let mut record = logger.create_log_record();
    record.set_body(AnyValue::String("from the wrong service".into()));
    // The logger's `emit` stamps this; the exporter insists on it.
    record.set_observed_timestamp(SystemTime::now());
    let scope = InstrumentationScope::builder("loggate-test").build();
    let batch = [(&record, &scope)];
    exporter
        .export(LogBatch::new(&batch))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_services_records_fail_the_export_and_publish_nothing() {
    let gw = start();
    let mut exporter = exporter(&gw, Protocol::HttpBinary, None);
    let err = export_one(&mut exporter, &resource(&[("service.name", "faas")]))
        .await
        .expect_err("a 403 is an export error");
    assert!(err.contains("403"), "{err}");
    let mut exporter = self::exporter(&gw, Protocol::HttpJson, None);
    let ok = export_one(&mut exporter, &resource(&[("service.name", "etl")])).await;
    assert_eq!(ok, Ok(()));
    let stats = gw.running.registry_stats().await.unwrap();
    assert_eq!(stats.last_seq, 1, "only the etl record was published");
    assert_eq!(
        gw.metric(r#"loggate_publish_rejected_total{reason="service_mismatch",source="otlp"}"#)
            .await,
        Some(1.0)
    );
}

fn record(body: &str) -> ProtoRecord {
    ProtoRecord {
        body: Some(ProtoValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        ..Default::default()
    }
}

fn request(records: Vec<ProtoRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `google.rpc.Status`, as a client decodes a refusal.
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

struct Answer {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

async fn post(gw: &InProcessGateway, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let res = gw.post("/v1/logs", headers, body).await;
    let header = |name| {
        res.headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: res.status(),
        content_type: header("content-type").unwrap_or_default(),
        retry_after: header("retry-after"),
        body: res.bytes().await.expect("body").to_vec(),
    }
}

/// The same, answered by the app in process.
async fn call(app: &InProcessApp, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let res = app.post("/v1/logs", headers, body).await;
    let header = |name| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: res.status(),
        content_type: header("content-type").unwrap_or_default(),
        retry_after: header("retry-after"),
        body: res.body.to_vec(),
    }
}

const PROTO: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");
const TOKEN: (&str, &str) = ("x-service-token", ETL_TOKEN);

fn proto_status(a: &Answer) -> Status {
    assert_eq!(a.content_type, "application/x-protobuf");
    Status::decode(&a.body[..]).expect("a protobuf Status")
}

fn json_status(a: &Answer) -> Value {
    assert_eq!(a.content_type, "application/json");
    serde_json::from_slice(&a.body).expect("a JSON Status")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[actix_web::test]
async fn hostile_requests_are_refused_with_an_otlp_status_and_publish_nothing() {
    let gw = in_process_with(|c| c.limits.publish_rate_per_sec = 10).await;
    let good = request(vec![record("fine")]).encode_to_vec();

    let a = call(&gw, &[PROTO], good.clone()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(proto_status(&a).code, 16);

    let bad_token = ("authorization", "Bearer forged");
    let a = call(&gw, &[JSON, bad_token], b"{}".to_vec()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(json_status(&a)["code"], 16);

    let truncated = good[..good.len() - 2].to_vec();
    let a = call(&gw, &[PROTO, TOKEN], truncated).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let s = proto_status(&a);
    assert_eq!(s.code, 3);
    assert!(s.message.contains("invalid_body"), "{}", s.message);

    let a = call(
        &gw,
        &[JSON, TOKEN],
        br#"{"resourceLogs":[{"scopeLogs":"#.to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        json_status(&a)["message"]
            .as_str()
            .unwrap()
            .contains("invalid_json")
    );

    let a = call(&gw, &[("content-type", "text/plain"), TOKEN], good.clone()).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json_status(&a)["code"], 3);

    let a = call(
        &gw,
        &[PROTO, TOKEN, ("content-encoding", "br")],
        good.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // 64 MiB of zeros in about 64 KiB: the limit is on what it inflates to.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20);
    let a = call(&gw, &[PROTO, TOKEN, ("content-encoding", "gzip")], bomb).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(proto_status(&a).code, 3);

    let a = call(
        &gw,
        &[PROTO, TOKEN, ("content-encoding", "gzip")],
        b"\x1f\x8bnot".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let many = request(vec![record("x"); 10_001]).encode_to_vec();
    let a = call(&gw, &[PROTO, TOKEN], many).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);

    // A record nested deeper than meta may be.
    let mut deep = ProtoValue {
        value: Some(any_value::Value::StringValue("leaf".into())),
    };
    for _ in 0..40 {
        deep = ProtoValue {
            value: Some(any_value::Value::ArrayValue(
                opentelemetry_proto::tonic::common::v1::ArrayValue { values: vec![deep] },
            )),
        };
    }
    let mut nested = record("deep");
    nested
        .attributes
        .push(opentelemetry_proto::tonic::common::v1::KeyValue {
            key: "deep".into(),
            value: Some(deep),
            ..Default::default()
        });
    let a = call(
        &gw,
        &[PROTO, TOKEN],
        request(vec![record("ok"), nested]).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(proto_status(&a).message.starts_with("event 1:"));

    assert_eq!(gw.registry_stats().await.last_seq, 0);

    // The rate limit: a burst of 20, then 429 with Retry-After.
    let twenty = request(vec![record("r"); 20]).encode_to_vec();
    let a = call(&gw, &[PROTO, TOKEN], twenty.clone()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type, "application/x-protobuf");
    let answer = ExportLogsServiceResponse::decode(&a.body[..]).expect("an export response");
    assert_eq!(
        answer.partial_success.map(|p| p.rejected_log_records),
        Some(0)
    );
    let a = call(&gw, &[PROTO, TOKEN], twenty).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(proto_status(&a).code, 8);
    assert!(a.retry_after.is_some());

    let metrics = gw.metrics().await;
    for (reason, n) in [
        ("invalid_body", 2.0),
        ("body_too_large", 1.0),
        ("unsupported_media_type", 1.0),
    ] {
        let series =
            format!(r#"loggate_publish_rejected_total{{reason="{reason}",source="otlp"}}"#);
        assert_eq!(metric_value(&metrics, &series), Some(n), "{series}");
    }
}

#[tokio::test]
async fn an_empty_export_succeeds_and_a_success_answers_in_the_requests_encoding() {
    let gw = start();
    let a = post(&gw, &[JSON, TOKEN], b"{}".to_vec()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(json_status(&a), serde_json::json!({"partialSuccess": {}}));
    let body = serde_json::json!({"resourceLogs":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"etl"}}]},
        "scopeLogs":[{"logRecords":[{"timeUnixNano":"1758796200000000000","severityNumber":17,
        "body":{"stringValue":"from curl"},"traceId":"4bf92f3577b34da6a3ce929d0e0e4736",
        "attributes":[{"key":"n","value":{"intValue":"7"}}]}]}]}]});
    let mut sub = gw.subscribe("channels=logs:etl").await;
    let a = post(&gw, &[JSON, TOKEN], body.to_string().into_bytes()).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    let e = sub.next_log().await;
    assert_eq!(e["message"], "from curl");
    assert_eq!(e["level"], "error");
    assert_eq!(e["timestamp"], "2025-09-25T10:30:00Z");
    assert_eq!(e["meta"]["n"], 7);
    assert_eq!(e["meta"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

/// An exporter that shows the token as the password of `Authorization:
/// Basic`, as the Collector's `basicauth` extension does.
fn basic_exporter(gw: &InProcessGateway, credentials: &str) -> opentelemetry_otlp::LogExporter {
    use base64::Engine;
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    let headers = HashMap::from([("Authorization".to_owned(), value)]);
    opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_endpoint(gw.url("/v1/logs"))
        .with_protocol(Protocol::HttpBinary)
        .with_headers(headers)
        .build()
        .expect("exporter")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_carries_the_token_as_its_password() {
    let gw = start();
    let etl = resource(&[("service.name", "etl")]);
    let mut exporter = basic_exporter(&gw, &format!("tenant-42:{ETL_TOKEN}"));
    assert_eq!(export_one(&mut exporter, &etl).await, Ok(()));
    let mut exporter = basic_exporter(&gw, "tenant-42:not-the-token");
    let err = export_one(&mut exporter, &etl).await.unwrap_err();
    assert!(err.contains("401"), "{err}");
    assert_eq!(gw.running.registry_stats().await.unwrap().last_seq, 1);

    let good = request(vec![record("fine")]).encode_to_vec();
    for auth in ["Basic %%%", "Basic bm8gY29sb24="] {
        let a = post(&gw, &[PROTO, ("authorization", auth)], good.clone()).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{auth}");
        let s = proto_status(&a);
        assert_eq!(s.code, 16, "{auth}");
        assert!(s.message.contains("Basic"), "{}", s.message);
    }
}

#[tokio::test]
async fn a_collectors_batch_of_10000_records_is_taken_whole() {
    let gw = start();
    let line = "x".repeat(200);
    let records: Vec<ProtoRecord> = (0..10_000).map(|_| record(&line)).collect();
    let body = gzip(&request(records).encode_to_vec());
    let a = post(&gw, &[PROTO, TOKEN, ("content-encoding", "gzip")], body).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    gw.wait_for_registry("the whole batch", |s| s.last_seq == 10_000)
        .await;
    // Sized by what it decodes to: over 8 MiB is refused, whole.
    let records: Vec<ProtoRecord> = (0..9_000).map(|_| record(&"y".repeat(1_000))).collect();
    let big = request(records).encode_to_vec();
    assert!(big.len() > 8 << 20);
    let a = post(
        &gw,
        &[PROTO, TOKEN, ("content-encoding", "gzip")],
        gzip(&big),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(proto_status(&a).message.contains("body_too_large"));
    assert_eq!(gw.running.registry_stats().await.unwrap().last_seq, 10_000);
}
