//! `Idempotency-Key` on `POST /api/logs/publish` and `/test/logs`, over
//! real sockets: a retry is answered the first `202` and publishes
//! nothing; another body under the key is `422`; a malformed key is `400`
//! and publishes nothing; keys are per service, forgotten after their
//! window, evicted oldest first and counted; requests with one key at
//! once publish once; and a refused first request leaves its key free.
//! (Across nodes with JetStream: `jetstream::publish`; the CLI's keys:
//! `cli_publish`.)

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use testkit::*;

const FAAS_TOKEN: &str = "faas-token";

/// POSTs `body` (JSON) to `/api/logs/publish` with `token` and, if given,
/// `key` as the `Idempotency-Key`.
async fn publish_keyed(
    gw: &InProcessGateway,
    token: &str,
    key: Option<HeaderValue>,
    body: &Value,
) -> (StatusCode, Value) {
    post_keyed(gw, "/api/logs/publish", token, key, body).await
}

async fn post_keyed(
    gw: &InProcessGateway,
    path: &str,
    token: &str,
    key: Option<HeaderValue>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut req = gw
        .client
        .post(gw.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if !token.is_empty() {
        req = req.header("x-service-token", token);
    }
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("answered in time")
        .expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn key(text: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(text).expect("a header value"))
}

async fn history(gw: &InProcessGateway, channel: &str) -> Vec<Value> {
    let (status, v) = gw
        .get_json(&format!("/api/logs/history?channels={channel}&limit=1000"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["logs"].as_array().cloned().unwrap_or_default()
}

fn ids(answer: &Value) -> Vec<String> {
    answer["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no ids: {answer}"))
        .iter()
        .map(|v| v.as_str().expect("an id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_retry_with_the_same_key_answers_the_same_ids_and_publishes_once() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl:idem").await;
    let batch = json!([
        event("etl", Some("idem"), None, "one"),
        event("etl", Some("idem"), None, "two"),
        event("etl", Some("idem"), None, "three"),
    ]);
    let (status, first) = publish_keyed(&gw, ETL_TOKEN, key("batch-1"), &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["accepted"], 3);
    // The answer was "lost": the publisher sends it again, twice.
    for _ in 0..2 {
        let (status, again) = publish_keyed(&gw, ETL_TOKEN, key("batch-1"), &batch).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{again}");
        assert_eq!(again, first, "the first answer, the same ids");
    }
    let got = sub.logs(3).await;
    assert_eq!(messages(&got), ["one", "two", "three"]);
    let seen: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(seen, ids(&first));
    sub.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(history(&gw, "logs:etl:idem").await.len(), 3);

    let series = r#"loggate_events_published_total{service="etl",source="http"}"#;
    assert_eq!(gw.metric(series).await, Some(3.0));
    assert_eq!(
        gw.metric("loggate_idempotency_replayed_total").await,
        Some(2.0)
    );
    assert_eq!(gw.metric("loggate_idempotency_keys").await, Some(1.0));

    // Without a key, a retry is a new publish, as before.
    let single = event("etl", Some("idem"), None, "plain");
    let (_, a) = publish_keyed(&gw, ETL_TOKEN, None, &single).await;
    let (_, b) = publish_keyed(&gw, ETL_TOKEN, None, &single).await;
    assert_ne!(ids(&a), ids(&b));
}

#[tokio::test]
async fn the_same_key_with_another_request_is_422() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl:idem").await;
    let first = event("etl", Some("idem"), None, "first");
    let (status, answer) = publish_keyed(&gw, ETL_TOKEN, key("k-422"), &first).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let other = event("etl", Some("idem"), None, "other");
    let (status, err) = publish_keyed(&gw, ETL_TOKEN, key("k-422"), &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["code"], "idempotency_key_reused", "{err}");
    let message = err["error"]["message"].as_str().expect("a message");
    assert!(message.contains("Idempotency-Key"), "{message}");
    // The same bytes as NDJSON are another request too.
    let res = gw
        .post(
            "/api/logs/publish",
            &[
                ("x-service-token", ETL_TOKEN),
                ("content-type", "application/x-ndjson"),
                ("idempotency-key", "k-422"),
            ],
            first.to_string(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // And the same body on /test/logs is another route.
    let (status, _) = post_keyed(
        &gw,
        "/test/logs",
        "",
        key("k-422"),
        &json!({"service":"etl","workspace_id":"idem","message":"first"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(messages(&sub.logs(1).await), ["first"]);
    sub.expect_silence(Duration::from_millis(300)).await;
    let refused =
        r#"loggate_publish_rejected_total{reason="idempotency_key_reused",source="http"}"#;
    assert_eq!(gw.metric(refused).await, Some(2.0));
}

#[tokio::test]
async fn malformed_keys_are_400_and_publish_nothing() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl:bad").await;
    let body = event("etl", Some("bad"), None, "never");
    let too_long = "k".repeat(129);
    let cases: Vec<(&str, HeaderValue)> = vec![
        ("empty", HeaderValue::from_static("")),
        ("129 characters", HeaderValue::from_str(&too_long).unwrap()),
        (
            "non-ASCII",
            HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        ),
        ("a tab inside", HeaderValue::from_static("a\tb")),
        ("a space inside", HeaderValue::from_static("a b")),
    ];
    for (what, value) in cases {
        let (status, err) = publish_keyed(&gw, ETL_TOKEN, Some(value.clone()), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {err}");
        assert_eq!(err["error"]["code"], "invalid_idempotency_key", "{what}");
        let (status, err) = post_keyed(
            &gw,
            "/test/logs",
            "",
            Some(value),
            &json!({"service":"etl","workspace_id":"bad"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "/test/logs, {what}: {err}");
        assert_eq!(err["error"]["code"], "invalid_idempotency_key", "{what}");
    }
    // Two keys in one request.
    let res = gw
        .client
        .post(gw.url("/api/logs/publish"))
        .header("x-service-token", ETL_TOKEN)
        .header("content-type", "application/json")
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A control character the HTTP parser itself refuses: 400 all the same.
    let raw = format!(
        "POST /api/logs/publish HTTP/1.1\r\nhost: x\r\nx-service-token: {ETL_TOKEN}\r\ncontent-type: application/json\r\nidempotency-key: a\x01b\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.to_string().len()
    );
    let (status, _) = raw_request(gw.running.addr, raw.as_bytes()).await;
    assert_eq!(status, 400);
    // The longest key is fine.
    let longest = "~".repeat(128);
    let (status, answer) = publish_keyed(&gw, ETL_TOKEN, key(&longest), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(messages(&sub.logs(1).await), ["never"], "only the good one");
    sub.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn keys_are_per_service() {
    let gw = start();
    let (s1, etl) = publish_keyed(
        &gw,
        ETL_TOKEN,
        key("shared"),
        &event("etl", Some("per"), None, "etl's"),
    )
    .await;
    let (s2, faas) = publish_keyed(
        &gw,
        FAAS_TOKEN,
        key("shared"),
        &event("faas", Some("per"), None, "faas's"),
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_ne!(ids(&etl), ids(&faas));
    assert_eq!(messages(&history(&gw, "logs:etl:per").await), ["etl's"]);
    assert_eq!(messages(&history(&gw, "logs:faas:per").await), ["faas's"]);
    // The same bytes from another service are that service's own request.
    let body = json!({"channel":"logs:faas:per","logData":{"message":"x"}});
    let (s, _) = publish_keyed(&gw, FAAS_TOKEN, key("same-bytes"), &body).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, err) = publish_keyed(&gw, ETL_TOKEN, key("same-bytes"), &body).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "etl may not publish faas's: {err}"
    );
}

#[tokio::test]
async fn a_key_is_forgotten_once_its_window_has_passed() {
    let gw = start_with(|c| c.publish.idempotency_window_secs = 1);
    let body = event("etl", Some("window"), None, "tick");
    let (_, first) = publish_keyed(&gw, ETL_TOKEN, key("w"), &body).await;
    let first = ids(&first);
    // Retried until the window has passed: answered the first ids until
    // then, and published again once, after.
    let deadline = tokio::time::Instant::now() + WAIT;
    let second = loop {
        let (status, answer) = publish_keyed(&gw, ETL_TOKEN, key("w"), &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        if ids(&answer) != first {
            break ids(&answer);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key was never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let held = history(&gw, "logs:etl:window").await;
    let held: Vec<&str> = held.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(held, [first[0].as_str(), second[0].as_str()]);
}

#[tokio::test]
async fn the_oldest_keys_are_evicted_and_counted() {
    let gw = start_with(|c| c.publish.idempotency_max_keys = 2);
    let mut answers = Vec::new();
    for k in ["a", "b", "c"] {
        let body = event("etl", Some("evict"), None, k);
        let (status, answer) = publish_keyed(&gw, ETL_TOKEN, key(k), &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answers.push(answer);
    }
    let evicted = r#"loggate_idempotency_evicted_total{reason="max_keys"}"#;
    assert_eq!(gw.metric(evicted).await, Some(1.0));
    assert_eq!(gw.metric("loggate_idempotency_keys").await, Some(2.0));
    // "c" is still remembered; "a", evicted, publishes again.
    let (_, c) = publish_keyed(
        &gw,
        ETL_TOKEN,
        key("c"),
        &event("etl", Some("evict"), None, "c"),
    )
    .await;
    assert_eq!(c, answers[2]);
    let (_, a) = publish_keyed(
        &gw,
        ETL_TOKEN,
        key("a"),
        &event("etl", Some("evict"), None, "a"),
    )
    .await;
    assert_ne!(a, answers[0]);
    assert_eq!(
        messages(&history(&gw, "logs:etl:evict").await),
        ["a", "b", "c", "a"]
    );
    assert_eq!(gw.metric(evicted).await, Some(2.0));
}

#[tokio::test]
async fn requests_with_one_key_at_once_publish_once() {
    let gw = start();
    let batch: Value = (0..50)
        .map(|i| event("etl", Some("race"), None, &format!("m{i}")))
        .collect();
    let sends = (0..8).map(|_| publish_keyed(&gw, ETL_TOKEN, key("race"), &batch));
    let answers = futures_util::future::join_all(sends).await;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer, &answers[0].1);
    }
    assert_eq!(history(&gw, "logs:etl:race").await.len(), 50);
    assert_eq!(
        gw.metric("loggate_idempotency_replayed_total").await,
        Some(7.0)
    );
}

#[tokio::test]
async fn a_refused_first_request_leaves_its_key_free() {
    // 1 event/s, burst 2: spent by a plain publish, the keyed one is 429.
    let gw = start_with(|c| c.limits.publish_rate_per_sec = 1);
    let two = json!([
        event("etl", Some("free"), None, "spend"),
        event("etl", Some("free"), None, "spend")
    ]);
    let (status, _) = publish_keyed(&gw, ETL_TOKEN, None, &two).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let body = event("etl", Some("free"), None, "kept");
    let (status, err) = publish_keyed(&gw, ETL_TOKEN, key("free"), &body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{err}");
    // Retried (bounded) until the rate lets it through: then published, once.
    let deadline = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        let (status, answer) = publish_keyed(&gw, ETL_TOKEN, key("free"), &body).await;
        if status == StatusCode::ACCEPTED {
            break answer;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
        assert!(tokio::time::Instant::now() < deadline, "never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, again) = publish_keyed(&gw, ETL_TOKEN, key("free"), &body).await;
    assert_eq!(again, answer);
    assert_eq!(
        messages(&history(&gw, "logs:etl:free").await),
        ["spend", "spend", "kept"]
    );
}

#[tokio::test]
async fn test_logs_takes_a_key_too() {
    let gw = start();
    let body = json!({"service":"faas","workspace_id":"idem","message":"synthetic"});
    let (status, first) = post_keyed(&gw, "/test/logs", "", key("t1"), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = post_keyed(&gw, "/test/logs", "", key("t1"), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again, first);
    let other = json!({"service":"faas","workspace_id":"idem","message":"other"});
    let (status, err) = post_keyed(&gw, "/test/logs", "", key("t1"), &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["code"], "idempotency_key_reused");
    assert_eq!(
        messages(&history(&gw, "logs:faas:idem").await),
        ["synthetic"]
    );
}

#[tokio::test]
async fn a_retry_counts_against_the_byte_rate_not_the_event_rate() {
    // 1 KiB/s, burst 2 KiB: two 900-byte requests fit, a third does not.
    let gw = start_with(|c| c.publish.bytes_per_sec = 1024);
    let body = event("etl", Some("bytes"), None, &"x".repeat(800));
    assert!(body.to_string().len() > 850);
    let (status, first) = publish_keyed(&gw, ETL_TOKEN, key("b"), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = publish_keyed(&gw, ETL_TOKEN, key("b"), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let (status, err) = publish_keyed(&gw, ETL_TOKEN, key("b"), &body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{err}");
    let series = r#"loggate_events_published_total{service="etl",source="http"}"#;
    assert_eq!(gw.metric(series).await, Some(1.0));
}
