//! Stream messages nobody should trust reach no subscriber, and no client
//! can hand a node a stream sequence.

use super::*;

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
