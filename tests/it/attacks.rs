//! Attacks from the adversarial review, each reproduced over real sockets
//! against the real binary (whose memory is measured) or the real app:
//! oversized and endless WebSocket frames, clients that make the gateway
//! queue replies without reading them, cross-site WebSocket handshakes.

use std::time::{Duration, Instant};

use testkit::process::{base_command, spawn};
use testkit::ws::{RawWs, client_frame, flood, frame_header, raw_ws};
use testkit::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_loggate");

async fn metric(addr: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    metric_value(&text, series).unwrap_or(0.0)
}

/// Waits (bounded) until the gateway holds no subscriber connection.
async fn wait_for_no_connections(addr: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let health: serde_json::Value = reqwest::get(format!("http://{addr}/health"))
            .await
            .expect("health")
            .json()
            .await
            .expect("health json");
        if health["connections"]["total"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the connection was not dropped: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A frame whose header declares a terabyte, followed by a steady stream of
/// data: refused from the header with close 1009, the rest never read, and
/// the server's memory does not follow the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_frame_declaring_a_terabyte_is_refused_from_its_header() {
    let proc = spawn(base_command(BIN));
    let addr = proc.addr.clone();
    let (status, ws) = raw_ws(&addr, "/api/logs/ws?channels=logs:etl", "").await;
    assert_eq!(status, 101);
    let RawWs {
        read,
        mut write,
        buf,
    } = ws.unwrap();
    let before = proc.rss_kib();
    let writer = tokio::spawn(async move {
        write
            .write_all(&frame_header(0x1, 1 << 40))
            .await
            .expect("header sent");
        flood(&mut write, &vec![b'a'; 64 * 1024], 256 << 20).await
    });
    let mut ws = RawWs {
        read,
        write: TcpStream::connect(&addr).await.unwrap().into_split().1,
        buf,
    };
    assert_eq!(ws.close_code().await, Some(1009), "close 1009 (too big)");
    assert!(
        ws.ends_within(WAIT).await,
        "the connection is dropped after the close frame"
    );
    let sent = writer.await.unwrap();
    let grown = proc.rss_kib().saturating_sub(before);
    eprintln!(
        "client sent {} MiB; server RSS grew {grown} KiB",
        sent >> 20
    );
    assert!(
        sent < 64 << 20,
        "the server kept reading ({} MiB) after refusing the frame",
        sent >> 20
    );
    assert!(grown < 16 * 1024, "server RSS grew {grown} KiB");
    assert_eq!(
        metric(
            &addr,
            r#"loggate_disconnects_total{reason="frame_too_large"}"#
        )
        .await,
        1.0
    );
    wait_for_no_connections(&addr).await;
}

/// A client that never reads and keeps sending what the gateway answers
/// (pings, binary frames, messages of unknown type) cannot make it queue
/// replies without bound: pongs coalesce, and the other replies overflow a
/// small bound, after which the client is closed (1008) and dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cannot_make_replies_pile_up() {
    let proc = spawn(base_command(BIN));
    let addr = proc.addr.clone();
    let (_, ws) = raw_ws(&addr, "/api/logs/ws?channels=logs:etl", "").await;
    let mut ws = ws.unwrap();
    let before = proc.rss_kib();

    // Pings alone: one pong slot, so the connection lives and memory holds.
    let pings: Vec<u8> = (0..512)
        .flat_map(|_| client_frame(0x9, &[b'p'; 125]))
        .collect();
    let sent = flood(&mut ws.write, &pings, 64 << 20).await;
    let after_pings = proc.rss_kib().saturating_sub(before);
    eprintln!(
        "{} MiB of pings: server RSS grew {after_pings} KiB",
        sent >> 20
    );
    assert!(after_pings < 16 * 1024, "server RSS grew {after_pings} KiB");
    assert_eq!(
        metric(
            &addr,
            r#"loggate_disconnects_total{reason="control_overflow"}"#
        )
        .await,
        0.0,
        "pings alone never overflow"
    );

    // Messages that each earn an error reply: the bound is hit, the client
    // is closed.
    let unknown = client_frame(0x1, br#"{"type":"x","channels":[]}"#);
    let binary = client_frame(0x2, b"binary");
    let junk: Vec<u8> = (0..512)
        .flat_map(|i| {
            if i % 2 == 0 {
                unknown.clone()
            } else {
                binary.clone()
            }
        })
        .collect();
    let sent = flood(&mut ws.write, &junk, 256 << 20).await;
    let grown = proc.rss_kib().saturating_sub(before);
    eprintln!(
        "{} MiB of unanswerable messages: server RSS grew {grown} KiB",
        sent >> 20
    );
    assert!(grown < 32 * 1024, "server RSS grew {grown} KiB");
    let deadline = Instant::now() + WAIT;
    while metric(
        &addr,
        r#"loggate_disconnects_total{reason="control_overflow"}"#,
    )
    .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "no control_overflow disconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It never reads its close frame, so it is dropped after the grace.
    wait_for_no_connections(&addr).await;
}

/// Error replies quote at most a short excerpt of what the client sent,
/// and nothing of the server's internals.
#[tokio::test]
async fn websocket_error_replies_are_short_and_plain() {
    let gw = start();
    let addr = gw.running.addr.to_string();
    let (_, ws) = raw_ws(&addr, "/api/logs/ws?channels=logs:etl", "").await;
    let mut ws = ws.unwrap();
    let ready = ws.next_frame(WAIT).await.expect("ready");
    assert!(String::from_utf8_lossy(&ready.1).contains("\"ready\""));
    let long_type = format!(r#"{{"type":"{}","channels":[]}}"#, "t".repeat(60_000));
    let cases: [&[u8]; 4] = [
        long_type.as_bytes(),
        br#"{"type":"subscribe","channels":["logs:etl"],"extra":1}"#,
        b"not json at all",
        br#"{"type":"subscribe","channels":"logs:etl"}"#,
    ];
    for case in cases {
        ws.write.write_all(&client_frame(0x1, case)).await.unwrap();
        let (op, payload) = ws.next_frame(WAIT).await.expect("a reply");
        assert_eq!(op, 0x1);
        let reply: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], "invalid_message", "{reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(
            message.len() < 200,
            "{} bytes: {message:.200}",
            message.len()
        );
        for internal in ["enum", "ClientMessage", "variant", "struct", "extra"] {
            assert!(!message.contains(internal), "{message}");
        }
    }
}

