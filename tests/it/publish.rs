//! `POST /api/logs/publish` over real sockets: body forms, every refusal with
//! its status and code, all-or-nothing batches, and what subscribers see.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::*;

fn code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error body: {v}"))
}

#[tokio::test]
async fn single_event_is_accepted_and_delivered_as_in_the_contract() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl:ws1").await;
    let body = json!({"service":"etl","workspace_id":"ws1","resource_id":"job7",
        "logData":{"level":"INFO","message":"done","timestamp":"2025-09-25T10:30:00Z",
                   "stream":"stdout","source":"api","meta":{"rows":12}}});
    let (status, answer) = gw.publish(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["accepted"], 1);
    let id = answer["ids"][0].as_str().unwrap().to_owned();

    let got = sub.logs(1).await.remove(0);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["channel"], "logs:etl:ws1:job7");
    assert_eq!(got["service"], "etl");
    assert_eq!(got["workspace_id"], "ws1");
    assert_eq!(got["resource_id"], "job7");
    assert_eq!(got["level"], "info");
    assert_eq!(got["message"], "done");
    assert_eq!(got["timestamp"], "2025-09-25T10:30:00Z");
    assert_eq!(got["stream"], "stdout");
    assert_eq!(got["source"], "api");
    assert_eq!(got["meta"], json!({"rows":12}));
    let received = got["received_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(received).is_ok(),
        "{received}"
    );
}

#[tokio::test]
async fn batch_ndjson_bearer_and_channel_form() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl").await;
    let batch = json!([
        event("etl", Some("ws1"), None, "one"),
        {"service":"etl","workspace_id":"ws1","workflow_id":"wf9","logData":{"message":"two","level":"WARNING"}},
        {"channel":"logs:etl:ws2:job1","logData":{"message":"three","level":"ERR","timestamp":1758796200000u64}},
    ]);
    let (status, answer) = gw.publish(&batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["accepted"], 3);

    // NDJSON, authenticated with `Authorization: Bearer`.
    let nd = format!(
        "{}\n\n{}\r\n",
        event("etl", None, None, "four"),
        event("etl", Some("ws3"), None, "five")
    );
    let res = gw
        .client
        .post(gw.url("/api/logs/publish"))
        .header("authorization", format!("Bearer {ETL_TOKEN}"))
        .header("content-type", "application/x-ndjson")
        .body(nd)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["accepted"], 2);

    let got = sub.logs(5).await;
    let messages: Vec<&str> = got.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["one", "two", "three", "four", "five"]);
    assert_eq!(got[1]["channel"], "logs:etl:ws1:wf9");
    assert_eq!(got[1]["resource_id"], "wf9");
    assert_eq!(got[1]["level"], "warn");
    assert_eq!(got[2]["level"], "error");
    assert_eq!(got[2]["timestamp"], "2025-09-25T10:30:00Z");
    assert_eq!(got[3]["channel"], "logs:etl");
    assert!(
        got[3].get("workspace_id").is_none(),
        "absent fields are omitted"
    );
    // Ids grow strictly in acceptance order.
    let ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[tokio::test]
