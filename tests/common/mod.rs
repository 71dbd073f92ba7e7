//! Test support: start the real gateway on 127.0.0.1:0, talk to it over real
//! sockets with reqwest, and read SSE frames with bounded waits.
#![allow(dead_code)]

pub mod process;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use loggate::Config;
use reqwest::StatusCode;
use serde_json::Value;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub const ETL_TOKEN: &str = "l5-etl-token";

/// A gateway running in this process on an ephemeral port.
pub struct TestGateway {
    pub running: loggate::GatewayThread,
    pub client: reqwest::Client,
}

pub fn config(adjust: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    c.server.host = "127.0.0.1".into();
    c.server.port = 0;
    c.server.workers = 2;
    c.server.shutdown_timeout_secs = 5;
    adjust(&mut c);
    c
}

pub fn start() -> TestGateway {
    start_with(|_| {})
}

pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestGateway {
    let running = loggate::spawn(config(adjust)).expect("gateway starts");
    TestGateway {
        running,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
    }
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// POSTs a JSON body with the etl token; returns status and JSON answer.
    pub async fn publish(&self, body: &Value) -> (StatusCode, Value) {
        self.publish_raw(ETL_TOKEN, "application/json", body.to_string().into_bytes())
            .await
    }

    pub async fn publish_raw(
        &self,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(self.url("/api/logs/publish"))
            .header("content-type", content_type)
            .body(body);
        if !token.is_empty() {
            req = req.header("x-service-token", token);
        }
        let res = tokio::time::timeout(WAIT, req.send())
            .await
            .expect("publish answered in time")
            .expect("publish request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Opens an SSE stream and waits for its `ready` event.
    pub async fn subscribe(&self, query: &str) -> SseClient {
        let mut c = SseClient::connect(&self.url(&format!("/api/logs/stream?{query}"))).await;
        if c.status != StatusCode::OK {
            let status = c.status;
            panic!("subscribe {query}: {status} {}", c.error_body().await);
        }
        let ready = c.next_event().await.expect("ready event");
        assert_eq!(ready.event, "ready");
        c
    }

    /// GET that returns status and JSON (or the text as a JSON string).
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let res = tokio::time::timeout(WAIT, self.client.get(self.url(path)).send())
            .await
            .expect("answered in time")
            .expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Polls `check` on the registry's stats until it holds.
    pub async fn wait_for_registry(
        &self,
        what: &str,
        check: impl Fn(&loggate::registry::RegistryStats) -> bool,
    ) -> loggate::registry::RegistryStats {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let stats = self.running.registry_stats().await.expect("stats");
            if check(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        let (_, v) = self.get_json("/metrics").await;
        v.as_str().unwrap_or_default().to_owned()
    }
}

/// One event as `logData` wants it.
pub fn event(service: &str, ws: Option<&str>, res: Option<&str>, message: &str) -> Value {
    let mut e =
        serde_json::json!({"service": service, "logData": {"message": message, "level": "info"}});
    if let Some(w) = ws {
        e["workspace_id"] = w.into();
    }
    if let Some(r) = res {
        e["resource_id"] = r.into();
    }
    e
}

/// One parsed SSE frame. `event` is `message` for frames without a name,
/// `comment` for comment-only frames, `retry` for a bare retry hint.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("frame data is JSON ({e}): {:?}", self.data))
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A real SSE client over a real socket.
pub struct SseClient {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    stream: Option<ByteStream>,
    response: Option<reqwest::Response>,
    buf: Vec<u8>,
    pub ended: bool,
}

impl SseClient {
    pub async fn connect(url: &str) -> SseClient {
        let client = reqwest::Client::builder().build().expect("client");
        let res = tokio::time::timeout(WAIT, client.get(url).send())
            .await
            .expect("stream answered in time")
            .expect("stream request");
        let status = res.status();
        let headers = res.headers().clone();
        if status == StatusCode::OK {
            SseClient {
                status,
                headers,
                stream: Some(Box::pin(res.bytes_stream())),
                response: None,
                buf: Vec::new(),
                ended: false,
            }
        } else {
            SseClient {
                status,
                headers,
                stream: None,
                response: Some(res),
                buf: Vec::new(),
                ended: true,
            }
        }
    }

    /// The JSON error body of a refused subscription.
    pub async fn error_body(&mut self) -> Value {
        match self.response.take() {
            Some(r) => r.json().await.unwrap_or(Value::Null),
            None => Value::Null,
        }
    }

    /// The next frame of any kind, or `None` when the stream ended.
    /// Panics if nothing arrives within [`WAIT`].
    pub async fn next_frame(&mut self) -> Option<Frame> {
        self.next_frame_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("no SSE frame within {WAIT:?}"))
    }

    /// `Some(None)`: the stream ended; `None`: nothing within `limit`.
    pub async fn next_frame_within(&mut self, limit: Duration) -> Option<Option<Frame>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(pos) = find(&self.buf, b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Some(Some(parse_frame(&raw[..pos])));
            }
            let stream = self.stream.as_mut()?;
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(_) => {
                    self.ended = true;
                    self.stream = None;
                    return Some(None);
                }
            }
        }
    }

    /// The next named event, skipping comments and retry hints; `None` at
    /// the end of the stream.
    pub async fn next_event(&mut self) -> Option<Frame> {
        loop {
            let f = self.next_frame().await?;
            if f.event != "comment" && f.event != "retry" {
                return Some(f);
            }
        }
    }

    /// Collects `n` `log` events, failing on anything else but comments.
    pub async fn logs(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let f = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("stream ended after {} of {n} events", out.len()));
            assert_eq!(f.event, "log", "unexpected frame {f:?}");
            let json = f.json();
            assert_eq!(
                f.id.as_deref(),
                json["id"].as_str(),
                "SSE id is the event id"
            );
            out.push(json);
        }
        out
    }

    /// Asserts that no `log` event arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.next_frame_within(left).await {
                None => return,
                Some(Some(f)) if f.event == "comment" => continue,
                Some(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_frame(raw: &[u8]) -> Frame {
    let text = String::from_utf8_lossy(raw);
    let mut frame = Frame {
        event: String::new(),
        id: None,
        data: String::new(),
    };
    let mut comment = None;
    let mut retry = false;
    for line in text.lines() {
        if let Some(c) = line.strip_prefix(':') {
            comment = Some(c.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("event:") {
            frame.event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("id:") {
            frame.id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            if !frame.data.is_empty() {
                frame.data.push('\n');
            }
            frame.data.push_str(v.strip_prefix(' ').unwrap_or(v));
        } else if line.starts_with("retry:") {
            retry = true;
        }
    }
    if frame.event.is_empty() {
        frame.event = if !frame.data.is_empty() {
            "message".into()
        } else if retry {
            frame.data = text.trim().to_owned();
            "retry".into()
        } else {
            frame.data = comment.unwrap_or_default();
            "comment".into()
        };
    }
    frame
}

/// The value of one sample line of Prometheus text, e.g.
/// `loggate_events_dropped_total{reason="slow_consumer",service="etl"}`.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Sends raw bytes as a request and returns the status code and the body,
/// for requests an HTTP client library refuses to build (huge URIs, bad
/// bytes). Reads until the server closes or `WAIT` passes.
pub async fn raw_request(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before it read everything; a failed
    // write is then expected, the answer is what matters.
    let _ = sock.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, sock.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}
