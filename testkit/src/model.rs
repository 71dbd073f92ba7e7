//! A scripted OpenAI-compatible model server: a real HTTP server on an
//! ephemeral port that speaks the chat-completions wire format, streamed
//! (`"stream": true`, SSE chunks ending in `data: [DONE]`) or whole, and
//! answers each request with the next reply of its script. It records
//! every request body, so a test can check what loggate sent (tool
//! definitions, tool results, redacted text).
//!
//! A reply can take the answer shape a particular server documents
//! ([`Dialect`]): OpenRouter (`provider`, `native_finish_reason`, SSE
//! comments, a `finish_reason` of `error` with an `error` object), Ollama's
//! OpenAI-compatible endpoint (`fp_ollama`; streamed tool calls whole and
//! without `index`, as its older versions send them), vLLM (`stop_reason`,
//! `reasoning_content`, `"tool_calls": []`) and llama.cpp's server (no
//! `id`, `created`, `system_fingerprint` or `usage`; `timings`).
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
    /// Answer text that ends with this `finish_reason` (e.g. OpenRouter's
    /// `error`, which comes with an `error` object).
    Ending(String, String),
    /// This reply in the answer shape of another server.
    As(Dialect, Box<Reply>),
}

/// Whose documented answer shape a reply takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The OpenAI spec, every field present.
    OpenAi,
    OpenRouter,
    Ollama,
    Vllm,
    LlamaCpp,
}

impl Reply {
    pub fn tool(name: &str, arguments: Value) -> Reply {
        Reply::Tools(vec![(name.to_owned(), arguments)])
    }

    pub fn text(text: &str) -> Reply {
        Reply::Text(text.to_owned())
    }

    /// `self` in the shape `dialect` answers with.
    pub fn shaped(self, dialect: Dialect) -> Reply {
        Reply::As(dialect, Box::new(self))
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
    let mut dialect = Dialect::OpenAi;
    let reply = loop {
        match reply {
            Reply::Delayed(pause, inner) => {
                tokio::time::sleep(pause).await;
                reply = *inner;
            }
            Reply::As(d, inner) => {
                dialect = d;
                reply = *inner;
            }
            other => break other,
        }
    };
    let streaming = request["stream"] == json!(true);
    let model = request["model"].as_str().unwrap_or("scripted").to_owned();
    let turn = match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Reply::Endless => {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
                .await;
            let chunk = vec![b' '; 64 * 1024];
            while conn.write_all(&chunk).await.is_ok() {}
            return;
        }
        Reply::Status(code, body) => {
            respond(&mut conn, code, "application/json", body.as_bytes()).await;
            return;
        }
        Reply::Raw(body) => {
            respond(&mut conn, 200, "application/json", body.as_bytes()).await;
            return;
        }
        Reply::Text(text) => Turn::Text(text, "stop".into()),
        Reply::Ending(text, reason) => Turn::Text(text, reason),
        Reply::Tools(calls) => Turn::Tools(calls),
        Reply::With(_) | Reply::Delayed(..) | Reply::As(..) => {
            respond(&mut conn, 500, "text/plain", b"nested With").await;
            return;
        }
    };
    let shape = Shape { dialect, model };
    if streaming {
        let body = shape.stream(&turn);
        respond(&mut conn, 200, "text/event-stream", body.as_bytes()).await;
    } else {
        let body = shape.whole(&turn).to_string();
        respond(&mut conn, 200, "application/json", body.as_bytes()).await;
    }
}

/// What one answer says, before it takes a server's shape.
enum Turn {
    /// Text, and the finish reason it ends with.
    Text(String, String),
    Tools(Vec<(String, Value)>),
}

impl Turn {
    fn finish(&self) -> &str {
        match self {
            Turn::Text(_, reason) => reason,
            Turn::Tools(_) => "tool_calls",
        }
    }
}

/// One server's way of writing an answer.
struct Shape {
    dialect: Dialect,
    model: String,
}

impl Shape {
    /// The fields around `choices`, as this server writes them.
    fn envelope(&self, object: &str, choices: Vec<Value>) -> Value {
        let mut v = json!({"object": object, "model": self.model, "choices": choices});
        match self.dialect {
            Dialect::OpenAi => {
                v["id"] = json!("chatcmpl-test");
                v["created"] = json!(1_700_000_000);
                v["system_fingerprint"] = json!("fp_test");
            }
            Dialect::OpenRouter => {
                v["id"] = json!("gen-1700000000-abcdefghijklmnop");
                v["created"] = json!(1_700_000_000);
                v["provider"] = json!("Moonshot AI");
                v["system_fingerprint"] = Value::Null;
            }
            Dialect::Ollama => {
                v["id"] = json!("chatcmpl-123");
                v["created"] = json!(1_700_000_000);
                v["system_fingerprint"] = json!("fp_ollama");
            }
            Dialect::Vllm => {
                v["id"] = json!("chatcmpl-8f2b0c7e9a1d4e5f");
                v["created"] = json!(1_700_000_000);
                v["prompt_logprobs"] = Value::Null;
                v["kv_transfer_params"] = Value::Null;
            }
            // No id, created or system_fingerprint.
            Dialect::LlamaCpp => {
                v["timings"] = json!({"prompt_n": 12, "prompt_ms": 20.5, "predicted_n": 8, "predicted_ms": 90.1});
            }
        }
        v
    }