async fn every_refusal_has_its_status_and_code() {
    let gw = start();
    let ok = event("etl", Some("ws1"), None, "m");
    let j = "application/json";
    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        (
            "",
            j,
            ok.to_string(),
            StatusCode::UNAUTHORIZED,
            "missing_token",
        ),
        (
            "nope-nope-nope",
            j,
            ok.to_string(),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            ETL_TOKEN,
            j,
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            ETL_TOKEN,
            j,
            "".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            ETL_TOKEN,
            j,
            r#"{"service":"etl"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_event",
        ),
        (
            ETL_TOKEN,
            j,
            r#"{"service":"etl","workspace_id":"a.b","logData":{"message":"m"}}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_channel",
        ),
        (
            ETL_TOKEN,
            j,
            r#"{"channel":"logs:*","logData":{"message":"m"}}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_channel",
        ),
        (
            ETL_TOKEN,
            j,
            r#"{"service":"etl","logData":{"message":"m","level":"loud"}}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_level",
        ),
        (
            ETL_TOKEN,
            j,
            r#"{"service":"etl","logData":{"message":"m","timestamp":"soon"}}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_timestamp",
        ),
        (
            ETL_TOKEN,
            j,
            event("faas", None, None, "m").to_string(),
            StatusCode::FORBIDDEN,
            "service_mismatch",
        ),
        (
            ETL_TOKEN,
            j,
            r#"{"channel":"logs:faas:ws1","logData":{"message":"m"}}"#.into(),
            StatusCode::FORBIDDEN,
            "service_mismatch",
        ),
        (
            ETL_TOKEN,
            "text/plain",
            ok.to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            ETL_TOKEN,
            "application/x-www-form-urlencoded",
            ok.to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            ETL_TOKEN,
            j,
            event("etl", None, None, &"x".repeat(70_000)).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "event_too_large",
        ),
        (
            ETL_TOKEN,
            j,
            format!("[{}]", vec![ok.to_string(); 1001].join(",")),
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
        ),
        (
            ETL_TOKEN,
            j,
            format!(
                "[{}]",
                vec![event("etl", None, None, &"y".repeat(60_000)).to_string(); 20].join(",")
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (token, ct, body, status, want) in cases {
        let (got, answer) = gw.publish_raw(token, ct, body.clone()).await;
        assert_eq!(got, status, "{want}: {answer}");
        assert_eq!(code(&answer), want, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        // No token ever comes back in an error.
        assert!(!answer.to_string().contains(ETL_TOKEN));
    }
    // Bad UTF-8 is bad JSON, not a crash.
    let (got, answer) = gw
        .publish_raw(
            ETL_TOKEN,
            j,
            b"{\"service\":\"etl\",\"logData\":{\"message\":\"\xff\"}}".to_vec(),
        )
        .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    assert_eq!(code(&answer), "invalid_json");

    // A body larger than the limit without a Content-Length (chunked) is
    // cut off while it streams in.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let (got, answer) = gw.publish_raw(ETL_TOKEN, j, body).await;
    assert_eq!(got, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&answer), "body_too_large");

    // Nothing was published by any of it.
    let stats = gw.running.registry_stats().await.unwrap();
    assert_eq!(stats.last_seq, 0);
    let metrics = gw.metrics().await;
    assert!(
        metric_value(
            &metrics,
            r#"loggate_publish_rejected_total{reason="invalid_level",source="http"}"#
        ) >= Some(1.0)
    );
}

#[tokio::test]
async fn a_batch_is_all_or_nothing_and_names_the_bad_index() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:*").await;
    let batch = json!([
        event("etl", Some("ws1"), None, "fine"),
        event("etl", Some("ws1"), None, "fine too"),
        {"service":"etl","logData":{"message":"bad","level":"shouting"}},
        event("etl", Some("ws1"), None, "never sent"),
    ]);
    let (status, answer) = gw.publish(&batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&answer), "invalid_level");
    assert_eq!(answer["error"]["index"], 2);
    sub.expect_silence(Duration::from_millis(300)).await;

    let (status, answer) = gw
        .publish(&json!([
            event("etl", None, None, "a"),
            event("faas", None, None, "b")
        ]))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"]["index"], 1);
    sub.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(gw.running.registry_stats().await.unwrap().last_seq, 0);
}

#[tokio::test]
async fn a_reader_that_keeps_up_gets_a_whole_1000_event_batch() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl:big").await;
    let batch: Vec<Value> = (0..1000)
        .map(|i| {
            event(
                "etl",
                Some("big"),
                Some(&format!("r{}", i % 7)),
                &format!("line {i} {}", "z".repeat(900)),
            )
        })
        .collect();
    let body = Value::Array(batch);
    assert!(body.to_string().len() < 1024 * 1024);
    let (status, answer) = gw.publish(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let got = sub.logs(1000).await;
    for (i, e) in got.iter().enumerate() {
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("line {i} "))
        );
    }
}

