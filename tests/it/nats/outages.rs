//! NATS down or refusing: `/ready` degrades, local traffic keeps working,
//! and the gateway reconnects by itself.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_leave_ready_503_and_local_traffic_working() {
    let nats = NatsServer::start_with_auth("myorg", "secret-token");
    let mut gw = fly_gateway(&nats, "wrong-token");

    // Three consecutive 503s ~0.5 s apart; never 200, since the gateway
    // cannot have a working connection.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut in_a_row = 0;
    while in_a_row < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/ready never answered 503 three times in a row"
        );
        let got = gw.ready().await;
        assert_ne!(
            got,
            Some(StatusCode::OK),
            "/ready is 200 with a wrong token"
        );
        if got == Some(StatusCode::SERVICE_UNAVAILABLE) {
            in_a_row += 1;
        } else {
            in_a_row = 0;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let health = gw.health().await;
    assert!(health["nats"].is_object(), "{health}");

    // Local traffic is unaffected.
    let mut sub = gw.subscribe("logs:etl:ws1").await;
    let ids = gw.publish(&[etl_event("ws1", "local")]).await;
    let got = sub.next_log().await;
    assert_eq!(got["message"], "local");
    assert_eq!(got["id"], ids[0].as_str());
    sub.expect_silence(QUIET).await;

    assert_eq!(gw.ready().await, Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(gw.is_running(), "the gateway keeps running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_recovers_without_restarting_the_gateway() {
    let mut nats = NatsServer::start();
    let mut a = cluster_node("A", &nats);
    let mut b = cluster_node("B", &nats);
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    let mut sub_a = a.subscribe("logs:etl:ws1").await;
    let mut sub_b = b.subscribe("logs:etl:ws1").await;
    // Both ways, so each node follows the other's sequence from before the
    // outage (a hole before the first message heard from a node cannot be
    // told from what it sent before anyone listened).
    warm_up(&a, &b, "probe").await;
    warm_up(&b, &a, "probe").await;

    a.publish(&[etl_event("ws1", "before")]).await;
    assert_eq!(sub_a.next_log().await["message"], "before");
    assert_eq!(sub_b.next_log().await["message"], "before");

    // Outage.
    nats.stop();
    a.wait_ready(StatusCode::SERVICE_UNAVAILABLE, DEADLINE)
        .await;
    b.wait_ready(StatusCode::SERVICE_UNAVAILABLE, DEADLINE)
        .await;
    for gw in [&a, &b] {
        let health = gw.health().await;
        assert!(health["nats"].is_object(), "{health}");
    }
    // Local publishes and subscribers keep working, old and new ones.
    let mut late_a = a.subscribe("logs:etl:ws1").await;
    a.publish(&[etl_event("ws1", "during-a")]).await;
    assert_eq!(sub_a.next_log().await["message"], "during-a");
    assert_eq!(late_a.next_log().await["message"], "during-a");
    b.publish(&[etl_event("ws1", "during-b")]).await;
    assert_eq!(sub_b.next_log().await["message"], "during-b");

    // NATS comes back on the same port; the nodes reconnect by themselves.
    nats.restart();
    a.wait_ready(StatusCode::OK, RECONNECT).await;
    b.wait_ready(StatusCode::OK, RECONNECT).await;
    warm_up(&a, &b, "probe2").await;
    warm_up(&b, &a, "probe2").await;

    a.publish(&[etl_event("ws1", "after-a")]).await;
    b.publish(&[etl_event("ws1", "after-b")]).await;
    // Whether what was published during the outage is forwarded once NATS
    // is back is not specified; if it is, it arrives once, never as an echo
    // on the node that accepted it.
    let until_both = |sub: &'static str, local: &'static str, remote: &'static str| {
        move |events: &mut Vec<String>, m: String| {
            assert!(
                m == "after-a" || m == "after-b" || m == remote,
                "{sub}: unexpected event {m:?} (events so far {events:?})"
            );
            assert_ne!(m, local, "{sub}: echo of its own event");
            assert!(!events.contains(&m), "{sub}: {m:?} twice");
            events.push(m);
        }
    };
    for (sub, push, remote) in [
        (
            &mut sub_a,
            until_both("A", "during-a", "during-b"),
            "during-b",
        ),
        (
            &mut late_a,
            until_both("A (late)", "during-a", "during-b"),
            "during-b",
        ),
        (
            &mut sub_b,
            until_both("B", "during-b", "during-a"),
            "during-a",
        ),
    ] {
        let mut seen = Vec::new();
        // Events the other node accepted that never arrived are told; the
        // notice may come after later events (at most one goes out per
        // half second), so the reading goes on until it is there.
        let mut told_lost = 0;
        let deadline = tokio::time::Instant::now() + RECONNECT;
        let has = |seen: &Vec<String>, m: &str| seen.iter().any(|s| s == m);
        while !(has(&seen, "after-a")
            && has(&seen, "after-b")
            && (has(&seen, remote) || told_lost > 0))
        {
            let f = match sub.next_frame_until(deadline).await {
                Next::Frame(f) if f.is_hint() => continue,
                Next::Frame(f) => f,
                other => panic!(
                    "{remote} neither arrived nor was told lost within {RECONNECT:?} (seen {seen:?}): {other:?}"
                ),
            };
            if f.event == "gap" {
                assert_eq!(f.json()["reason"], "cluster_loss", "{}", f.data);
                told_lost += f.json()["lost"].as_u64().expect("a count");
                continue;
            }
            push(&mut seen, f.json()["message"].as_str().unwrap().to_owned());
        }
        sub.expect_silence(QUIET).await;
    }

    assert!(a.is_running() && b.is_running(), "no gateway restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_ready_is_200() {
    let gw = GatewayProcess::spawn(BIN, "solo", &[]);
    gw.wait_ready(StatusCode::OK, DEADLINE).await;
    let health = gw.health().await;
    assert!(health["nats"].is_object(), "{health}");
}
