//! JetStream mode end to end (`NATS_JETSTREAM=true`): real `nats-server`
//! processes started with `-js` and a temporary store, and the real
//! `loggate` binary. The stream puts the cluster's events in order: every
//! node delivers the same events under the same ids, nothing is lost
//! across a NATS restart or a node restart, a retried publish is stored
//! once, a `Last-Event-ID` from one node resumes on another, and what the
//! stream let go before a node read it is told, not lost silently.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use testkit::nats::NatsServer;
use testkit::node::{Gateway, Reading, resuming_reader, warm_up};
use testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_loggate");

/// Reconnecting after an outage may take a few backoff rounds.
const RECONNECT: Duration = Duration::from_secs(30);

fn js_node(name: &str, nats: &NatsServer) -> Gateway {
    Gateway::spawn(
        BIN,
        name,
        &[("NATS_URL", &nats.url()), ("NATS_JETSTREAM", "true")],
    )
}

/// A JetStream node with `toml` as its configuration file.
fn js_node_configured(name: &str, nats: &NatsServer, toml: &str) -> Gateway {
    Gateway::spawn_configured(
        BIN,
        name,
        &[("NATS_URL", &nats.url()), ("NATS_JETSTREAM", "true")],
        toml,
    )
}

/// Nodes A and B on `nats`, both ready.
async fn two_nodes(nats: &NatsServer) -> (Gateway, Gateway) {
    let (a, b) = (js_node("A", nats), js_node("B", nats));
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    (a, b)
}

fn ev(ws: &str, message: &str) -> Value {
    event("etl", Some(ws), Some("r1"), message)
}

/// Publishes and answers the status and body, whatever they are.
async fn try_publish(node: &Gateway, events: &[Value]) -> (StatusCode, Value) {
    testkit::http::publish(
        &node.client,
        &node.url(""),
        ETL_TOKEN,
        "application/json",
        Value::Array(events.to_vec()).to_string(),
        Duration::from_secs(30),
    )
    .await
}

/// Reads `n` log events, failing on any gap or lag notice.
async fn logs_without_gaps(sub: &mut SseClient, n: usize, who: &str) -> Vec<(String, String)> {
    let mut seen = Reading::default();
    let deadline = tokio::time::Instant::now() + RECONNECT;
    let done = |r: &Reading| r.logs.len() >= n || !r.notices.is_empty();
    let within = seen.read(sub, deadline, done).await;
    assert!(seen.notices.is_empty(), "{who}: {:?}", seen.notices);
    assert!(
        within,
        "{who}: {} of {n} events within {RECONNECT:?}",
        seen.logs.len()
    );
    seen.logs
}

/// Every node delivers what any node accepted, in one order, under the
/// same ids; and the ids a publish answers are the ones delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_stream_deliver_the_same_events_under_the_same_ids() {
    let nats = NatsServer::start_jetstream();
    let nodes = [
        js_node("A", &nats),
        js_node("B", &nats),
        js_node("C", &nats),
    ];
    for n in &nodes {
        n.wait_ready(StatusCode::OK, DEADLINE).await;
    }
    let mut subs = Vec::new();
    for n in &nodes {
        subs.push(n.subscribe("logs:etl:three").await);
    }
    let mut answered = Vec::new();
    for round in 0..20 {
        for n in &nodes {
            let batch: Vec<Value> = (0..5)
                .map(|k| ev("three", &format!("{}{round}-{k}", n.name)))
                .collect();
            let ids = n.publish(&batch).await;
            answered.extend(
                ids.into_iter().zip(
                    batch
                        .iter()
                        .map(|e| e["logData"]["message"].as_str().unwrap().to_owned()),
                ),
            );
        }
    }
    let mut seen = Vec::new();
    for (sub, n) in subs.iter_mut().zip(&nodes) {
        seen.push(logs_without_gaps(sub, 300, &n.name).await);
    }
    assert_eq!(seen[0], seen[1], "A and B differ");
    assert_eq!(seen[0], seen[2], "A and C differ");
    let mut sorted = answered.clone();
    sorted.sort();
    let mut got = seen[0].clone();
    got.sort();
    assert_eq!(
        got, sorted,
        "the ids publishes answered are the ones delivered"
    );
    for sub in &mut subs {
        sub.expect_silence(Duration::from_millis(300)).await;
    }
}

