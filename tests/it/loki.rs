//! The Loki push API at `POST /loki/api/v1/push`: a real Loki client
//! (`tracing-loki`, snappy protobuf) and hand-built JSON pushes, read back
//! by a real SSE subscriber; pushes shaped as pino-loki, winston-loki and
//! python-logging-loki send them (their bursts, their level labels, Basic
//! auth); hostile pushes refused in Loki's shape.

use std::time::Duration;

use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::*;
use tracing_subscriber::layer::SubscriberExt;

use loggate::ingest::loki::{EntryAdapter, PushRequest, StreamAdapter};

/// A tracing-loki client of `gw` with the etl token and `labels`, its
/// sender running: log inside `with_default(…layer…)`, then `stop` it.
fn loki_client(
    gw: &InProcessGateway,
    labels: &[(&str, &str)],
) -> (
    tracing_loki::Layer,
    tracing_loki::BackgroundTaskController,
    tokio::task::JoinHandle<()>,
) {
    let url = tracing_loki::url::Url::parse(&gw.url("/")).unwrap();
    let mut builder = tracing_loki::builder()
        .http_header("Authorization", format!("Bearer {ETL_TOKEN}"))
        .unwrap();
    for (k, v) in labels {
        builder = builder.label(*k, v).unwrap();
    }
    let (layer, controller, task) = builder.build_controller_url(url).unwrap();
    (layer, controller, tokio::spawn(task))
}

/// Flushes and stops a client's sender.
async fn stop(
    controller: tracing_loki::BackgroundTaskController,
    sender: tokio::task::JoinHandle<()>,
) {
    controller.shutdown().await;
    tokio::time::timeout(WAIT, sender)
        .await
        .expect("sender stops")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loki_client_streams_logs_live() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl:ws1").await;
    let labels = [
        ("service", "etl"),
        ("workspace", "ws1"),
        ("resource", "job7"),
        ("host", "h1"),
    ];
    let (layer, controller, sender) = loki_client(&gw, &labels);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(rows = 12, "disk almost full");
        tracing::error!("second");
    });
    let got = sub.logs(2).await;
    let mut got: Vec<&Value> = got.iter().collect();
    // tracing-loki keeps a stream per level, so the order between them is its.
    got.sort_by_key(|e| e["level"].as_str().unwrap_or_default().to_owned());
    let (error, warn) = (got[0], got[1]);
    assert_eq!(warn["channel"], "logs:etl:ws1:job7", "{warn}");
    assert_eq!(warn["level"], "warn");
    assert_eq!(warn["source"], "loki");
    assert_eq!(warn["meta"], json!({"host":"h1"}));
    // tracing-loki writes its line as JSON of the event's fields.
    let line: Value = serde_json::from_str(warn["message"].as_str().unwrap()).unwrap();
    assert_eq!(line["message"], "disk almost full");
    assert_eq!(line["rows"], 12);
    assert_eq!(error["level"], "error");
    stop(controller, sender).await;
    assert_eq!(
        gw.metric(r#"loggate_events_published_total{service="etl",source="loki"}"#)
            .await,
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loki_client_told_only_the_url_and_token_lands_on_the_tokens_service() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl").await;
    let (layer, controller, sender) = loki_client(&gw, &[]);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!("no labels at all");
    });
    let e = sub.next_log().await;
    assert_eq!(e["channel"], "logs:etl", "{e}");
    assert_eq!(e["level"], "info");
    stop(controller, sender).await;
}

struct Answer {
    status: StatusCode,
    body: Value,
}

