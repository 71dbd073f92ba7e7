use std::time::Duration;

use actix_web::http::header::HeaderMap;

use super::*;

const WINDOW: Duration = Duration::from_secs(300);

fn metrics() -> Metrics {
    Metrics::new(["etl", "faas"], &[])
}

fn table(max_keys: usize, metrics: &Metrics) -> Arc<Table> {
    Table::new(WINDOW, max_keys, Duration::from_secs(5), metrics)
}

fn key(text: &str) -> Key {
    Key::parse(text.as_bytes()).expect("a valid key")
}

fn ids(epoch: u64, seqs: &[u64]) -> Vec<EventId> {
    seqs.iter().map(|&seq| EventId { epoch, seq }).collect()
}

fn name(service: &str, key: &str) -> SlotName {
    format!("{service} {key}").into()
}

async fn claim(t: &Arc<Table>, service: &str, k: &str, d: Digest) -> Claim {
    match t.begin(service, &key(k), d).await {
        Ok(Begin::Claimed(c)) => c,
        Ok(Begin::Replay(ids)) => panic!("replayed {ids:?}"),
        Err(e) => panic!("refused: {e}"),
    }
}

async fn replay(t: &Arc<Table>, service: &str, k: &str, d: Digest) -> Vec<EventId> {
    match t.begin(service, &key(k), d).await {
        Ok(Begin::Replay(ids)) => ids,
        Ok(Begin::Claimed(_)) => panic!("claimed"),
        Err(e) => panic!("refused: {e}"),
    }
}