/// A `Last-Event-ID` from one node resumes on another: exactly what came
/// after it, once each, with no gap notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_event_id_from_one_node_resumes_on_another() {
    let nats = NatsServer::start_jetstream();
    let (a, b) = two_nodes(&nats).await;
    let mut on_a = a.subscribe("logs:etl:hop").await;
    let first: Vec<Value> = (0..50).map(|i| ev("hop", &format!("m{i}"))).collect();
    a.publish(&first).await;
    let got = logs_without_gaps(&mut on_a, 50, "A").await;
    drop(on_a);
    // While the client is away, both nodes take more.
    let later: Vec<Value> = (0..30).map(|i| ev("hop", &format!("n{i}"))).collect();
    a.publish(&later[..15]).await;
    b.publish(&later[15..]).await;
    let last = &got[24].0; // as if it had read only half before it left
    let mut on_b = b.resume("logs:etl:hop", last).await;
    let resumed = logs_without_gaps(&mut on_b, 25 + 30, "B").await;
    let messages: Vec<&str> = resumed.iter().map(|(_, m)| m.as_str()).collect();
    let want: Vec<String> = (25..50)
        .map(|i| format!("m{i}"))
        .chain((0..30).map(|i| format!("n{i}")))
        .collect();
    assert_eq!(messages, want, "B's replay from A's id");
    assert!(resumed[0].0 > *last);
    assert_eq!(&resumed[..25], &got[25..], "the same ids on both nodes");
    on_b.expect_silence(Duration::from_millis(300)).await;
}

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

/// A node restarted (killed and started again) catches up from the
/// stream: a subscriber that resumes on it with the id it last had gets
/// everything after, including what came while the node was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_catches_up_and_its_subscribers_miss_nothing() {
    let nats = NatsServer::start_jetstream();
    let (a, b) = two_nodes(&nats).await;
    let mut on_b = b.subscribe("logs:etl:restart").await;
    let before: Vec<Value> = (0..100).map(|i| ev("restart", &format!("m{i}"))).collect();
    a.publish(&before).await;
    let got = logs_without_gaps(&mut on_b, 100, "B").await;
    let last = got.last().unwrap().0.clone();
    drop(on_b);
    drop(b); // killed by pid
    let during: Vec<Value> = (0..200).map(|i| ev("restart", &format!("n{i}"))).collect();
    for chunk in during.chunks(50) {
        a.publish(chunk).await;
    }
    let b = js_node("B", &nats);
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    let mut again = b.resume("logs:etl:restart", &last).await;
    let after: Vec<Value> = (0..50).map(|i| ev("restart", &format!("o{i}"))).collect();
    a.publish(&after).await;
    let resumed = logs_without_gaps(&mut again, 250, "B after its restart").await;
    let messages: Vec<&str> = resumed.iter().map(|(_, m)| m.as_str()).collect();
    let want: Vec<String> = (0..200)
        .map(|i| format!("n{i}"))
        .chain((0..50).map(|i| format!("o{i}")))
        .collect();
    assert_eq!(messages, want);
    again.expect_silence(Duration::from_millis(300)).await;
    // And its history holds the whole run, under A's ids.
    let (status, body) = b
        .get("/api/logs/history?channels=logs:etl:restart&limit=1000")
        .await
        .expect("history");
    assert_eq!(status, StatusCode::OK, "{body}");
    let history: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        history["logs"].as_array().map(Vec::len),
        Some(350),
        "{body:.300}"
    );
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

