//! The stream a node makes: the configured limits (a wrong one refused),
//! and made again when deleted.

use super::*;

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
