//! A publish is stored once, even sent twice or with its acks lost, or
//! retried with its `Idempotency-Key` on another node (after a `503`
//! too), and is refused, not lost, without JetStream on the server.

use super::*;

/// The stream keeps what it was sent once per `Nats-Msg-Id`: a publish
/// sent again (as loggate does when an ack does not come) is delivered
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_sent_twice_is_stored_once() {
    let nats = NatsServer::start_jetstream();
    let a = js_node("A", &nats);
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    let mut sub = a.subscribe("logs:etl:dup").await;
    // What a node sends, sent twice with one message id.
    let client = async_nats::connect(nats.url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let ms = 1_758_796_200_123i64;
    let time = "2025-09-25T10:30:00.123Z";
    let body = format!(
        r#"{{"channel":"logs:etl:dup:r1","service":"etl","workspace_id":"dup","resource_id":"r1","level":"info","message":"once","timestamp":"{time}","received_at":"{time}"}}"#
    );
    let mut acks = Vec::new();
    for _ in 0..2 {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Loggate-Origin", "node-x");
        h.insert("Loggate-Seq", "7");
        h.insert("Loggate-Level", "info");
        h.insert("Loggate-Timestamp-Ms", ms.to_string().as_str());
        h.insert("Loggate-Received-Ms", ms.to_string().as_str());
        h.insert("Nats-Msg-Id", "node-x-7");
        let ack = js
            .publish_with_headers("loggate.etl.dup.r1", h, body.clone().into())
            .await
            .expect("sent")
            .await
            .expect("acked");
        acks.push(ack);
    }
    assert!(!acks[0].duplicate && acks[1].duplicate, "{acks:?}");
    assert_eq!(acks[0].sequence, acks[1].sequence);
    let got = logs_without_gaps(&mut sub, 1, "A").await;
    assert_eq!(got[0].1, "once");
    assert!(
        got[0].0.ends_with(&format!("-{:012}", acks[0].sequence)),
        "{got:?}"
    );
    // Then loggate's own publishes: each stored once, under the ids answered.
    let ids = a.publish(&[ev("dup", "after")]).await;
    let next = logs_without_gaps(&mut sub, 1, "A").await;
    assert_eq!(
        (next[0].0.as_str(), next[0].1.as_str()),
        (ids[0].as_str(), "after")
    );
    sub.expect_silence(Duration::from_millis(300)).await;
}

/// With JetStream asked for and not there (the server runs without
/// `-js`), the node says so and refuses publishes rather than losing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jetstream_on_the_server_publishes_are_refused_not_lost() {
    let nats = NatsServer::start();
    let a = js_node("A", &nats);
    let (status, body) = a.get("/ready").await.expect("ready answers");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, err) = try_publish(&a, &[ev("none", "x")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(err["error"]["code"], "nats_unavailable", "{err}");
    let health = a.health().await;
    assert_eq!(
        health["nats"]["links"]["jetstream"]["state"], "waiting",
        "{health}"
    );
    let (_, metrics) = a.get("/metrics").await.unwrap();
    let series = r#"loggate_publish_rejected_total{reason="nats_unavailable",source="http"}"#;
    assert_eq!(metric_value(&metrics, series), Some(1.0), "{series}");
}

/// A TCP proxy in front of nats-server that can swallow what the server
/// says (acks included) while passing on what the client sends, and cut
/// every connection it carries.
struct AckEater {
    port: u16,
    mute: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for AckEater {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut.send_modify(|g| *g += 1);
    }
}

impl AckEater {
    async fn start(upstream: u16) -> AckEater {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mute = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let muted = std::sync::Arc::clone(&mute);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let (mut up_cut, mut down_cut) = (cuts.clone(), cuts.clone());
                up_cut.mark_unchanged();
                down_cut.mark_unchanged();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        tokio::select! {
                            n = cr.read(&mut buf) => match n {
                                Ok(n) if n > 0 => if sw.write_all(&buf[..n]).await.is_err() { break },
                                _ => break,
                            },
                            _ = up_cut.changed() => break,
                        }
                    }
                });
                let muted = std::sync::Arc::clone(&muted);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        tokio::select! {
                            n = sr.read(&mut buf) => match n {
                                Ok(n) if n > 0 => {
                                    if !muted.load(Ordering::SeqCst)
                                        && cw.write_all(&buf[..n]).await.is_err()
                                    {
                                        break;
                                    }
                                }
                                _ => break,
                            },
                            _ = down_cut.changed() => break,
                        }
                    }
                });
            }
        });
        AckEater {
            port,
            mute,
            cut,
            accept,
        }
    }
}

