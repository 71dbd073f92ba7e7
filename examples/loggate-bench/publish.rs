//! Publishing: the bench's service token and channel names, the JSON bodies
//! it sends, the HTTP client, and [`PublishStats`], which sends one publish
//! request and counts what the gateway accepted, per channel. The phases
//! decide how fast and how many (`phases/`); this file only knows how.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use serde::Deserialize;

use crate::stats::FirstError;

/// The service token the gateway accepts for [`SERVICE`] by default.
const TOKEN: &str = "l5-etl-token";
pub const SERVICE: &str = "etl";
pub const WORKSPACE: &str = "bench";

/// The measured channel `c`: `logs:etl:bench:c<c>`.
pub fn channel_name(c: usize) -> String {
    format!("logs:{SERVICE}:{WORKSPACE}:c{c}")
}

/// The request target of loggate's SSE stream of `channel`.
pub fn stream_path(channel: &str) -> String {
    format!("/api/logs/stream?channels={channel}")
}

/// Subscribers on each of `channels` channels when `subscribers` are
/// spread round-robin over them, by channel index: what one event on a
/// channel owes in deliveries.
pub fn subscribers_per_channel(subscribers: usize, channels: usize) -> Vec<u64> {
    let mut on = vec![0u64; channels];
    for i in 0..subscribers {
        on[i % channels] += 1;
    }
    on
}

/// The channel of the cluster warm-up probes, apart from the measured ones.
pub fn probe_channel() -> String {
    format!("logs:{SERVICE}:{WORKSPACE}:probe")
}

/// The HTTP client of the publishers and of the /metrics and health reads.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")
}

/// Appends one event for channel `c` to `out`.
pub fn event_json(out: &mut String, c: usize, message: &str) {
    let _ = write!(
        out,
        "{{\"service\":\"{SERVICE}\",\"workspace_id\":\"{WORKSPACE}\",\"resource_id\":\"c{c}\",\
         \"logData\":{{\"level\":\"info\",\"message\":\"{message}\"}}}}"
    );
}

/// One event for channel `c` of exactly `bytes` bytes where it can be: the
/// message is `text`, then a space and `x`s up to the length. A message
/// that starts `t=<ns>` still reads as a send time (the digits end at the
/// space).
pub fn sized_event(c: usize, text: &str, bytes: usize) -> Bytes {
    let mut out = String::with_capacity(bytes);
    event_json(&mut out, c, text);
    let pad = bytes.saturating_sub(out.len() + 1);
    if pad > 0 {
        out.clear();
        event_json(&mut out, c, &format!("{text} {}", "x".repeat(pad)));
    }
    Bytes::from(out)
}

/// One event for the probe channel.
pub fn probe_body() -> Bytes {
    Bytes::from(format!(
        "{{\"service\":\"{SERVICE}\",\"workspace_id\":\"{WORKSPACE}\",\"resource_id\":\"probe\",\
         \"logData\":{{\"level\":\"info\",\"message\":\"probe\"}}}}"
    ))
}

/// A JSON array of `batch` events for channel `c`.
pub fn batch_body(c: usize, batch: usize, message: &str) -> Bytes {
    let mut s = String::from("[");
    for i in 0..batch {
        if i > 0 {
            s.push(',');
        }
        event_json(&mut s, c, message);
    }
    s.push(']');
    Bytes::from(s)
}

/// Where a phase's publishes go.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// loggate's `http://…/api/logs/publish`.
    Loggate(String),
    /// Nchan's base URL, `http://…`: messages go to `/pub/c<c>`.
    Nchan(String),
    /// One of loggate's shipper endpoints (`/v1/logs`, Loki's push), whose
    /// answers carry no count: each body holds `records`.
    Shipper {
        url: String,
        content_type: &'static str,
        success: u16,
        records: u64,
    },
}

/// The part of a `202 Accepted` publish answer the bench reads.
#[derive(Deserialize)]
struct Accepted {
    accepted: u64,
}

/// `"accepted":N` from a publish answer.
fn accepted_count(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Accepted>(body)
        .ok()
        .map(|a| a.accepted)
}

/// The outcome of the publish requests of one phase.
#[derive(Default)]
pub struct PublishStats {
    /// Events accepted, by channel index.
    per_channel: Vec<AtomicU64>,
    pub requests_ok: AtomicU64,
    pub requests_failed: AtomicU64,
    first_error: FirstError,
}

impl PublishStats {
    pub fn new(channels: usize) -> PublishStats {
        PublishStats {
            per_channel: (0..channels).map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        }
    }

    /// The channels it counts.
    pub fn channels(&self) -> usize {
        self.per_channel.len()
    }