#[tokio::test]
async fn test_logs_endpoint_publishes_a_synthetic_event() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:faas:ws9").await;
    let res = gw
        .client
        .post(gw.url("/test/logs"))
        .json(&json!({"service":"faas","workspace_id":"ws9","workflow_id":"wf1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let got = sub.logs(1).await.remove(0);
    assert_eq!(got["channel"], "logs:faas:ws9:wf1");
    assert_eq!(got["source"], "loggate-test");

    let res = gw
        .client
        .post(gw.url("/test/logs"))
        .json(&json!({"service":"a:b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = gw
        .client
        .post(gw.url("/test/logs"))
        .body("nope")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert_eq!(code(&v), "invalid_json");

    // 60 KB of C1 controls fit the request, but not once escaped (each
    // two bytes become six): refused as every publish path refuses it.
    let res = gw
        .client
        .post(gw.url("/test/logs"))
        .json(&json!({"service": "faas", "message": "\u{9b}".repeat(30_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(code(&v), "event_too_large");
    sub.expect_silence(std::time::Duration::from_millis(100))
        .await;
}

#[actix_web::test]
async fn test_logs_is_absent_in_production() {
    let app = in_process_with(|c| c.env = loggate::config::RunEnv::Production).await;
    let res = app
        .post(
            "/test/logs",
            &[("content-type", "application/json")],
            json!({"service":"etl"}).to_string(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let v: Value = res.json();
    assert_eq!(code(&v), "not_found");
}

#[tokio::test]
async fn shutting_down_answers_503() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl").await;
    let (s, _) = gw.get_json("/ready").await;
    assert_eq!(s, StatusCode::OK);
    gw.running.begin_shutdown().await;
    let (s, ready) = gw.get_json("/ready").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["reason"], "shutting down");
    let f = sub.next_event().await.expect("shutdown frame");
    assert_eq!(f.event, "shutdown");
    assert!(
        sub.next_event().await.is_none(),
        "stream ends after shutdown"
    );

    let (status, answer) = gw.publish(&event("etl", None, None, "late")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&answer), "shutting_down");
    let mut late = SseClient::connect(&gw.url("/api/logs/stream?channels=logs:etl")).await;
    assert_eq!(late.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&late.error_body().await), "shutting_down");
}

#[tokio::test]
async fn a_compressed_body_is_read_inflated_and_held_to_the_limit_inflated() {
    use std::io::Write;
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl").await;
    let pack = |data: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    };
    let body = event("etl", None, None, "gzipped").to_string();
    let json = ("content-type", "application/json");
    let token = ("x-service-token", ETL_TOKEN);
    let res = gw
        .post(
            "/api/logs/publish",
            &[json, token, ("content-encoding", "gzip")],
            pack(body.as_bytes()),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(sub.next_log().await["message"], "gzipped");

    // 2 MiB of spaces around one event: 2 KiB on the wire, over 1 MiB inflated.
    let padded = format!("{}{body}", " ".repeat(2 << 20));
    let res = gw
        .post(
            "/api/logs/publish",
            &[json, token, ("content-encoding", "gzip")],
            pack(padded.as_bytes()),
        )
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let res = gw
        .post(
            "/api/logs/publish",
            &[json, token, ("content-encoding", "zstd")],
            body.clone(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(code(&answer), "unsupported_encoding");
    let res = gw
        .post(
            "/api/logs/publish",
            &[json, token, ("content-encoding", "gzip")],
            body,
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&res.json().await.unwrap()), "invalid_body");
}

/// A JSON array of `n` events of `service` whose message is `bytes` long.
fn batch_of(service: &str, n: usize, bytes: usize) -> String {
    let e = event(service, Some("big"), None, &"b".repeat(bytes));
    format!("[{}]", vec![e.to_string(); n].join(","))
}

#[tokio::test]
async fn a_service_over_its_byte_rate_is_refused_and_another_is_not() {
    // The defaults: 4 MiB/s per service, 8 MiB at once, and 5,000 events/s,
    // which 16-event requests never reach.
    let gw = start();
    let body = batch_of("etl", 16, 64_000);
    assert!(body.len() > 1_000_000 && body.len() < 1 << 20);
    let mut accepted = 0;
    let refusal = loop {
        let (status, answer) = gw
            .publish_raw(ETL_TOKEN, "application/json", body.clone())
            .await;
        match status {
            StatusCode::ACCEPTED => accepted += 1,
            _ => break (status, answer),
        }
        // Each request spends 1 MB; the budget is 8 MiB, refilled at 4 MiB/s.
        assert!(accepted < 60, "etl was never held to its byte rate");
    };
    assert!(
        accepted >= 8,
        "the burst lets 8 MiB through at once: {accepted}"
    );
    let (status, answer) = refusal;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(code(&answer), "rate_limited");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("PUBLISH_BYTES_PER_SEC"), "{message}");
    // Another tenant's budget is its own.
    let faas = batch_of("faas", 16, 64_000);
    let (status, answer) = gw.publish_raw("faas-token", "application/json", faas).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let metrics = gw.metrics().await;
    let limited = |limit: &str| {
        metric_value(
            &metrics,
            &format!(r#"loggate_rate_limited_total{{limit="{limit}"}}"#),
        )
    };
    assert!(limited("publish_bytes") >= Some(1.0), "{metrics}");
    assert_eq!(limited("publish"), Some(0.0), "not the event rate");
}

#[tokio::test]
async fn the_byte_rate_holds_on_every_publish_path_in_its_shape() {
    // 1 KiB/s: 2 KiB at once, so a request of 1.5 KB passes at most once
    // every 1.5 s, far slower than these requests go.
    let gw = start_with(|c| c.publish.bytes_per_sec = 1024);
    let one = batch_of("etl", 1, 1_400);
    let (status, answer) = gw
        .publish_raw(ETL_TOKEN, "application/json", one.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let token = ("x-service-token", ETL_TOKEN);
    let loki = json!({"streams":[{"stream":{},"values":[["0", "l".repeat(1_400)]]}]}).to_string();
    let otlp = json!({"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"body":{"stringValue":"o".repeat(1_400)}}]}]}]})
    .to_string();
    for (path, body) in [
        ("/api/logs/publish", one.clone()),
        ("/loki/api/v1/push", loki.clone()),
        ("/v1/logs", otlp.clone()),
    ] {
        // Sent until refused: at most one can have been earned back.
        let res = loop {
            let res = gw
                .post(
                    path,
                    &[("content-type", "application/json"), token],
                    body.clone(),
                )
                .await;
            if res.status() != StatusCode::TOO_MANY_REQUESTS {
                assert!(res.status().is_success(), "{path}: {}", res.status());
                continue;
            }
            break res;
        };
        let retry: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry), "{path}: Retry-After {retry}");
        let text = res.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        match path {
            "/loki/api/v1/push" => {
                assert_eq!(v["errorType"], "rate_limited", "{v}");
                assert_eq!(v["code"], "rate_limited");
            }
            "/v1/logs" => assert_eq!(v["code"], 8, "RESOURCE_EXHAUSTED: {v}"),
            _ => assert_eq!(code(&v), "rate_limited"),
        }
    }
    // /test/logs counts against the named service's budget.
    let test_logs = |service: &str| {
        let body = json!({"service": service, "message": "t".repeat(1_400)});
        gw.client.post(gw.url("/test/logs")).json(&body).send()
    };
    let mut status = StatusCode::ACCEPTED;
    for _ in 0..5 {
        status = test_logs("etl").await.unwrap().status();
        if status != StatusCode::ACCEPTED {
            break;
        }
    }
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another service still has its whole budget.
    let (status, answer) = gw
        .publish_raw("faas-token", "application/json", batch_of("faas", 1, 1_400))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    // More than 2 KiB at once can never pass: 413, not 429.
    let (status, answer) = gw
        .publish_raw(
            "function-token",
            "application/json",
            batch_of("function", 1, 3_000),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(code(&answer), "body_exceeds_burst");
    let big_loki = json!({"streams":[{"stream":{},"values":[["0", "l".repeat(3_000)]]}]});
    let res = gw
        .post(
            "/loki/api/v1/push",
            &[
                ("content-type", "application/json"),
                ("x-service-token", "analytics-token"),
            ],
            big_loki.to_string(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["code"], "body_exceeds_burst", "{v}");
    // Compressed, by the size its gzip trailer states.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, big_loki.to_string().as_bytes()).unwrap();
    let res = gw
        .post(
            "/loki/api/v1/push",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("x-service-token", "analytics-token"),
            ],
            gz.finish().unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["code"], "body_exceeds_burst", "{v}");
    assert!(
        gw.metric(r#"loggate_rate_limited_total{limit="publish_bytes"}"#)
            .await
            >= Some(4.0)
    );
}

/// A request that declares `length` bytes of body, sends none, and waits
/// for `100 Continue`: the gateway has then started its handler, which
/// holds a decode slot for a body that large.
async fn hold_a_decode_slot(gw: &InProcessGateway, length: usize) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(gw.running.addr)
        .await
        .unwrap();
    let head = format!(
        "POST /api/logs/publish HTTP/1.1\r\nHost: loggate\r\nX-Service-Token: {ETL_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, sock.read(&mut buf))
            .await
            .expect("100 Continue in time")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    sock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_wait_for_a_decode_slot_and_small_ones_never_do() {
    // `publish.large_body_slots`' default.
    const SLOTS: usize = 2;
    let gw = start();
    let mut held = Vec::new();
    for _ in 0..SLOTS {
        held.push(hold_a_decode_slot(&gw, 500_000).await);
    }
    let large = batch_of("etl", 100, 2_000);
    let waiting = {
        let client = gw.client.clone();
        let base = gw.url("");
        tokio::spawn(async move {
            testkit::http::publish(&client, &base, ETL_TOKEN, "application/json", large, WAIT).await
        })
    };
    // Meanwhile another tenant's small publishes go straight through,
    // while every slot is held.
    for i in 0..5 {
        let (status, answer) = gw
            .publish_raw(
                "faas-token",
                "application/json",
                event("faas", None, None, &format!("small {i}")).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    let (status, answer) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(code(&answer), "ingest_busy");
    assert_eq!(
        gw.metric(r#"loggate_rate_limited_total{limit="decode_slots"}"#)
            .await,
        Some(1.0)
    );
    drop(held);
    let (status, answer) = gw
        .publish_raw(
            "l5-etl-token",
            "application/json",
            batch_of("etl", 100, 2_000),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}
