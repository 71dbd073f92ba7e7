//! The one SSE client: a real `GET` over a real socket, its frames parsed
//! as an `EventSource` reads them (`event:`, `id:`, `data:` lines, comments,
//! retry hints). Every wait is bounded by the client's patience ([`WAIT`]
//! unless the constructor was given another); the gateway in this process
//! and the child gateways of the NATS tests are read by the same code.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use crate::WAIT;

/// The HTTP client streams are opened with. Building a `reqwest::Client`
/// loads the system's root certificates, about 12 ms of CPU in a debug
/// build: a test that opens 10,000 streams spent two minutes doing that,
/// not talking to the gateway. One client serves them all; it keeps no
/// idle connection, so every stream is a connection of its own and none
/// outlives the test (and the runtime) that opened it.
pub fn stream_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("an HTTP client")
        })
        .clone()
}

/// One parsed SSE frame. `event` is `message` for frames without a name,
/// `comment` for comment-only frames (`data` is the comment), `retry` for a
/// bare retry hint (`data` is the frame's text).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl Frame {
    /// Parses one frame, without the blank line that ends it.
    pub fn parse(raw: &[u8]) -> Frame {
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

    /// The data as JSON; panics if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("frame data is JSON ({e}): {:?}", self.data))
    }

    /// Comments and retry hints: what a reader skips between events.
    pub fn is_hint(&self) -> bool {
        self.event == "comment" || self.event == "retry"
    }

    /// The JSON of a `log` event, checking that its SSE id is the event's.
    fn log(&self) -> Value {
        assert_eq!(self.event, "log", "unexpected frame {self:?}");
        let json = self.json();
        assert_eq!(
            self.id.as_deref(),
            json["id"].as_str(),
            "SSE id is the event id"
        );
        json
    }
}

/// What [`SseClient::next_frame_until`] saw.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    Ended,
    TimedOut,
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A real SSE client over a real socket.
pub struct SseClient {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    /// The URL asked for, for failure messages.
    pub url: String,
    stream: Option<ByteStream>,
    /// A refusal's answer, kept for [`SseClient::error_body`].
    response: Option<reqwest::Response>,
    buf: Vec<u8>,
    /// The bound of every single wait.
    patience: Duration,
}

impl SseClient {
    /// `GET url` with a fresh client, bounded by [`WAIT`]; the answer is
    /// kept whatever its status.
    pub async fn connect(url: &str) -> SseClient {
        Self::send(stream_client().get(url), WAIT).await
    }

    /// Sends `req`, bounded by `patience`, which also bounds every later
    /// wait on this client. A 200 is read as a stream; any other answer is
    /// kept for [`SseClient::error_body`].
    pub async fn send(req: reqwest::RequestBuilder, patience: Duration) -> SseClient {
        let res = tokio::time::timeout(patience, req.send())
            .await
            .expect("stream answered in time")
            .expect("stream request");
        let status = res.status();
        let headers = res.headers().clone();
        let url = res.url().to_string();
        let (stream, response) = if status == StatusCode::OK {
            (Some(Box::pin(res.bytes_stream()) as ByteStream), None)
        } else {
            (None, Some(res))
        };
        SseClient {
            status,
            headers,
            url,
            stream,
            response,
            buf: Vec::new(),
            patience,
        }
    }

    /// Sends `req` as a subscription that must succeed: asserts 200 and an
    /// event-stream content type, and reads up to the `ready` event.
    pub async fn open(req: reqwest::RequestBuilder, patience: Duration) -> SseClient {
        let mut c = Self::send(req, patience).await;
        if c.status != StatusCode::OK {
            let (status, body) = (c.status, c.error_body().await);
            panic!("subscribe {}: {status} {body}", c.url);
        }
        let ctype = c
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(ctype.starts_with("text/event-stream"), "{ctype}");
        let ready = c.next_event().await.expect("ready event");
        assert_eq!(ready.event, "ready", "first event of {}: {ready:?}", c.url);
        c
    }

