//! Soak: 100,000 events to 50 SSE subscribers that keep disconnecting and
//! resuming with `Last-Event-ID`; every subscriber must see every event
//! exactly once, in order. (`scripts/bench.sh` runs the bigger load.)
//!
//! A test binary of its own, not a module of `tests/it`: cargo runs test
//! binaries one after another, so the soak has the machine to itself for
//! its minutes of load, neither starving the bounded waits of the other
//! tests nor pushed past [`SOAK_LIMIT`] by them.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use testkit::*;

const EVENTS: usize = 100_000;
const SUBSCRIBERS: usize = 50;
const CHANNELS: usize = 10;
const BATCH: usize = 500;
/// The whole soak must finish within this.
const SOAK_LIMIT: Duration = Duration::from_secs(240);

/// One SSE connection on the soak channel, read with the toolkit's client;
/// a log event's number is read off its data without a JSON parse (5
/// million of them are many for a debug build).
struct Conn(SseClient);

enum Seen {
    Log { id: String, n: usize },
    Other(String),
}

impl Conn {
    async fn open(client: &reqwest::Client, base: &str, last: Option<&str>) -> Conn {
        let mut req = client.get(format!("{base}/api/logs/stream?channels=logs:etl:soak"));
        if let Some(id) = last {
            req = req.header("last-event-id", id);
        }
        Conn(SseClient::open(req, WAIT).await)
    }

    async fn next(&mut self) -> Seen {
        let f = self.0.next_event().await.expect("stream stalled or ended");
        if f.event != "log" {
            return Seen::Other(f.event);
        }
        let data = f.data.as_bytes();
        let at = memchr::memmem::find(data, b"\"message\":\"").expect("message") + 11;
        let digits = data[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        let n = std::str::from_utf8(&data[at..at + digits])
            .unwrap()
            .parse()
            .unwrap();
        Seen::Log {
            id: f.id.expect("log events have an id"),
            n,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_sees_every_event_once_in_order_across_resumes() {
    let gw = Arc::new(start_with(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.connect_rate_per_ip = 0;
        // Room for a resume to replay everything missed while away.
        c.subscribe.queue_max_events = EVENTS;
        c.subscribe.queue_max_bytes = 256 << 20;
        c.history.max_entries = EVENTS / CHANNELS + 1;
    }));
    let base = format!("http://{}", gw.running.addr);
    let client = reqwest::Client::new();

    // Every subscriber is connected before the first event.
    let mut first = Vec::new();
    for _ in 0..SUBSCRIBERS {
        first.push(Conn::open(&client, &base, None).await);
    }
    let subscribers: Vec<_> = first
        .into_iter()
        .enumerate()
        .map(|(s, conn)| {
            let client = client.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let mut conn = Some(conn);
                let mut next = 0usize;
                let mut last: Option<String> = None;
                let mut lcg = 0x9E37_79B9_7F4A_7C15u64 ^ s as u64;
                let mut resumes = 0usize;
                while next < EVENTS {
                    let mut c = match conn.take() {
                        Some(c) => c,
                        None => {
                            resumes += 1;
                            Conn::open(&client, &base, last.as_deref()).await
                        }
                    };
                    lcg = lcg
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let stay = 500 + (lcg >> 33) as usize % 8000;
                    for _ in 0..stay {
                        if next == EVENTS {
                            break;
                        }
                        match c.next().await {
                            Seen::Log { id, n } => {
                                assert_eq!(n, next, "subscriber {s}: event out of order or lost");
                                next += 1;
                                last = Some(id);
                            }
                            Seen::Other(ev) => {
                                panic!("subscriber {s}: unexpected {ev} after {next}")
                            }
                        }
                    }
                    // Hang up (dropping the connection) and come back.
                }
                resumes
            })
        })
        .collect();

    let publisher = {
        let gw = Arc::clone(&gw);
        tokio::spawn(async move {
            for b in 0..EVENTS / BATCH {
                let batch: Vec<Value> = (b * BATCH..(b + 1) * BATCH)
                    .map(|n| {
                        event(
                            "etl",
                            Some("soak"),
                            Some(&format!("c{}", n % CHANNELS)),
                            &n.to_string(),
                        )
                    })
                    .collect();
                let (s, answer) = gw.publish(&Value::Array(batch)).await;
                assert_eq!(s, StatusCode::ACCEPTED, "{answer}");
            }
        })
    };

    let all = async {
        publisher.await.unwrap();
        let mut resumes = 0;
        for s in subscribers {
            resumes += s.await.unwrap();
        }
        resumes
    };
    let resumes = tokio::time::timeout(SOAK_LIMIT, all)
        .await
        .expect("soak finished in time");
    assert!(resumes >= SUBSCRIBERS * 5, "only {resumes} resumes");
    eprintln!("soak: {EVENTS} events x {SUBSCRIBERS} subscribers, {resumes} resumes, all exact");
}
