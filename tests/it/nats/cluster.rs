//! Two nodes share what they accept: exactly once, in order, with per-node
//! ids and working resume.

use super::*;

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