/// The issue's canary in JetStream mode: A publishes about 2,000 events/s
/// for 12 s while nats-server is killed at 4 s and restarted at 6 s; eight
/// subscribers on B drop and resume with `Last-Event-ID` every 1-2 s. Every event A accepted reaches every
/// one of them exactly once, in order, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_a_nats_restart_jetstream_loses_nothing() {
    let mut nats = NatsServer::start_jetstream();
    let (a, b) = two_nodes(&nats).await;
    warm_up(&a, &b, "probe").await;
    // The readers start from this id, so none can miss the first events
    // by subscribing late.
    let start = a.publish(&[ev("canary", "start")]).await.remove(0);
    let mut readers = Vec::new();
    for i in 0..8u64 {
        let every = Duration::from_millis(1000 + 125 * i);
        let reader = resuming_reader(b.url(""), "logs:etl:canary", every, start.clone());
        readers.push(tokio::spawn(reader));
    }
    // The outage runs on its own clock: publishes wait for the stream, so
    // the publishing loop must not be what ends it.
    let outage = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_secs(4));
        nats.stop();
        std::thread::sleep(Duration::from_secs(2));
        nats.restart();
        nats
    });
    let canary = |m: String| ev("canary", &m);
    let started = tokio::time::Instant::now();
    let mut slowest = Duration::ZERO;
    // A refused (503) publish may still have been stored in part: its
    // events may arrive, once; the accepted ones must.
    let (mut accepted, mut refused) = (Vec::new(), HashSet::new());
    // About 2,000 events/s for 12 s.
    for round in 0..1200u64 {
        let batch: Vec<Value> = (0..20).map(|i| canary(format!("e{round}-{i}"))).collect();
        let sent = tokio::time::Instant::now();
        let (status, answer) = try_publish(&a, &batch).await;
        slowest = slowest.max(sent.elapsed());
        match status {
            StatusCode::ACCEPTED => accepted.extend(
                batch
                    .iter()
                    .map(|e| e["logData"]["message"].as_str().unwrap().to_owned()),
            ),
            StatusCode::SERVICE_UNAVAILABLE => refused.extend(
                batch
                    .iter()
                    .map(|e| e["logData"]["message"].as_str().unwrap().to_owned()),
            ),
            other => panic!("publish: {other} {answer}"),
        }
        tokio::time::sleep_until(started + Duration::from_millis(10 * (round + 1))).await;
    }
    let _nats = tokio::time::timeout(RECONNECT, outage)
        .await
        .expect("the outage ended")
        .unwrap();
    a.wait_ready(StatusCode::OK, RECONNECT).await;
    let ids = a.publish(&[canary("end".into())]).await;
    accepted.push("end".into());
    let mut first_order: Option<Vec<(String, String)>> = None;
    for (i, r) in readers.into_iter().enumerate() {
        let reading = tokio::time::timeout(RECONNECT, r)
            .await
            .unwrap_or_else(|_| panic!("reader {i} did not see the end marker"))
            .unwrap();
        assert!(
            reading.notices.is_empty(),
            "reader {i}: {:?}",
            reading.notices
        );
        let got = reading.logs;
        assert_eq!(got.last().map(|(id, _)| id), ids.first(), "reader {i}");
        let unique: HashSet<&String> = got.iter().map(|(id, _)| id).collect();
        assert_eq!(
            unique.len(),
            got.len(),
            "reader {i}: an event arrived twice"
        );
        let messages: Vec<&String> = got
            .iter()
            .map(|(_, m)| m)
            .filter(|m| !refused.contains(*m))
            .collect();
        let want: Vec<&String> = accepted.iter().collect();
        let have: HashSet<&String> = messages.iter().copied().collect();
        let missing: Vec<&&String> = want.iter().filter(|m| !have.contains(**m)).collect();
        assert!(missing.is_empty(), "reader {i}: missing {missing:?}");
        assert_eq!(
            messages.len(),
            want.len(),
            "reader {i}: {} of {} events",
            messages.len(),
            want.len()
        );
        // Batches stay in order; within one, an event whose first sending
        // died with the connection lands after the rest of its batch.
        let round = |m: &str| -> u64 {
            m.trim_start_matches('e')
                .split('-')
                .next()
                .and_then(|r| r.parse().ok())
                .unwrap_or(u64::MAX)
        };
        let rounds: Vec<u64> = messages.iter().map(|m| round(m)).collect();
        assert!(
            rounds.windows(2).all(|w| w[0] <= w[1]),
            "reader {i}: batches out of order"
        );
        let mut sorted = messages.clone();
        sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(sorted, want_sorted, "reader {i}: not every accepted event");
        // Every reader sees the stream's one order, whatever it is.
        match &first_order {
            None => first_order = Some(got.clone()),
            Some(first) => assert_eq!(&got, first, "reader {i} and reader 0 differ"),
        }
    }
    let (_, metrics) = a.get("/metrics").await.expect("A's metrics");
    let resent = metric_value(&metrics, "loggate_stream_publishes_resent_total");
    eprintln!(
        "canary: {} events accepted, {} refused (503), slowest publish {slowest:?}, {resent:?} resent",
        accepted.len(),
        refused.len()
    );
    assert!(
        slowest > Duration::from_millis(200),
        "no publish waited for NATS: the outage missed the test"
    );
}

