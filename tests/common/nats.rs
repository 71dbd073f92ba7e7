//! Support for the NATS tests: a real `nats-server` child on a free loopback
//! port (stoppable and restartable on the same port), the real `loggate`
//! binary as a child process, and a small SSE reader. Every wait is bounded;
//! every process is killed by pid when its guard is dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);
/// Polling interval of the bounded waits.
pub const POLL: Duration = Duration::from_millis(50);

pub const BIN: &str = env!("CARGO_BIN_EXE_loggate");
pub const ETL_TOKEN: &str = "l5-etl-token";

/// A port that was free a moment ago (bound on 127.0.0.1:0, then released).
fn free_ports<const N: usize>() -> [u16; N] {
    // Hold every listener until all are bound, so the ports differ.
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// `NATS_SERVER` if set, else `nats-server` on `PATH`, else the usual
/// install locations (the Debian package puts it in /usr/sbin, which a
/// non-root `PATH` may lack).
fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/bin", "/usr/bin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .expect("nats-server is installed (scripts/test.sh installs it)")
}

fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A `nats-server` child on 127.0.0.1, killed by pid when dropped.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    /// The HTTP monitoring port (`/connz`).
    pub monitor_port: u16,
    auth: Option<(String, String)>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_inner(None)
    }

    /// A server that only accepts `user`/`pass`.
    pub fn start_with_auth(user: &str, pass: &str) -> NatsServer {
        Self::start_inner(Some((user.to_owned(), pass.to_owned())))
    }

    fn start_inner(auth: Option<(String, String)>) -> NatsServer {
        let [port, monitor_port] = free_ports::<2>();
        let mut server = NatsServer {
            child: None,
            port,
            monitor_port,
            auth,
        };
        server.launch();
        server
    }

    /// `nats://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "nats-server is already running");
        let mut cmd = Command::new(nats_server_bin());
        cmd.args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((user, pass)) = &self.auth {
            cmd.args(["--user", user, "--pass", pass]);
        }
        self.child = Some(cmd.spawn().expect("nats-server starts"));
        let deadline = Instant::now() + DEADLINE;
        while !(port_open(self.port) && port_open(self.monitor_port)) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("nats-server on port {} exited: {status}", self.port);
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not accept connections on port {} within {DEADLINE:?}",
                self.port
            );
            std::thread::sleep(POLL);
        }
    }

    /// Kills the server (SIGKILL, by pid) and waits until its port refuses
    /// connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + DEADLINE;
        while port_open(self.port) {
            assert!(
                Instant::now() < deadline,
                "port {} still open after nats-server was killed",
                self.port
            );
            std::thread::sleep(POLL);
        }
    }

    /// Starts the server again on the same ports with the same options.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// The subjects of every client subscription, from `/connz?subs=1`.
    pub async fn subscriptions(&self) -> Vec<String> {
        let url = format!("http://127.0.0.1:{}/connz?subs=1", self.monitor_port);
        let res = tokio::time::timeout(DEADLINE, reqwest::get(&url))
            .await
            .expect("connz answered in time")
            .expect("connz request");
        let json: Value = res.json().await.expect("connz JSON");
        json["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c["subscriptions_list"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until some client subscribed to exactly `subject`.
    pub async fn wait_for_subscription(&self, subject: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let subs = self.subscriptions().await;
            if subs.iter().any(|s| s == subject) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no subscription to {subject:?} within {DEADLINE:?}; subscriptions: {subs:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The real `loggate` binary as a child process, killed by pid when
/// dropped. Its stderr is kept, and printed if the test fails.
pub struct Gateway {
    pub name: String,
    child: Child,
    /// `127.0.0.1:PORT` from the "listening on http://" line.
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
    pub client: reqwest::Client,
}

impl Gateway {
    /// Starts the binary with a clean environment: HOST, PORT=0, RUST_LOG,
    /// no rate limits, plus `vars`. Waits (bounded) for "listening on".
    pub fn spawn(name: &str, vars: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .env("CONNECT_RATE_PER_IP", "0")
            .env("PUBLISH_RATE_PER_SEC", "0")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("loggate starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut told = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !told && let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.to_owned());
                    told = true;
                }
                sink.lock().unwrap().push(line);
            }
        });
        // From here the guard owns the child: any panic below kills it.
        let mut gw = Gateway {
            name: name.to_owned(),
            child,
            addr: String::new(),
            log,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
        };
        gw.addr = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            panic!("gateway {name}: no 'listening on http://' line within {DEADLINE:?}")
        });
        gw
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
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
        let req = self
            .client
            .post(self.url("/api/logs/publish"))
            .header("x-service-token", ETL_TOKEN)
            .header("content-type", "application/json")
            .body(Value::Array(events.to_vec()).to_string());
        let res = tokio::time::timeout(DEADLINE, req.send())
            .await
            .expect("publish answered in time")
            .expect("publish request");
        let status = res.status();
        let text = res.text().await.expect("publish body");
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "gateway {}: publish: {text}",
            self.name
        );
        let answer: Value = serde_json::from_str(&text).expect("publish answer is JSON");
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
    pub async fn subscribe(&self, channels: &str) -> Sse {
        Sse::open(
            &self.url(&format!("/api/logs/stream?channels={channels}")),
            None,
        )
        .await
    }

    /// Opens an SSE stream resuming after `last` (`Last-Event-ID` header).
    pub async fn resume(&self, channels: &str, last: &str) -> Sse {
        Sse::open(
            &self.url(&format!("/api/logs/stream?channels={channels}")),
            Some(last),
        )
        .await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let lines = self.log_lines();
            let from = lines.len().saturating_sub(80);
            eprintln!(
                "---- gateway {} ({}) stderr, last lines:",
                self.name, self.addr
            );
            for l in &lines[from..] {
                eprintln!("{l}");
            }
        }
    }
}

