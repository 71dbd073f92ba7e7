//! Delivery you can trust: resume with `Last-Event-ID` (no gap, no
//! duplicate, also while publishes race the reconnect), `event: gap` when
//! history cannot cover a resume, bounded history, and the REST history
//! endpoint with its cursor, filters and NDJSON download.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::jwt::{self, now};
use testkit::*;

/// Opens a stream on `channels`, resuming after `last` if given (as the
/// `Last-Event-ID` header), and waits for `ready`.
async fn resume(gw: &InProcessGateway, channels: &str, last: Option<&str>) -> SseClient {
    let mut url = gw.url(&format!("/api/logs/stream?channels={channels}"));
    if let Some(id) = last {
        // Exercise the query form here; the header form is tested below.
        url.push_str(&format!("&lastEventId={id}"));
    }
    SseClient::open(testkit::sse::stream_client().get(url), WAIT).await
}

async fn publish_n(gw: &InProcessGateway, ws: &str, from: usize, to: usize) -> Vec<String> {
    let batch: Vec<Value> = (from..to)
        .map(|i| event("etl", Some(ws), None, &format!("m{i}")))
        .collect();
    let (s, answer) = gw.publish(&Value::Array(batch)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{answer}");
    answer["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn resume_replays_what_was_missed_then_goes_live() {
    let gw = start();
    let mut c = resume(&gw, "logs:etl:ws1", None).await;
    let ids = publish_n(&gw, "ws1", 0, 5).await;
    assert_eq!(messages(&c.logs(5).await), ["m0", "m1", "m2", "m3", "m4"]);
    drop(c);
    publish_n(&gw, "ws1", 5, 8).await;
    // Another workspace's traffic is not replayed.
    publish_n(&gw, "ws2", 100, 103).await;

    // Header form, as EventSource sends it on reconnect.
    let client = reqwest::Client::new();
    let res = client
        .get(gw.url(
            "/api/logs/stream?channels=logs:etl:ws1&lastEventId=garbage-is-ignored-when-header-set",
        ))
        .header("last-event-id", &ids[1])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the header wins over the query"
    );
    drop(res);
    let mut c = resume(&gw, "logs:etl:ws1", Some(&ids[1])).await;
    let replayed = c.logs(6).await;
    assert_eq!(messages(&replayed), ["m2", "m3", "m4", "m5", "m6", "m7"]);
    publish_n(&gw, "ws1", 8, 9).await;
    assert_eq!(
        messages(&c.logs(1).await),
        ["m8"],
        "then live, with no duplicate"
    );
    c.expect_silence(std::time::Duration::from_millis(200))
        .await;
}

#[tokio::test]
async fn resume_is_exact_while_publishes_race_the_reconnects() {
    let gw = Arc::new(start());
    const TOTAL: usize = 3000;
    // The subscriber reads a varying number of events, drops the
    // connection, and resumes from the last id it saw, over and over.
    let mut seen: Vec<usize> = Vec::new();
    let mut last: Option<String> = None;
    let mut rounds = 0usize;
    let mut lcg: u64 = 42;
    // The first stream is open before anything is published: with no id
    // to resume from yet, it could not ask for earlier events.
    let mut first = Some(resume(&gw, "logs:etl:race", None).await);
    let publisher = {
        let gw = Arc::clone(&gw);
        tokio::spawn(async move {
            let mut i = 0;
            while i < TOTAL {
                let n = 1 + (i * 7919) % 13; // batches of 1..=13
                let to = (i + n).min(TOTAL);
                publish_n(&gw, "race", i, to).await;
                i = to;
                tokio::task::yield_now().await;
            }
        })
    };
    while seen.len() < TOTAL {
        let mut c = match first.take() {
            Some(c) => c,
            None => resume(&gw, "logs:etl:race", last.as_deref()).await,
        };
        lcg = lcg
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let take = 20 + (lcg >> 33) as usize % 200;
        for _ in 0..take.min(TOTAL - seen.len()) {
            let f = c.next_event().await.expect("open stream");
            assert_eq!(f.event, "log", "no gap or lag expected: {f:?}");
            let e = f.json();
            let n: usize = e["message"].as_str().unwrap()[1..].parse().unwrap();
            seen.push(n);
            last = Some(e["id"].as_str().unwrap().to_owned());
        }
        rounds += 1;
    }
    publisher.await.unwrap();
    assert!(rounds > 10, "{rounds} reconnects");
    let expected: Vec<usize> = (0..TOTAL).collect();
    assert_eq!(seen, expected, "every event exactly once, in order");
}

#[tokio::test]
async fn a_resume_beyond_history_is_told_about_the_gap() {
    let gw = start_with(|c| c.history.max_entries = 5);
    let ids = publish_n(&gw, "ws1", 0, 20).await;
    let mut c = resume(&gw, "logs:etl:ws1", Some(&ids[2])).await;
    let gap = c.next_event().await.unwrap();
    assert_eq!(gap.event, "gap", "{gap:?}");
    let g = gap.json();
    assert_eq!(g["reason"], "history_trimmed");
    assert_eq!(g["resumed_from"], ids[15].as_str());
    assert_eq!(
        messages(&c.logs(5).await),
        ["m15", "m16", "m17", "m18", "m19"]
    );

    // A resume that history still covers gets no gap.
    let mut c = resume(&gw, "logs:etl:ws1", Some(&ids[16])).await;
    assert_eq!(messages(&c.logs(3).await), ["m17", "m18", "m19"]);
}

#[tokio::test]
async fn an_id_from_another_run_is_a_gap_not_silent_success() {
    let gw = start();
    publish_n(&gw, "ws1", 0, 3).await;
    let mut c = resume(&gw, "logs:etl:ws1", Some("000000000001-000000000002")).await;
    let gap = c.next_event().await.unwrap();
    assert_eq!(gap.event, "gap");
    assert_eq!(gap.json()["reason"], "unknown_epoch");
    assert_eq!(
        messages(&c.logs(3).await),
        ["m0", "m1", "m2"],
        "then what history holds"
    );

    for bad in ["nope", "12-abc", "-1", "zz-1"] {
        let mut c = SseClient::connect(&gw.url(&format!(
            "/api/logs/stream?channels=logs:etl&lastEventId={bad}"
        )))
        .await;
        assert_eq!(c.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            c.error_body().await["error"]["code"],
            "invalid_last_event_id"
        );
    }
}

#[tokio::test]
async fn filters_apply_to_the_replay_too() {
    let gw = start();
    let first = publish_n(&gw, "ws1", 0, 1).await;
    let lvl = |level: &str, msg: &str| json!({"service":"etl","workspace_id":"ws1","logData":{"message":msg,"level":level}});
    gw.publish(&json!([
        lvl("info", "quiet"),
        lvl("error", "Disk on fire"),
        lvl("warn", "disk slow"),
        lvl("error", "cpu")
    ]))
    .await;
    let url = gw.url(&format!(
        "/api/logs/stream?channels=logs:etl:ws1&level=warn&q=disk&lastEventId={}",
        first[0]
    ));
    let mut c = SseClient::connect(&url).await;
    assert_eq!(c.next_event().await.unwrap().event, "ready");
    assert_eq!(messages(&c.logs(2).await), ["Disk on fire", "disk slow"]);
    c.expect_silence(std::time::Duration::from_millis(200))
        .await;
}

#[tokio::test]
async fn history_memory_stays_bounded_at_any_rate() {
    let gw = start_with(|c| {
        c.publish.max_body_bytes = 64 * 1024;
        c.publish.max_event_bytes = 4 * 1024;
        c.publish.max_batch_events = 100;
        c.history.max_entries = 50;
        c.history.max_bytes = 256 * 1024;
        c.history.max_channels = 40;
        c.limits.publish_rate_per_sec = 0;
    });
    for round in 0..60 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                event(
                    "etl",
                    Some(&format!("w{}", (round * 7 + i) % 97)),
                    Some("r"),
                    &"x".repeat(300),
                )
            })
            .collect();
        let (s, _) = gw.publish(&Value::Array(batch)).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let h = gw.running.registry_stats().await.unwrap().history;
        assert!(h.bytes <= 256 * 1024, "{h:?}");
        assert!(h.channels <= 40, "{h:?}");
        assert!(h.events <= 40 * 50, "{h:?}");
    }
    assert_eq!(gw.running.registry_stats().await.unwrap().last_seq, 6000);
}

