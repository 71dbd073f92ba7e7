//! A gateway node: the real binary as a child process ([`Proc`]) with the
//! HTTP helpers multi-node tests need (probes, publish, subscribe, resume),
//! and [`warm_up`], which waits until one node's events reach another.
//! Waits are bounded by [`DEADLINE`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::process::{self, Proc};
use crate::{DEADLINE, ETL_TOKEN, Next, POLL, SseClient, event};

/// The real `loggate` binary as a child process, killed by pid when
/// dropped. Its stderr is kept, and printed if the test fails.
pub struct GatewayProcess {
    pub name: String,
    proc: Proc,
    pub client: reqwest::Client,
}

impl GatewayProcess {
    /// Starts the binary at `bin` with a clean environment: HOST, PORT=0,
    /// RUST_LOG, no rate limits, plus `vars`. Waits (bounded) for
    /// "listening on".
    pub fn spawn(bin: &str, name: &str, vars: &[(&str, &str)]) -> GatewayProcess {
        let mut cmd = process::base_command(bin);
        cmd.env("CONNECT_RATE_PER_IP", "0")
            .env("PUBLISH_RATE_PER_SEC", "0")
            .envs(vars.iter().copied());
        // From here the guard owns the child: any panic below kills it.
        let mut proc = process::start(cmd);
        proc.name = name.to_owned();
        proc.wait_listening(DEADLINE);
        GatewayProcess {
            name: name.to_owned(),
            proc,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
        }
    }