/// One etl event for `logs:etl:<ws>:r1`.
pub fn etl_event(ws: &str, message: &str) -> Value {
    serde_json::json!({
        "service": "etl",
        "workspace_id": ws,
        "resource_id": "r1",
        "logData": {"message": message, "level": "info"},
    })
}

/// An event id split into (epoch, seq): `019ab2c3d4e5-000000000042`.
pub fn parse_id(id: &str) -> (u64, u64) {
    let (epoch, seq) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("event id {id:?}"));
    (
        u64::from_str_radix(epoch, 16).unwrap_or_else(|_| panic!("event id {id:?}")),
        seq.parse().unwrap_or_else(|_| panic!("event id {id:?}")),
    )
}

/// One parsed SSE frame: `event` is `comment` for comment-only frames and
/// `retry` for a bare retry hint.
#[derive(Debug, Clone)]
pub struct Frame {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

fn parse_frame(raw: &[u8]) -> Frame {
    let text = String::from_utf8_lossy(raw);
    let mut frame = Frame {
        event: String::new(),
        id: None,
        data: String::new(),
    };
    let mut retry = false;
    for line in text.lines() {
        if line.starts_with(':') {
            continue;
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
            "retry".into()
        } else {
            "comment".into()
        };
    }
    frame
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An SSE subscription over a real socket.
pub struct Sse {
    stream: Option<ByteStream>,
    buf: Vec<u8>,
}

/// What [`Sse::next_frame_until`] saw.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    Ended,
    TimedOut,
}

impl Sse {
    /// Connects, checks the status and content type, and reads up to the
    /// `ready` event.
    pub async fn open(url: &str, last_event_id: Option<&str>) -> Sse {
        let client = reqwest::Client::new();
        let mut req = client.get(url);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = tokio::time::timeout(DEADLINE, req.send())
            .await
            .expect("stream answered in time")
            .expect("stream request");
        let status = res.status();
        let ctype = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if status != StatusCode::OK {
            let body = res.text().await.unwrap_or_default();
            panic!("subscribe {url}: {status} {body}");
        }
        assert!(ctype.starts_with("text/event-stream"), "{ctype}");
        let mut sse = Sse {
            stream: Some(Box::pin(res.bytes_stream())),
            buf: Vec::new(),
        };
        let ready = sse.next_event().await;
        assert_eq!(ready.event, "ready", "first event of {url}: {ready:?}");
        sse
    }

    /// The next frame of any kind before `deadline`.
    pub async fn next_frame_until(&mut self, deadline: tokio::time::Instant) -> Next {
        loop {
            if let Some(pos) = memchr::memmem::find(&self.buf, b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Next::Frame(parse_frame(&raw[..pos]));
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

    /// The next named event (comments and retry hints skipped), within
    /// [`DEADLINE`]; panics on timeout or end of stream.
    pub async fn next_event(&mut self) -> Frame {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match self.next_frame_until(deadline).await {
                Next::Frame(f) if f.event == "comment" || f.event == "retry" => continue,
                Next::Frame(f) => return f,
                other => panic!("expected an SSE event within {DEADLINE:?}, got {other:?}"),
            }
        }
    }

    /// The next `log` event's JSON; checks that the SSE id is the event's.
    pub async fn next_log(&mut self) -> Value {
        let f = self.next_event().await;
        assert_eq!(f.event, "log", "unexpected frame {f:?}");
        let json: Value = serde_json::from_str(&f.data)
            .unwrap_or_else(|e| panic!("log data is JSON ({e}): {:?}", f.data));
        assert_eq!(
            f.id.as_deref(),
            json["id"].as_str(),
            "SSE id is the event id"
        );
        json
    }

    /// Exactly `n` `log` events, all within one [`DEADLINE`].
    pub async fn logs(&mut self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next_frame_until(deadline).await {
                Next::Frame(f) if f.event == "comment" || f.event == "retry" => {}
                Next::Frame(f) => {
                    assert_eq!(f.event, "log", "unexpected frame {f:?}");
                    let json: Value = serde_json::from_str(&f.data)
                        .unwrap_or_else(|e| panic!("log data is JSON ({e}): {:?}", f.data));
                    assert_eq!(
                        f.id.as_deref(),
                        json["id"].as_str(),
                        "SSE id is the event id"
                    );
                    out.push(json);
                }
                other => panic!(
                    "{other:?} after {} of {n} events; last: {:?}",
                    out.len(),
                    out.last().map(|e| &e["message"])
                ),
            }
        }
        out
    }

    /// Asserts that no event (only comments) arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            match self.next_frame_until(deadline).await {
                Next::TimedOut => return,
                Next::Frame(f) if f.event == "comment" => {}
                other => panic!("expected silence for {quiet:?}, got {other:?}"),
            }
        }
    }
}

/// The `message` of each event.
pub fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Makes sure events published on `from` reach subscribers of `to` before
/// a test relies on it: publishes a probe on `logs:etl:<probe_ws>` every
/// 250 ms until `to`'s probe subscriber sees one (the NATS subscription of
/// a freshly (re)connected node may lag its `/ready`). Probes use their own
/// workspace, so they never reach the subscribers under test.
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
        from.publish(&[etl_event(probe_ws, &format!("probe{sent}"))])
            .await;
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
