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
const SERVICE: &str = "etl";
const WORKSPACE: &str = "bench";

/// The measured channel `c`: `logs:etl:bench:c<c>`.
pub fn channel_name(c: usize) -> String {
    format!("logs:{SERVICE}:{WORKSPACE}:c{c}")
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

    /// Sends one publish request and records the outcome; true if accepted.
    pub async fn publish(
        &self,
        client: &reqwest::Client,
        url: &str,
        c: usize,
        body: Bytes,
    ) -> bool {
        let sent = client
            .post(url)
            .header("X-Service-Token", TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                self.failed(format!("POST: {e}"));
                return false;
            }
        };
        let status = resp.status();
        match resp.bytes().await {
            Ok(b) if status == reqwest::StatusCode::ACCEPTED => match accepted_count(&b) {
                Some(n) => {
                    self.per_channel[c].fetch_add(n, Relaxed);
                    self.requests_ok.fetch_add(1, Relaxed);
                    return true;
                }
                None => self.failed(format!(
                    "202 without \"accepted\": {}",
                    String::from_utf8_lossy(&b)
                )),
            },
            Ok(b) => self.failed(format!(
                "{status}: {}",
                String::from_utf8_lossy(&b[..b.len().min(300)])
            )),
            Err(e) => self.failed(format!("reading the answer: {e}")),
        }
        false
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
    }
}