/// The stream stored a publish but its acks were lost, and the node's
/// connection then dropped: the node sends the events again with the same
/// message ids, the stream keeps them once, and the publish is answered
/// with the ids of the copies it kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_whose_acks_were_lost_is_sent_again_and_stored_once() {
    use std::sync::atomic::Ordering;
    let nats = NatsServer::start_jetstream();
    let proxy = AckEater::start(nats.port).await;
    let a = GatewayProcess::spawn(
        BIN,
        "A",
        &[
            ("NATS_URL", &format!("nats://127.0.0.1:{}", proxy.port)),
            ("NATS_JETSTREAM", "true"),
        ],
    );
    let b = js_node("B", &nats);
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    let mut on_b = b.subscribe("logs:etl:lost-acks").await;
    let client = async_nats::connect(nats.url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let stored = || async {
        js.get_stream("LOGGATE")
            .await
            .unwrap()
            .cached_info()
            .state
            .messages
    };
    let before = stored().await;

    proxy.mute.store(true, Ordering::SeqCst);
    let batch: Vec<Value> = (0..20).map(|i| ev("lost-acks", &format!("m{i}"))).collect();
    let publish = {
        let (client, url, body) = (
            a.client.clone(),
            a.url(""),
            Value::Array(batch.clone()).to_string(),
        );
        tokio::spawn(async move {
            testkit::http::publish(
                &client,
                &url,
                ETL_TOKEN,
                "application/json",
                body,
                RECONNECT,
            )
            .await
        })
    };
    // The stream has them; A heard nothing back.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while stored().await < before + 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream never got them"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!publish.is_finished(), "answered without its acks");
    proxy.mute.store(false, Ordering::SeqCst);
    proxy.cut.send_modify(|g| *g += 1);

    let (status, answer) = publish.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let ids: Vec<&str> = answer["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    let got = logs_without_gaps(&mut on_b, 20, "B").await;
    let delivered: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        delivered, ids,
        "the ids answered are those of the copies kept"
    );
    let messages: Vec<String> = got.into_iter().map(|(_, m)| m).collect();
    assert_eq!(
        messages,
        (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    on_b.expect_silence(Duration::from_millis(500)).await;
    assert_eq!(stored().await, before + 20, "stored once");
    let (_, metrics) = a.get("/metrics").await.unwrap();
    let resent = metric_value(&metrics, "loggate_stream_publishes_resent_total").unwrap_or(0.0);
    assert!(resent >= 20.0, "resent {resent}");
}

/// Publishes `events` with `Idempotency-Key: key`; the status and body.
async fn keyed_publish(node: &GatewayProcess, key: &str, events: &[Value]) -> (StatusCode, Value) {
    let req = node
        .client
        .post(node.url("/api/logs/publish"))
        .header("x-service-token", ETL_TOKEN)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Value::Array(events.to_vec()).to_string());
    let res = tokio::time::timeout(RECONNECT, req.send())
        .await
        .expect("answered in time")
        .expect("publish request");
    let status = res.status();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn answered_ids(answer: &Value) -> Vec<String> {
    answer["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no ids: {answer}"))
        .iter()
        .map(|i| i.as_str().expect("an id").to_owned())
        .collect()
}

/// How many messages the stream holds, and its duplicate window.
async fn stream_state(nats: &NatsServer) -> (u64, Duration) {
    let client = async_nats::connect(nats.url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let info = js
        .get_stream("LOGGATE")
        .await
        .unwrap()
        .cached_info()
        .clone();
    (info.state.messages, info.config.duplicate_window)
}

/// A publish with an `Idempotency-Key` on node A, retried on node B (whose
/// table never saw the key): the stream stores it once, by the message ids
/// the key gives its events on every node, and both answers carry the same
/// ids. The stream recognises the key for the whole idempotency window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_retry_on_another_node_is_stored_once_under_the_same_ids() {
    let nats = NatsServer::start_jetstream();
    let (a, b) = two_nodes(&nats).await;
    let mut on_a = a.subscribe("logs:etl:keyed").await;
    let mut on_b = b.subscribe("logs:etl:keyed").await;
    let (before, window) = stream_state(&nats).await;
    assert_eq!(window, Duration::from_secs(300), "the idempotency window");

    let batch = [ev("keyed", "one"), ev("keyed", "two")];
    let (status, first) = keyed_publish(&a, "k-across", &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, on_other) = keyed_publish(&b, "k-across", &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{on_other}");
    assert_eq!(answered_ids(&on_other), answered_ids(&first));
    let (_, again) = keyed_publish(&a, "k-across", &batch).await;
    assert_eq!(again, first, "A answers from its table");

    for (sub, who) in [(&mut on_a, "A"), (&mut on_b, "B")] {
        let got = logs_without_gaps(sub, 2, who).await;
        let ids: Vec<String> = got.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(ids, answered_ids(&first), "{who}");
        sub.expect_silence(Duration::from_millis(300)).await;
    }
    assert_eq!(stream_state(&nats).await.0, before + 2, "stored once");
}

/// Node A's publish reached the stream but its acks never came back, so A
/// answered `503 nats_unavailable`; the publisher retries with the same
/// key on node B, which is answered the ids of what A stored, and nothing
/// is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_retry_after_a_503_on_another_node_is_stored_once() {
    use std::sync::atomic::Ordering;
    let nats = NatsServer::start_jetstream();
    let proxy = AckEater::start(nats.port).await;
    let a = GatewayProcess::spawn_configured(
        BIN,
        "A",
        &[
            ("NATS_URL", &format!("nats://127.0.0.1:{}", proxy.port)),
            ("NATS_JETSTREAM", "true"),
        ],
        "[nats]\npublish_timeout_secs = 2\n",
    );
    let b = js_node("B", &nats);
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    let mut on_b = b.subscribe("logs:etl:after-503").await;
    let (before, _) = stream_state(&nats).await;

    proxy.mute.store(true, Ordering::SeqCst);
    let batch: Vec<Value> = (0..5).map(|i| ev("after-503", &format!("m{i}"))).collect();
    let (status, err) = keyed_publish(&a, "k-503", &batch).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(err["error"]["code"], "nats_unavailable", "{err}");
    assert_eq!(
        stream_state(&nats).await.0,
        before + 5,
        "A's sending was stored"
    );

    let (status, answer) = keyed_publish(&b, "k-503", &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let got = logs_without_gaps(&mut on_b, 5, "B").await;
    let delivered: Vec<String> = got.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(delivered, answered_ids(&answer), "the ids of what A stored");
    on_b.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(stream_state(&nats).await.0, before + 5, "stored once");
    proxy.mute.store(false, Ordering::SeqCst);
}
