//! The NATS bridge, end to end: real `nats-server` processes and the real
//! `loggate` binary. Nodes of a cluster share what they accept (exactly
//! once, in order, with per-node ids and working resume); Fly.io's log
//! messages become events; NATS outages and wrong credentials degrade
//! `/ready` but never local traffic, and the gateway reconnects by itself.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use testkit::nats::NatsServer;
use testkit::node::{Gateway, Reading, resuming_reader_until, warm_up};
use testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_loggate");

/// Reconnecting after an outage may take a few backoff rounds.
const RECONNECT: Duration = Duration::from_secs(30);
const QUIET: Duration = Duration::from_millis(500);

fn cluster_node(name: &str, nats: &NatsServer) -> Gateway {
    Gateway::spawn(BIN, name, &[("NATS_URL", &nats.url())])
}

/// One etl event for `logs:etl:<ws>:r1`.
fn etl_event(ws: &str, message: &str) -> Value {
    event("etl", Some(ws), Some("r1"), message)
}

/// An event id split into (epoch, seq): `019ab2c3d4e5-000000000042`.
fn parse_id(id: &str) -> (u64, u64) {
    let (epoch, seq) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("event id {id:?}"));
    (
        u64::from_str_radix(epoch, 16).unwrap_or_else(|_| panic!("event id {id:?}")),
        seq.parse().unwrap_or_else(|_| panic!("event id {id:?}")),
    )
}

/// Splits one subscriber's events into those whose message starts with
/// `m` and with `n`, asserting there is nothing else, and checks that the
/// ids the node gave are unique, of one epoch, and increasing in delivery
/// order.
fn check_node_stream(node: &str, events: &[Value]) -> (Vec<String>, Vec<String>) {
    let mut ms = Vec::new();
    let mut ns = Vec::new();
    for m in messages(events) {
        match m.chars().next() {
            Some('m') => ms.push(m),
            Some('n') => ns.push(m),
            _ => panic!("{node}: unexpected event {m:?}"),
        }
    }
    let ids: Vec<(u64, u64)> = events
        .iter()
        .map(|e| parse_id(e["id"].as_str().expect("id")))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{node}: ids are not increasing in delivery order"
    );
    assert!(
        ids.iter().all(|id| id.0 == ids[0].0),
        "{node}: ids of more than one epoch"
    );
    (ms, ns)
}