/// `ALLOWED_ORIGINS` applies to WebSocket handshakes too: browsers apply no
/// CORS to them, so with cookie auth any site could read a visitor's
/// streams.
#[tokio::test]
async fn websocket_handshakes_from_foreign_origins_are_refused() {
    let gw = start_with(|c| {
        c.auth.allowed_origins = vec!["https://app.example.com".into()];
        c.auth.admin_token = Some(loggate::config::Secret::new("an-admin-token-for-tests"));
    });
    let addr = gw.running.addr.to_string();
    let path = "/api/logs/ws?channels=logs:etl";
    let (status, _) = raw_ws(&addr, path, "Origin: https://evil.example\r\n").await;
    assert_eq!(status, 403, "foreign origin");
    let (status, _) = raw_ws(&addr, path, "Origin: null\r\n").await;
    assert_eq!(status, 403, "opaque origin");
    let (status, _) = raw_ws(&addr, path, "Origin: https://app.example.com\r\n").await;
    assert_eq!(status, 101, "listed origin");
    let (status, _) = raw_ws(&addr, path, "").await;
    assert_eq!(status, 101, "no Origin: not a browser");
    let own = format!("Origin: http://{addr}\r\n");
    let (status, _) = raw_ws(&addr, path, &own).await;
    assert_eq!(status, 101, "a page the gateway serves itself");
    let admin = "Authorization: Bearer an-admin-token-for-tests\r\n";
    let (status, _) = raw_ws(
        &addr,
        "/metrics/ws",
        &format!("{admin}Origin: https://evil.example\r\n"),
    )
    .await;
    assert_eq!(status, 403, "/metrics/ws from a foreign origin");
    let (status, _) = raw_ws(&addr, "/metrics/ws", admin).await;
    assert_eq!(status, 101);
}

/// A text filter longer than 256 bytes is refused wherever one is taken.
#[tokio::test]
async fn text_filters_longer_than_256_bytes_are_refused() {
    let gw = start();
    let long = format!("{}b", "a".repeat(20_000));
    for path in ["/api/logs/stream", "/api/logs/history"] {
        let (status, body) = gw
            .get_json(&format!("{path}?channels=logs:etl&q={long}"))
            .await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
    }
    let addr = gw.running.addr.to_string();
    let (status, _) = raw_ws(
        &addr,
        &format!("/api/logs/ws?channels=logs:etl&q={long}"),
        "",
    )
    .await;
    assert_eq!(status, 400, "websocket");
    let ok = "a".repeat(256);
    let (status, _) = gw
        .get_json(&format!("/api/logs/history?channels=logs:etl&q={ok}"))
        .await;
    assert_eq!(status, 200, "256 bytes is fine");
}

/// Subscribers whose text filter is built to be slow (the longest allowed,
/// against long messages that almost match) do not hold up another
/// tenant: its publish and delivery go through while theirs are filtered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_looking_text_filters_do_not_stall_other_tenants() {
    let gw = start_with(|c| c.limits.publish_rate_per_sec = 0);
    let q = format!("{}b", "a".repeat(255));
    let mut filtered = Vec::new();
    for _ in 0..20 {
        filtered.push(gw.subscribe(&format!("channels=logs:etl&q={q}")).await);
    }
    let mut witness = gw.subscribe("channels=logs:faas").await;
    let long = "a".repeat(60_000);
    let batch: Vec<_> = (0..8)
        .map(|_| event("etl", Some("ws1"), None, &long))
        .collect();
    let batch = serde_json::Value::Array(batch);
    let slow = gw.publish(&batch);
    let other = async {
        gw.publish_raw(
            "faas-token",
            "application/json",
            event("faas", Some("ws2"), None, "other tenant").to_string(),
        )
        .await
    };
    let ((status, _), (other_status, _)) = tokio::join!(slow, other);
    assert_eq!(status, 202);
    assert_eq!(other_status, 202);
    assert_eq!(witness.logs(1).await[0]["message"], "other tenant");
    // The filtered subscribers saw none of the near misses.
    let (_, answer) = gw
        .publish(&event("etl", Some("ws1"), None, &format!("{q}!")))
        .await;
    for sub in &mut filtered {
        assert_eq!(sub.logs(1).await[0]["id"], answer["ids"][0]);
    }
}