#[tokio::test]
async fn rest_history_pages_once_each_oldest_first() {
    let gw = start();
    let mut all = Vec::new();
    for ws in ["a", "b", "c"] {
        all.extend(publish_n(&gw, ws, all.len(), all.len() + 90).await);
    }
    publish_n(&gw, "zz", 1000, 1010).await;
    let mut got: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path =
            "/api/logs/history?channels=logs:etl:a,logs:etl:b,logs:etl:c&limit=100".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, page) = gw.get_json(&path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for e in page["logs"].as_array().unwrap() {
            got.push(e["id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(got, all, "every event once, oldest first");

    // Filters, and a time window on the event timestamp.
    let t = |s: &str| json!({"service":"etl","workspace_id":"t","logData":{"message":s,"level":"warn","timestamp":format!("2025-01-0{s}T00:00:00Z")}});
    gw.publish(&json!([t("1"), t("2"), t("3"), t("4")])).await;
    let (_, page) = gw
        .get_json(
            "/api/logs/history?channels=logs:etl:t&since=2025-01-02T00:00:00Z&until=1735862400000",
        )
        .await;
    assert_eq!(messages(page["logs"].as_array().unwrap()), ["2", "3"]);
    let (_, page) = gw
        .get_json("/api/logs/history?channels=logs:*&level=warn&q=4")
        .await;
    assert_eq!(messages(page["logs"].as_array().unwrap()), ["4"]);
    assert_eq!(page["next_cursor"], Value::Null);

    // NDJSON download.
    let res = gw
        .client
        .get(gw.url("/api/logs/history?channels=logs:etl:t&format=ndjson"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = res.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(messages(&lines), ["1", "2", "3", "4"]);

    for (query, code) in [
        ("channels=logs:etl&limit=0", "invalid_query"),
        ("channels=logs:etl&limit=5000", "invalid_query"),
        ("channels=logs:etl&since=yesterday", "invalid_query"),
        ("channels=logs:etl&cursor=bogus", "invalid_query"),
        (
            "channels=logs:etl&cursor=000000000001-000000000001",
            "invalid_query",
        ),
        ("channels=logs:etl&format=xml", "invalid_query"),
        ("channels=logs:et.l", "invalid_channel"),
        ("", "missing_channels"),
    ] {
        let (s, body) = gw.get_json(&format!("/api/logs/history?{query}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}");
    }
}

#[tokio::test]
async fn rest_history_has_the_same_auth_and_grants() {
    const SECRET: &str = "history-secret-0123456789abcdef-0123";
    let gw = start_with(|c| c.auth.jwt_secret = Some(loggate::config::Secret::new(SECRET)));
    publish_n(&gw, "ws1", 0, 3).await;
    publish_n(&gw, "ws2", 3, 6).await;
    let token = jwt::hs256(SECRET, &json!({"exp": now() + 600, "workspaces": ["ws1"]}));
    let (s, _) = gw.get_json("/api/logs/history?channels=logs:*:ws1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, page) = gw
        .get_json(&format!(
            "/api/logs/history?channels=logs:*:ws1&token={token}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        messages(page["logs"].as_array().unwrap()),
        ["m0", "m1", "m2"]
    );
    let (s, body) = gw
        .get_json(&format!("/api/logs/history?channels=logs:*&token={token}"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden_channel");
}

#[tokio::test]
async fn a_stalled_reader_never_slows_the_others_and_memory_stays_bounded() {
    let gw = start_with(|c| {
        c.subscribe.queue_max_events = 1000;
        // 30 MB as fast as it goes: not what the byte rate is for.
        c.publish.bytes_per_sec = 0;
    });
    let stalled = resume(&gw, "logs:etl:s", None).await;
    let mut reader = resume(&gw, "logs:etl:s", None).await;
    let reading = tokio::spawn(async move { reader.logs(10_000).await.len() });
    // 2 KB events, 20 MB in all: more than socket buffers absorb, so the
    // stalled reader's queue really fills.
    let line = "x".repeat(2000);
    for b in 0..25 {
        let batch: Vec<Value> = (0..400)
            .map(|i| event("etl", Some("s"), None, &format!("{line}{}", b * 400 + i)))
            .collect();
        let (s, _) = gw.publish(&Value::Array(batch)).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    assert_eq!(reading.await.unwrap(), 10_000, "the reader got every event");
    // The stalled session holds at most its queue, not the 10,000.
    let (_, health) = gw.get_json("/health").await;
    // The reader has hung up; the stalled client is still connected.
    assert_eq!(health["connections"]["sse"], 1);
    let metrics = gw.metrics().await;
    let dropped = metric_value(
        &metrics,
        r#"loggate_events_dropped_total{reason="slow_consumer",service="etl"}"#,
    )
    .unwrap_or(0.0);
    assert!(
        dropped > 0.0,
        "the stalled reader's oldest events were dropped, not buffered"
    );
    drop(stalled);
}

/// A resume replays old events; their age is not delivery latency, so it
/// stays out of `loggate_delivery_latency_seconds` (one resume used to add
/// an observation as old as the replayed event).
#[tokio::test]
async fn replays_do_not_count_as_delivery_latency() {
    let gw = start();
    let ids = publish_n(&gw, "ws1", 0, 2).await;
    // The replayed event must be old; this sleep ages it, it waits for
    // nothing.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let sum = |text: &str| metric_value(text, "loggate_delivery_latency_seconds_sum").unwrap();
    let before = sum(&gw.metrics().await);
    let mut c = resume(&gw, "logs:etl:ws1", Some(&ids[0])).await;
    assert_eq!(messages(&c.logs(1).await), ["m1"]);
    // A live event still counts.
    publish_n(&gw, "ws1", 2, 3).await;
    assert_eq!(messages(&c.logs(1).await), ["m2"]);
    let text = gw.metrics().await;
    let added = sum(&text) - before;
    assert!(added < 1.0, "the replay added {added} s of latency");
    assert!(metric_value(&text, "loggate_delivery_latency_seconds_count").unwrap() >= 1.0);
}

/// The newest lines first (what a viewer shows), paging back with
/// `prev_cursor`, and `last_id`: where a stream opened after the page
/// resumes with no gap and no duplicate.
#[tokio::test]
async fn history_reads_back_from_the_newest_and_tells_where_to_resume() {
    let gw = start();
    let ids = publish_n(&gw, "ws1", 0, 5).await;
    publish_n(&gw, "ws2", 100, 102).await;
    let base = "/api/logs/history?channels=logs:etl:ws1&limit=2";
    let (status, page) = gw.get_json(&format!("{base}&before=end")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(messages(page["logs"].as_array().unwrap()), ["m3", "m4"]);
    assert_eq!(page["prev_cursor"], ids[3].as_str());
    assert_eq!(page["next_cursor"], Value::Null);
    let (_, older) = gw.get_json(&format!("{base}&before={}", ids[3])).await;
    assert_eq!(messages(older["logs"].as_array().unwrap()), ["m1", "m2"]);
    let (status, body) = gw
        .get_json(&format!("{base}&before=end&cursor={}", ids[0]))
        .await;
    assert_eq!(status, 400, "{body}");
    // last_id is the newest event the gateway had accepted (another
    // workspace's here): resuming after it replays nothing old.
    let last = page["last_id"].as_str().unwrap().to_owned();
    assert!(last.as_str() > ids[4].as_str());
    let mut c = resume(&gw, "logs:etl:ws1", Some(&last)).await;
    publish_n(&gw, "ws1", 5, 6).await;
    assert_eq!(messages(&c.logs(1).await), ["m5"]);
}