/// The stream is made with the configured limits; one already there is
/// given them; one that does not capture the cluster subjects is refused,
/// and the node says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_gets_the_configured_limits_and_a_wrong_one_is_refused() {
    let nats = NatsServer::start_jetstream();
    let node = |name: &str, age: u64, stream: &str| {
        js_node_configured(
            name,
            &nats,
            &format!(
                "[nats]\nstream = \"{stream}\"\nstream_max_age_minutes = {age}\nstream_max_bytes = 2097152\n"
            ),
        )
    };
    let client = async_nats::connect(nats.url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let limits = |info: &async_nats::jetstream::stream::Info| {
        (
            info.config.max_age,
            info.config.max_bytes,
            info.config.subjects.clone(),
        )
    };

    let a = node("A", 5, "LOGS");
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    let info = js
        .get_stream("LOGS")
        .await
        .expect("made")
        .cached_info()
        .clone();
    assert_eq!(
        limits(&info),
        (
            Duration::from_secs(300),
            2_097_152,
            vec!["loggate.>".to_owned()]
        )
    );
    drop(a);
    // Started again with another age: the stream there is given it.
    let b = node("B", 7, "LOGS");
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    let info = js.get_stream("LOGS").await.unwrap().cached_info().clone();
    assert_eq!(info.config.max_age, Duration::from_secs(420));
    drop(b);

    // A stream of that name for other subjects is not taken over.
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "OTHER".into(),
        subjects: vec!["elsewhere.>".into()],
        ..Default::default()
    })
    .await
    .expect("made");
    let c = node("C", 5, "OTHER");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let health = c.health().await;
        let link = &health["nats"]["links"]["jetstream"];
        if let Some(e) = link["last_error"].as_str() {
            assert!(e.contains("loggate.>"), "{e}");
            assert_eq!(link["state"], "waiting", "{health}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error shown: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.ready().await, Some(StatusCode::SERVICE_UNAVAILABLE));
    let (status, err) = try_publish(&c, &[ev("x", "y")]).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("nats_unavailable"))
    );
    let info = js.get_stream("OTHER").await.unwrap().cached_info().clone();
    assert_eq!(
        info.config.subjects,
        vec!["elsewhere.>".to_owned()],
        "left as it was"
    );
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
    let a = Gateway::spawn(
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

/// A stream deleted under running nodes is made again: publishes work
/// again, under ids of a new epoch, and subscribers keep receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_is_made_again() {
    let nats = NatsServer::start_jetstream();
    let (a, b) = two_nodes(&nats).await;
    let mut on_b = b.subscribe("logs:etl:again").await;
    let old = a.publish(&[ev("again", "before")]).await.remove(0);
    assert_eq!(logs_without_gaps(&mut on_b, 1, "B").await[0].0, old);

    let client = async_nats::connect(nats.url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    js.delete_stream("LOGGATE").await.expect("deleted");
    let deadline = tokio::time::Instant::now() + RECONNECT;
    let new = loop {
        let (status, answer) = try_publish(&a, &[ev("again", "after")]).await;
        if status == StatusCode::ACCEPTED {
            break answer["ids"][0].as_str().unwrap().to_owned();
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "never published again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let epoch = |id: &str| id.split('-').next().unwrap().to_owned();
    assert_ne!(epoch(&new), epoch(&old), "a new stream, a new epoch");
    let got = logs_without_gaps(&mut on_b, 1, "B").await;
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        (new.as_str(), "after")
    );
}

/// Whoever may publish on the cluster subjects writes into the stream:
/// every such message gets the checks of an HTTP publish, and what fails
/// them reaches no subscriber, is counted, and does not stop the node's
/// reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_stream_messages_reach_no_subscriber() {
    let nats = NatsServer::start_jetstream();
    let (a, b) = two_nodes(&nats).await;
    let mut on_b = b.subscribe("logs:etl").await;
    let client = async_nats::connect(nats.url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let time = "2025-09-25T10:30:00.123Z";
    let ms = "1758796200123";
    let body = |channel: &str, message: &str| {
        format!(
            r#"{{"channel":"{channel}","service":"etl","workspace_id":"ws1","level":"info","message":"{message}","timestamp":"{time}","received_at":"{time}"}}"#
        )
    };
    let headers = |level: Option<&str>| {
        let mut h = async_nats::HeaderMap::new();
        if let Some(l) = level {
            h.insert("Loggate-Level", l);
        }
        h.insert("Loggate-Timestamp-Ms", ms);
        h.insert("Loggate-Received-Ms", ms);
        h
    };
    let hostile: Vec<(&str, async_nats::HeaderMap, String)> = vec![
        // Over publish.max_event_bytes.
        (
            "loggate.etl.ws1",
            headers(Some("info")),
            body("logs:etl:ws1", &"x".repeat(100_000)),
        ),
        // The body names another channel than the subject.
        (
            "loggate.etl.ws1",
            headers(Some("info")),
            body("logs:etl:other", "elsewhere"),
        ),
        // An id of its own.
        (
            "loggate.etl.ws1",
            headers(Some("info")),
            format!(
                r#"{{"id":"1-1",{}"#,
                &body("logs:etl:ws1", "forged id")[1..]
            ),
        ),
        // No level header.
        (
            "loggate.etl.ws1",
            headers(None),
            body("logs:etl:ws1", "no level"),
        ),
        // Not JSON.
        (
            "loggate.etl.ws1",
            headers(Some("info")),
            "\u{0}\u{1}garbage".into(),
        ),
        // Not a channel.
        (
            "loggate.e$tl",
            headers(Some("info")),
            body("logs:e$tl", "bad"),
        ),
    ];
    let n = hostile.len();
    for (subject, h, payload) in hostile {
        js.publish_with_headers(subject, h, payload.into())
            .await
            .expect("sent")
            .await
            .expect("stored");
    }
    let ids = a.publish(&[ev("ws1", "good")]).await;
    let got = logs_without_gaps(&mut on_b, 1, "B").await;
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        (ids[0].as_str(), "good")
    );
    on_b.expect_silence(Duration::from_millis(300)).await;
    let (_, metrics) = b.get("/metrics").await.unwrap();
    let invalid = r#"loggate_nats_messages_total{direction="invalid",link="cluster"}"#;
    assert_eq!(metric_value(&metrics, invalid), Some(n as f64), "{invalid}");
    let too_large = r#"loggate_nats_refused_total{link="cluster",reason="event_too_large"}"#;
    assert_eq!(metric_value(&metrics, too_large), Some(1.0), "{too_large}");
}

/// A node reads each message's stream sequence from its reply subject
/// (`$JS.ACK.<stream>.<consumer>.…`), which the server writes. Whoever may
/// publish on a node's inbox (anyone, on a NATS without permissions: its
/// pull requests show it) could try to send it a message with a reply
/// subject of its own and a sequence the stream never reached (2^63,
/// u64::MAX, 10^9 past its last), to have a huge loss told and the node's
/// next consumer start past every real event. nats-server (since
/// nats-io/nats-server#3026, 2022) refuses a client's publish with a reply
/// subject under `$JS.ACK.`: the
/// forger is told so, nothing reaches the nodes, no loss is told or
/// counted, and the stream's next event arrives under the next id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_can_hand_a_node_a_stream_sequence() {
    let nats = NatsServer::start_jetstream();
    let (a, b) = two_nodes(&nats).await;
    let mut on_a = a.subscribe("logs:etl").await;
    let mut on_b = b.subscribe("logs:etl").await;
    let (errors_tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .event_callback(move |event| {
            let errors = errors_tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = errors.send(e.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .expect("NATS");
    let mut pulls = client
        .subscribe("$JS.API.CONSUMER.MSG.NEXT.LOGGATE.>")
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    // Each node asks for more once it has read half a batch: A publishes
    // until both nodes' consumers were seen asking, with their inboxes.
    let mut inboxes = std::collections::HashMap::new();
    let mut sent = 0;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while inboxes.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pull requests of two consumers within {DEADLINE:?}: {inboxes:?}"
        );
        let batch: Vec<Value> = (0..300).map(|i| ev("warm", &format!("w{i}"))).collect();
        a.publish(&batch).await;
        sent += batch.len();
        let wait = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(m)) =
            tokio::time::timeout_at(wait, futures_util::StreamExt::next(&mut pulls)).await
        {
            let consumer = m.subject.rsplit('.').next().unwrap_or_default().to_owned();
            if let Some(reply) = m.reply {
                inboxes.insert(consumer, reply.to_string());
            }
        }
    }
    for sub in [&mut on_a, &mut on_b] {
        let got = logs_without_gaps(sub, sent, "warm-up").await;
        assert_eq!(got.len(), sent);
    }
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("LOGGATE").await.expect("the stream");
    let last = stream
        .get_info()
        .await
        .expect("its info")
        .state
        .last_sequence;

    let time = "2025-09-25T10:30:00.123Z";
    let body = format!(
        r#"{{"channel":"logs:etl:ws1","service":"etl","workspace_id":"ws1","level":"info","message":"forged","timestamp":"{time}","received_at":"{time}"}}"#
    );
    let mut forged = 0;
    for (consumer, inbox) in &inboxes {
        for seq in [1u64 << 63, u64::MAX, last + 1_000_000_000] {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Loggate-Level", "info");
            h.insert("Loggate-Timestamp-Ms", "1758796200123");
            h.insert("Loggate-Received-Ms", "1758796200123");
            let reply = format!("$JS.ACK.LOGGATE.{consumer}.1.{seq}.{seq}.1758796200123000000.0");
            client
                .publish_with_reply_and_headers(inbox.clone(), reply, h, body.clone().into())
                .await
                .expect("publish");
            forged += 1;
        }
    }
    client.flush().await.expect("flush");
    for _ in 0..forged {
        let e = tokio::time::timeout(DEADLINE, errors.recv())
            .await
            .expect("nats-server refuses the reply subject")
            .expect("the client is there");
        assert!(e.to_lowercase().contains("reply"), "{e}");
    }
    // The stream's events go on, under the stream's next sequence, with
    // no gap before them, and no loss was counted.
    let ids = a.publish(&[ev("ws1", "after")]).await;
    assert_eq!(
        ids[0].split_once('-').map(|(_, s)| s.parse::<u64>()),
        Some(Ok(last + 1))
    );
    for (node, who, sub) in [(&a, "A", &mut on_a), (&b, "B", &mut on_b)] {
        let got = logs_without_gaps(sub, 1, who).await;
        assert_eq!(
            (got[0].0.as_str(), got[0].1.as_str()),
            (ids[0].as_str(), "after")
        );
        sub.expect_silence(Duration::from_millis(300)).await;
        let (_, metrics) = node.get("/metrics").await.expect("metrics");
        let loss = r#"loggate_events_dropped_total{reason="cluster_loss",service="other"}"#;
        assert_eq!(metric_value(&metrics, loss), Some(0.0), "{who}");
    }
}

/// A node that could not read for a while (stopped here with SIGSTOP)
/// while the stream's byte limit let old events go finds the hole when it
/// reads again: its subscriber is told (`gap` `cluster_loss` from
/// `stream:LOGGATE`), in place, and the loss is counted. Loss past the
/// stream's limits is never silent either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_stream_let_go_before_a_node_read_them_are_reported() {
    let nats = NatsServer::start_jetstream();
    // The smallest stream the configuration allows: 1 MiB.
    let small = "[nats]\nstream_max_bytes = 1048576\n";
    let node = |name: &str| js_node_configured(name, &nats, small);
    let (a, b) = (node("A"), node("B"));
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    let mut on_b = b.subscribe("logs:etl:trim").await;
    a.publish(&[ev("trim", "first")]).await;
    logs_without_gaps(&mut on_b, 1, "B").await;

    // B stops reading; A publishes about 12 MiB, which the 1 MiB stream
    // cannot keep until B reads again.
    let stopped = b.pause();
    let text = "x".repeat(1200);
    let total = 10_000;
    for chunk in 0..total / 100 {
        let batch: Vec<Value> = (0..100)
            .map(|i| ev("trim", &format!("m{} {text}", chunk * 100 + i)))
            .collect();
        a.publish(&batch).await;
    }
    a.publish(&[ev("trim", "end")]).await;
    drop(stopped);

    let mut seen = Reading::default();
    let deadline = tokio::time::Instant::now() + RECONNECT;
    let ended = seen.read(&mut on_b, deadline, Reading::ended).await;
    let (received, lost) = (seen.logs.len() as u64, seen.reported_lost("B"));
    assert!(
        ended,
        "B: {received} events and {lost} lost within {RECONNECT:?}"
    );
    for n in &seen.notices {
        assert_eq!(
            (n.event.as_str(), &n.data["origin"]),
            ("gap", &Value::from("stream:LOGGATE")),
            "{:?}",
            n
        );
    }
    eprintln!("stream limit: {received} received, {lost} reported lost");
    assert!(
        lost > 0,
        "the stream kept everything: the test did not test"
    );
    assert_eq!(
        received + lost,
        total + 1,
        "{received} received + {lost} reported lost"
    );
    // In place: what came before the hole, the notice, what came after.
    let last_notice = seen.notices.last().map_or(0, |n| n.after_logs);
    assert!(last_notice < seen.logs.len(), "no event after the notices");
    let (_, metrics) = b.get("/metrics").await.expect("B's metrics");
    let series = r#"loggate_events_dropped_total{reason="cluster_loss",service="other"}"#;
    assert_eq!(metric_value(&metrics, series), Some(lost as f64));
}