/// History is rate-limited per client address, like new connections, and
/// the refusal says when to come back.
#[tokio::test]
async fn history_requests_are_rate_limited_per_address() {
    let gw = start_with(|c| c.limits.history_rate_per_ip = 5);
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let res = gw
            .client
            .get(gw.url("/api/logs/history?channels=logs:etl&limit=1"))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(res.status().as_u16());
        }
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(refused >= 15, "{statuses:?}");
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_value(&metrics, r#"loggate_rate_limited_total{limit="history"}"#),
        Some(refused as f64)
    );
}

/// A page looks at a bounded number of events whatever its filters reject:
/// a query that matches nothing in a large history comes back with a
/// cursor to continue from instead of scanning all of it, and following
/// the cursors ends.
#[tokio::test]
async fn a_history_page_does_bounded_work() {
    let gw = start_with(|c| c.limits.publish_rate_per_sec = 0);
    let batch: Vec<_> = (0..1000)
        .map(|i| event("etl", Some(&format!("w{}", i % 50)), None, "line"))
        .collect();
    let batch = serde_json::Value::Array(batch);
    for _ in 0..45 {
        assert_eq!(gw.publish(&batch).await.0, 202);
    }
    let mut path = "/api/logs/history?channels=logs:etl&q=no-such-text&limit=1".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = gw.get_json(&path).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["logs"], serde_json::json!([]));
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(c) => {
                path =
                    format!("/api/logs/history?channels=logs:etl&q=no-such-text&limit=1&cursor={c}")
            }
            None => break,
        }
        assert!(pages < 10, "cursors keep coming");
    }
    assert!(
        pages >= 3,
        "45,000 events in pages of at most 20,000 looked at: {pages}"
    );
}

/// Behind a generic proxy (`TRUST_PROXY=x-forwarded-for`) a client-sent
/// `Fly-Client-IP` is just a header: 20 connects that each claim another
/// address are one address to the connection rate limit. With
/// `TRUST_PROXY=fly` it is the other way round.
#[tokio::test]
async fn only_the_configured_proxy_header_names_the_client() {
    use loggate::config::TrustProxy;
    async fn refused(gw: &InProcessGateway, header: &str) -> usize {
        let mut refused = 0;
        for i in 0..20 {
            let res = gw
                .client
                .get(gw.url("/api/logs/stream?channels=logs:etl"))
                .header(header, format!("198.51.100.{i}"))
                .send()
                .await
                .unwrap();
            refused += usize::from(res.status() == 429);
        }
        refused
    }
    let gw = start_with(|c| {
        c.limits.connect_rate_per_ip = 2;
        c.server.trust_proxy = TrustProxy::XForwardedFor;
    });
    assert!(
        refused(&gw, "fly-client-ip").await >= 15,
        "spoofed Fly-Client-IP"
    );
    let gw = start_with(|c| {
        c.limits.connect_rate_per_ip = 2;
        c.server.trust_proxy = TrustProxy::Fly;
    });
    assert!(
        refused(&gw, "x-forwarded-for").await >= 15,
        "spoofed X-Forwarded-For"
    );
    assert_eq!(
        refused(&gw, "fly-client-ip").await,
        0,
        "Fly's header, 20 addresses"
    );
}

/// One address cannot take every connection slot: past
/// `MAX_CONNECTIONS_PER_IP` it gets 429 (counted), while other addresses
/// still connect, and a closed connection frees its address's slot.
#[tokio::test]
async fn one_address_cannot_take_every_connection_slot() {
    let gw = start_with(|c| {
        c.server.max_connections_per_ip = 3;
        c.server.trust_proxy = loggate::config::TrustProxy::XForwardedFor;
    });
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(gw.subscribe("channels=logs:etl").await);
    }
    let (status, body) = gw.get_json("/api/logs/stream?channels=logs:etl").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "address_connection_limit");
    let addr = gw.running.addr.to_string();
    let (status, _) = raw_ws(&addr, "/api/logs/ws?channels=logs:etl", "").await;
    assert_eq!(status, 429, "WebSocket counts too");
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"loggate_connections_rejected_total{reason="per_address_limit"}"#
        ),
        Some(2.0)
    );
    let other = gw
        .client
        .get(gw.url("/api/logs/stream?channels=logs:etl"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200, "another address still connects");
    drop(other);
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let res = gw
            .client
            .get(gw.url("/api/logs/stream?channels=logs:etl"))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
