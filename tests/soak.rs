//! Soak: 100,000 events to 50 SSE subscribers that keep disconnecting and
//! resuming with `Last-Event-ID`; every subscriber must see every event
//! exactly once, in order. (`scripts/bench.sh` runs the bigger load.)

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use testkit::*;

const EVENTS: usize = 100_000;
const SUBSCRIBERS: usize = 50;
const CHANNELS: usize = 10;
const BATCH: usize = 500;
/// The whole soak must finish within this.
const SOAK_LIMIT: Duration = Duration::from_secs(240);

/// One SSE connection read with a minimal parser: 5 million frames are
/// too many to run through a general one in a debug build.
struct Conn {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: Vec<u8>,
}

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
        let res = tokio::time::timeout(WAIT, req.send())
            .await
            .expect("in time")
            .expect("stream");
        assert_eq!(res.status(), StatusCode::OK);
        let mut c = Conn {
            stream: Box::pin(res.bytes_stream()),
            buf: Vec::new(),
        };
        match c.next().await {
            Seen::Other(ev) if ev == "ready" => {}
            _ => panic!("expected ready first"),
        }
        c
    }

    async fn next(&mut self) -> Seen {
        loop {
            if let Some(end) = memchr::memmem::find(&self.buf, b"\n\n") {
                let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
                let frame = &frame[..end];
                if frame.starts_with(b"event: log\nid: ") {
                    let rest = &frame[b"event: log\nid: ".len()..];
                    let nl = memchr::memchr(b'\n', rest).expect("id line");
                    let id = String::from_utf8_lossy(&rest[..nl]).into_owned();
                    let at = memchr::memmem::find(rest, b"\"message\":\"").expect("message") + 11;
                    let digits = rest[at..].iter().take_while(|b| b.is_ascii_digit()).count();
                    let n = std::str::from_utf8(&rest[at..at + digits])
                        .unwrap()
                        .parse()
                        .unwrap();
                    return Seen::Log { id, n };
                }
                if let Some(ev) = frame
                    .split(|b| *b == b'\n')
                    .find_map(|l| l.strip_prefix(b"event: "))
                {
                    return Seen::Other(String::from_utf8_lossy(ev).into_owned());
                }
                continue; // retry hint or keepalive comment
            }
            match tokio::time::timeout(WAIT, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                other => panic!(
                    "stream stalled or ended: {:?}",
                    other.map(|o| o.map(|r| r.map(|b| b.len())))
                ),
            }
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
