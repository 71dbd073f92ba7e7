//! Every node delivers the same events under the same ids, a
//! `Last-Event-ID` resumes on any node, and what the stream let go is told.

use super::*;

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
