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
}

#[tokio::test]
async fn test_logs_is_absent_in_production() {
    let gw = start_with(|c| c.env = loggate::config::RunEnv::Production);
    let res = gw
        .client
        .post(gw.url("/test/logs"))
        .json(&json!({"service":"etl"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let v: Value = res.json().await.unwrap();
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