fn expected(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_1000_events_exactly_once_in_order() {
    let nats = NatsServer::start();
    let a = cluster_node("A", &nats);
    let b = cluster_node("B", &nats);
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;

    let mut sub_a = a.subscribe("logs:etl:ws1").await;
    let mut sub_b = b.subscribe("logs:etl:ws1").await;
    warm_up(&a, &b, "probe").await;
    warm_up(&b, &a, "probe").await;

    // A: m0..m999 in 10 batches of 100; B: n0..n99, 10 after each of A's.
    let mut ids_from_a = Vec::new();
    let mut ids_from_b = Vec::new();
    for batch in 0..10 {
        let events: Vec<Value> = (batch * 100..(batch + 1) * 100)
            .map(|i| etl_event("ws1", &format!("m{i}")))
            .collect();
        ids_from_a.extend(a.publish(&events).await);
        let events: Vec<Value> = (batch * 10..(batch + 1) * 10)
            .map(|i| etl_event("ws1", &format!("n{i}")))
            .collect();
        ids_from_b.extend(b.publish(&events).await);
    }

    let on_a = sub_a.logs_within(1100, DEADLINE).await;
    let on_b = sub_b.logs_within(1100, DEADLINE).await;
    sub_a.expect_silence(QUIET).await;
    sub_b.expect_silence(QUIET).await;

    // Each origin's events arrive exactly once, in publish order, on both
    // nodes (how the two origins interleave is not specified).
    let (ms, ns) = check_node_stream("A", &on_a);
    assert_eq!(ms, expected("m", 1000), "A: its own events");
    assert_eq!(ns, expected("n", 100), "A: B's events");
    let (ms, ns) = check_node_stream("B", &on_b);
    assert_eq!(ms, expected("m", 1000), "B: A's events");
    assert_eq!(ns, expected("n", 100), "B: its own events");

    // Ids are per node: a node delivers its local events under the ids its
    // publish answer gave, and remote ones under ids of its own epoch.
    let local_ids = |events: &[Value], prefix: char| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["message"].as_str().unwrap().starts_with(prefix))
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(local_ids(&on_a, 'm'), ids_from_a);
    assert_eq!(local_ids(&on_b, 'n'), ids_from_b);
    assert_eq!(
        parse_id(on_a[0]["id"].as_str().unwrap()).0,
        parse_id(&ids_from_a[0]).0,
        "A delivers B's events under A's epoch"
    );
    assert_eq!(
        parse_id(on_b[0]["id"].as_str().unwrap()).0,
        parse_id(&ids_from_b[0]).0,
        "B delivers A's events under B's epoch"
    );
    let unique: HashSet<&str> = on_b.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), on_b.len(), "B: ids are unique");

    // Events from A arrived on the channel B expects.
    for e in &on_b {
        assert_eq!(e["channel"], "logs:etl:ws1:r1", "{e}");
        assert_eq!(e["service"], "etl", "{e}");
        assert_eq!(e["level"], "info", "{e}");
    }

    // Resume on B after the id B gave to m499: the rest of B's stream, in
    // B's order, then live.
    let at = on_b
        .iter()
        .position(|e| e["message"] == "m499")
        .expect("m499 on B");
    let last = on_b[at]["id"].as_str().unwrap();
    let mut resumed = b.resume("logs:etl:ws1", last).await;
    let replayed = resumed.logs_within(on_b.len() - at - 1, DEADLINE).await;
    assert_eq!(messages(&replayed), messages(&on_b[at + 1..]));
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&replayed), ids(&on_b[at + 1..]));
    resumed.expect_silence(QUIET).await;

    // Resume on A after the id A gave to B's n49.
    let at = on_a
        .iter()
        .position(|e| e["message"] == "n49")
        .expect("n49 on A");
    let last = on_a[at]["id"].as_str().unwrap();
    let mut resumed = a.resume("logs:etl:ws1", last).await;
    let replayed = resumed.logs_within(on_a.len() - at - 1, DEADLINE).await;
    assert_eq!(ids(&replayed), ids(&on_a[at + 1..]));

    // Both resumed streams are live: a new event from B reaches both once.
    b.publish(&[etl_event("ws1", "n100")]).await;
    assert_eq!(resumed.next_log().await["message"], "n100");
    assert_eq!(sub_a.next_log().await["message"], "n100");
    assert_eq!(sub_b.next_log().await["message"], "n100");
    resumed.expect_silence(QUIET).await;
    sub_a.expect_silence(Duration::ZERO).await;
}

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

fn fly_gateway(nats: &NatsServer, token: &str) -> Gateway {
    let url = nats.url();
    Gateway::spawn(
        BIN,
        "fly",
        &[
            ("FLY_ORG", "myorg"),
            ("ACCESS_TOKEN", token),
            ("FLY_NATS_URL", &url),
            ("FLY_APP", "myapp"),
        ],
    )
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
    let gw = Gateway::spawn(BIN, "solo", &[]);
    gw.wait_ready(StatusCode::OK, DEADLINE).await;
    let health = gw.health().await;
    assert!(health["nats"].is_object(), "{health}");
}

