//! Cluster messages nobody should trust: malformed or forged ones reach no
//! subscriber and hide no real loss.

use super::*;

/// A cluster message as a node publishes it: `body` on `subject`, with
/// the origin, level and time headers of a node called `intruder`.
async fn publish_cluster(client: &async_nats::Client, subject: &str, body: String, ms: i64) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Loggate-Origin", "intruder");
    headers.insert("Loggate-Level", "info");
    headers.insert("Loggate-Timestamp-Ms", ms.to_string().as_str());
    headers.insert("Loggate-Received-Ms", ms.to_string().as_str());
    client
        .publish_with_headers(subject.to_owned(), headers, body.into())
        .await
        .expect("publish to NATS");
}

/// Anyone who can publish on the cluster subjects can hand a node events;
/// the node checks each like an HTTP publish and takes its channel from
/// the subject. Hostile messages reach no subscriber, are counted by
/// reason, and a good message after them still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_cluster_messages_reach_no_subscriber() {
    let nats = NatsServer::start();
    let node = cluster_node("A", &nats);
    node.wait_ready(StatusCode::OK, DEADLINE).await;
    nats.wait_for_subscription("loggate.>").await;
    let mut sub = node.subscribe("logs:*").await;
    let client = async_nats::connect(nats.url())
        .await
        .expect("test client connects to nats-server");

    let now = chrono::Utc::now();
    let ms = now.timestamp_millis();
    let time = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // The delivered event without its id, as a node writes it.
    let body = |channel: &str, message: &str, meta: Option<&str>| {
        let parts: Vec<&str> = channel.split(':').collect();
        let mut b = format!(
            r#""channel":"{channel}","service":"{}","workspace_id":"{}","resource_id":"{}","level":"info","message":"{message}","timestamp":"{time}","received_at":"{time}""#,
            parts[1], parts[2], parts[3]
        );
        if let Some(m) = meta {
            b.push_str(&format!(r#","meta":{m}"#));
        }
        b
    };
    let subject = "loggate.etl.ws1.r1";
    let deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
    let hostile = [
        (
            "900 KB",
            format!(
                "{{{}}}",
                body("logs:etl:ws1:r1", &"x".repeat(900_000), None)
            ),
        ),
        (
            "120-deep meta",
            format!("{{{}}}", body("logs:etl:ws1:r1", "deep", Some(&deep))),
        ),
        (
            "service not the subject's",
            format!("{{{}}}", body("logs:faas:ws1:r1", "elsewhere", None)),
        ),
        (
            "an id key",
            format!(
                r#"{{"id":"000000000001-000000000001",{}}}"#,
                body("logs:etl:ws1:r1", "forged id", None)
            ),
        ),
    ];
    for (_, payload) in &hostile {
        publish_cluster(&client, subject, payload.clone(), ms).await;
    }
    // Forged sequence marks: no number, a number that is not one, a
    // 900 KB payload, an extreme number from an origin never heard of.
    // None is an event, none is counted as one, and a first mark of an
    // origin is where it is followed from, not a loss.
    let marks: [(Option<&str>, &str, usize); 4] = [
        (None, "intruder", 0),
        (Some("-1"), "intruder", 0),
        (Some("12"), "intruder", 900_000),
        (Some("18446744073709551615"), "stranger", 0),
    ];
    for (seq, origin, payload) in marks {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Loggate-Origin", origin);
        if let Some(seq) = seq {
            headers.insert("Loggate-Seq", seq);
        }
        client
            .publish_with_headers("loggate.$seq", headers, "x".repeat(payload).into())
            .await
            .expect("publish a mark");
    }
    publish_cluster(
        &client,
        subject,
        format!(
            "{{{}}}",
            body("logs:etl:ws1:r1", "good", Some(r#"{"rows":12}"#))
        ),
        ms,
    )
    .await;
    client.flush().await.expect("flush");

    // NATS keeps one publisher's order: whatever got through arrives
    // before the good message.
    let mut leaked = Vec::new();
    let good = loop {
        let f = sub.next_event().await.expect("stream open");
        let json: Value = serde_json::from_str(&f.data).unwrap_or(Value::Null);
        if f.event == "log" && json["message"] == "good" {
            break json;
        }
        leaked.push(format!(
            "{} ({} bytes): {:.160}",
            f.event,
            f.data.len(),
            f.data
        ));
    };
    assert!(
        leaked.is_empty(),
        "hostile messages reached a subscriber ({} of {}):\n{}",
        leaked.len(),
        hostile.len(),
        leaked.join("\n")
    );
    assert_eq!(good["channel"], "logs:etl:ws1:r1", "{good}");
    assert_eq!(good["timestamp"], time.as_str(), "origin's time kept");
    assert_eq!(good["received_at"], time.as_str(), "origin's time kept");
    assert_eq!(good["meta"]["rows"], 12, "{good}");
    sub.expect_silence(QUIET).await;

    let (_, metrics) = node.get("/metrics").await.expect("metrics");
    for line in [
        r#"loggate_nats_refused_total{link="cluster",reason="event_too_large"} 1"#,
        r#"loggate_nats_refused_total{link="cluster",reason="invalid_event"} 3"#,
        r#"loggate_nats_messages_total{direction="invalid",link="cluster"} 4"#,
        r#"loggate_nats_messages_total{direction="in",link="cluster"} 5"#,
        r#"loggate_events_dropped_total{reason="cluster_loss",service="other"} 0"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

/// Polls `node`'s `/metrics` until every series has its value, within
/// [`DEADLINE`]; fails naming what it last saw.
async fn wait_for_metrics(node: &GatewayProcess, want: &[(&str, f64)]) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let text = node
            .get("/metrics")
            .await
            .map(|(_, m)| m)
            .unwrap_or_default();
        let got: Vec<Option<f64>> = want.iter().map(|(s, _)| metric_value(&text, s)).collect();
        if want.iter().zip(&got).all(|((_, w), g)| *g == Some(*w)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: wanted {want:?} within {DEADLINE:?}, last saw {got:?}; cluster_loss: {:?}",
            node.name,
            metric_value(
                &text,
                r#"loggate_events_dropped_total{reason="cluster_loss",service="other"}"#
            )
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Someone who may publish on the cluster subjects sends marks and events
/// under a real node's id with numbers no node could have reached since
/// its last message (2^63, u64::MAX, 10^9 past it) and a mark below what
/// the node was heard at. Each is refused and counted by reason; the loss
/// count stays at 0, subscribers are told of no gap and get none of the
/// forged events, and the node's real events go on arriving. A real loss
/// after them (NATS down while the node publishes more than it can hold)
/// is still told exactly: what was received and what was told lost add up
/// to what the node accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_numbers_under_a_real_nodes_id_are_refused_and_hide_no_real_loss() {
    let mut nats = NatsServer::start();
    let (a, b) = nodes_with_a_small_backlog(&nats).await;
    let ev = |m: &str| event("etl", Some("forge"), Some("r1"), m);
    let client = async_nats::connect(nats.url()).await.expect("NATS client");
    let mut wire = client
        .subscribe("loggate.etl.forge.>")
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let mut sub = b.subscribe("logs:etl:forge").await;

    // A real event of A's: its id and number, as every node sees them.
    a.publish(&[ev("real1")]).await;
    let m = tokio::time::timeout(DEADLINE, futures_util::StreamExt::next(&mut wire))
        .await
        .expect("A's event on NATS in time")
        .expect("subscription open");
    let header = |name: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| panic!("{name} on A's message"))
    };
    let origin = header("Loggate-Origin");
    let seq: u64 = header("Loggate-Seq").parse().expect("a number");
    assert!(seq >= 2, "A sent warm-up probes before: {seq}");
    assert_eq!(sub.next_log().await["message"], "real1");

    // Under A's id: three marks and three events no node could have sent
    // yet, and a mark below what A was heard at.
    let far = [1u64 << 63, u64::MAX, seq + 1_000_000_000];
    for n in far {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Loggate-Origin", origin.as_str());
        headers.insert("Loggate-Seq", n.to_string().as_str());
        client
            .publish_with_headers("loggate.$seq", headers, Default::default())
            .await
            .expect("publish a mark");
        let forged = cluster_message(&origin, n, "forge", &format!("forged {n}"));
        client
            .publish_with_headers(forged.subject, forged.headers, forged.payload)
            .await
            .expect("publish an event");
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Loggate-Origin", origin.as_str());
    headers.insert("Loggate-Seq", (seq - 1).to_string().as_str());
    client
        .publish_with_headers("loggate.$seq", headers, Default::default())
        .await
        .expect("publish a mark");
    client.flush().await.expect("flush");
    a.publish(&[ev("real2")]).await;

    let refused =
        |reason: &str| format!(r#"loggate_nats_refused_total{{link="cluster",reason="{reason}"}}"#);
    let loss = r#"loggate_events_dropped_total{reason="cluster_loss",service="other"}"#;
    wait_for_metrics(
        &b,
        &[
            (refused("implausible_sequence").as_str(), 6.0),
            (refused("sequence_rewound").as_str(), 1.0),
            (
                r#"loggate_nats_messages_total{direction="invalid",link="cluster"}"#,
                3.0,
            ),
            (loss, 0.0),
        ],
    )
    .await;
    let f = sub.next_event().await.expect("a frame");
    assert_eq!(
        (f.event.as_str(), f.json()["message"].as_str()),
        ("log", Some("real2")),
        "{}",
        f.data
    );
    sub.expect_silence(QUIET).await;

    // A real loss after the forgeries is told in full.
    nats.stop();
    let total = 5_000u64;
    for chunk in 0..total / 100 {
        let batch: Vec<Value> = (0..100)
            .map(|i| ev(&format!("t{}", chunk * 100 + i)))
            .collect();
        a.publish(&batch).await;
    }
    nats.restart();
    let mut seen = Reading::default();
    let deadline = tokio::time::Instant::now() + RECONNECT;
    let all = |r: &Reading| r.logs.len() as u64 + r.reported_lost("B") >= total;
    let told = seen.read(&mut sub, deadline, all).await;
    let (received, lost) = (seen.logs.len() as u64, seen.reported_lost("B"));
    assert!(
        told,
        "{received} received + {lost} told lost of {total} within {RECONNECT:?}"
    );
    eprintln!("after forgeries: {received} received, {lost} told lost");
    assert_eq!(received + lost, total, "{received} received + {lost} lost");
    assert!(lost > 0, "nothing was lost: the test did not test");
    sub.expect_silence(QUIET).await;
    wait_for_metrics(
        &b,
        &[
            (loss, lost as f64),
            (refused("implausible_sequence").as_str(), 6.0),
        ],
    )
    .await;
}