    /// Events accepted on all channels.
    pub fn events(&self) -> u64 {
        self.per_channel.iter().map(|a| a.load(Relaxed)).sum()
    }

    /// Deliveries owed: events accepted on each channel times the
    /// subscribers on it (`subs_on`, by channel index).
    pub fn expected_deliveries(&self, subs_on: &[u64]) -> u64 {
        self.per_channel
            .iter()
            .zip(subs_on)
            .map(|(p, s)| p.load(Relaxed) * s)
            .sum()
    }

    fn failed(&self, e: String) {
        self.requests_failed.fetch_add(1, Relaxed);
        self.first_error.record(e);
    }

    pub fn error_text(&self) -> Option<String> {
        self.first_error.get()
    }

    /// Publishes `body` on channel `c` of `to`; true if accepted.
    pub async fn publish_to(
        &self,
        client: &reqwest::Client,
        to: &Endpoint,
        c: usize,
        body: Bytes,
    ) -> bool {
        match to {
            Endpoint::Loggate(url) => self.publish(client, url, c, body).await,
            Endpoint::Nchan(base) => self.publish_nchan(client, base, c, body).await,
            Endpoint::Shipper {
                url,
                content_type,
                success,
                records,
            } => {
                let request = client
                    .post(url)
                    .header("Authorization", format!("Bearer {TOKEN}"))
                    .header("Content-Type", *content_type)
                    .body(body);
                self.send(request, c, |status, b| {
                    if status.as_u16() != *success {
                        return Err(format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&b[..b.len().min(300)])
                        ));
                    }
                    Ok(*records)
                })
                .await
            }
        }
    }

    /// Sends one publish request to loggate and records the outcome; true
    /// if accepted.
    pub async fn publish(
        &self,
        client: &reqwest::Client,
        url: &str,
        c: usize,
        body: Bytes,
    ) -> bool {
        let request = client
            .post(url)
            .header("X-Service-Token", TOKEN)
            .header("Content-Type", "application/json")
            .body(body);
        self.send(request, c, |status, b| {
            if status != reqwest::StatusCode::ACCEPTED {
                return Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&b[..b.len().min(300)])
                ));
            }
            accepted_count(b)
                .ok_or_else(|| format!("202 without \"accepted\": {}", String::from_utf8_lossy(b)))
        })
        .await
    }

    /// Publishes `body` as one message on Nchan's channel `c`
    /// (`POST {base}/pub/c<c>`): 201 when it had subscribers, 202 when not.
    pub async fn publish_nchan(
        &self,
        client: &reqwest::Client,
        base: &str,
        c: usize,
        body: Bytes,
    ) -> bool {
        let request = client.post(format!("{base}/pub/c{c}")).body(body);
        self.send(request, c, |status, b| match status.as_u16() {
            201 | 202 => Ok(1),
            _ => Err(format!(
                "{status}: {}",
                String::from_utf8_lossy(&b[..b.len().min(300)])
            )),
        })
        .await
    }

    /// Sends `request`; `accepted` reads the answer's status and body as a
    /// count of events taken, or says what was wrong with it.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        c: usize,
        accepted: impl FnOnce(reqwest::StatusCode, &[u8]) -> Result<u64, String>,
    ) -> bool {
        let resp = match request.send().await {
            Ok(resp) => resp,
            Err(e) => {
                self.failed(format!("POST: {e}"));
                return false;
            }
        };
        let status = resp.status();
        let outcome = match resp.bytes().await {
            Ok(b) => accepted(status, &b),
            Err(e) => Err(format!("reading the answer: {e}")),
        };
        match outcome {
            Ok(n) => {
                self.per_channel[c].fetch_add(n, Relaxed);
                self.requests_ok.fetch_add(1, Relaxed);
                true
            }
            Err(e) => {
                self.failed(e);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_answers_and_bodies() {
        assert_eq!(accepted_count(b"{\"accepted\":100,\"ids\":[]}"), Some(100));
        assert_eq!(accepted_count(b"{\"ids\":[]}"), None);
        let body = batch_body(3, 2, "m");
        let events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["resource_id"], "c3");
        assert_eq!(events[1]["logData"]["message"], "m");
        let sized = sized_event(7, "t=123", 256);
        assert_eq!(sized.len(), 256);
        let event: serde_json::Value = serde_json::from_slice(&sized).unwrap();
        assert!(
            event["logData"]["message"]
                .as_str()
                .unwrap()
                .starts_with("t=123 x")
        );
        assert!(sized_event(0, &"y".repeat(300), 256).len() > 300);
    }
}
