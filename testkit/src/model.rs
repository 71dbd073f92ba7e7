//! A scripted OpenAI-compatible model server: a real HTTP server on an
//! ephemeral port that speaks the chat-completions wire format, streamed
//! (`"stream": true`, SSE chunks ending in `data: [DONE]`) or whole, and
//! answers each request with the next reply of its script. It records
//! every request body, so a test can check what loggate sent (tool
//! definitions, tool results, redacted text).
//!
//! One request per connection (`Connection: close`), which is all reqwest
//! needs; not a general HTTP server.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Tokens each reply reports using.
pub const PROMPT_TOKENS: u64 = 100;
pub const COMPLETION_TOKENS: u64 = 20;

/// What the server answers one request with.
pub enum Reply {
    /// A turn that calls tools: (name, arguments).
    Tools(Vec<(String, Value)>),
    /// The final answer.
    Text(String),
    /// This status, with this body (which loggate must not echo).
    Status(u16, String),
    /// 200 with this body, whatever it is.
    Raw(String),
    /// Reads the request and never answers.
    Hang,
    /// 200 and a body that never ends.
    Endless,
    /// This reply, after a pause (a model that takes its time).
    Delayed(Duration, Box<Reply>),
    /// Computed from the request (e.g. to reuse an id a tool returned).
    With(Box<dyn Fn(&Value) -> Reply + Send + Sync>),
}

impl Reply {
    pub fn tool(name: &str, arguments: Value) -> Reply {
        Reply::Tools(vec![(name.to_owned(), arguments)])
    }

    pub fn text(text: &str) -> Reply {
        Reply::Text(text.to_owned())
    }
}

struct Shared {
    script: VecDeque<Reply>,
    /// Answered when the script is empty (a model that loops).
    repeat: Option<Reply>,
    requests: Vec<Value>,
}

/// The server; it stops when dropped.
pub struct ModelServer {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: JoinHandle<()>,
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl ModelServer {
    /// Starts a server that answers with `script`, in order.
    pub async fn start(script: Vec<Reply>) -> ModelServer {
        Self::start_repeating(script, None).await
    }

    /// As [`start`](Self::start), answering `repeat` once the script is used up.
    pub async fn start_repeating(script: Vec<Reply>, repeat: Option<Reply>) -> ModelServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Mutex::new(Shared {
            script: script.into(),
            repeat,
            requests: Vec::new(),
        }));
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, s.clone()));
            }
        });
        ModelServer {
            addr,
            shared,
            accept,
        }
    }

    /// What `AI_BASE_URL` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.lock().expect("lock").requests.clone()
    }
}

async fn serve(mut conn: TcpStream, shared: Arc<Mutex<Shared>>) {
    let Some((head, body)) = read_request(&mut conn).await else {
        return;
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth_ok = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("authorization: bearer "));
    let reply = {
        let mut s = shared.lock().expect("lock");
        s.requests.push(request.clone());
        match s.script.pop_front() {
            Some(r) => Some(r),
            None => s.repeat.as_ref().map(copy),
        }
    };
    let mut reply = match reply {
        None => Reply::Status(500, "the script has no more replies".into()),
        Some(_) if !auth_ok => Reply::Status(401, "no bearer key".into()),
        Some(Reply::With(f)) => f(&request),
        Some(r) => r,
    };
    while let Reply::Delayed(pause, inner) = reply {
        tokio::time::sleep(pause).await;
        reply = *inner;
    }
    let streaming = request["stream"] == json!(true);
    let model = request["model"].as_str().unwrap_or("scripted").to_owned();
    match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Reply::Endless => {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
                .await;
            let chunk = vec![b' '; 64 * 1024];
            while conn.write_all(&chunk).await.is_ok() {}
        }
        Reply::Status(code, body) => {
            respond(&mut conn, code, "application/json", body.as_bytes()).await;
        }
        Reply::Raw(body) => respond(&mut conn, 200, "application/json", body.as_bytes()).await,
        Reply::Text(text) if streaming => {
            let mut frames = Vec::new();
            let cut = text
                .char_indices()
                .nth(text.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            for piece in [&text[..cut], &text[cut..]] {
                frames.push(chunk(&model, json!({"content": piece}), None));
            }
            frames.push(chunk(&model, json!({}), Some("stop")));
            stream(&mut conn, frames, &model).await;
        }
        Reply::Text(text) => {
            let body = completion(
                &model,
                json!({"role": "assistant", "content": text}),
                "stop",
            );
            respond(
                &mut conn,
                200,
                "application/json",
                body.to_string().as_bytes(),
            )
            .await;
        }
        Reply::Tools(calls) if streaming => {
            let mut frames = vec![chunk(
                &model,
                json!({"role": "assistant", "content": ""}),
                None,
            )];
            for (i, (name, args)) in calls.iter().enumerate() {
                let args = args.to_string();
                let cut = args.len() / 2;
                // The name and the first half of the arguments, then the
                // rest: loggate must put a call together from its pieces.
                frames.push(chunk(
                    &model,
                    json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                        "function": {"name": name, "arguments": &args[..cut]}}]}),
                    None,
                ));
                frames.push(chunk(
                    &model,
                    json!({"tool_calls": [{"index": i, "function": {"arguments": &args[cut..]}}]}),
                    None,
                ));
            }
            frames.push(chunk(&model, json!({}), Some("tool_calls")));
            stream(&mut conn, frames, &model).await;
        }
        Reply::Tools(calls) => {
            let tool_calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({"id": format!("call_{i}"), "type": "function",
                        "function": {"name": name, "arguments": args.to_string()}})
                })
                .collect();
            let body = completion(
                &model,
                json!({"role": "assistant", "content": null, "tool_calls": tool_calls}),
                "tool_calls",
            );
            respond(
                &mut conn,
                200,
                "application/json",
                body.to_string().as_bytes(),
            )
            .await;
        }
        Reply::With(_) | Reply::Delayed(..) => {
            respond(&mut conn, 500, "text/plain", b"nested With").await
        }
    }
}

/// A repeatable copy of a reply (closures are shared, not copied).
fn copy(r: &Reply) -> Reply {
    match r {
        Reply::Tools(c) => Reply::Tools(c.clone()),
        Reply::Text(t) => Reply::Text(t.clone()),
        Reply::Status(c, b) => Reply::Status(*c, b.clone()),
        Reply::Raw(b) => Reply::Raw(b.clone()),
        Reply::Hang => Reply::Hang,
        Reply::Endless => Reply::Endless,
        Reply::Delayed(pause, inner) => Reply::Delayed(*pause, Box::new(copy(inner))),
        Reply::With(_) => Reply::Status(500, "a With reply cannot repeat".into()),
    }
}

fn usage() -> Value {
    json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS})
}

fn completion(model: &str, message: Value, finish: &str) -> Value {
    json!({"id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage()})
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

async fn stream(conn: &mut TcpStream, frames: Vec<Value>, model: &str) {
    let mut body = String::new();
    // A comment, as OpenRouter sends while the model thinks.
    body.push_str(": OPENROUTER PROCESSING\n\n");
    for f in frames {
        body.push_str(&format!("data: {f}\n\n"));
    }
    let last = json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "choices": [], "usage": usage()});
    body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
    respond(conn, 200, "text/event-stream", body.as_bytes()).await;
}

async fn respond(conn: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes()).await;
    let _ = conn.write_all(body).await;
    let _ = conn.shutdown().await;
}

/// The request head and its body (by Content-Length).
async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(at) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some((head, body))
}