    /// As [`GatewayProcess::spawn`], with `toml` as its configuration file
    /// (`LOGGATE_CONFIG`), which is removed once the node listens: it has
    /// read it by then.
    pub fn spawn_configured(
        bin: &str,
        name: &str,
        vars: &[(&str, &str)],
        toml: &str,
    ) -> GatewayProcess {
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let file = std::env::temp_dir().join(format!(
            "loggate-test-{}-{n}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&file, toml).expect("write the configuration file");
        let path = file.to_str().expect("a UTF-8 temporary path");
        let mut all = vars.to_vec();
        all.push(("LOGGATE_CONFIG", path));
        let node = GatewayProcess::spawn(bin, name, &all);
        let _ = std::fs::remove_file(&file);
        node
    }

    pub fn url(&self, path: &str) -> String {
        self.proc.url(path)
    }

    /// Stops the process (SIGSTOP) until the guard is dropped (SIGCONT):
    /// a node that can read nothing, as one starved or swapped out is.
    pub fn pause(&self) -> Paused {
        let pid = self.proc.pid();
        assert!(process::signal(pid, "STOP"), "SIGSTOP {}", self.name);
        Paused { pid }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// Stops the gateway as a deploy does (SIGTERM) and waits, bounded,
    /// for it to exit; returns how it exited.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        assert!(process::sigterm(self.proc.pid()), "SIGTERM {}", self.name);
        process::exit_within(&mut self.proc.child, DEADLINE)
            .unwrap_or_else(|| panic!("gateway {} did not exit on SIGTERM", self.name))
    }

    /// Kills the gateway at once (SIGKILL), as a crash would end it.
    pub fn kill(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.proc.log_lines()
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
        SseClient::open(crate::sse::stream_client().get(url), DEADLINE).await
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

/// A node stopped by [`GatewayProcess::pause`]; it goes on when this is dropped.
pub struct Paused {
    pid: u32,
}

impl Drop for Paused {
    fn drop(&mut self) {
        process::signal(self.pid, "CONT");
    }
}

/// Makes sure events published on `from` reach subscribers of `to` before
/// a test relies on it: publishes a probe on `logs:etl:<probe_ws>:r1`
/// every 250 ms until `to`'s probe subscriber sees one (the NATS
/// subscription of a freshly (re)connected node may lag its `/ready`).
/// Probes use their own workspace, so they never reach the subscribers
/// under test.
pub async fn warm_up(from: &GatewayProcess, to: &GatewayProcess, probe_ws: &str) {
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

/// What a reader saw: the log events and, between them, the `gap` and
/// `lag` notices.
#[derive(Debug, Default, Clone)]
pub struct Reading {
    /// Log events as (id, message), in order.
    pub logs: Vec<(String, String)>,
    /// The notices, in order.
    pub notices: Vec<Notice>,
}

/// A `gap` or `lag` notice, and where in the stream it came.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `gap` or `lag`.
    pub event: String,
    pub data: Value,
    /// How many log events came before it.
    pub after_logs: usize,
}

impl Reading {
    /// Events the notices say were lost: `cluster_loss` gaps' `lost` and
    /// `lag`'s `dropped`. Any other notice fails the test: the readers
    /// that use this resume well within history.
    pub fn reported_lost(&self, who: &str) -> u64 {
        self.notices
            .iter()
            .map(|n| match (n.event.as_str(), n.data["reason"].as_str()) {
                ("gap", Some("cluster_loss")) => n.data["lost"].as_u64().expect("a count"),
                ("lag", _) => n.data["dropped"].as_u64().expect("a count"),
                _ => panic!("{who}: unexpected {} {}", n.event, n.data),
            })
            .sum()
    }

    /// The messages, in order.
    pub fn messages(&self) -> Vec<&str> {
        self.logs.iter().map(|(_, m)| m.as_str()).collect()
    }

    /// Whether the last event's message starts with `end`: the marker the
    /// cluster tests publish last.
    pub fn ended(&self) -> bool {
        self.logs.last().is_some_and(|(_, m)| m.starts_with("end"))
    }

    /// Reads `sub` into this until `done` holds (true) or `until` comes
    /// (false). Fails if the gateway ends the stream.
    pub async fn read(
        &mut self,
        sub: &mut SseClient,
        until: tokio::time::Instant,
        done: impl Fn(&Reading) -> bool,
    ) -> bool {
        while !done(self) {
            match sub.next_frame_until(until).await {
                Next::Frame(f) if f.event == "log" => {
                    let m = f.json()["message"].as_str().expect("a message").to_owned();
                    self.logs.push((f.id.clone().expect("an id"), m));
                }
                Next::Frame(f) if f.event == "gap" || f.event == "lag" => {
                    let data = f.json();
                    self.notices.push(Notice {
                        event: f.event,
                        data,
                        after_logs: self.logs.len(),
                    });
                }
                Next::Frame(_) => {}
                Next::TimedOut => return false,
                Next::Ended => panic!("the gateway ended the stream at {}", sub.url),
            }
        }
        true
    }
}

/// A subscriber that drops its stream every `every` and resumes with the
/// `Last-Event-ID` it last had (at first `start`), as a browser behind a
/// flaky network does, until it sees a message starting with `end`.
/// Fails if the gateway ends a stream or a stream cannot be opened within
/// [`DEADLINE`].
pub async fn resuming_reader(
    base: String,
    channels: &'static str,
    every: Duration,
    start: String,
) -> Reading {
    resuming_reader_until(base, channels, every, start, Reading::ended).await
}

/// [`resuming_reader`], reading until `done` holds; `done` is asked again
/// at least at every resume, so it may wait on something the test learns
/// later.
pub async fn resuming_reader_until(
    base: String,
    channels: &'static str,
    every: Duration,
    start: String,
    done: impl Fn(&Reading) -> bool,
) -> Reading {
    let mut seen = Reading::default();
    let client = reqwest::Client::new();
    loop {
        let last = seen
            .logs
            .last()
            .map_or(start.as_str(), |(id, _)| id.as_str());
        let req = client
            .get(format!("{base}/api/logs/stream?channels={channels}"))
            .header("last-event-id", last);
        let mut sub = SseClient::open(req, DEADLINE).await;
        let until = tokio::time::Instant::now() + every;
        if seen.read(&mut sub, until, &done).await {
            return seen;
        }
    }
}
