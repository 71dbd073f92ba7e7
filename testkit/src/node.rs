//! A gateway node: the real binary as a child process ([`Proc`]) with the
//! HTTP helpers multi-node tests need (probes, publish, subscribe, resume),
//! and [`warm_up`], which waits until one node's events reach another.
//! Waits are bounded by [`DEADLINE`].

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::process::{self, Proc};
use crate::{DEADLINE, ETL_TOKEN, Next, POLL, SseClient, event};

/// The real `loggate` binary as a child process, killed by pid when
/// dropped. Its stderr is kept, and printed if the test fails.
pub struct Gateway {
    pub name: String,
    proc: Proc,
    pub client: reqwest::Client,
}

impl Gateway {
    /// Starts the binary at `bin` with a clean environment: HOST, PORT=0,
    /// RUST_LOG, no rate limits, plus `vars`. Waits (bounded) for
    /// "listening on".
    pub fn spawn(bin: &str, name: &str, vars: &[(&str, &str)]) -> Gateway {
        let mut cmd = process::base_command(bin);
        cmd.env("CONNECT_RATE_PER_IP", "0")
            .env("PUBLISH_RATE_PER_SEC", "0")
            .envs(vars.iter().copied());
        // From here the guard owns the child: any panic below kills it.
        let mut proc = process::start(cmd);
        proc.name = name.to_owned();
        proc.wait_listening(DEADLINE);
        Gateway {
            name: name.to_owned(),
            proc,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.proc.url(path)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// GET; `None` when the request itself failed.
    pub async fn get(&self, path: &str) -> Option<(StatusCode, String)> {
        let res = tokio::time::timeout(DEADLINE, self.client.get(self.url(path)).send())
            .await
            .ok()?
            .ok()?;
        let status = res.status();
        Some((status, res.text().await.unwrap_or_default()))
    }

    /// Status of `GET /ready`.
    pub async fn ready(&self) -> Option<StatusCode> {
        self.get("/ready").await.map(|(s, _)| s)
    }

    /// Polls `GET /ready` until it answers `want`, for at most `limit`.
    pub async fn wait_ready(&self, want: StatusCode, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self.ready().await;
            if got == Some(want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway {}: /ready did not become {want} within {limit:?} (last: {got:?})",
                self.name
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// `GET /health`: asserts 200 and returns its JSON.
    pub async fn health(&self) -> Value {
        let (status, body) = self.get("/health").await.expect("/health answers");
        assert_eq!(
            status,
            StatusCode::OK,
            "gateway {}: /health {body}",
            self.name
        );
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/health is JSON ({e}): {body}"))
    }

    /// Publishes `events` with the etl token; asserts 202 and returns the
    /// ids the gateway gave them.
    pub async fn publish(&self, events: &[Value]) -> Vec<String> {
        let (status, answer) = crate::http::publish(
            &self.client,
            &self.url(""),
            ETL_TOKEN,
            "application/json",
            Value::Array(events.to_vec()).to_string(),
            DEADLINE,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "gateway {}: publish: {answer}",
            self.name
        );
        assert_eq!(answer["accepted"], events.len(), "{answer}");
        let ids: Vec<String> = answer["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|i| i.as_str().expect("id is a string").to_owned())
            .collect();
        assert_eq!(ids.len(), events.len(), "{answer}");
        ids
    }

    /// Opens an SSE stream on `channels` and waits for `ready`.
    pub async fn subscribe(&self, channels: &str) -> SseClient {
        let url = self.url(&format!("/api/logs/stream?channels={channels}"));
        SseClient::open(reqwest::Client::new().get(url), DEADLINE).await
    }

    /// Opens an SSE stream resuming after `last` (`Last-Event-ID` header).
    pub async fn resume(&self, channels: &str, last: &str) -> SseClient {
        let url = self.url(&format!("/api/logs/stream?channels={channels}"));
        let req = reqwest::Client::new()
            .get(url)
            .header("last-event-id", last);
        SseClient::open(req, DEADLINE).await
    }
}

/// Makes sure events published on `from` reach subscribers of `to` before
/// a test relies on it: publishes a probe on `logs:etl:<probe_ws>:r1`
/// every 250 ms until `to`'s probe subscriber sees one (the NATS
/// subscription of a freshly (re)connected node may lag its `/ready`).
/// Probes use their own workspace, so they never reach the subscribers
/// under test.
pub async fn warm_up(from: &Gateway, to: &Gateway, probe_ws: &str) {
    let mut probe = to.subscribe(&format!("logs:etl:{probe_ws}")).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut sent = 0;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events published on {} did not reach {} within {DEADLINE:?} ({sent} probes)",
            from.name,
            to.name
        );
        let probe_event = event("etl", Some(probe_ws), Some("r1"), &format!("probe{sent}"));
        from.publish(&[probe_event]).await;
        sent += 1;
        let wait = tokio::time::Instant::now() + Duration::from_millis(250);
        loop {
            match probe.next_frame_until(wait).await {
                Next::Frame(f) if f.event == "log" => return,
                Next::Frame(_) => {}
                Next::TimedOut => break,
                Next::Ended => panic!("probe stream on {} ended", to.name),
            }
        }
    }
}