/// `[[nats.ingest]]` rules (config file only) feed channels from any NATS
/// subject, JSON or plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_ingest_rules_map_subjects_to_channels() {
    let nats = NatsServer::start();
    let node = Gateway::spawn_configured(
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

/// A cluster message as a node with id `origin` would send it: event
/// `message` on `logs:etl:<ws>:r1`, number `seq` of its sequence.
fn cluster_message(
    origin: &str,
    seq: u64,
    ws: &str,
    message: &str,
) -> loggate::nats::cluster::ClusterMessage {
    let body = etl_event(ws, message).to_string();
    let limits = loggate::ingest::Limits {
        max_event_bytes: 64 * 1024,
        max_batch_events: 1,
    };
    let received = loggate::ingest::Received::now();
    let new = loggate::ingest::parse_body(
        body.as_bytes(),
        loggate::ingest::BodyFormat::Json,
        "etl",
        &received,
        limits,
    )
    .expect("a valid event")
    .remove(0);
    let event = loggate::registry::cluster::ClusterEvent {
        channel: new.channel,
        level: new.level,
        times: new.times,
        body_tail: new.body_tail,
        seq,
    };
    loggate::nats::cluster::encode("loggate", origin, &event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hole_in_a_nodes_sequence_is_told_to_every_subscriber_and_counted() {
    let nats = NatsServer::start();
    let url = nats.url();
    let b = start_with(|c| c.nats.url = Some(url.clone()));
    nats.wait_for_subscription("loggate.>").await;
    let mut etl = b.subscribe("channels=logs:etl").await;
    let mut other_tenant = b.subscribe("channels=logs:faas").await;
    let client = async_nats::connect(nats.url()).await.expect("NATS client");
    // Node "a" gets 1, 2 and 5 through; 3 and 4 are lost on the way. Node
    // "c" is first heard from at 100: a node this one just began to hear
    // (or one that restarted, with a new id), not a loss.
    for (origin, seq) in [("a", 1), ("a", 2), ("a", 5), ("c", 100), ("a", 6)] {
        let m = cluster_message(origin, seq, "ws1", &format!("{origin}{seq}"));
        client
            .publish_with_headers(m.subject, m.headers, m.payload)
            .await
            .expect("publish");
    }
    client.flush().await.expect("flush");

    let mut seen = Vec::new();
    let mut first_id = None;
    while seen.len() < 6 {
        let f = etl.next_event().await.expect("a frame");
        seen.push(match f.event.as_str() {
            "log" => {
                first_id = first_id.or(f.id.clone());
                f.json()["message"].as_str().unwrap().to_owned()
            }
            "gap" => {
                let gap = f.json();
                assert_eq!(gap["reason"], "cluster_loss", "{gap}");
                format!(
                    "gap {} from {}",
                    gap["lost"],
                    gap["origin"].as_str().unwrap()
                )
            }
            other => panic!("unexpected {other} frame: {}", f.data),
        });
    }
    assert_eq!(seen, ["a1", "a2", "gap 2 from a", "a5", "c100", "a6"]);
    // A subscriber that was away (its last event a1) hears of it on resume.
    let url = b.url("/api/logs/stream?channels=logs:etl");
    let req = reqwest::Client::new()
        .get(url)
        .header("last-event-id", first_id.expect("a1's id"));
    let mut resumed = SseClient::open(req, WAIT).await;
    let f = resumed.next_event().await.expect("a frame");
    assert_eq!(f.event, "gap", "{}", f.data);
    assert_eq!(
        (f.json()["lost"].as_u64(), f.json()["origin"].as_str()),
        (Some(2), Some("a"))
    );
    let replayed = resumed.logs(4).await;
    assert_eq!(messages(&replayed), ["a2", "a5", "c100", "a6"]);
    // The lost events' channels are unknown, so every subscriber is told.
    let f = other_tenant.next_event().await.expect("a frame");
    assert_eq!(
        (f.event.as_str(), f.json()["lost"].as_u64()),
        ("gap", Some(2))
    );
    other_tenant.expect_silence(QUIET).await;
    assert_eq!(
        b.metric(r#"loggate_events_dropped_total{reason="cluster_loss",service="other"}"#)
            .await,
        Some(2.0)
    );
}

/// Polls `node`'s `/metrics` until every series has its value, within
/// [`DEADLINE`]; fails naming what it last saw.
async fn wait_for_metrics(node: &Gateway, want: &[(&str, f64)]) {
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

/// Nodes A and B on `nats`, ready and warmed up; A's outbound queue holds
/// only 50 events, so an outage surely costs events (the NATS client's own
/// buffer would otherwise carry a short one).
async fn nodes_with_a_small_backlog(nats: &NatsServer) -> (Gateway, Gateway) {
    let a = Gateway::spawn_configured(
        BIN,
        "A",
        &[("NATS_URL", &nats.url())],
        "[nats]\noutbound_backlog = 50\n",
    );
    let b = cluster_node("B", nats);
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    warm_up(&a, &b, "probe").await;
    (a, b)
}

/// Events a node dropped at the very end of what it sent (its outbound
/// queue full while NATS was down), with nothing after them, are still
/// told: the node's sequence mark, sent while it is quiet, shows the hole
/// without waiting for its next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_at_the_end_of_what_a_node_sent_is_told_without_another_event() {
    let mut nats = NatsServer::start();
    let (a, b) = nodes_with_a_small_backlog(&nats).await;
    let mut sub = b.subscribe("logs:etl:tail").await;
    nats.stop();
    // More than the NATS client buffers (2,048) and A's queue (50) hold:
    // the last of these are dropped on A, and A publishes nothing after.
    let total = 5_000u64;
    for chunk in 0..total / 100 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                event(
                    "etl",
                    Some("tail"),
                    Some("r1"),
                    &format!("t{}", chunk * 100 + i),
                )
            })
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
        seen.notices.iter().all(|n| n.event == "gap"),
        "{:?}",
        seen.notices
    );
    assert!(
        told,
        "{received} received + {lost} told lost of {total} within {RECONNECT:?}"
    );
    eprintln!("tail: {received} received, {lost} told lost");
    assert_eq!(received + lost, total, "{received} received + {lost} lost");
    assert!(lost > 0, "nothing was lost: the test did not test");
    sub.expect_silence(QUIET).await;
    assert_eq!(
        b.get("/metrics").await.map(|(_, m)| metric_value(
            &m,
            r#"loggate_events_dropped_total{reason="cluster_loss",service="other"}"#
        )),
        Some(Some(lost as f64))
    );
}

/// The issue's canary in core mode: A publishes about 2,000 events/s for
/// 12 s while nats-server is killed at 4 s and restarted at 6 s. On B one
/// subscriber stays connected and eight drop and resume with
/// `Last-Event-ID` every 1-2 s. Core NATS may lose what was in flight; it
/// must never lose it silently. The connected subscriber accounts for every
/// event A accepted, as received or told as lost (`gap` `cluster_loss`, or
/// `lag`), never twice, and B's metric counts the same loss. Every resuming
/// subscriber gets exactly the events the connected one got, in the same
/// order, and is told of at least as much loss (one that was reading just
/// as a loss was noticed may hear of it twice, never not at all). A burst
/// during the outage makes sure something is lost.
///
/// The end marker is not where the count is complete: B tells at most one
/// loss notice per half second, and a hole found sooner after the last
/// notice is told when the half second is over, after the events that
/// arrived meanwhile (the end marker among them). So every reader reads on
/// until what it received and was told adds up, within a deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_a_nats_restart_no_loss_goes_unreported() {
    let mut nats = NatsServer::start();
    let (a, b) = nodes_with_a_small_backlog(&nats).await;
    let canary = |m: String| event("etl", Some("canary"), Some("r1"), &m);

    // The resuming readers start from B's id of a first event, so none can
    // miss the first events by subscribing late.
    let mut sub = b.subscribe("logs:etl:canary").await;
    a.publish(&[canary("start".into())]).await;
    let first = sub.next_event().await.expect("the start event");
    assert_eq!(first.json()["message"], "start", "{}", first.data);
    let start = first.id.clone().expect("an id");
    // What the connected subscriber finally got: its last event, and the
    // loss it was told of. The resuming readers read until they have that
    // event and were told of at least that much.
    let complete: Arc<OnceLock<(String, u64)>> = Arc::default();
    let mut resuming = Vec::new();
    for i in 0..8u64 {
        let every = Duration::from_millis(1000 + 125 * i);
        let complete = Arc::clone(&complete);
        let who = format!("reader {i}");
        let done = move |r: &Reading| {
            complete.get().is_some_and(|(last, lost)| {
                r.logs.last().is_some_and(|(_, m)| m == last) && r.reported_lost(&who) >= *lost
            })
        };
        let reader =
            resuming_reader_until(b.url(""), "logs:etl:canary", every, start.clone(), done);
        resuming.push(tokio::spawn(reader));
    }
    // The connected subscriber, read as it comes: until it sees an `end`
    // marker, then handed back to be read to the end.
    let reader = tokio::spawn(async move {
        let mut seen = Reading::default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(12) + 2 * RECONNECT;
        assert!(
            seen.read(&mut sub, deadline, Reading::ended).await,
            "B: no end marker"
        );
        (seen, sub)
    });

    // About 2,000 events/s for 12 s; NATS is down from 4 s to 6 s.
    let started = tokio::time::Instant::now();
    let mut published = 0usize;
    let (mut killed, mut restarted) = (false, false);
    for round in 0..1200u64 {
        let batch: Vec<Value> = (0..20)
            .map(|i| canary(format!("e{}", round * 20 + i)))
            .collect();
        a.publish(&batch).await;
        published += batch.len();
        let t = started.elapsed();
        if !killed && t >= Duration::from_secs(4) {
            nats.stop();
            killed = true;
            // A burst while NATS is down: more than the NATS client buffers
            // (2,048) and A's queue (50) hold together.
            for burst in 0..40 {
                let batch: Vec<Value> = (0..100)
                    .map(|i| canary(format!("b{}", burst * 100 + i)))
                    .collect();
                a.publish(&batch).await;
                published += batch.len();
            }
        } else if killed && !restarted && t >= Duration::from_secs(6) {
            nats.restart();
            restarted = true;
        }
        tokio::time::sleep_until(started + Duration::from_millis(10 * (round + 1))).await;
    }
    assert!(killed && restarted);
    a.wait_ready(StatusCode::OK, RECONNECT).await;
    b.wait_ready(StatusCode::OK, RECONNECT).await;
    // Markers until B sees one: every earlier event of A's sequence is
    // then either at B or reported.
    let mut markers = 0;
    let deadline = tokio::time::Instant::now() + RECONNECT;
    while !reader.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no marker reached B"
        );
        a.publish(&[canary(format!("end{markers}"))]).await;
        markers += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut seen, mut sub) = reader.await.unwrap();
    let accepted = (published + markers) as u64;
    let deadline = tokio::time::Instant::now() + RECONNECT;
    let accounted = |r: &Reading| r.logs.len() as u64 + r.reported_lost("B") >= accepted;
    let complete_in_time = seen.read(&mut sub, deadline, accounted).await;
    let lost = seen.reported_lost("B");
    let got: Vec<String> = seen.logs.into_iter().map(|(_, m)| m).collect();
    eprintln!(
        "canary: {} received, {lost} reported lost, of {accepted} accepted on A",
        got.len()
    );
    assert!(
        complete_in_time,
        "{} received + {lost} reported lost of {accepted} accepted on A, within {RECONNECT:?} of the end marker",
        got.len()
    );
    // Nothing more: no event twice, no loss told twice.
    sub.expect_silence(QUIET).await;
    assert!(lost > 0, "the outage cost nothing: the test did not test");
    let (_, metrics) = b.get("/metrics").await.expect("B's metrics");
    let series = r#"loggate_events_dropped_total{reason="cluster_loss",service="other"}"#;
    assert_eq!(metric_value(&metrics, series), Some(lost as f64));
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "an event arrived twice");
    assert_eq!(
        got.len() as u64 + lost,
        accepted,
        "{} received + {lost} reported lost, of {accepted} accepted on A",
        got.len()
    );
    let last = got.last().expect("events on B").clone();
    assert!(complete.set((last, lost)).is_ok());
    for (i, r) in resuming.into_iter().enumerate() {
        let reading = tokio::time::timeout(RECONNECT, r)
            .await
            .unwrap_or_else(|_| panic!("reader {i} did not get what the connected one got"))
            .unwrap();
        let told = reading.reported_lost(&format!("reader {i}"));
        assert_eq!(reading.messages(), got, "reader {i}");
        assert!(told >= lost, "reader {i}: told of {told} lost, not {lost}");
        eprintln!(
            "canary: reader {i} got the same {} and was told of {told} lost",
            got.len()
        );
    }
}
