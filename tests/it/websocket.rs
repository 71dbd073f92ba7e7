//! `GET /api/logs/ws` with a real WebSocket client: ready/log frames,
//! subscribe/unsubscribe answers and errors, resume, ping/pong and dead-peer
//! close, lag for a slow client, shutdown, and the shared connection cap.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::jwt::{self, now};
use testkit::ws::{connect, logs, next_json, raw_ws, refusal, send};
use testkit::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn ready_then_log_frames_carry_the_delivered_event() {
    let gw = start();
    let mut ws = connect(&gw, "channels=logs:etl:ws1").await;
    let ready = next_json(&mut ws).await;
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["channels"], json!(["logs:etl:ws1"]));
    let mut sse = gw.subscribe("channels=logs:etl:ws1").await;
    let (_, answer) = gw
        .publish(&event("etl", Some("ws1"), Some("job7"), "done"))
        .await;
    let frame = next_json(&mut ws).await;
    assert_eq!(frame["type"], "log");
    assert_eq!(frame["event"]["id"], answer["ids"][0]);
    // Byte for byte the event SSE delivers.
    assert_eq!(frame["event"], sse.logs(1).await[0]);
}

#[tokio::test]
async fn subscribe_and_unsubscribe_answer_with_the_resulting_set() {
    let gw = start();
    let mut ws = connect(&gw, "channels=logs:etl:ws1").await;
    next_json(&mut ws).await;
    send(
        &mut ws,
        json!({"type":"subscribe","channels":["logs:faas"]}),
    )
    .await;
    let a = next_json(&mut ws).await;
    assert_eq!(
        a,
        json!({"type":"subscribed","channels":["logs:etl:ws1","logs:faas"]})
    );
    gw.publish_raw(
        "faas-token",
        "application/json",
        event("faas", None, None, "f1").to_string(),
    )
    .await;
    assert_eq!(logs(&mut ws, 1).await, ["f1"]);

    send(
        &mut ws,
        json!({"type":"unsubscribe","channels":["logs:etl:ws1"]}),
    )
    .await;
    let a = next_json(&mut ws).await;
    assert_eq!(a, json!({"type":"unsubscribed","channels":["logs:faas"]}));
    gw.publish(&event("etl", Some("ws1"), None, "not for you"))
        .await;
    gw.publish_raw(
        "faas-token",
        "application/json",
        event("faas", None, None, "f2").to_string(),
    )
    .await;
    assert_eq!(
        logs(&mut ws, 1).await,
        ["f2"],
        "the unsubscribed channel is silent"
    );

    // Refusals leave the set as it was.
    for (msg, code) in [
        (
            json!({"type":"subscribe","channels":["logs:et.l"]}),
            "invalid_channel",
        ),
        (
            json!({"type":"subscribe","channels":(0..33).map(|i| format!("logs:s{i}")).collect::<Vec<_>>()}),
            "too_many_channels",
        ),
        (json!({"type":"dance"}), "invalid_message"),
        (json!({"channels":[]}), "invalid_message"),
    ] {
        send(&mut ws, msg).await;
        let e = next_json(&mut ws).await;
        assert_eq!(e["type"], "error");
        assert_eq!(e["code"], code, "{e}");
    }
    ws.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["code"], "invalid_message");
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["code"], "invalid_message");
    gw.publish_raw(
        "faas-token",
        "application/json",
        event("faas", None, None, "f3").to_string(),
    )
    .await;
    assert_eq!(logs(&mut ws, 1).await, ["f3"]);
}