    /// The JSON error body of a refused subscription (`Null` if none).
    pub async fn error_body(&mut self) -> Value {
        match self.response.take() {
            Some(r) => r.json().await.unwrap_or(Value::Null),
            None => Value::Null,
        }
    }

    /// The next frame of any kind before `deadline`.
    pub async fn next_frame_until(&mut self, deadline: Instant) -> Next {
        loop {
            if let Some(pos) = memchr::memmem::find(&self.buf, b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Next::Frame(Frame::parse(&raw[..pos]));
            }
            let Some(stream) = self.stream.as_mut() else {
                return Next::Ended;
            };
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Next::TimedOut,
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(_) => {
                    self.stream = None;
                    return Next::Ended;
                }
            }
        }
    }

    /// The next frame of any kind, or `None` when the stream ended.
    /// Panics if nothing arrives within the client's patience.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        match self.next_frame_until(Instant::now() + self.patience).await {
            Next::Frame(f) => Some(f),
            Next::Ended => None,
            Next::TimedOut => panic!("no SSE frame within {:?}", self.patience),
        }
    }

    /// The next named event, skipping comments and retry hints; `None` at
    /// the end of the stream. Each frame may take the client's patience.
    pub async fn next_event(&mut self) -> Option<Frame> {
        loop {
            let f = self.next_frame().await?;
            if !f.is_hint() {
                return Some(f);
            }
        }
    }

    /// The next event, which must be a `log` event; its JSON.
    pub async fn next_log(&mut self) -> Value {
        self.next_event()
            .await
            .expect("a log event before the end of the stream")
            .log()
    }

    /// Collects `n` `log` events, failing on anything else but comments;
    /// each may take the client's patience.
    pub async fn logs(&mut self, n: usize) -> Vec<Value> {
        self.collect_logs(n, None).await
    }

    /// Collects `n` `log` events like [`SseClient::logs`], all of them
    /// within `limit`.
    pub async fn logs_within(&mut self, n: usize, limit: Duration) -> Vec<Value> {
        self.collect_logs(n, Some(Instant::now() + limit)).await
    }

    async fn collect_logs(&mut self, n: usize, all_by: Option<Instant>) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut deadline = Instant::now() + self.patience;
            if let Some(all_by) = all_by {
                deadline = deadline.min(all_by);
            }
            match self.next_frame_until(deadline).await {
                Next::Frame(f) if f.is_hint() => {}
                Next::Frame(f) => out.push(f.log()),
                other => panic!(
                    "{other:?} after {} of {n} events; last: {:?}",
                    out.len(),
                    out.last().map(|e: &Value| &e["message"])
                ),
            }
        }
        out
    }

    /// Asserts that nothing but comments arrives within `quiet` (and that
    /// the stream stays open).
    pub async fn expect_silence(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        loop {
            match self.next_frame_until(deadline).await {
                Next::TimedOut => return,
                Next::Frame(f) if f.event == "comment" => {}
                other => panic!("expected silence for {quiet:?}, got {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Frame;

    #[test]
    fn frames_parse_as_event_source_reads_them() {
        let f = Frame::parse(b"event: log\nid: 1-2\ndata: {\"a\":1}");
        assert_eq!(f.event, "log");
        assert_eq!(f.id.as_deref(), Some("1-2"));
        assert_eq!(f.json()["a"], 1);
        let f = Frame::parse(b"data:one\ndata: two");
        assert_eq!((f.event.as_str(), f.data.as_str()), ("message", "one\ntwo"));
        let f = Frame::parse(b": keepalive");
        assert_eq!(
            (f.event.as_str(), f.data.as_str()),
            ("comment", "keepalive")
        );
        assert!(f.is_hint());
        let f = Frame::parse(b"retry: 3000");
        assert_eq!(
            (f.event.as_str(), f.data.as_str()),
            ("retry", "retry: 3000")
        );
        assert!(f.is_hint());
    }
}
