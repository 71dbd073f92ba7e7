//! Nothing is lost across a NATS restart or a node restart.

use super::*;

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

/// The canary in JetStream mode: A publishes about 2,000 events/s
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
