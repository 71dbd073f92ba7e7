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
    let ready = c.next_frame().await.unwrap();
    assert_eq!(ready.event, "ready", "{ready:?}");
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

/// A raw socket to the gateway whose receive buffer is `rcvbuf` bytes (set
/// before connecting, so the window it advertises stays that small), with
/// `GET {path}` sent on it.
async fn raw_get(addr: std::net::SocketAddr, path: &str, rcvbuf: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(rcvbuf).unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut tcp = tokio::net::TcpStream::from_std(sock.into()).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp
}

/// Reads the response head and the first chunk of a chunked body; returns
/// the status line and the chunk's bytes, exactly as sent.
async fn head_and_first_chunk(tcp: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let body = &buf[end + 4..];
            if let Some(line_end) = memchr::memmem::find(body, b"\r\n") {
                let size = usize::from_str_radix(
                    std::str::from_utf8(&body[..line_end]).unwrap().trim(),
                    16,
                )
                .unwrap();
                let chunk = &body[line_end + 2..];
                if chunk.len() >= size {
                    let status = head.lines().next().unwrap_or_default().to_owned();
                    return (status, chunk[..size].to_vec());
                }
            }
        }
        let mut more = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut more))
            .await
            .expect("the first chunk in time")
            .unwrap();
        assert!(n > 0, "closed before the first chunk: {buf:?}");
        buf.extend_from_slice(&more[..n]);
    }
}

/// The events an SSE client library dispatches from `text`, by the rule
/// httpx-sse (and others) follow: a blank line dispatches an event if any
/// field was seen since the last one, its type `message` unless named.
fn dispatched(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut event, mut data, mut seen) = (String::new(), Vec::new(), false);
    for line in text.split('\n') {
        if line.is_empty() {
            if seen {
                let kind = if event.is_empty() {
                    "message".into()
                } else {
                    std::mem::take(&mut event)
                };
                out.push((kind, data.join("\n")));
            }
            (event, data, seen) = (String::new(), Vec::new(), false);
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        seen = true;
        match field {
            "event" => event = value.to_owned(),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    out
}

/// The stream's first bytes are one block: the `retry:` hint, then
/// `event: ready` and its data. A `retry:` line in a block of its own is
/// dispatched by httpx-sse (and other clients) as an empty `message` event
/// on every connect.
#[tokio::test]
async fn the_retry_hint_comes_in_the_ready_block() {
    let gw = start_with(|c| c.subscribe.retry_ms = 2500);
    let mut tcp = raw_get(
        gw.running.addr,
        "/api/logs/stream?channels=logs:etl:ws1",
        64 * 1024,
    )
    .await;
    let (status, first) = head_and_first_chunk(&mut tcp).await;
    assert!(status.contains(" 200 "), "{status}");
    let text = String::from_utf8(first).unwrap();
    assert!(
        text.starts_with("retry: 2500\nevent: ready\ndata: {"),
        "first bytes: {text:?}"
    );
    assert!(text.ends_with("}\n\n"), "{text:?}");
    assert_eq!(
        text.matches("\n\n").count(),
        1,
        "one block, ended once: {text:?}"
    );
    let events = dispatched(&text);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "ready");
    let ready: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(ready["channels"], json!(["logs:etl:ws1"]));

    // The same rule over what a library client reads: ready, then the
    // event, and no empty message anywhere.
    let mut c = SseClient::connect(&gw.url("/api/logs/stream?channels=logs:etl:ws1")).await;
    let ready = c.next_frame().await.unwrap();
    assert_eq!(ready.event, "ready", "{ready:?}");
    gw.publish(&event("etl", Some("ws1"), None, "hello")).await;
    let log = c.next_frame().await.unwrap();
    assert_eq!(log.event, "log", "{log:?}");
}

/// Waits (bounded by `limit`) until `series` of `/metrics` reads `want`.
async fn wait_for_metric(gw: &InProcessGateway, series: &str, want: f64, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let got = gw.metric(series).await;
        if got == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} is {got:?}, not {want}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until `/health` counts `want` SSE connections.
async fn wait_for_sse_connections(gw: &InProcessGateway, want: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, health) = gw.get_json("/health").await;
        if health["connections"]["sse"] == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waiting for {want} SSE connections: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A reader that never reads holds its connection, its full queue and the
/// socket's buffers. Once its queue has stayed full with no write progress
/// for `sse.stall_timeout_secs`, the gateway resets the connection, counts
/// it, and frees its slot. A slow reader that keeps making progress, with
/// a queue as full, stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_is_disconnected_and_a_slow_one_is_not() {
    use tokio::io::AsyncReadExt;
    let timeout = Duration::from_secs(2);
    let gw = std::sync::Arc::new(start_with(|c| {
        c.publish.max_batch_events = 100;
        c.publish.max_body_bytes = 256 * 1024;
        c.publish.max_event_bytes = 4096;
        c.subscribe.queue_max_events = 100;
        c.subscribe.queue_max_bytes = 256 * 1024;
        c.sse.stall_timeout_secs = timeout.as_secs();
    }));
    let stalled_series = r#"loggate_disconnects_total{reason="stalled"}"#;
    let path = "/api/logs/stream?channels=logs:etl:stall";
    let mut stalled = raw_get(gw.running.addr, path, 4096).await;
    let (status, first) = head_and_first_chunk(&mut stalled).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(first.starts_with(b"retry:"), "{first:?}");
    let mut slow = raw_get(gw.running.addr, path, 4096).await;
    head_and_first_chunk(&mut slow).await;
    wait_for_sse_connections(&gw, 2).await;

    // The slow reader takes 4 KiB every 10 ms (400 KB/s, far less than is
    // published) until told to stop; it reports what it read after `mark`.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mark = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let (stop, mark) = (stop.clone(), mark.clone());
        tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            let mut buf = vec![0u8; 4096];
            let mut total = 0u64;
            while !stop.load(Relaxed) {
                match tokio::time::timeout(WAIT, slow.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => total += n as u64,
                    other => return Err(format!("the slow reader's stream ended: {other:?}")),
                }
                mark.store(total, Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(total)
        })
    };
    // The publisher keeps both queues full: 200 KB every 50 ms.
    let publisher = {
        let (gw, stop) = (gw.clone(), stop.clone());
        tokio::spawn(async move {
            let line = "x".repeat(2000);
            let batch: Vec<Value> = (0..100)
                .map(|_| event("etl", Some("stall"), None, &line))
                .collect();
            let batch = Value::Array(batch);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, answer) = gw.publish(&batch).await;
                assert_eq!(s, StatusCode::ACCEPTED, "{answer}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    wait_for_metric(&gw, stalled_series, 1.0, WAIT + timeout).await;
    wait_for_sse_connections(&gw, 1).await;
    // The stalled client finds its connection gone: what the kernel still
    // held for it, then the end (a reset, or an end of file).
    let mut sink = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match stalled.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled connection was not closed");

    // The slow reader, its queue as full, outlives twice the timeout.
    let before = mark.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(timeout * 2).await;
    let (_, health) = gw.get_json("/health").await;
    assert_eq!(health["connections"]["sse"], 1, "{health}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    publisher.await.unwrap();
    let total = reader
        .await
        .unwrap()
        .expect("the slow reader kept its stream");
    assert!(total > before, "the slow reader kept reading");
    assert_eq!(
        gw.metric(stalled_series).await,
        Some(1.0),
        "only the stalled one"
    );
    let dropped = gw
        .metric(r#"loggate_events_dropped_total{reason="slow_consumer",service="etl"}"#)
        .await
        .unwrap_or(0.0);
    assert!(dropped > 0.0, "the queues were full");
}