#[test]
fn keys_are_one_to_128_visible_ascii_characters() {
    assert_eq!(key("a").as_str(), "a");
    let longest = "~".repeat(MAX_KEY_LEN);
    assert_eq!(key(&longest).as_str(), longest);
    assert!(Key::parse(b"!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~").is_ok());
    for bad in [
        &b""[..],
        "x".repeat(MAX_KEY_LEN + 1).as_bytes(),
        b"with space",
        b"tab\there",
        b"nul\0",
        b"del\x7f",
        "caf\u{e9}".as_bytes(),
        b"\xff",
    ] {
        assert!(Key::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_header_is_read_once_and_checked() {
    use actix_web::http::header::{HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    assert_eq!(key_of(&headers).unwrap(), None);
    let name = HeaderName::from_static(HEADER);
    headers.insert(name.clone(), HeaderValue::from_static("k1"));
    assert_eq!(key_of(&headers).unwrap(), Some(key("k1")));
    headers.append(name.clone(), HeaderValue::from_static("k2"));
    let e = key_of(&headers).unwrap_err();
    assert!(e.to_string().contains("more than once"), "{e}");
    headers.insert(name, HeaderValue::from_bytes(b"a\xe9").unwrap());
    let e = key_of(&headers).unwrap_err();
    assert!(e.to_string().contains("byte 1"), "{e}");
}

#[test]
fn the_digest_tells_route_content_type_and_body_apart() {
    let d = digest("/api/logs/publish", "application/json", b"[1]");
    assert_eq!(d, digest("/api/logs/publish", "application/json", b"[1]"));
    assert_ne!(d, digest("/test/logs", "application/json", b"[1]"));
    assert_ne!(
        d,
        digest("/api/logs/publish", "application/x-ndjson", b"[1]")
    );
    assert_ne!(d, digest("/api/logs/publish", "application/json", b"[2]"));
    // Length prefixes: moving a byte from one part to the next is another request.
    assert_ne!(digest("ab", "c", b""), digest("a", "bc", b""));
}

#[test]
fn ids_are_kept_as_runs_and_given_back_in_order() {
    let mixed = vec![
        EventId { epoch: 1, seq: 5 },
        EventId { epoch: 1, seq: 6 },
        EventId { epoch: 1, seq: 7 },
        EventId { epoch: 1, seq: 9 },
        EventId { epoch: 2, seq: 10 },
        EventId { epoch: 2, seq: 11 },
        EventId { epoch: 1, seq: 3 },
    ];
    let runs = to_runs(&mixed);
    assert_eq!(runs.len(), 4);
    assert_eq!(from_runs(&runs), mixed);
    assert!(to_runs(&[]).is_empty());
    let batch: Vec<EventId> = (1..=1000).map(|seq| EventId { epoch: 7, seq }).collect();
    assert_eq!(to_runs(&batch).len(), 1, "one gateway's batch is one run");
}

#[tokio::test]
async fn an_answered_key_replays_its_ids_and_refuses_another_body() {
    let m = metrics();
    let t = table(10, &m);
    let (d1, d2) = ([1; 32], [2; 32]);
    claim(&t, "etl", "k", d1).await.complete(&ids(9, &[1, 2]));
    assert_eq!(t.len(), 1);
    assert_eq!(m.idempotency_keys.get(), 1);
    assert_eq!(replay(&t, "etl", "k", d1).await, ids(9, &[1, 2]));
    assert_eq!(m.idempotency_replayed.get(), 1);
    let e = t.begin("etl", &key("k"), d2).await.err().expect("refused");
    assert_eq!(e, Refused::Reused);
    // Keys are per service.
    claim(&t, "faas", "k", d2).await.complete(&ids(9, &[3]));
    assert_eq!(t.len(), 2);
}

#[tokio::test]
async fn a_claim_given_up_leaves_the_key_free() {
    let m = metrics();
    let t = table(10, &m);
    drop(claim(&t, "etl", "k", [1; 32]).await);
    assert!(t.is_empty());
    // Another body may now take it: the first was never answered 202.
    claim(&t, "etl", "k", [2; 32]).await.complete(&ids(1, &[1]));
    assert_eq!(replay(&t, "etl", "k", [2; 32]).await, ids(1, &[1]));
}

#[tokio::test]
async fn a_second_request_waits_for_the_first_and_gets_its_answer() {
    let m = metrics();
    let t = table(10, &m);
    let first = claim(&t, "etl", "k", [1; 32]).await;
    let second = {
        let t = Arc::clone(&t);
        tokio::spawn(async move {
            match t.begin("etl", &key("k"), [1; 32]).await {
                Ok(Begin::Replay(ids)) => ids,
                _ => panic!("not replayed"),
            }
        })
    };
    // The second is waiting on the claim (bounded by the test's runtime).
    tokio::task::yield_now().await;
    assert!(!second.is_finished());
    first.complete(&ids(4, &[7]));
    assert_eq!(second.await.unwrap(), ids(4, &[7]));
}

#[tokio::test]
async fn a_waiter_takes_the_claim_over_when_the_first_fails() {
    let m = metrics();
    let t = table(10, &m);
    let first = claim(&t, "etl", "k", [1; 32]).await;
    let second = {
        let t = Arc::clone(&t);
        tokio::spawn(async move {
            match t.begin("etl", &key("k"), [1; 32]).await {
                Ok(Begin::Claimed(c)) => c.complete(&ids(4, &[8])),
                _ => panic!("not claimed"),
            }
        })
    };
    tokio::task::yield_now().await;
    drop(first);
    second.await.unwrap();
    assert_eq!(replay(&t, "etl", "k", [1; 32]).await, ids(4, &[8]));
}

#[tokio::test(start_paused = true)]
async fn a_claim_held_past_the_wait_is_409_with_retry_after() {
    let m = metrics();
    let t = table(10, &m);
    let _first = claim(&t, "etl", "k", [1; 32]).await;
    let started = tokio::time::Instant::now();
    let e = t
        .begin("etl", &key("k"), [1; 32])
        .await
        .err()
        .expect("refused");
    assert_eq!(
        e,
        Refused::InUse {
            retry_after_secs: IN_USE_RETRY_SECS
        }
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[test]
fn keys_are_forgotten_once_their_window_has_passed() {
    let m = metrics();
    let t = table(10, &m);
    let window = i64::try_from(WINDOW.as_millis()).unwrap();
    let n = name("etl", "k");
    let Look::Claimed(turn) = t.look(&n, [1; 32], 1_000) else {
        panic!("not claimed")
    };
    t.complete(&n, turn, [1; 32], &ids(1, &[1]), 1_000);
    assert!(matches!(
        t.look(&n, [1; 32], 1_000 + window - 1),
        Look::Replay(_)
    ));
    // Swept when anything is looked up after the window.
    assert!(matches!(
        t.look(&name("etl", "other"), [1; 32], 1_000 + window),
        Look::Claimed(_)
    ));
    assert_eq!(t.len(), 0);
    assert_eq!(m.idempotency_keys.get(), 0);
    assert!(matches!(
        t.look(&n, [2; 32], 1_000 + window),
        Look::Claimed(_)
    ));
    assert_eq!(
        m.idempotency_evicted
            .with_label_values(&[label::idempotency::MAX_KEYS])
            .get(),
        0,
        "expiry is not eviction"
    );
}

#[test]
fn the_oldest_keys_are_evicted_first_and_counted() {
    let m = metrics();
    let t = table(2, &m);
    for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
        let n = name("etl", k);
        let Look::Claimed(turn) = t.look(&n, [1; 32], 10) else {
            panic!("not claimed")
        };
        t.complete(&n, turn, [1; 32], &ids(1, &[i as u64 + 1]), 10);
    }
    assert_eq!(t.len(), 2);
    let evicted = |reason| m.idempotency_evicted.with_label_values(&[reason]).get();
    assert_eq!(evicted(label::idempotency::MAX_KEYS), 1);
    assert!(matches!(
        t.look(&name("etl", "a"), [1; 32], 11),
        Look::Claimed(_)
    ));
    assert!(matches!(
        t.look(&name("etl", "c"), [1; 32], 11),
        Look::Replay(_)
    ));

    // The byte budget too: one answer of 1000 scattered ids is over it.
    let small = Table {
        max_bytes: 4 * 1024,
        ..Arc::into_inner(table(100, &m)).expect("one owner")
    };
    let scattered: Vec<u64> = (0..1000).map(|i| i * 2).collect();
    for k in ["x", "y"] {
        let n = name("etl", k);
        let Look::Claimed(turn) = small.look(&n, [1; 32], 10) else {
            panic!("not claimed")
        };
        small.complete(&n, turn, [1; 32], &ids(1, &scattered), 10);
    }
    assert_eq!(small.len(), 0);
    assert_eq!(evicted(label::idempotency::MAX_BYTES), 2);
    assert_eq!(small.lock().bytes, 0);
}

#[test]
fn export_and_import_carry_the_remembered_keys() {
    let m = metrics();
    let t = table(10, &m);
    let now = now_ms();
    for (k, at) in [("old", now - 1_000), ("new", now)] {
        let n = name("etl", k);
        let Look::Claimed(turn) = t.look(&n, [3; 32], at) else {
            panic!("not claimed")
        };
        t.complete(&n, turn, [3; 32], &ids(5, &[1, 2, 4]), at);
    }
    // A claim in flight is not exported.
    let _held = t.look(&name("faas", "held"), [3; 32], now);
    let entries = t.export();
    assert_eq!(
        entries,
        vec![
            Entry {
                service: "etl".into(),
                key: "old".into(),
                digest: [3; 32],
                ids: ids(5, &[1, 2, 4]),
                inserted_at_ms: now - 1_000,
            },
            Entry {
                service: "etl".into(),
                key: "new".into(),
                digest: [3; 32],
                ids: ids(5, &[1, 2, 4]),
                inserted_at_ms: now,
            },
        ]
    );

    let restarted = table(10, &m);
    let mut given = entries.clone();
    given.push(Entry {
        key: "expired".into(),
        inserted_at_ms: now - 301_000,
        ..entries[0].clone()
    });
    given.push(Entry {
        key: "bad key".into(),
        ..entries[0].clone()
    });
    given.reverse();
    assert_eq!(restarted.import(given), 2);
    assert_eq!(restarted.export(), entries, "oldest first, as given out");
    assert!(matches!(
        restarted.look(&name("etl", "new"), [3; 32], now),
        Look::Replay(ids) if ids == super::from_runs(&to_runs(&entries[1].ids))
    ));
}

#[test]
fn msg_ids_depend_on_service_key_and_request_only() {
    let m = metrics();
    let a = table(10, &m);
    let b = table(10, &m);
    let base = |t: &Arc<Table>, service: &str, k: &str, d: Digest| {
        let n = name(service, k);
        let Look::Claimed(turn) = t.look(&n, d, 1) else {
            panic!("not claimed")
        };
        Claim {
            table: Arc::clone(t),
            name: n,
            turn,
            digest: d,
            completed: false,
        }
        .msg_id_base()
    };
    let one = base(&a, "etl", "k", [1; 32]);
    assert_eq!(one, base(&b, "etl", "k", [1; 32]), "the same on every node");
    assert!(one.starts_with("key-") && one.len() == 4 + 32, "{one}");
    assert_ne!(one, base(&b, "faas", "k", [1; 32]));
    assert_ne!(one, base(&b, "etl", "k2", [1; 32]));
    assert_ne!(one, base(&b, "etl", "k3", [2; 32]));
}
