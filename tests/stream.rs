//! `GET /api/logs/stream` over real sockets: the SSE framing, routing by
//! hierarchy and pattern, filters, keepalive, limits, slow readers, and that
//! sessions leave nothing behind.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::*;

#[tokio::test]
async fn stream_starts_with_retry_and_ready_and_has_sse_headers() {
    let gw = start();
    let mut c =
        SseClient::connect(&gw.url("/api/logs/stream?channels=logs:etl:ws1,logs:*:ws2")).await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.headers["content-type"], "text/event-stream");
    assert_eq!(c.headers["cache-control"], "no-cache");
    assert_eq!(c.headers["x-accel-buffering"], "no");
    let first = c.next_frame().await.unwrap();
    assert_eq!(first.event, "retry", "{first:?}");
    let ready = c.next_frame().await.unwrap();
    assert_eq!(ready.event, "ready");
    let data = ready.json();
    assert_eq!(data["channels"], json!(["logs:etl:ws1", "logs:*:ws2"]));
    assert!(
        data["connection_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
}

#[tokio::test]
async fn hierarchy_and_patterns_route_exactly() {
    let gw = start();
    let subs = [
        ("logs:etl", vec!["e1", "e2", "e3", "e4"]),
        ("logs:etl:ws1", vec!["e2", "e3"]),
        ("logs:etl:ws1:job7", vec!["e3"]),
        ("logs:*:ws1", vec!["e2", "e3", "f1"]),
        ("logs:*", vec!["e1", "e2", "e3", "e4", "f1", "f2"]),
        ("logs:faas:ws2", vec!["f2"]),
        ("logs:*:*:job7", vec!["e3"]),
    ];
    let mut clients = Vec::new();
    for (ch, _) in &subs {
        clients.push(gw.subscribe(&format!("channels={ch}")).await);
    }
    let faas = |ws, msg| json!({"service":"faas","workspace_id":ws,"logData":{"message":msg}});
    gw.publish(&json!([
        event("etl", None, None, "e1"),
        event("etl", Some("ws1"), None, "e2"),
        event("etl", Some("ws1"), Some("job7"), "e3"),
        event("etl", Some("ws2"), Some("job7x"), "e4"),
    ]))
    .await;
    let (s, _) = gw
        .publish_raw(
            "faas-token",
            "application/json",
            json!([faas("ws1", "f1"), faas("ws2", "f2")]).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    for ((ch, want), c) in subs.iter().zip(clients.iter_mut()) {
        let got = c.logs(want.len()).await;
        let msgs: Vec<&str> = got.iter().map(|e| e["message"].as_str().unwrap()).collect();
        assert_eq!(&msgs, want, "subscriber of {ch}");
        c.expect_silence(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn overlapping_channels_deliver_each_event_once() {
    let gw = start();
    let mut c = gw
        .subscribe("channels=logs:etl,logs:etl:ws1,logs:*:ws1,logs:*")
        .await;
    gw.publish(&event("etl", Some("ws1"), Some("r"), "once"))
        .await;
    gw.publish(&event("etl", Some("ws1"), Some("r"), "twice"))
        .await;
    let got = c.logs(2).await;
    assert_eq!(got[0]["message"], "once");
    assert_eq!(got[1]["message"], "twice");
    c.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn level_and_text_filters() {
    let gw = start();
    let mut warn = gw.subscribe("channels=logs:etl&level=warn").await;
    let mut text = gw.subscribe("channels=logs:etl&q=DISK").await;
    let lvl =
        |level: &str, msg: &str| json!({"service":"etl","logData":{"message":msg,"level":level}});
    gw.publish(&json!([
        lvl("debug", "disk ok"),
        lvl("warning", "cpu hot"),
        lvl("error", "Disk full"),
        lvl("info", "nothing"),
        lvl("fatal", "bye"),
    ]))
    .await;
    let got: Vec<Value> = warn.logs(3).await;
    let msgs: Vec<&str> = got.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["cpu hot", "Disk full", "bye"]);
    let got: Vec<Value> = text.logs(2).await;
    let msgs: Vec<&str> = got.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["disk ok", "Disk full"]);
    warn.expect_silence(Duration::from_millis(200)).await;
    text.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn idle_streams_get_keepalive_comments() {
    let gw = start_with(|c| c.subscribe.keepalive_secs = 1);
    let mut c = gw.subscribe("channels=logs:etl").await;
    let f = c.next_frame().await.unwrap();
    assert_eq!(f.event, "comment");
    assert_eq!(f.data, "keepalive");
}

#[tokio::test]
async fn bad_subscriptions_are_refused_before_the_stream_starts() {
    let gw = start();
    let too_many = (0..33)
        .map(|i| format!("logs:s{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let cases = [
        ("", "missing_channels"),
        ("channels=", "missing_channels"),
        ("channels=logs", "invalid_channel"),
        ("channels=logs:etl:", "invalid_channel"),
        ("channels=metrics:etl", "invalid_channel"),
        ("channels=logs:etl*", "invalid_channel"),
        ("channels=logs:et.l", "invalid_channel"),
        ("channels=logs:etl%00", "invalid_channel"),
        ("channels=logs:etl%0Aevent:%20x", "invalid_channel"),
        ("channels=logs:a:b:c:d", "invalid_channel"),
        ("channels=logs:etl&level=loud", "invalid_level"),
        (&format!("channels={too_many}"), "too_many_channels"),
        (
            &format!(
                "channels={}",
                (0..2000)
                    .map(|i| format!("logs:s{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            "too_many_channels",
        ),
        ("channels=logs:a&channels=logs:b", "invalid_query"),
    ];
    for (query, want) in cases {
        let mut c = SseClient::connect(&gw.url(&format!("/api/logs/stream?{query}"))).await;
        assert_eq!(c.status, StatusCode::BAD_REQUEST, "{query:.80}");
        let body = c.error_body().await;
        assert_eq!(body["error"]["code"], want, "{query:.80}: {body}");
    }
    // 10,000 channels in one query: a ~100 KB request line that client
    // libraries will not even send. It is refused without being parsed.
    let huge = (0..10_000)
        .map(|i| format!("logs:s{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let request = format!(
        "GET /api/logs/stream?channels={huge} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = raw_request(gw.running.addr, request.as_bytes()).await;
    assert!((400..500).contains(&status), "{status} {body:.200}");
    // Control characters in the raw request line never reach a handler.
    let (status, _) = raw_request(
        gw.running.addr,
        b"GET /api/logs/stream?channels=logs:etl\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    // Nothing was registered, and the gateway still serves.
    assert_eq!(gw.running.registry_stats().await.unwrap().sessions, 0);
    let _ok = gw.subscribe("channels=logs:etl").await;
}

#[tokio::test]
async fn connection_cap_answers_503_and_frees_the_slot_on_disconnect() {
    let gw = start_with(|c| c.server.max_connections = 2);
    let a = gw.subscribe("channels=logs:etl").await;
    let _b = gw.subscribe("channels=logs:etl").await;
    let mut c = SseClient::connect(&gw.url("/api/logs/stream?channels=logs:etl")).await;
    assert_eq!(c.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(c.headers.contains_key("retry-after"));
    assert_eq!(c.error_body().await["error"]["code"], "connection_limit");
    drop(a);
    gw.wait_for_registry("one session left", |s| s.sessions == 1)
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = SseClient::connect(&gw.url("/api/logs/stream?channels=logs:etl")).await;
        if c.status == StatusCode::OK {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = gw.metrics().await;
    assert!(
        metric_value(
            &metrics,
            r#"loggate_connections_rejected_total{reason="connection_limit"}"#
        ) >= Some(1.0)
    );
}

/// 10,000 connect/disconnect cycles leave no subscriber, session, slot or
/// trie node behind.
#[tokio::test]
async fn ten_thousand_connect_disconnect_cycles_leave_nothing_behind() {
    // One address opens them all: the per-address limit is tested elsewhere.
    let gw = start_with(|c| c.limits.connect_rate_per_ip = 0);
    let url = gw.url("/api/logs/stream");
    let total = 10_000usize;
    let concurrency = 50usize;
    futures_util::stream::iter(0..total)
        .for_each_concurrent(concurrency, |i| {
            let url = url.clone();
            async move {
                let ch = format!("logs:s{}:w{}:r{}", i % 13, i % 101, i);
                let mut c =
                    SseClient::connect(&format!("{url}?channels={ch},logs:*:w{}", i % 7)).await;
                assert_eq!(c.status, StatusCode::OK);
                let ready = c.next_event().await.expect("ready");
                assert_eq!(ready.event, "ready");
            }
        })
        .await;
    let stats = gw
        .wait_for_registry("every session gone", |s| {
            s.sessions == 0 && s.subscriptions == 0
        })
        .await;
    assert_eq!(stats.index_nodes, 1, "the trie is pruned back to its root");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, health) = gw.get_json("/health").await;
        let clean = health["connections"]["total"] == 0
            && health["connections"]["sse"] == 0
            && health["session_actors"] == 0;
        if clean {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client that stops reading loses its oldest events, is told how many
/// with `event: lag`, and the loss is counted; other readers lose nothing.
#[tokio::test]
async fn a_stalled_reader_lags_without_slowing_others() {
    let gw = start_with(|c| {
        // 30 MB as fast as it goes: not what the byte rate is for.
        c.publish.bytes_per_sec = 0;
        c.publish.max_batch_events = 100;
        c.publish.max_body_bytes = 256 * 1024;
        c.publish.max_event_bytes = 4096;
        c.subscribe.queue_max_events = 100;
        c.subscribe.queue_max_bytes = 256 * 1024;
    });
    let mut stalled = gw.subscribe("channels=logs:etl:lag").await;
    let mut reader = gw.subscribe("channels=logs:etl:lag").await;
    let line = "x".repeat(2000);
    let batches = 150usize;
    let reading = tokio::spawn(async move {
        let got = reader.logs(batches * 100).await;
        got.iter()
            .enumerate()
            .all(|(i, e)| e["message"].as_str().unwrap().ends_with(&format!("#{i}")))
    });
    for b in 0..batches {
        let batch: Vec<Value> = (0..100)
            .map(|i| event("etl", Some("lag"), None, &format!("{line}#{}", b * 100 + i)))
            .collect();
        let (s, answer) = gw.publish(&Value::Array(batch)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{answer}");
    }
    assert!(
        reading.await.unwrap(),
        "the reader got every event in order"
    );

    // Now the stalled client reads: it must learn that it lost events.
    let mut dropped = 0u64;
    let mut last_seen = 0usize;
    while last_seen + 1 < batches * 100 {
        let f = stalled.next_event().await.expect("stream open");
        match f.event.as_str() {
            "lag" => dropped += f.json()["dropped"].as_u64().unwrap(),
            "log" => {
                let msg = f.json()["message"].as_str().unwrap().to_owned();
                last_seen = msg.rsplit('#').next().unwrap().parse().unwrap();
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(dropped > 0, "a stalled reader must be told it lost events");
    let metrics = gw.metrics().await;
    let counted = metric_value(
        &metrics,
        r#"loggate_events_dropped_total{reason="slow_consumer",service="etl"}"#,
    )
    .unwrap_or(0.0);
    assert!(
        counted >= dropped as f64,
        "counted {counted}, told {dropped}"
    );
}

#[tokio::test]
async fn health_and_healthz() {
    let gw = start();
    let (s, body) = gw.get_json("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, "ok");
    let _c = gw.subscribe("channels=logs:etl").await;
    let (s, h) = gw.get_json("/health").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert!(h["uptime_seconds"].is_u64());
    assert_eq!(h["connections"]["sse"], 1);
    assert_eq!(h["nats"]["state"], "disabled");
    let (s, body) = gw.get_json("/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}