    fn choice(&self, key: &str, message: Value, finish: Option<&str>) -> Value {
        let mut c = json!({"index": 0, key: message, "finish_reason": finish});
        match self.dialect {
            Dialect::OpenRouter => {
                c["logprobs"] = Value::Null;
                c["native_finish_reason"] = json!(finish);
                if finish == Some("error") {
                    c["error"] =
                        json!({"code": 502, "message": "Provider disconnected unexpectedly"});
                }
            }
            Dialect::Vllm => {
                c["logprobs"] = Value::Null;
                c["stop_reason"] = Value::Null;
            }
            Dialect::OpenAi | Dialect::Ollama | Dialect::LlamaCpp => {}
        }
        c
    }

    fn usage(&self) -> Option<Value> {
        let mut u = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
        match self.dialect {
            Dialect::LlamaCpp => return None,
            Dialect::OpenRouter => u["cost"] = json!(0.00042),
            Dialect::Vllm => u["prompt_tokens_details"] = Value::Null,
            Dialect::OpenAi | Dialect::Ollama => {}
        }
        Some(u)
    }

    /// The whole (not streamed) answer.
    fn whole(&self, turn: &Turn) -> Value {
        let mut message = match turn {
            Turn::Text(text, _) => json!({"role": "assistant", "content": text}),
            Turn::Tools(calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, args))| {
                        let mut c = json!({"id": format!("call_{i}"), "type": "function",
                            "function": {"name": name, "arguments": args.to_string()}});
                        if self.dialect == Dialect::Ollama {
                            c["index"] = json!(i);
                        }
                        c
                    })
                    .collect();
                json!({"role": "assistant", "content": null, "tool_calls": calls})
            }
        };
        match self.dialect {
            Dialect::OpenRouter => {
                message["refusal"] = Value::Null;
                message["reasoning"] = Value::Null;
            }
            Dialect::Vllm => {
                message["reasoning_content"] = Value::Null;
                if message.get("tool_calls").is_none() {
                    message["tool_calls"] = json!([]);
                }
            }
            Dialect::OpenAi | Dialect::Ollama | Dialect::LlamaCpp => {}
        }
        let mut v = self.envelope(
            "chat.completion",
            vec![self.choice("message", message, Some(turn.finish()))],
        );
        if let Some(u) = self.usage() {
            v["usage"] = u;
        }
        v
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        self.envelope(
            "chat.completion.chunk",
            vec![self.choice("delta", delta, finish)],
        )
    }

    /// The streamed answer: SSE frames, then `[DONE]`.
    fn stream(&self, turn: &Turn) -> String {
        let first_content = match self.dialect {
            // llama.cpp opens with a null content.
            Dialect::LlamaCpp => Value::Null,
            _ => json!(""),
        };
        let mut frames =
            vec![self.chunk(json!({"role": "assistant", "content": first_content}), None)];
        match turn {
            Turn::Text(text, _) => {
                let cut = text
                    .char_indices()
                    .nth(text.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                for piece in [&text[..cut], &text[cut..]] {
                    frames.push(self.chunk(json!({"content": piece}), None));
                }
            }
            // Ollama sends each call whole, in one piece, without index.
            Turn::Tools(calls) if self.dialect == Dialect::Ollama => {
                for (i, (name, args)) in calls.iter().enumerate() {
                    frames.push(self.chunk(
                        json!({"tool_calls": [{"id": format!("call_{i}"), "type": "function",
                            "function": {"name": name, "arguments": args.to_string()}}]}),
                        None,
                    ));
                }
            }
            Turn::Tools(calls) => {
                for (i, (name, args)) in calls.iter().enumerate() {
                    let args = args.to_string();
                    let cut = args.len() / 2;
                    // The name and the first half of the arguments, then
                    // the rest: loggate must put a call together from its
                    // pieces.
                    frames.push(self.chunk(
                        json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                            "function": {"name": name, "arguments": &args[..cut]}}]}),
                        None,
                    ));
                    frames.push(self.chunk(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": &args[cut..]}}]}),
                        None,
                    ));
                }
            }
        }
        let mut last = self.chunk(json!({}), Some(turn.finish()));
        if self.dialect == Dialect::OpenRouter && turn.finish() == "error" {
            last["error"] =
                json!({"code": "server_error", "message": "Provider disconnected unexpectedly"});
        }
        frames.push(last);
        let mut body = String::new();
        if matches!(self.dialect, Dialect::OpenAi | Dialect::OpenRouter) {
            // A comment, as OpenRouter sends while the model thinks.
            body.push_str(": OPENROUTER PROCESSING\n\n");
        }
        for f in frames {
            body.push_str(&format!("data: {f}\n\n"));
        }
        if let Some(usage) = self.usage() {
            let mut tail = self.envelope("chat.completion.chunk", Vec::new());
            tail["usage"] = usage;
            body.push_str(&format!("data: {tail}\n\n"));
        }
        body.push_str("data: [DONE]\n\n");
        body
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
        Reply::Ending(t, r) => Reply::Ending(t.clone(), r.clone()),
        Reply::As(d, inner) => Reply::As(*d, Box::new(copy(inner))),
        Reply::With(_) => Reply::Status(500, "a With reply cannot repeat".into()),
    }
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