#[tokio::test]
async fn grants_apply_to_subscribe_messages() {
    const SECRET: &str = "ws-secret-0123456789abcdef-0123456789";
    let gw = start_with(|c| c.auth.jwt_secret = Some(loggate::config::Secret::new(SECRET)));
    let token = jwt::hs256(SECRET, &json!({"exp": now() + 600, "workspaces": ["ws1"]}));
    let mut ws = connect(&gw, &format!("channels=logs:etl:ws1&token={token}")).await;
    next_json(&mut ws).await;
    send(
        &mut ws,
        json!({"type":"subscribe","channels":["logs:*:ws2"]}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["code"], "forbidden_channel");
    send(
        &mut ws,
        json!({"type":"subscribe","channels":["logs:faas:ws1"]}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
}

#[tokio::test]
async fn bad_queries_are_refused_before_the_upgrade() {
    let gw = start();
    for query in [
        "channels=logs:et.l",
        "",
        "channels=logs:etl&lastEventId=nope",
    ] {
        let url = format!("ws://{}/api/logs/ws?{query}", gw.running.addr);
        assert_eq!(refusal(url).await, 400, "{query}");
    }
    // A plain GET (no upgrade) is a 400 too.
    let (s, body) = gw.get_json("/api/logs/ws?channels=logs:etl").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn resume_with_last_event_id() {
    let gw = start();
    let batch: Vec<Value> = (0..4)
        .map(|i| event("etl", Some("ws1"), None, &format!("m{i}")))
        .collect();
    let (_, answer) = gw.publish(&Value::Array(batch)).await;
    let first = answer["ids"][0].as_str().unwrap();
    let mut ws = connect(&gw, &format!("channels=logs:etl:ws1&lastEventId={first}")).await;
    assert_eq!(next_json(&mut ws).await["type"], "ready");
    assert_eq!(logs(&mut ws, 3).await, ["m1", "m2", "m3"]);
    // From another run: a gap frame first.
    let mut ws = connect(
        &gw,
        "channels=logs:etl:ws1&lastEventId=000000000001-000000000001",
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "ready");
    let gap = next_json(&mut ws).await;
    assert_eq!(
        (gap["type"].as_str(), gap["reason"].as_str()),
        (Some("gap"), Some("unknown_epoch"))
    );
}

#[tokio::test]
async fn pings_are_answered_and_a_silent_peer_is_closed() {
    let gw = start_with(|c| c.subscribe.keepalive_secs = 1);
    let mut ws = connect(&gw, "channels=logs:etl").await;
    next_json(&mut ws).await;
    ws.send(Message::Ping(b"hello".to_vec().into()))
        .await
        .unwrap();
    let mut saw_pong = false;
    let mut saw_ping = false;
    while !(saw_pong && saw_ping) {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"hello");
                saw_pong = true;
            }
            Message::Ping(_) => saw_ping = true,
            other => panic!("{other:?}"),
        }
    }

    // (tungstenite answers pings only while read, so this client would be
    // closed as dead too from here on: hang up first.)
    drop(ws);
    gw.wait_for_registry("client gone", |s| s.sessions == 0)
        .await;

    // A raw peer that completes the handshake and then never answers pings.
    use tokio::io::AsyncReadExt;
    let addr = gw.running.addr.to_string();
    let (_, peer) = raw_ws(&addr, "/api/logs/ws?channels=logs:etl", "").await;
    let mut peer = peer.expect("upgraded");
    let mut buf = std::mem::take(&mut peer.buf);
    let closed = tokio::time::timeout(WAIT, peer.read.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "a peer silent for 3 intervals is closed");
    assert!(
        buf.windows(2).any(|w| w == [0x88, 0x15] || w[0] == 0x88),
        "a close frame was sent"
    );
    gw.wait_for_registry("dead peer forgotten", |s| s.sessions == 0)
        .await;
}

#[tokio::test]
async fn a_slow_websocket_client_is_told_it_lagged() {
    let gw = start_with(|c| {
        // 30 MB as fast as it goes: not what the byte rate is for.
        c.publish.bytes_per_sec = 0;
        c.publish.max_batch_events = 100;
        c.publish.max_body_bytes = 256 * 1024;
        c.publish.max_event_bytes = 4096;
        c.subscribe.queue_max_events = 100;
        c.subscribe.queue_max_bytes = 256 * 1024;
    });
    let mut ws = connect(&gw, "channels=logs:etl:lag").await;
    next_json(&mut ws).await;
    let line = "x".repeat(2000);
    for b in 0..150 {
        let batch: Vec<Value> = (0..100)
            .map(|i| event("etl", Some("lag"), None, &format!("{line}#{}", b * 100 + i)))
            .collect();
        let (s, _) = gw.publish(&Value::Array(batch)).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let mut dropped = 0;
    loop {
        let v = next_json(&mut ws).await;
        match v["type"].as_str() {
            Some("lag") => dropped += v["dropped"].as_u64().unwrap(),
            Some("log") => {
                if v["event"]["message"].as_str().unwrap().ends_with("#14999") {
                    break;
                }
            }
            _ => panic!("{v}"),
        }
    }
    assert!(dropped > 0);
}

#[tokio::test]
async fn shutdown_sends_a_notice_and_close_1001() {
    let gw = start();
    let mut ws = connect(&gw, "channels=logs:etl").await;
    next_json(&mut ws).await;
    gw.running.begin_shutdown().await;
    assert_eq!(next_json(&mut ws).await["type"], "shutdown");
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sse_and_websocket_share_the_connection_cap() {
    let gw = start_with(|c| c.server.max_connections = 1);
    let _sse = gw.subscribe("channels=logs:etl").await;
    let url = format!("ws://{}/api/logs/ws?channels=logs:etl", gw.running.addr);
    assert_eq!(refusal(url).await, 503);
    let (_, health) = gw.get_json("/health").await;
    assert_eq!(health["connections"]["total"], 1);
    let _ = Duration::ZERO;
}

/// Closes the gateway means (1009 for an oversized frame, 1008 for a
/// client that makes it queue replies it never reads) are routine: counted
/// in `loggate_disconnects_total`, logged below ERROR. Over the real
/// binary, whose log is read as an operator would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_the_gateway_means_are_counted_and_not_logged_as_errors() {
    use testkit::process::{base_command, spawn};
    use testkit::ws::{client_frame, flood};
    let proc = spawn(base_command(env!("CARGO_BIN_EXE_loggate")));
    let addr = proc.addr.clone();
    let metric = |series: &'static str| {
        let addr = addr.clone();
        async move {
            let text = reqwest::get(format!("http://{addr}/metrics"))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("metrics text");
            metric_value(&text, series).unwrap_or(0.0)
        }
    };

    // 1009: a library client sends a 100 KB message, reads the close, answers
    // it, and waits for the gateway to end the connection.
    let url = format!("ws://{addr}/api/logs/ws?channels=logs:etl");
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake in time")
        .expect("handshake");
    ws.send(Message::Text("x".repeat(100_000).into()))
        .await
        .unwrap();
    let mut code = None;
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Close(frame))) => code = frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert_eq!(code, Some(1009));

    // 1008: a raw client floods messages that each earn a reply without
    // reading them; then it reads up to the close frame and, as RFC 6455
    // has clients do, waits for the gateway to end the connection.
    let (_, raw) = raw_ws(&addr, "/api/logs/ws?channels=logs:etl", "").await;
    let mut raw = raw.expect("upgraded");
    let junk: Vec<u8> = (0..512)
        .flat_map(|_| client_frame(0x1, br#"{"type":"x","channels":[]}"#))
        .collect();
    let overflow = r#"loggate_disconnects_total{reason="control_overflow"}"#;
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(overflow).await < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "no overflow");
        flood(&mut raw.write, &junk, junk.len()).await;
    }
    assert_eq!(raw.close_code().await, Some(1008));
    assert!(
        raw.ends_within(WAIT).await,
        "the gateway ends the connection"
    );

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (big, overflow) = (
            metric(r#"loggate_disconnects_total{reason="frame_too_large"}"#).await,
            metric(r#"loggate_disconnects_total{reason="control_overflow"}"#).await,
        );
        let closed = proc
            .log_lines()
            .iter()
            .filter(|l| l.contains("connection closed") && l.contains("websocket"))
            .count();
        if (big, overflow, closed) == (1.0, 1.0, 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "counted {big} frame_too_large, {overflow} control_overflow; {closed} closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both sessions' last lines are written, so anything logged while they
    // ended is in the log by now.
    let errors: Vec<String> = proc
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
