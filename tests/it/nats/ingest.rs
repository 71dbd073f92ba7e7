//! NATS as an ingest source: Fly.io's log messages and the generic subject
//! rules become events.

use super::*;

/// A log line as Fly.io's NATS log stream carries it.
fn fly_message(app: &str, region: &str, instance: &str, level: &str, message: &str) -> String {
    serde_json::json!({
        "event": {"provider": "app"},
        "fly": {"app": {"instance": instance, "name": app}, "region": region},
        "host": "h1",
        "log": {"level": level},
        "message": message,
        "timestamp": "2025-09-25T10:30:00Z",
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fly_shaped_messages_become_events() {
    let nats = NatsServer::start_with_auth("myorg", "secret-token");
    let gw = fly_gateway(&nats, "secret-token");
    gw.wait_ready(StatusCode::OK, DEADLINE).await;
    // The gateway subscribes to its app's subject only.
    nats.wait_for_subscription("logs.myapp.>").await;
    let subs = nats.subscriptions().await;
    assert!(!subs.iter().any(|s| s == "logs.>"), "{subs:?}");

    let mut sub = gw.subscribe("logs:myapp").await;
    let mut everything = gw.subscribe("logs:*").await;

    let client =
        async_nats::ConnectOptions::with_user_and_password("myorg".into(), "secret-token".into())
            .connect(nats.url())
            .await
            .expect("test client connects to nats-server");
    let send = |subject: &'static str, payload: String| {
        let client = client.clone();
        async move {
            client
                .publish(subject, payload.into())
                .await
                .expect("publish to NATS");
            client.flush().await.expect("flush");
        }
    };
    send(
        "logs.myapp.iad.inst1",
        fly_message("myapp", "iad", "inst1", "info", "hello"),
    )
    .await;
    send("logs.myapp.iad.inst1", "plain text line".to_owned()).await;
    send(
        "logs.otherapp.iad.x",
        fly_message("otherapp", "iad", "x", "info", "not mine"),
    )
    .await;
    // A last one of myapp's, so the silence below comes after everything
    // sent was handled.
    send(
        "logs.myapp.fra.inst2",
        fly_message("myapp", "fra", "inst2", "warn", "third"),
    )
    .await;

    let got = sub.logs_within(3, DEADLINE).await;
    let first = &got[0];
    assert_eq!(first["channel"], "logs:myapp:myorg:inst1", "{first}");
    assert_eq!(first["service"], "myapp", "{first}");
    assert_eq!(first["workspace_id"], "myorg", "{first}");
    assert_eq!(first["resource_id"], "inst1", "{first}");
    assert_eq!(first["level"], "info", "{first}");
    assert_eq!(first["message"], "hello", "{first}");
    assert_eq!(first["timestamp"], "2025-09-25T10:30:00Z", "{first}");
    assert_eq!(first["source"], "app", "{first}");
    assert_eq!(first["meta"]["region"], "iad", "{first}");
    assert_eq!(first["meta"]["host"], "h1", "{first}");

    let second = &got[1];
    assert_eq!(second["channel"], "logs:myapp:myorg:inst1", "{second}");
    assert_eq!(second["level"], "info", "{second}");
    assert_eq!(second["message"], "plain text line", "{second}");

    let third = &got[2];
    assert_eq!(third["channel"], "logs:myapp:myorg:inst2", "{third}");
    assert_eq!(third["level"], "warn", "{third}");
    assert_eq!(third["message"], "third", "{third}");
    assert_eq!(third["meta"]["region"], "fra", "{third}");

    // Another app's message reached no channel at all.
    let all = everything.logs_within(3, DEADLINE).await;
    assert_eq!(messages(&all), ["hello", "plain text line", "third"]);
    everything.expect_silence(QUIET).await;
    sub.expect_silence(Duration::ZERO).await;
    // The line that was not Fly's JSON is counted as plain.
    let (_, metrics) = gw.get("/metrics").await.expect("metrics");
    assert!(
        metrics.contains(r#"loggate_nats_messages_total{direction="plain",link="fly"} 1"#),
        "{metrics}"
    );
}

/// `[[nats.ingest]]` rules (config file only) feed channels from any NATS
/// subject, JSON or plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_ingest_rules_map_subjects_to_channels() {
    let nats = NatsServer::start();
    let node = GatewayProcess::spawn_configured(
        BIN,
        "rules",
        &[("NATS_URL", &nats.url())],
        "[[nats.ingest]]\nsubject = \"app.*.logs\"\nchannel = \"logs:{2}:rules\"\n",
    );
    node.wait_ready(StatusCode::OK, DEADLINE).await;
    nats.wait_for_subscription("app.*.logs").await;
    let mut sub = node.subscribe("logs:billing").await;

    let client = async_nats::connect(nats.url()).await.unwrap();
    client
        .publish(
            "app.billing.logs",
            r#"{"message":"paid","level":"WARNING","order":7}"#.into(),
        )
        .await
        .unwrap();
    client
        .publish("app.billing.logs", "plain line".into())
        .await
        .unwrap();
    client
        .publish("app.other.logs", "not for this subscriber".into())
        .await
        .unwrap();
    client.flush().await.unwrap();

    let got = sub.logs_within(2, DEADLINE).await;
    assert_eq!(got[0]["channel"], "logs:billing:rules");
    assert_eq!(got[0]["level"], "warn");
    assert_eq!(got[0]["message"], "paid");
    assert_eq!(got[1]["level"], "info");
    assert_eq!(got[1]["message"], "plain line");
    sub.expect_silence(QUIET).await;
}