async fn push(gw: &InProcessGateway, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let res = gw.post("/loki/api/v1/push", headers, body).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// The same, answered by the app in process.
async fn call(app: &InProcessApp, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let res = app.post("/loki/api/v1/push", headers, body).await;
    Answer {
        status: res.status(),
        body: res.json(),
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");
const PROTO: (&str, &str) = ("content-type", "application/x-protobuf");
const TOKEN: (&str, &str) = ("authorization", "Bearer l5-etl-token");

fn snappy(push: &PushRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&push.encode_to_vec())
        .unwrap()
}

/// A refusal in Loki's shape, with loggate's code.
fn refused(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["status"], "error", "{}", a.body);
    assert_eq!(a.body["code"], code, "{}", a.body);
    assert!(a.body["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn a_json_push_maps_labels_as_the_contract_says() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl").await;
    let body = json!({"streams":[
        {"stream":{"app":"etl","workspace":"ws1","resource":"job7","level":"warning","region":"eu"},
         "values":[["1758796200000000000","disk almost full",{"trace_id":"abc"}]]},
        {"stream":{"job":"etl"},
         "values":[["1758796201000000000","ts=1 level=error msg=\"boom\""],
                   ["1758796202000000000","{\"lvl\":\"debug\",\"msg\":\"json line\"}"]]}]});
    let a = push(&gw, &[JSON, TOKEN], body.to_string().into_bytes()).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let got = sub.logs(3).await;
    assert_eq!(got[0]["channel"], "logs:etl:ws1:job7");
    assert_eq!(got[0]["level"], "warn");
    assert_eq!(got[0]["message"], "disk almost full");
    assert_eq!(got[0]["timestamp"], "2025-09-25T10:30:00Z");
    assert_eq!(got[0]["meta"], json!({"region":"eu","trace_id":"abc"}));
    assert_eq!(got[1]["channel"], "logs:etl");
    assert_eq!(
        got[1]["level"], "error",
        "a level parsed from a logfmt line"
    );
    assert_eq!(got[2]["level"], "debug", "a level parsed from a JSON line");
    assert!(got[1].get("meta").is_none(), "{}", got[1]);

    // gzip, as Vector and Fluent Bit can send it.
    let body = json!({"streams":[{"stream":{},"values":[["0","gzipped"]]}]});
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, body.to_string().as_bytes()).unwrap();
    let a = push(
        &gw,
        &[JSON, TOKEN, ("content-encoding", "gzip")],
        enc.finish().unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(sub.next_log().await["message"], "gzipped");
}

#[actix_web::test]
async fn hostile_pushes_are_refused_in_lokis_shape_and_publish_nothing() {
    let gw = in_process().await;
    let line = |labels: &str| PushRequest {
        streams: vec![StreamAdapter {
            labels: labels.into(),
            entries: vec![EntryAdapter {
                line: b"x".to_vec(),
                ..Default::default()
            }],
            hash: 0,
        }],
    };

    let a = call(&gw, &[PROTO], snappy(&line("{}"))).await;
    refused(&a, StatusCode::UNAUTHORIZED, "missing_token");

    let a = call(&gw, &[PROTO, TOKEN], snappy(&line(r#"{service="faas"}"#))).await;
    refused(&a, StatusCode::FORBIDDEN, "service_mismatch");
    assert!(a.body["error"].as_str().unwrap().contains("faas"));

    for bad in [r#"{service="etl""#, r#"{service=etl}"#, r#"{bad-name="x"}"#] {
        let a = call(&gw, &[PROTO, TOKEN], snappy(&line(bad))).await;
        refused(&a, StatusCode::BAD_REQUEST, "invalid_event");
    }
    let huge: Vec<String> = (0..10_000).map(|i| format!("l{i}=\"v\"")).collect();
    let a = call(
        &gw,
        &[PROTO, TOKEN],
        snappy(&line(&format!("{{{}}}", huge.join(",")))),
    )
    .await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_event");

    let a = call(&gw, &[PROTO, TOKEN], b"\x10not snappy".to_vec()).await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_body");
    let mut truncated = snappy(&line(r#"{service="etl"}"#));
    truncated.truncate(truncated.len() - 3);
    let a = call(&gw, &[PROTO, TOKEN], truncated).await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_body");

    // Declares 32 MiB once inflated, sent in about 1.5 MiB.
    let bomb = PushRequest {
        streams: vec![StreamAdapter {
            labels: "{}".into(),
            entries: vec![EntryAdapter {
                line: vec![b'a'; 32 << 20],
                ..Default::default()
            }],
            hash: 0,
        }],
    };
    let a = call(&gw, &[PROTO, TOKEN], snappy(&bomb)).await;
    refused(&a, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    let too_many = PushRequest {
        streams: vec![StreamAdapter {
            labels: "{}".into(),
            entries: vec![EntryAdapter::default(); 10_001],
            hash: 0,
        }],
    };
    let a = call(&gw, &[PROTO, TOKEN], snappy(&too_many)).await;
    refused(&a, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");

    let long_line = PushRequest {
        streams: vec![StreamAdapter {
            labels: "{}".into(),
            entries: vec![
                EntryAdapter::default(),
                EntryAdapter {
                    line: vec![b'a'; 65 * 1024],
                    ..Default::default()
                },
            ],
            hash: 0,
        }],
    };
    let a = call(&gw, &[PROTO, TOKEN], snappy(&long_line)).await;
    refused(&a, StatusCode::PAYLOAD_TOO_LARGE, "event_too_large");
    assert!(a.body["error"].as_str().unwrap().starts_with("event 1:"));

    let a = call(
        &gw,
        &[("content-type", "text/plain"), TOKEN],
        b"hi".to_vec(),
    )
    .await;
    refused(
        &a,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let a = call(
        &gw,
        &[JSON, TOKEN],
        br#"{"streams":[{"stream":{},"values":[["1"]]}]}"#.to_vec(),
    )
    .await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_json");

    assert_eq!(gw.registry_stats().await.last_seq, 0);
    assert_eq!(
        gw.metric(r#"loggate_publish_rejected_total{reason="invalid_body",source="loki"}"#)
            .await,
        Some(2.0)
    );
}

/// A pino line as pino-loki sends it: pino's JSON, `hostname` taken out
/// (it becomes a label), about `bytes` long.
fn pino_line(i: usize, level: u8, bytes: usize) -> String {
    let head = format!(
        r#"{{"level":{level},"time":1758796200123,"pid":4242,"req":{{"id":{i},"method":"GET","url":"/api/items/{i}","headers":{{"user-agent":""#
    );
    let tail = r#""}},"res":{"statusCode":200},"responseTime":3,"msg":"request completed"}"#;
    let pad = bytes.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "m".repeat(pad))
}

/// pino's level number as pino-loki names it (its default `levelMap`).
fn pino_loki_level(level: u8) -> &'static str {
    match level {
        10 | 20 => "debug",
        40 => "warning",
        50 => "error",
        60 => "critical",
        _ => "info",
    }
}

/// One of every ten lines is an error and one a fatal ("critical").
fn pino_level_of(i: usize) -> u8 {
    match i % 10 {
        0 => 50,
        5 => 60,
        3 | 7 => 40,
        _ => 30,
    }
}

/// A batch as pino-loki 2.x pushes it every `interval` (5 s): one stream
/// per line, labelled with its level and host (`LogBuilder.build`), the
/// time in nanoseconds, `JSON.stringify({ streams })` as the body.
fn pino_loki_batch(lines: usize, line_bytes: usize) -> Vec<u8> {
    let streams: Vec<Value> = (0..lines)
        .map(|i| {
            let level = pino_level_of(i);
            json!({
                "stream": {"level": pino_loki_level(level), "hostname": "web-1"},
                "values": [["1758796200123000000", pino_line(i, level, line_bytes)]],
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "streams": streams })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pino_loki_burst_of_10000_lines_is_taken_whole_with_the_default_limits() {
    let gw = start();
    let mut errors = gw.subscribe("channels=logs:etl&level=error").await;
    // A reader with no filter, reading only once the push is in: its queue
    // holds the whole request, so it loses nothing (no `lag`).
    let mut all = gw.subscribe("channels=logs:etl").await;
    // 10,000 lines of about 650 bytes: 7.7 MB, one request.
    let body = pino_loki_batch(10_000, 650);
    assert!(
        body.len() > 7_000_000 && body.len() < 8 << 20,
        "{}",
        body.len()
    );
    let a = push(&gw, &[JSON, TOKEN], body).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    gw.wait_for_registry("the whole batch", |s| s.last_seq == 10_000)
        .await;
    // The errors and the criticals, in order, and nothing else.
    let got = errors.logs(2_000).await;
    for (n, e) in got.iter().enumerate() {
        let i = n * 5;
        let want = if n % 2 == 0 { "error" } else { "fatal" };
        assert_eq!(e["level"], want, "{e}");
        assert_eq!(e["channel"], "logs:etl");
        assert_eq!(e["meta"], json!({"hostname": "web-1"}));
        let line: Value = serde_json::from_str(e["message"].as_str().unwrap()).unwrap();
        assert_eq!(line["req"]["id"], i, "{e}");
    }
    errors.expect_silence(Duration::from_millis(200)).await;
    let every: Vec<Value> = all.logs(10_000).await;
    for (i, e) in every.iter().enumerate() {
        let line: Value = serde_json::from_str(e["message"].as_str().unwrap()).unwrap();
        assert_eq!(line["req"]["id"], i, "{e}");
    }
    all.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(
        gw.metric(r#"loggate_events_published_total{service="etl",source="loki"}"#)
            .await,
        Some(10_000.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipper_bursts_are_all_or_nothing_up_to_10000_lines() {
    // One more line than a request may hold: refused whole.
    let gw = start();
    let a = push(&gw, &[JSON, TOKEN], pino_loki_batch(10_001, 100)).await;
    refused(&a, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");
    // 10,000 lines, the last one bad: nothing of it is published.
    let mut streams: Value = serde_json::from_slice(&pino_loki_batch(10_000, 100)).unwrap();
    streams["streams"][9_999]["values"][0][0] = json!("soon");
    let a = push(&gw, &[JSON, TOKEN], streams.to_string().into_bytes()).await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_timestamp");
    assert!(a.body["error"].as_str().unwrap().starts_with("event 9999:"));
    // Over 8 MiB once decoded, however small on the wire.
    let big = pino_loki_batch(9_000, 1_000);
    assert!(big.len() > 8 << 20);
    let a = push(
        &gw,
        &[JSON, TOKEN, ("content-encoding", "gzip")],
        gzip(&big),
    )
    .await;
    refused(&a, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert_eq!(gw.running.registry_stats().await.unwrap().last_seq, 0);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, data).unwrap();
    enc.finish().unwrap()
}

/// winston-loki's batch (6.x, `json: true`): a stream per label set
/// (`level` and the transport's `labels`), each entry
/// `[ms + "000000", "<message> <JSON of the rest>", {rest}]`, where the
/// rest holds winston's `level` and the call's metadata.
fn winston_loki_json(lines: usize) -> Vec<u8> {
    let stream = |level: &str, offset: usize| {
        let values: Vec<Value> = (offset..lines)
            .step_by(2)
            .map(|i| {
                let rest = json!({"level": level, "requestId": format!("r{i}")});
                json!([
                    format!("{}000000", 1_758_796_200_000u64 + i as u64),
                    format!("handled request {i} {rest}"),
                    rest
                ])
            })
            .collect();
        json!({"stream": {"level": level, "app": "etl", "env": "prod"}, "values": values})
    };
    serde_json::to_vec(&json!({"streams": [stream("info", 0), stream("error", 1)]})).unwrap()
}

/// winston-loki's protobuf batch (its default when `snappy` loads): the
/// labels as `{level="…",app="…"}` (`prepareProtoBatch`), the time as
/// seconds and nanos.
fn winston_loki_protobuf(lines: usize) -> Vec<u8> {
    snappy(&PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{level="warn",app="etl",env="prod"}"#.into(),
            entries: (0..lines)
                .map(|i| EntryAdapter {
                    timestamp: Some(prost_types::Timestamp {
                        seconds: 1_758_796_200 + i as i64 / 1000,
                        nanos: (i % 1000) as i32 * 1_000_000,
                    }),
                    line: format!("handled request {i}").into_bytes(),
                    structured_metadata: Vec::new(),
                })
                .collect(),
            hash: 0,
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn winston_lokis_interval_batches_are_taken_in_json_and_protobuf() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl&level=error").await;
    let a = push(&gw, &[JSON, TOKEN], winston_loki_json(6_000)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let got = sub.logs(3_000).await;
    assert_eq!(
        got[0]["message"],
        r#"handled request 1 {"level":"error","requestId":"r1"}"#
    );
    assert_eq!(
        got[0]["meta"],
        json!({"env": "prod", "level": "error", "requestId": "r1"})
    );
    assert_eq!(got[2_999]["meta"]["requestId"], "r5999");
    gw.wait_for_registry("the JSON batch", |s| s.last_seq == 6_000)
        .await;

    // A fresh gateway, so that the event rate's burst is whole again.
    let gw = start();
    let a = push(&gw, &[PROTO, TOKEN], winston_loki_protobuf(10_000)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    gw.wait_for_registry("the protobuf batch", |s| s.last_seq == 10_000)
        .await;
}

/// python-logging-loki 0.3.1's push (`LokiEmitterV1.build_payload`): one
/// record per request, its level as the label `severity`, its logger as
/// `logger`, the handler's tags beside them; `requests` posts it as JSON.
fn python_logging_loki(severity: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"streams": [{
        "stream": {"application": "billing", "severity": severity, "logger": "billing.jobs"},
        "values": [["1758796200123456789", message]],
    }]}))
    .unwrap()
}

#[tokio::test]
async fn the_level_is_read_from_severity_and_the_other_level_labels() {
    let gw = start();
    let mut warn = gw.subscribe("channels=logs:etl&level=warn").await;
    for (severity, message) in [
        ("info", "started"),
        ("error", "charge failed"),
        ("warning", "retrying"),
        ("critical", "ledger unreachable"),
        ("debug", "detail"),
    ] {
        let a = push(&gw, &[JSON, TOKEN], python_logging_loki(severity, message)).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    }
    let got = warn.logs(3).await;
    let seen: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e["level"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("error", "charge failed"),
            ("warn", "retrying"),
            ("fatal", "ledger unreachable")
        ]
    );
    assert_eq!(
        got[0]["meta"],
        json!({"application": "billing", "logger": "billing.jobs"}),
        "the label read as the level is not kept in meta"
    );

    // Precedence: level, severity, detected_level, lvl, loglevel; the
    // first that reads as a level counts, the others stay in meta.
    let mut all = gw.subscribe("channels=logs:etl:precedence").await;
    let cases = [
        (
            json!({"level": "debug", "severity": "error"}),
            "debug",
            json!({"severity": "error"}),
        ),
        (
            json!({"level": "strange", "severity": "error"}),
            "error",
            json!({"level": "strange"}),
        ),
        (
            json!({"detected_level": "warn", "lvl": "error"}),
            "warn",
            json!({"lvl": "error"}),
        ),
        (json!({"lvl": "fatal"}), "fatal", Value::Null),
        (json!({"loglevel": "ERROR"}), "error", Value::Null),
        (
            json!({"severity": "loud"}),
            "info",
            json!({"severity": "loud"}),
        ),
    ];
    for (labels, _, _) in &cases {
        let mut labels = labels.clone();
        labels["workspace"] = json!("precedence");
        let body = json!({"streams": [{"stream": labels, "values": [["0", "x"]]}]});
        let a = push(&gw, &[JSON, TOKEN], body.to_string().into_bytes()).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    }
    for (e, (labels, level, meta)) in all.logs(cases.len()).await.iter().zip(&cases) {
        assert_eq!(e["level"], *level, "{labels}: {e}");
        assert_eq!(e.get("meta").unwrap_or(&Value::Null), meta, "{labels}: {e}");
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn basic(user: &str, password: &[u8]) -> String {
    let mut credentials = format!("{user}:").into_bytes();
    credentials.extend_from_slice(password);
    format!("Basic {}", base64(&credentials))
}

#[tokio::test]
async fn basic_auth_carries_the_token_as_its_password() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl").await;
    // python-logging-loki with `auth=("etl", token)`, and Grafana Cloud's
    // form (user = a tenant id): the user name is not looked at.
    for user in ["etl", "123456"] {
        let auth = basic(user, ETL_TOKEN.as_bytes());
        let a = push(
            &gw,
            &[JSON, ("authorization", &auth)],
            python_logging_loki("error", &format!("as {user}")),
        )
        .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
        assert_eq!(sub.next_log().await["message"], format!("as {user}"));
    }
    let body = || python_logging_loki("info", "refused");
    for auth in [
        "Basic !!!not-base64".to_owned(),
        format!("Basic {}", base64(b"no colon")),
        basic("etl", b"\xff\xfe"),
    ] {
        let a = push(&gw, &[JSON, ("authorization", &auth)], body()).await;
        refused(&a, StatusCode::UNAUTHORIZED, "invalid_token");
        assert!(
            a.body["error"].as_str().unwrap().contains("Basic"),
            "{}",
            a.body
        );
    }
    let wrong = basic("etl", b"faas-token-guess");
    let a = push(&gw, &[JSON, ("authorization", &wrong)], body()).await;
    refused(&a, StatusCode::UNAUTHORIZED, "invalid_token");
    let a = push(&gw, &[JSON, ("authorization", &basic("etl", b""))], body()).await;
    refused(&a, StatusCode::UNAUTHORIZED, "missing_token");
    // Not on loggate's own publish API.
    let auth = basic("etl", ETL_TOKEN.as_bytes());
    let res = gw
        .post(
            "/api/logs/publish",
            &[JSON, ("authorization", &auth)],
            event("etl", None, None, "basic").to_string(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "missing_token");
    sub.expect_silence(Duration::from_millis(200)).await;
}
