//! End-to-end benchmark of the loggate gateway.
//!
//! Starts the release binary on a free loopback port, opens many SSE
//! subscribers over raw TCP, measures the server's memory per idle stream,
//! then publishes as fast as possible (throughput, fan-out, drops) and at a
//! fixed rate (publish-to-delivery latency), and prints a Markdown summary.
//!
//! ```text
//! cargo build --release && cargo build --release --example loggate-bench
//! cargo run --release --example loggate-bench -- --subscribers 1000 --channels 10
//! ```
//!
//! `scripts/bench.sh` builds both and raises the file-descriptor limit first.
//!
//! With `--cluster` it starts one `nats-server` and two gateways, A and B,
//! joined through it (`NATS_URL`): the subscribers connect to B and the
//! events are published on A, so the figures are those of cross-node
//! delivery (publish on A → NATS → B → SSE).

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use bytes::{Buf, Bytes, BytesMut};
use clap::Parser;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::{MissedTickBehavior, sleep};

const TOKEN: &str = "l5-etl-token";
const SERVICE: &str = "etl";
const WORKSPACE: &str = "bench";
/// Latency histogram upper bound: 60 s in microseconds.
const HIST_MAX_US: u64 = 60_000_000;
/// Subscribers connecting (not yet ready) at once.
const CONNECT_CONCURRENCY: usize = 128;
/// Publishes in flight at once in the fixed-rate phase.
const MAX_IN_FLIGHT: u32 = 256;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loggate-bench",
    about = "Benchmark loggate: idle SSE memory, full-speed fan-out, fixed-rate latency"
)]
struct Args {
    /// The gateway binary to start.
    #[arg(
        long,
        env = "LOGGATE_BENCH_BINARY",
        default_value = "target/release/loggate"
    )]
    binary: PathBuf,
    /// SSE subscribers, spread round-robin over the channels.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Channels `logs:etl:bench:c0..c{N-1}`.
    #[arg(long, default_value_t = 10)]
    channels: usize,
    /// Seconds of full-speed publishing.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Concurrent publishers (one keep-alive connection each) at full speed.
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Events per publish request at full speed (1..=1000).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Single-event publishes per second in the latency phase.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Seconds of fixed-rate publishing.
    #[arg(long, default_value_t = 10.0)]
    latency_duration: f64,
    /// Length of the message text of full-speed events.
    #[arg(long, default_value_t = 64)]
    message_bytes: usize,
    /// Seconds to wait for subscribers to receive everything after a phase.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Seconds to wait for the gateway to answer /healthz, and for all
    /// subscribers to see `event: ready`.
    #[arg(long, default_value_t = 30.0)]
    setup_timeout: f64,
    /// Worker threads of the benchmark's own runtime.
    #[arg(long, default_value_t = 2)]
    bench_threads: usize,
    /// Extra environment for the gateway, `KEY=VALUE` (repeatable). The
    /// gateway otherwise gets a clean environment: built-in defaults plus
    /// HOST, PORT, RUST_LOG=warn, MAX_CONNECTIONS, and the per-address and
    /// rate limits off (MAX_CONNECTIONS_PER_IP=0, CONNECT_RATE_PER_IP=0,
    /// PUBLISH_RATE_PER_SEC=0).
    #[arg(long, value_name = "KEY=VALUE")]
    server_env: Vec<String>,
    /// Where the gateway's stderr goes. With `--cluster`, node A's and
    /// B's go to `<stem>-a.<ext>` and `<stem>-b.<ext>` and nats-server's to
    /// `<stem>-nats.<ext>` beside it.
    #[arg(long, default_value = "target/loggate-bench-server.log")]
    server_log: PathBuf,
    /// Cluster mode: one nats-server and two gateways joined through it
    /// (`NATS_URL`); subscribe on node B, publish on node A.
    #[arg(long)]
    cluster: bool,
    /// The nats-server binary for `--cluster` (if it is not found,
    /// /usr/sbin/nats-server, where Debian's package puts it, is tried).
    #[arg(long, env = "LOGGATE_BENCH_NATS_SERVER", default_value = "nats-server")]
    nats_server: PathBuf,
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(self.subscribers >= 1, "--subscribers must be at least 1");
        ensure!(self.channels >= 1, "--channels must be at least 1");
        ensure!(self.publishers >= 1, "--publishers must be at least 1");
        ensure!(
            (1..=1000).contains(&self.batch),
            "--batch must be between 1 and 1000"
        );
        ensure!(
            self.rate > 0.0 && self.rate.is_finite(),
            "--rate must be positive"
        );
        for (name, v) in [
            ("--duration", self.duration),
            ("--latency-duration", self.latency_duration),
            ("--drain-timeout", self.drain_timeout),
            ("--setup-timeout", self.setup_timeout),
        ] {
            ensure!(
                v >= 0.0 && v.is_finite() && v < 1e6,
                "{name} must be a number of seconds"
            );
        }
        ensure!(
            self.bench_threads >= 1,
            "--bench-threads must be at least 1"
        );
        for kv in &self.server_env {
            ensure!(
                kv.split_once('=').is_some_and(|(k, _)| !k.is_empty()),
                "--server-env wants KEY=VALUE, not {kv:?}"
            );
        }
        Ok(())
    }

    fn summary_line(&self) -> String {
        format!(
            "parameters: subscribers={} channels={} publishers={} batch={} duration={}s \
             rate={}/s latency-duration={}s message-bytes={} bench-threads={} binary={}{}{}",
            self.subscribers,
            self.channels,
            self.publishers,
            self.batch,
            self.duration,
            self.rate,
            self.latency_duration,
            self.message_bytes,
            self.bench_threads,
            self.binary.display(),
            if self.cluster {
                format!(" cluster nats-server={}", self.nats_server.display())
            } else {
                String::new()
            },
            self.server_env
                .iter()
                .map(|kv| format!(" server-env={kv}"))
                .collect::<String>()
        )
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn channel_name(c: usize) -> String {
    format!("logs:{SERVICE}:{WORKSPACE}:c{c}")
}

/// The channel of the cluster warm-up probes, apart from the measured ones.
fn probe_channel() -> String {
    format!("logs:{SERVICE}:{WORKSPACE}:probe")
}

/// `dir/stem.ext` → `dir/stem-suffix.ext`.
fn sibling_log(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "loggate-bench".into());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{suffix}"),
    };
    path.with_file_name(name)
}

/// `n` distinct free loopback ports (held open together while choosing, so
/// they differ; the tiny race with another process is acceptable).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find a free loopback port")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<std::io::Result<Vec<u16>>>()
        .context("cannot find a free loopback port")
}

fn create_log(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).ok();
    }
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// Lines of a log file that contain `needle` (ASCII case-insensitive).
fn count_log_lines(path: &Path, needle: &str) -> usize {
    let needle = needle.to_ascii_lowercase();
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains(&needle))
        .count()
}

// ---------------------------------------------------------------------------
// The gateway child process
// ---------------------------------------------------------------------------

/// A child process: a gateway or nats-server. Dropping it stops the
/// process: SIGTERM, then SIGKILL if it has not exited in time.
struct Server {
    /// "gateway", "gateway A", "gateway B" or "nats-server".
    name: &'static str,
    child: Child,
    pid: u32,
    addr: SocketAddr,
    log: PathBuf,
    stopped: Option<String>,
}

impl Server {
    /// Starts a gateway on `port`, logging to `log_path`, with `extra_env`
    /// on top of the bench's clean environment (and `--server-env` on top
    /// of that).
    fn start(
        args: &Args,
        name: &'static str,
        port: u16,
        log_path: &Path,
        extra_env: &[(&str, String)],
    ) -> anyhow::Result<Server> {
        ensure!(
            args.binary.is_file(),
            "gateway binary {} not found (run `cargo build --release` or pass --binary)",
            args.binary.display()
        );
        let log = create_log(log_path)?;
        let max_connections = (args.subscribers + 64).max(10_000);
        let mut command = Command::new(&args.binary);
        // A clean environment, so that a stray LOGGATE_CONFIG, SERVICE_TOKENS
        // or the like cannot change what is measured.
        command.env_clear();
        for keep in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(keep) {
                command.env(keep, v);
            }
        }
        let child = command
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("RUST_LOG", "warn")
            // Its log goes to a file: no colour escapes.
            .env("NO_COLOR", "1")
            .env("MAX_CONNECTIONS", max_connections.to_string())
            // The bench is one address and one service measuring capacity;
            // the per-address and per-service rate limits would measure
            // themselves instead. `--server-env` can set them back.
            .env("MAX_CONNECTIONS_PER_IP", "0")
            .env("CONNECT_RATE_PER_IP", "0")
            .env("PUBLISH_RATE_PER_SEC", "0")
            .envs(extra_env.iter().map(|(k, v)| (k, v)))
            .envs(args.server_env.iter().filter_map(|kv| kv.split_once('=')))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {}", args.binary.display()))?;
        let pid = child.id();
        Ok(Server {
            name,
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: log_path.to_owned(),
            stopped: None,
        })
    }

    /// Starts `nats-server -a 127.0.0.1 -p <port>`, logging to `log_path`.
    fn start_nats(args: &Args, port: u16, log_path: &Path) -> anyhow::Result<Server> {
        let log = create_log(log_path)?;
        let spawn = |binary: &Path, log: File| {
            Command::new(binary)
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
        };
        let fallback = Path::new("/usr/sbin/nats-server");
        let child = match spawn(&args.nats_server, log.try_clone()?) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && fallback.is_file() => {
                spawn(fallback, log)
            }
            other => other,
        }
        .with_context(|| {
            format!(
                "cannot start {} (install nats-server, e.g. `apt-get install nats-server`, \
                 or pass --nats-server)",
                args.nats_server.display()
            )
        })?;
        let pid = child.id();
        Ok(Server {
            name: "nats-server",
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: log_path.to_owned(),
            stopped: None,
        })
    }

    /// Waits until the process accepts TCP connections (for nats-server).
    async fn wait_listening(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited during start-up ({status})\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(self.addr))
                    .await
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not listen on {} within {timeout:?}\n{}",
                    self.name,
                    self.addr,
                    self.log_tail()
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/ready` until it answers 200 (a cluster node: its NATS link
    /// is connected).
    async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let url = format!("http://{}/ready", self.addr);
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited during start-up ({status})\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let last = match client
                .get(&url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
            {
                Ok(resp) if resp.status() == reqwest::StatusCode::OK => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    format!("{status} {}", resp.text().await.unwrap_or_default())
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer /ready with 200 within {timeout:?} (last: {last})\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }

    /// Polls `/healthz` until it answers `200 ok`.
    async fn wait_healthy(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let url = format!("http://{}/healthz", self.addr);
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited during start-up ({status})\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if let Ok(resp) = client
                .get(&url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
                && resp.status() == reqwest::StatusCode::OK
                && resp.bytes().await.is_ok_and(|b| b.trim_ascii() == b"ok")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer /healthz within {timeout:?}\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    fn status(&self) -> anyhow::Result<ProcStatus> {
        ProcStatus::read(self.pid)
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns a description.
    fn stop(&mut self, grace: Duration) -> String {
        if let Some(s) = &self.stopped {
            return s.clone();
        }
        let result = (|| {
            if let Some(status) = self.exited() {
                return format!("had already exited ({status})");
            }
            let began = Instant::now();
            let sent = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if sent {
                while began.elapsed() < grace {
                    if let Some(status) = self.exited() {
                        return format!(
                            "exited after SIGTERM in {:.0?} ({status})",
                            began.elapsed()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = self.child.kill();
            let status = self.child.wait();
            format!(
                "did not exit {} within {grace:?}; killed ({})",
                if sent {
                    "after SIGTERM"
                } else {
                    "(SIGTERM failed)"
                },
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string())
            )
        })();
        self.stopped = Some(result.clone());
        result
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stopped.is_none() {
            let what = self.stop(Duration::from_secs(5));
            eprintln!("loggate-bench: {} (pid {}) {what}", self.name, self.pid);
        }
    }
}

/// Memory figures from `/proc/<pid>/status`, in KiB.
#[derive(Clone, Copy, Debug)]
struct ProcStatus {
    rss_kib: u64,
    hwm_kib: u64,
}

impl ProcStatus {
    fn read(pid: u32) -> anyhow::Result<ProcStatus> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| anyhow!("no {name} in {path}"))
        };
        Ok(ProcStatus {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }
}

/// utime + stime, in clock ticks, from a `/proc/.../stat` file.
fn cpu_ticks(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`, which may itself contain spaces; the first
    // of them is field 3 (state), so utime (14) and stime (15) are 11 and 12.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The soft open-file limit of this process (which the gateway inherits).
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

fn pid_cpu_ticks(pid: u32) -> Option<u64> {
    cpu_ticks(&format!("/proc/{pid}/stat"))
}

/// CPU use of the child processes and of this process over a stretch of time.
struct CpuMeter {
    pids: Vec<u32>,
    procs: Vec<Option<u64>>,
    bench: Option<u64>,
    at: Instant,
}

impl CpuMeter {
    fn start(pids: &[u32]) -> CpuMeter {
        CpuMeter {
            pids: pids.to_vec(),
            procs: pids.iter().map(|&p| pid_cpu_ticks(p)).collect(),
            bench: cpu_ticks("/proc/self/stat"),
            at: Instant::now(),
        }
    }

    /// (% of one core of each child, in the order given, bench %).
    fn finish(&self, tck: f64) -> (Vec<Option<f64>>, Option<f64>) {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let pct = |before: Option<u64>, after: Option<u64>| {
            Some(after?.saturating_sub(before?) as f64 / tck / wall * 100.0)
        };
        (
            self.pids
                .iter()
                .zip(&self.procs)
                .map(|(&pid, &before)| pct(before, pid_cpu_ticks(pid)))
                .collect(),
            pct(self.bench, cpu_ticks("/proc/self/stat")),
        )
    }
}

// ---------------------------------------------------------------------------
// Subscribers
// ---------------------------------------------------------------------------

/// Counters of one subscriber, on their own cache line.
#[repr(align(64))]
#[derive(Default)]
struct SubStats {
    delivered: AtomicU64,
    dropped: AtomicU64,
    lag_frames: AtomicU64,
    /// Nanoseconds since the bench started, at the last `event: log`.
    last_delivery_ns: AtomicU64,
}

struct Shared {
    start: Instant,
    subs: Vec<SubStats>,
    ready: AtomicUsize,
    failed: AtomicUsize,
    /// Streams that ended (or broke) while the bench still wanted them.
    ended: AtomicUsize,
    shutdown_frames: AtomicUsize,
    unparsed_latency: AtomicU64,
    first_error: Mutex<Option<String>>,
    stopping: AtomicBool,
}

impl Shared {
    fn new(n: usize) -> Shared {
        Shared {
            start: Instant::now(),
            subs: (0..n).map(|_| SubStats::default()).collect(),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
            shutdown_frames: AtomicUsize::new(0),
            unparsed_latency: AtomicU64::new(0),
            first_error: Mutex::new(None),
            stopping: AtomicBool::new(false),
        }
    }

    fn error_text(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn error(&self, e: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e);
        }
    }

    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.subs {
            t.delivered += s.delivered.load(Relaxed);
            t.dropped += s.dropped.load(Relaxed);
            t.lag_frames += s.lag_frames.load(Relaxed);
            t.last_delivery_ns = t.last_delivery_ns.max(s.last_delivery_ns.load(Relaxed));
        }
        t
    }
}

#[derive(Default, Clone, Copy, Debug)]
struct Totals {
    delivered: u64,
    dropped: u64,
    lag_frames: u64,
    last_delivery_ns: u64,
}

fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    memchr::memchr(needle, hay)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn parse_u64_prefix(s: &[u8]) -> Option<u64> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    Some(
        s[..digits]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
    )
}

/// Incremental HTTP/1.1 chunked-transfer decoder.
enum ChunkState {
    Size,
    Data(usize),
    DataEnd,
    Done,
}

struct Decoder {
    chunked: bool,
    state: ChunkState,
}

impl Decoder {
    /// Hands the decoded body bytes in `raw` to `out`, piece by piece, and
    /// removes what it used from `raw`. Returns false at the end of the body.
    fn decode(&mut self, raw: &mut BytesMut, mut out: impl FnMut(&[u8])) -> anyhow::Result<bool> {
        if !self.chunked {
            out(raw);
            raw.clear();
            return Ok(true);
        }
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(nl) = find_byte(raw, b'\n') else {
                        ensure!(raw.len() < 1024, "chunk-size line too long");
                        return Ok(true);
                    };
                    let line = raw[..nl].trim_ascii();
                    let hex = line
                        .split(|&b| b == b';')
                        .next()
                        .unwrap_or_default()
                        .trim_ascii();
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| usize::from_str_radix(h, 16).ok())
                        .ok_or_else(|| {
                            anyhow!("bad chunk size line {:?}", String::from_utf8_lossy(line))
                        })?;
                    raw.advance(nl + 1);
                    self.state = if size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if raw.is_empty() {
                        return Ok(true);
                    }
                    let n = left.min(raw.len());
                    out(&raw[..n]);
                    raw.advance(n);
                    self.state = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => {
                    let Some(nl) = find_byte(raw, b'\n') else {
                        return Ok(true);
                    };
                    ensure!(raw[..nl].trim_ascii().is_empty(), "junk after chunk data");
                    raw.advance(nl + 1);
                    self.state = ChunkState::Size;
                }
                ChunkState::Done => return Ok(false),
            }
        }
    }
}

/// Splits a subscriber's body into SSE frames. Pieces that hold whole frames
/// are parsed where they lie; only an unfinished frame is copied aside.
#[derive(Default)]
struct FrameSplitter {
    /// The start of an unfinished frame.
    partial: Vec<u8>,
    /// How far into `partial` the search for the frame's end has got.
    scan_from: usize,
}

impl FrameSplitter {
    fn feed(
        &mut self,
        piece: &[u8],
        now_ns: u64,
        hist: &mut Histogram<u64>,
        counts: &mut FrameCounts,
    ) {
        if self.partial.is_empty() {
            let mut scan_from = 0;
            let used = parse_frames(piece, &mut scan_from, now_ns, hist, counts);
            self.partial.extend_from_slice(&piece[used..]);
            self.scan_from = scan_from;
        } else {
            self.partial.extend_from_slice(piece);
            let used = parse_frames(&self.partial, &mut self.scan_from, now_ns, hist, counts);
            self.partial.drain(..used);
        }
    }
}

/// What one subscriber has seen in a batch of frames.
#[derive(Default)]
struct FrameCounts {
    logs: u64,
    dropped: u64,
    lag_frames: u64,
    ready: bool,
    shutdown: bool,
    bad_latency: u64,
}

/// Handles every complete SSE frame in `sse[..]`, records latencies, and
/// returns how many bytes were consumed. `scan_from` remembers how far a
/// previous call looked for the end of the unfinished frame.
fn parse_frames(
    sse: &[u8],
    scan_from: &mut usize,
    now_ns: u64,
    hist: &mut Histogram<u64>,
    counts: &mut FrameCounts,
) -> usize {
    let mut frame_start = 0;
    let mut pos = *scan_from;
    let resume = loop {
        let Some(p) = find_byte(&sse[pos..], b'\n') else {
            // No newline left: the next call need not look at these bytes.
            break sse.len();
        };
        let nl = pos + p;
        if nl + 1 == sse.len() {
            // Cannot tell yet whether a second newline follows.
            break nl;
        }
        if sse[nl + 1] != b'\n' {
            pos = nl + 1;
            continue;
        }
        // A frame: everything up to this newline, then a blank line.
        handle_frame(&sse[frame_start..nl], now_ns, hist, counts);
        frame_start = nl + 2;
        pos = frame_start;
    };
    *scan_from = resume - frame_start;
    frame_start
}

/// The send time in a latency-phase event: the digits after
/// `"message":"t=`. `Some(None)` if the marker is there but the number is not.
/// Looks for the rare `=` first, so events without a marker cost one fast scan.
fn sent_at(frame: &[u8]) -> Option<Option<u64>> {
    const MARK: &[u8] = b"\"message\":\"t";
    let mut from = 0;
    while let Some(p) = find_byte(&frame[from..], b'=') {
        let eq = from + p;
        if frame[..eq].ends_with(MARK) {
            return Some(parse_u64_prefix(&frame[eq + 1..]));
        }
        from = eq + 1;
    }
    None
}

fn handle_frame(frame: &[u8], now_ns: u64, hist: &mut Histogram<u64>, counts: &mut FrameCounts) {
    if frame.starts_with(b"event: log\n") {
        counts.logs += 1;
        match sent_at(frame) {
            Some(Some(sent)) => hist.saturating_record(now_ns.saturating_sub(sent) / 1000),
            Some(None) => counts.bad_latency += 1,
            None => {}
        }
    } else if frame.starts_with(b"event: lag\n") {
        counts.lag_frames += 1;
        const DROPPED: &[u8] = b"\"dropped\":";
        if let Some(at) = find(frame, DROPPED) {
            counts.dropped += parse_u64_prefix(&frame[at + DROPPED.len()..]).unwrap_or(0);
        }
    } else if frame.starts_with(b"event: ready\n") {
        counts.ready = true;
    } else if frame.starts_with(b"event: shutdown") {
        counts.shutdown = true;
    }
    // `retry:`, `: keepalive` and anything else: ignored.
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

async fn subscriber(
    idx: usize,
    channel: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    connect: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Histogram<u64> {
    let mut hist = new_histogram();
    let permit = connect.acquire_owned().await.ok();
    let result = subscriber_inner(idx, &channel, addr, &shared, permit, &mut stop, &mut hist).await;
    if let Err(e) = result {
        if shared.stopping.load(Relaxed) {
            return hist;
        }
        shared.error(format!("subscriber {idx} ({channel}): {e:#}"));
    }
    hist
}

async fn subscriber_inner(
    idx: usize,
    channel: &str,
    addr: SocketAddr,
    shared: &Shared,
    mut permit: Option<tokio::sync::OwnedSemaphorePermit>,
    stop: &mut watch::Receiver<bool>,
    hist: &mut Histogram<u64>,
) -> anyhow::Result<()> {
    let stats = &shared.subs[idx];
    let mut ready = false;
    let fail = |ready: bool| {
        if !ready {
            shared.failed.fetch_add(1, Relaxed);
        } else {
            shared.ended.fetch_add(1, Relaxed);
        }
    };
    let mut stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            fail(false);
            let hint = if e.raw_os_error() == Some(24) {
                " (EMFILE: raise the fd limit, e.g. `ulimit -n 65536`)"
            } else {
                ""
            };
            bail!("connect: {e}{hint}");
        }
    };
    stream.set_nodelay(true).ok();
    let request = format!(
        "GET /api/logs/stream?channels={channel} HTTP/1.1\r\nHost: {addr}\r\n\
         Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        fail(false);
        bail!("write request: {e}");
    }

    let mut raw = BytesMut::with_capacity(16 * 1024);
    // Response head.
    let head_end = loop {
        if let Some(p) = find(&raw, b"\r\n\r\n") {
            break p + 4;
        }
        if raw.len() > 16 * 1024 {
            fail(false);
            bail!("response head too long");
        }
        match stream.read_buf(&mut raw).await {
            Ok(0) => {
                fail(false);
                bail!(
                    "connection closed before the response head ({:?})",
                    String::from_utf8_lossy(&raw)
                );
            }
            Ok(_) => {}
            Err(e) => {
                fail(false);
                bail!("read response head: {e}");
            }
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        let status_line = String::from_utf8_lossy(&raw[..head_end])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        fail(false);
        let body = String::from_utf8_lossy(&raw[head_end..]).into_owned();
        bail!("stream refused: {status_line} {}", body.trim());
    }
    let chunked = head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    raw.advance(head_end);

    let mut decoder = Decoder {
        chunked,
        state: ChunkState::Size,
    };
    let mut frames = FrameSplitter::default();
    loop {
        let now_ns = shared.now_ns();
        let mut counts = FrameCounts::default();
        let decoded = decoder.decode(&mut raw, |piece| {
            frames.feed(piece, now_ns, hist, &mut counts);
        });
        let alive = match decoded {
            Ok(alive) => alive,
            Err(e) => {
                fail(ready);
                return Err(e);
            }
        };
        if counts.logs > 0 {
            stats.delivered.fetch_add(counts.logs, Relaxed);
            stats.last_delivery_ns.fetch_max(now_ns, Relaxed);
        }
        if counts.lag_frames > 0 {
            stats.lag_frames.fetch_add(counts.lag_frames, Relaxed);
            stats.dropped.fetch_add(counts.dropped, Relaxed);
        }
        if counts.bad_latency > 0 {
            shared
                .unparsed_latency
                .fetch_add(counts.bad_latency, Relaxed);
        }
        if counts.ready && !ready {
            ready = true;
            drop(permit.take());
            shared.ready.fetch_add(1, Relaxed);
        }
        if counts.shutdown {
            shared.shutdown_frames.fetch_add(1, Relaxed);
        }
        if !alive {
            fail(ready);
            bail!("stream ended (terminal chunk)");
        }
        if raw.capacity() - raw.len() < 4096 {
            raw.reserve(32 * 1024);
        }
        tokio::select! {
            biased;
            r = stream.read_buf(&mut raw) => match r {
                Ok(0) => {
                    fail(ready);
                    bail!("connection closed by the server");
                }
                Ok(_) => {}
                Err(e) => {
                    fail(ready);
                    bail!("read: {e}");
                }
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")
}

fn event_json(out: &mut String, c: usize, message: &str) {
    let _ = write!(
        out,
        "{{\"service\":\"{SERVICE}\",\"workspace_id\":\"{WORKSPACE}\",\"resource_id\":\"c{c}\",\
         \"logData\":{{\"level\":\"info\",\"message\":\"{message}\"}}}}"
    );
}

fn probe_body() -> Bytes {
    Bytes::from(format!(
        "{{\"service\":\"{SERVICE}\",\"workspace_id\":\"{WORKSPACE}\",\"resource_id\":\"probe\",\
         \"logData\":{{\"level\":\"info\",\"message\":\"probe\"}}}}"
    ))
}

fn batch_body(c: usize, batch: usize, message: &str) -> Bytes {
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

/// `"accepted":N` from a publish answer.
fn accepted_count(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"accepted\":";
    let at = find(body, KEY)?;
    parse_u64_prefix(body[at + KEY.len()..].trim_ascii_start())
}

#[derive(Default)]
struct PublishStats {
    per_channel: Vec<AtomicU64>,
    requests_ok: AtomicU64,
    requests_failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl PublishStats {
    fn new(channels: usize) -> PublishStats {
        PublishStats {
            per_channel: (0..channels).map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        }
    }

    fn events(&self) -> u64 {
        self.per_channel.iter().map(|a| a.load(Relaxed)).sum()
    }

    fn expected_deliveries(&self, subs_on: &[u64]) -> u64 {
        self.per_channel
            .iter()
            .zip(subs_on)
            .map(|(p, s)| p.load(Relaxed) * s)
            .sum()
    }

    fn failed(&self, e: String) {
        self.requests_failed.fetch_add(1, Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e);
        }
    }

    fn error_text(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sends one publish request and records the outcome; true if accepted.
    async fn publish(&self, client: &reqwest::Client, url: &str, c: usize, body: Bytes) -> bool {
        let sent = client
            .post(url)
            .header("X-Service-Token", TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
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
            }
            Err(e) => self.failed(format!("POST: {e}")),
        }
        false
    }
}

/// Waits until subscribers have received (or been told they lost) everything
/// published since `base`; gives up after `timeout`, or after 5 s without
/// progress.
async fn drain(shared: &Shared, base: Totals, expected: u64, timeout: Duration) -> (Totals, bool) {
    let deadline = Instant::now() + timeout;
    let mut last_progress = Instant::now();
    let mut last_seen = u64::MAX;
    loop {
        let t = shared.totals();
        let seen = (t.delivered - base.delivered) + (t.dropped - base.dropped);
        if seen >= expected {
            return (t, true);
        }
        if seen != last_seen {
            last_seen = seen;
            last_progress = Instant::now();
        }
        if Instant::now() >= deadline || last_progress.elapsed() > Duration::from_secs(5) {
            return (t, false);
        }
        sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------

struct Report {
    rows: Vec<(String, String)>,
}

impl Report {
    fn row(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.rows.push((k.into(), v.into()));
    }

    fn print(&self) {
        println!("| Metric | Value |");
        println!("|---|---|");
        for (k, v) in &self.rows {
            println!("| {k} | {v} |");
        }
    }
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} %"))
        .unwrap_or_else(|| "n/a".into())
}

/// The sum of every sample of one counter in Prometheus text format.
fn metric_sum(text: &str, name: &str) -> Option<u64> {
    metric_sum_with(text, name, &[])
}

/// The sum of the samples of one counter whose labels include every one of
/// `labels` (each `key="value"`); None if there is no such sample.
fn metric_sum_with(text: &str, name: &str, labels: &[&str]) -> Option<u64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let label_set = if let Some(inner) = rest.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => format!(",{},", &inner[..end]),
                None => continue,
            }
        } else if rest.starts_with(' ') {
            String::from(",")
        } else {
            continue;
        };
        if !labels.iter().all(|l| label_set.contains(&format!(",{l},"))) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            found = true;
            sum += v;
        }
    }
    found.then_some(sum as u64)
}

async fn fetch_metrics(client: &reqwest::Client, base_url: &str) -> Option<String> {
    client
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// Published events according to the publishing gateway's `/metrics` text,
/// delivered and dropped ones according to the subscribing gateway's (the
/// same text in single-node mode).
fn server_counts(pub_text: &str, sub_text: &str) -> Option<[u64; 3]> {
    Some([
        metric_sum(pub_text, "loggate_events_published_total")?,
        metric_sum(sub_text, "loggate_events_delivered_total")?,
        metric_sum(sub_text, "loggate_events_dropped_total").unwrap_or(0),
    ])
}

/// The cluster path's counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct ClusterCounters {
    /// `loggate_nats_messages_total{link="cluster",direction="out"}` on A.
    a_out: u64,
    /// `loggate_nats_messages_total{link="cluster",direction="in"}` on B.
    b_in: u64,
    /// `loggate_nats_messages_total{link="cluster",direction="invalid"}` on B.
    b_invalid: u64,
    /// `loggate_events_dropped_total{reason="nats_backlog"}` on A: events
    /// dropped because A's outbound NATS queue was full. None while A
    /// has no such series.
    a_backlog: Option<u64>,
    /// Lines saying "slow consumer" in B's log: its NATS client dropped
    /// inbound messages because B did not take them fast enough.
    b_slow_logs: usize,
    /// Lines saying "slow consumer" in nats-server's log.
    nats_slow_logs: usize,
}

impl ClusterCounters {
    async fn read(client: &reqwest::Client, nodes: &Nodes) -> Option<ClusterCounters> {
        let nats = nodes.nats.as_ref()?;
        let a = fetch_metrics(client, &format!("http://{}", nodes.publisher().addr)).await?;
        let b = fetch_metrics(client, &format!("http://{}", nodes.subscriber().addr)).await?;
        let nats_msgs = |text: &str, dir: &str| {
            metric_sum_with(
                text,
                "loggate_nats_messages_total",
                &["link=\"cluster\"", &format!("direction=\"{dir}\"")],
            )
            .unwrap_or(0)
        };
        Some(ClusterCounters {
            a_out: nats_msgs(&a, "out"),
            b_in: nats_msgs(&b, "in"),
            b_invalid: nats_msgs(&b, "invalid"),
            a_backlog: metric_sum_with(
                &a,
                "loggate_events_dropped_total",
                &["reason=\"nats_backlog\""],
            ),
            b_slow_logs: count_log_lines(&nodes.subscriber().log, "slow consumer"),
            nats_slow_logs: count_log_lines(&nats.log, "slow consumer"),
        })
    }

    /// What happened between `base` and `self`, as a report value.
    fn delta_text(&self, base: &ClusterCounters) -> String {
        let backlog = self.a_backlog.unwrap_or(0) - base.a_backlog.unwrap_or(0);
        let mut s = format!(
            "NATS messages A out {} / B in {} (lost in between {}); dropped on A for \
             nats_backlog {}; slow-consumer log lines B {} / nats-server {}",
            thousands(self.a_out - base.a_out),
            thousands(self.b_in - base.b_in),
            thousands((self.a_out - base.a_out).saturating_sub(self.b_in - base.b_in)),
            thousands(backlog),
            self.b_slow_logs - base.b_slow_logs,
            self.nats_slow_logs - base.nats_slow_logs,
        );
        if self.b_invalid > base.b_invalid {
            let _ = write!(
                s,
                "; invalid on B {}",
                thousands(self.b_invalid - base.b_invalid)
            );
        }
        s
    }
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("loggate-bench: {}", msg.as_ref());
}

/// The processes under test: one gateway; or nats-server, node A (publish)
/// and node B (subscribe).
struct Nodes {
    /// One gateway, or A then B. Declared before `nats`, so they are
    /// dropped (stopped) before it.
    gateways: Vec<Server>,
    nats: Option<Server>,
    /// `nats-server --version`, of the binary that runs.
    nats_version: Option<String>,
}

impl Nodes {
    async fn start(args: &Args, client: &reqwest::Client) -> anyhow::Result<Nodes> {
        let timeout = secs(args.setup_timeout.max(1.0));
        if !args.cluster {
            let port = free_ports(1)?[0];
            let mut server = Server::start(args, "gateway", port, &args.server_log, &[])?;
            progress(format!(
                "gateway pid {} on http://{} (log: {})",
                server.pid,
                server.addr,
                server.log.display()
            ));
            server.wait_healthy(client, timeout).await?;
            return Ok(Nodes {
                gateways: vec![server],
                nats: None,
                nats_version: None,
            });
        }
        let ports = free_ports(3)?;
        // Locals drop in reverse order: on an early return the gateways
        // stop before nats-server.
        let mut nats = Server::start_nats(args, ports[0], &sibling_log(&args.server_log, "nats"))?;
        progress(format!(
            "nats-server pid {} on nats://{} (log: {})",
            nats.pid,
            nats.addr,
            nats.log.display()
        ));
        nats.wait_listening(timeout).await?;
        let nats_version = std::fs::read_link(format!("/proc/{}/exe", nats.pid))
            .ok()
            .and_then(|exe| Command::new(exe).arg("--version").output().ok())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let env = [("NATS_URL", format!("nats://{}", nats.addr))];
        let mut a = Server::start(
            args,
            "gateway A",
            ports[1],
            &sibling_log(&args.server_log, "a"),
            &env,
        )?;
        let mut b = Server::start(
            args,
            "gateway B",
            ports[2],
            &sibling_log(&args.server_log, "b"),
            &env,
        )?;
        for node in [&a, &b] {
            progress(format!(
                "{} pid {} on http://{} (log: {})",
                node.name,
                node.pid,
                node.addr,
                node.log.display()
            ));
        }
        a.wait_healthy(client, timeout).await?;
        b.wait_healthy(client, timeout).await?;
        let began = Instant::now();
        a.wait_ready(client, timeout).await?;
        b.wait_ready(client, timeout).await?;
        progress(format!(
            "both nodes /ready (NATS connected) after {:.0?}",
            began.elapsed()
        ));
        Ok(Nodes {
            gateways: vec![a, b],
            nats: Some(nats),
            nats_version,
        })
    }

    fn cluster(&self) -> bool {
        self.nats.is_some()
    }

    /// Where events are published: the gateway, or node A.
    fn publisher(&self) -> &Server {
        &self.gateways[0]
    }

    /// Where the subscribers are: the gateway, or node B.
    fn subscriber(&self) -> &Server {
        &self.gateways[self.gateways.len() - 1]
    }

    /// The gateways' pids, then nats-server's.
    fn pids(&self) -> Vec<u32> {
        self.gateways
            .iter()
            .chain(&self.nats)
            .map(|s| s.pid)
            .collect()
    }

    /// Fails if a process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for s in self.gateways.iter_mut().chain(&mut self.nats) {
            if let Some(status) = s.exited() {
                bail!("{} exited ({status})\n{}", s.name, s.log_tail());
            }
        }
        Ok(())
    }

    /// The CPU row's label suffix and value.
    fn cpu_row(&self, (procs, bench): (Vec<Option<f64>>, Option<f64>)) -> (&'static str, String) {
        let all: Vec<String> = procs.into_iter().chain([bench]).map(pct).collect();
        let label = if self.cluster() {
            "CPU A / B / nats-server / bench"
        } else {
            "CPU server / bench"
        };
        (label, all.join(" / "))
    }

    /// Stops the gateways (SIGTERM, then SIGKILL after 15 s), then
    /// nats-server; one description for each.
    fn stop(&mut self) -> (String, Option<String>) {
        let cluster = self.cluster();
        let gateways: Vec<String> = self
            .gateways
            .iter_mut()
            .map(|s| {
                let what = s.stop(Duration::from_secs(15));
                progress(format!("{} {what}", s.name));
                if cluster {
                    format!("{}: {what}", s.name.trim_start_matches("gateway "))
                } else {
                    what
                }
            })
            .collect();
        let nats = self.nats.as_mut().map(|s| {
            let what = s.stop(Duration::from_secs(15));
            progress(format!("{} {what}", s.name));
            what
        });
        (gateways.join("; "), nats)
    }
}

/// The cluster warm-up: a subscriber on node B's probe channel and the
/// probe events published on node A until one arrived.
struct WarmUp {
    shared: Arc<Shared>,
    handle: tokio::task::JoinHandle<Histogram<u64>>,
    probes: Arc<PublishStats>,
    sent: u64,
    took: Duration,
}

/// A node's NATS subscription may reach nats-server a little after its
/// `/ready` turns 200: publishes probe events on A (every 100 ms, on a
/// channel of their own) until one reaches a subscriber on B.
async fn warm_up(
    args: &Args,
    client: &reqwest::Client,
    publish_url: &str,
    nodes: &mut Nodes,
    connect: &Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<WarmUp> {
    let timeout = secs(args.setup_timeout.max(1.0));
    let began = Instant::now();
    let deadline = began + timeout;
    let shared = Arc::new(Shared::new(1));
    let handle = tokio::spawn(subscriber(
        0,
        probe_channel(),
        nodes.subscriber().addr,
        Arc::clone(&shared),
        Arc::clone(connect),
        stop,
    ));
    while shared.ready.load(Relaxed) == 0 {
        if shared.failed.load(Relaxed) > 0 || Instant::now() >= deadline {
            bail!(
                "the probe subscriber on node B did not become ready: {}",
                shared.error_text().unwrap_or_else(|| "timed out".into())
            );
        }
        nodes.check_alive()?;
        sleep(Duration::from_millis(10)).await;
    }
    let probes = Arc::new(PublishStats::new(1));
    let body = probe_body();
    let first = Instant::now();
    let mut sent = 0u64;
    loop {
        probes.publish(client, publish_url, 0, body.clone()).await;
        sent += 1;
        let next = Instant::now() + Duration::from_millis(100);
        while Instant::now() < next {
            if shared.totals().delivered > 0 {
                return Ok(WarmUp {
                    shared,
                    handle,
                    probes,
                    sent,
                    took: first.elapsed(),
                });
            }
            sleep(Duration::from_millis(5)).await;
        }
        if Instant::now() >= deadline {
            bail!(
                "no probe event published on node A reached node B within {timeout:?} \
                 ({sent} sent, {} accepted{})",
                probes.requests_ok.load(Relaxed),
                probes
                    .error_text()
                    .map(|e| format!("; first error: {e}"))
                    .unwrap_or_default()
            );
        }
        nodes.check_alive()?;
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let tck = clock_ticks_per_sec();
    let needed = args.subscribers as u64 + 256;
    match open_file_limit() {
        Some(limit) if limit < needed => progress(format!(
            "warning: the open-file limit is {limit}, but {} subscribers need about {needed} \
             (in this process and in the gateway); raise it with `ulimit -n` or use scripts/bench.sh",
            args.subscribers
        )),
        _ => {}
    }
    let client = http_client()?;
    let mut nodes = Nodes::start(args, &client).await?;
    let cluster = nodes.cluster();
    let pub_base_url = format!("http://{}", nodes.publisher().addr);
    let sub_base_url = format!("http://{}", nodes.subscriber().addr);
    let sub_addr = nodes.subscriber().addr;
    let publish_url = format!("{pub_base_url}/api/logs/publish");

    let mut report = Report { rows: Vec::new() };
    report.row(
        "Mode",
        if cluster {
            format!(
                "cluster: publish on A, subscribe on B, one nats-server ({})",
                nodes.nats_version.as_deref().unwrap_or("version unknown")
            )
        } else {
            "single node".into()
        },
    );
    let n = args.subscribers;
    let c_count = args.channels;
    let mut subs_on = vec![0u64; c_count];
    for i in 0..n {
        subs_on[i % c_count] += 1;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let connect = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));

    // --- Cluster warm-up ----------------------------------------------------
    let warm = if cluster {
        progress("warm-up: probe events on node A until one reaches node B");
        let w = warm_up(
            args,
            &client,
            &publish_url,
            &mut nodes,
            &connect,
            stop_rx.clone(),
        )
        .await?;
        progress(format!(
            "warm-up: first probe reached node B after {:.0?} ({} sent)",
            w.took, w.sent
        ));
        Some(w)
    } else {
        None
    };

    // --- Idle subscribers and their memory --------------------------------
    sleep(Duration::from_millis(300)).await;
    let before = nodes.subscriber().status()?;
    let a_before = if cluster {
        Some(nodes.publisher().status()?)
    } else {
        None
    };
    let shared = Arc::new(Shared::new(n));
    progress(format!(
        "opening {n} SSE subscribers on {c_count} channels{}",
        if cluster { " on node B" } else { "" }
    ));
    let opening = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(subscriber(
                i,
                channel_name(i % c_count),
                sub_addr,
                Arc::clone(&shared),
                Arc::clone(&connect),
                stop_rx.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + secs(args.setup_timeout);
    loop {
        let ready = shared.ready.load(Relaxed);
        let failed = shared.failed.load(Relaxed);
        if ready == n {
            break;
        }
        if failed > 0 || Instant::now() >= deadline {
            let why = shared.error_text().unwrap_or_else(|| "timed out".into());
            bail!("only {ready} of {n} subscribers became ready ({failed} failed): {why}");
        }
        nodes.check_alive()?;
        sleep(Duration::from_millis(20)).await;
    }
    let open_time = opening.elapsed();
    progress(format!(
        "all {n} subscribers ready in {open_time:.2?}; idling 1 s"
    ));
    sleep(Duration::from_secs(1)).await;
    let after = nodes.subscriber().status()?;
    let per_conn = (after.rss_kib as f64 - before.rss_kib as f64) / n as f64;
    let (rss_label, per_conn_label) = if cluster {
        (
            "Node B RSS before → after opening subscribers",
            "Node B RSS per idle SSE connection",
        )
    } else {
        (
            "Server RSS before → after opening subscribers",
            "Server RSS per idle SSE connection",
        )
    };
    report.row(
        "SSE subscribers (channels)",
        format!(
            "{} ({c_count}){}",
            thousands(n as u64),
            if cluster { " on node B" } else { "" }
        ),
    );
    report.row(
        "Time to open all subscribers",
        format!("{:.2} s", open_time.as_secs_f64()),
    );
    report.row(
        rss_label,
        format!("{} → {}", mib(before.rss_kib), mib(after.rss_kib)),
    );
    report.row(per_conn_label, format!("{per_conn:.1} KiB"));
    if let Some(a_before) = a_before {
        let a_after = nodes.publisher().status()?;
        report.row(
            "Node A RSS (no subscribers) at the same moments",
            format!("{} → {}", mib(a_before.rss_kib), mib(a_after.rss_kib)),
        );
    }
    if let Some(w) = &warm {
        report.row(
            "Cluster warm-up: first probe on A delivered on B after",
            format!(
                "{:.0} ms ({} probe publishes)",
                w.took.as_secs_f64() * 1000.0,
                w.sent
            ),
        );
    }

    // --- Full-speed phase -------------------------------------------------
    let mut bodies = Vec::with_capacity(c_count);
    let filler = "x".repeat(args.message_bytes);
    for c in 0..c_count {
        bodies.push(batch_body(c, args.batch, &filler));
    }
    let bodies = Arc::new(bodies);
    let full = Arc::new(PublishStats::new(c_count));
    let next_channel = Arc::new(AtomicUsize::new(0));
    progress(format!(
        "full speed: {} publishers × batches of {} for {} s{}",
        args.publishers,
        args.batch,
        args.duration,
        if cluster { " on node A" } else { "" }
    ));
    let cluster_base = ClusterCounters::read(&client, &nodes).await;
    let base = shared.totals();
    let cpu = CpuMeter::start(&nodes.pids());
    let first_publish_ns = shared.now_ns();
    let pub_start = Instant::now();
    let end = pub_start + secs(args.duration);
    let mut publishers = Vec::new();
    for _ in 0..args.publishers {
        let client = http_client()?;
        let (bodies, full, next, url) = (
            Arc::clone(&bodies),
            Arc::clone(&full),
            Arc::clone(&next_channel),
            publish_url.clone(),
        );
        publishers.push(tokio::spawn(async move {
            while Instant::now() < end {
                let c = next.fetch_add(1, Relaxed) % bodies.len();
                if !full.publish(&client, &url, c, bodies[c].clone()).await {
                    // Do not spin on a failing server.
                    sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }
    for p in publishers {
        p.await.context("publisher task failed")?;
    }
    let pub_elapsed = pub_start.elapsed().as_secs_f64();
    let published = full.events();
    let expected = full.expected_deliveries(&subs_on);
    progress(format!(
        "published {} events in {pub_elapsed:.2} s; waiting for {} deliveries",
        thousands(published),
        thousands(expected)
    ));
    let (t, complete) = drain(&shared, base, expected, secs(args.drain_timeout)).await;
    let (cpu_label, cpu_value) = nodes.cpu_row(cpu.finish(tck));
    let cluster_full = ClusterCounters::read(&client, &nodes).await;
    let delivered = t.delivered - base.delivered;
    let dropped = t.dropped - base.dropped;
    let lag_frames = t.lag_frames - base.lag_frames;
    let delivery_span = t.last_delivery_ns.saturating_sub(first_publish_ns) as f64 / 1e9;
    let missing = expected.saturating_sub(delivered);
    report.row(
        "Full speed: events published/s",
        format!(
            "{} ({} events in {pub_elapsed:.2} s, {} requests)",
            thousands((published as f64 / pub_elapsed) as u64),
            thousands(published),
            thousands(full.requests_ok.load(Relaxed))
        ),
    );
    report.row(
        "Full speed: deliveries/s",
        if delivered > 0 && delivery_span > 0.0 {
            format!(
                "{} ({} in {delivery_span:.2} s)",
                thousands((delivered as f64 / delivery_span) as u64),
                thousands(delivered)
            )
        } else {
            "0".into()
        },
    );
    report.row(
        "Full speed: lag frames / events dropped",
        format!("{} / {}", thousands(lag_frames), thousands(dropped)),
    );
    report.row(
        "Full speed: missing deliveries (expected − delivered)",
        format!(
            "{} of {}{}",
            thousands(missing),
            thousands(expected),
            if missing > dropped {
                format!(
                    ", {} not explained by lag{}",
                    thousands(missing - dropped),
                    if complete { "" } else { " (drain timed out)" }
                )
            } else {
                String::new()
            }
        ),
    );
    if delivered > expected {
        report.row(
            "Full speed: UNEXPECTED extra deliveries",
            thousands(delivered - expected),
        );
    }
    report.row(
        format!("Full speed: {cpu_label} (100 % = 1 core)"),
        cpu_value,
    );
    if let (Some(b), Some(a)) = (&cluster_base, &cluster_full) {
        report.row("Full speed: cluster path", a.delta_text(b));
    }
    let failed = full.requests_failed.load(Relaxed);
    if failed > 0 {
        report.row(
            "Full speed: failed publish requests",
            format!(
                "{} (first: {})",
                thousands(failed),
                full.error_text().unwrap_or_default().replace('|', "\\|")
            ),
        );
    }

    // --- Fixed-rate latency phase -----------------------------------------
    progress(format!(
        "latency: {} single-event publishes/s for {} s",
        args.rate, args.latency_duration
    ));
    sleep(Duration::from_millis(500)).await;
    let cluster_base = ClusterCounters::read(&client, &nodes).await;
    let base = shared.totals();
    let fixed = Arc::new(PublishStats::new(c_count));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize));
    let lat_client = http_client()?;
    let cpu = CpuMeter::start(&nodes.pids());
    let lat_start = Instant::now();
    let lat_end = lat_start + secs(args.latency_duration);
    let mut ticker = tokio::time::interval(secs(1.0 / args.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sent = 0u64;
    loop {
        ticker.tick().await;
        if Instant::now() >= lat_end {
            break;
        }
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .context("in-flight semaphore closed")?;
        let c = (sent % c_count as u64) as usize;
        sent += 1;
        let (client, fixed, url, shared) = (
            lat_client.clone(),
            Arc::clone(&fixed),
            publish_url.clone(),
            Arc::clone(&shared),
        );
        tokio::spawn(async move {
            let mut body = String::with_capacity(192);
            let t = shared.now_ns();
            event_json(&mut body, c, &format!("t={t}"));
            fixed.publish(&client, &url, c, Bytes::from(body)).await;
            drop(permit);
        });
    }
    let lat_elapsed = lat_start.elapsed().as_secs_f64();
    // Wait for the publishes still in flight.
    let _all = tokio::time::timeout(
        Duration::from_secs(30),
        in_flight.acquire_many(MAX_IN_FLIGHT),
    )
    .await;
    let ok = fixed.requests_ok.load(Relaxed);
    let expected = fixed.expected_deliveries(&subs_on);
    progress(format!(
        "sent {sent} publishes ({ok} accepted); waiting for {} deliveries",
        thousands(expected)
    ));
    let (t, complete) = drain(&shared, base, expected, secs(args.drain_timeout)).await;
    let (cpu_label, cpu_value) = nodes.cpu_row(cpu.finish(tck));
    let cluster_lat = ClusterCounters::read(&client, &nodes).await;
    let delivered = t.delivered - base.delivered;
    let dropped = t.dropped - base.dropped;
    let missing = expected.saturating_sub(delivered);

    // Published on the publishing node, delivered and dropped on the
    // subscribing one (the same gateway in single-node mode).
    let pub_metrics = fetch_metrics(&client, &pub_base_url).await;
    let sub_metrics = if cluster {
        fetch_metrics(&client, &sub_base_url).await
    } else {
        pub_metrics.clone()
    };
    let cross_check = pub_metrics
        .as_deref()
        .zip(sub_metrics.as_deref())
        .and_then(|(p, s)| server_counts(p, s))
        .map(|server| {
            let t = shared.totals();
            let mut bench = [full.events() + fixed.events(), t.delivered, t.dropped];
            if let Some(w) = &warm {
                let probe = w.shared.totals();
                bench[0] += w.probes.events();
                bench[1] += probe.delivered;
                bench[2] += probe.dropped;
            }
            let show = |v: [u64; 3]| v.map(thousands).join(" / ");
            format!("gateway {}; bench {}", show(server), show(bench))
        });

    // --- Stop the subscribers and collect their histograms ---------------
    shared.stopping.store(true, Relaxed);
    if let Some(w) = &warm {
        w.shared.stopping.store(true, Relaxed);
    }
    let _ = stop_tx.send(true);
    let mut hist = new_histogram();
    let probe_handle = warm.as_ref().map(|w| &w.handle);
    let collect = async {
        for h in handles {
            if let Ok(h) = h.await {
                let _ = hist.add(&h);
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .is_err()
    {
        progress("some subscribers did not stop within 10 s");
    }
    if let Some(h) = probe_handle {
        h.abort();
    }
    let q = |quantile: f64| format!("{:.2} ms", hist.value_at_quantile(quantile) as f64 / 1000.0);
    report.row(
        "Latency: publish rate target / achieved",
        format!(
            "{} / {:.1} per s ({} accepted)",
            args.rate,
            ok as f64 / lat_elapsed,
            thousands(ok)
        ),
    );
    report.row(
        "Latency: deliveries (expected)",
        format!(
            "{} ({}){}",
            thousands(delivered),
            thousands(expected),
            if missing > 0 {
                format!(
                    ", {} missing, {} dropped by lag{}",
                    thousands(missing),
                    thousands(dropped),
                    if complete { "" } else { ", drain timed out" }
                )
            } else {
                String::new()
            }
        ),
    );
    report.row("Latency p50", q(0.5));
    report.row("Latency p90", q(0.9));
    report.row("Latency p99", q(0.99));
    report.row("Latency p99.9", q(0.999));
    report.row(
        "Latency max",
        format!("{:.2} ms", hist.max() as f64 / 1000.0),
    );
    report.row(format!("Latency phase: {cpu_label}"), cpu_value);
    if let (Some(b), Some(a)) = (&cluster_base, &cluster_lat) {
        report.row("Latency phase: cluster path", a.delta_text(b));
    }
    let failed = fixed.requests_failed.load(Relaxed);
    if failed > 0 {
        report.row(
            "Latency: failed publish requests",
            format!(
                "{} (first: {})",
                thousands(failed),
                fixed.error_text().unwrap_or_default().replace('|', "\\|")
            ),
        );
    }
    let unparsed = shared.unparsed_latency.load(Relaxed);
    if unparsed > 0 {
        report.row("Latency: unparsable timestamps", thousands(unparsed));
    }
    if hist.len() != delivered {
        report.row(
            "Latency: samples recorded",
            format!("{} (≠ deliveries)", thousands(hist.len())),
        );
    }

    if let Some(line) = cross_check {
        report.row(
            if cluster {
                "Events published (A) / delivered (B) / dropped (B) (gateway /metrics vs bench, \
                 incl. warm-up probes)"
            } else {
                "Events published / delivered / dropped (gateway /metrics vs bench)"
            },
            line,
        );
    }
    if cluster {
        let backlog = pub_metrics.as_deref().and_then(|text| {
            metric_sum_with(
                text,
                "loggate_events_dropped_total",
                &["reason=\"nats_backlog\""],
            )
        });
        report.row(
            "Events dropped on A, outbound NATS queue full (`reason=\"nats_backlog\"`)",
            match backlog {
                Some(v) => thousands(v),
                None => "0 (no such series in A's /metrics)".into(),
            },
        );
    }
    let ended = shared.ended.load(Relaxed);
    if ended > 0 {
        let why = shared.error_text().unwrap_or_default();
        report.row(
            "Streams that ended early",
            format!("{ended} (first: {})", why.replace('|', "\\|")),
        );
    }
    let shutdowns = shared.shutdown_frames.load(Relaxed);
    if shutdowns > 0 {
        report.row(
            "Unexpected `event: shutdown` frames",
            thousands(shutdowns as u64),
        );
    }
    let rss = |s: &Server| {
        s.status()
            .ok()
            .map(|st| format!("{} / {}", mib(st.rss_kib), mib(st.hwm_kib)))
    };
    if cluster {
        let show = |s: Option<String>| s.unwrap_or_else(|| "n/a".into());
        report.row(
            "RSS at end / peak (VmHWM): node A; node B; nats-server",
            format!(
                "{}; {}; {}",
                show(rss(nodes.publisher())),
                show(rss(nodes.subscriber())),
                show(nodes.nats.as_ref().and_then(rss))
            ),
        );
    } else if let Some(s) = rss(nodes.subscriber()) {
        report.row("Server RSS at end / peak (VmHWM)", s);
    }
    sleep(Duration::from_millis(200)).await;
    let (stopped, nats_stopped) = nodes.stop();
    report.row("Gateway shutdown (SIGTERM)", stopped);
    if let Some(s) = nats_stopped {
        report.row("nats-server shutdown (SIGTERM)", s);
    }

    println!();
    report.print();
    println!();
    println!("{}", args.summary_line());
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("loggate-bench: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.bench_threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loggate-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(&args) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    // Subscriber tasks may still hold sockets; drop them without waiting.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loggate-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_bytes() -> (Vec<u8>, u64) {
        let frames = [
            "retry: 3000\n\n".to_string(),
            "event: ready\ndata: {\"connection_id\":\"x\",\"channels\":[\"logs:etl:bench:c0\"]}\n\n"
                .to_string(),
            ": keepalive\n\n".to_string(),
            "event: log\nid: 1\ndata: {\"id\":\"1\",\"level\":\"info\",\"message\":\"t=1000000\"}\n\n"
                .to_string(),
            "event: lag\ndata: {\"dropped\":7}\n\n".to_string(),
            "event: log\nid: 2\ndata: {\"id\":\"2\",\"message\":\"xxxx\"}\n\n".to_string(),
            "event: log\nid: 3\ndata: {\"id\":\"3\",\"message\":\"t=2000000\"}\n\nevent: log\nid: 4\ndata: {\"message\":\"t=3000000\"}\n\n"
                .to_string(),
        ];
        let mut out = Vec::new();
        for f in &frames {
            // Split each frame over two chunks, in an awkward place.
            let mid = f.len() / 2;
            for part in [&f[..mid], &f[mid..]] {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"0\r\n\r\n");
        (out, 4u64)
    }

    #[test]
    fn parses_frames_at_any_split() {
        let (bytes, logs) = stream_bytes();
        for step in [1, 2, 3, 7, 16, 100, bytes.len()] {
            let mut decoder = Decoder {
                chunked: true,
                state: ChunkState::Size,
            };
            let mut raw = BytesMut::new();
            let mut frames = FrameSplitter::default();
            let mut hist = new_histogram();
            let mut counts = FrameCounts::default();
            let mut alive = true;
            for piece in bytes.chunks(step) {
                raw.extend_from_slice(piece);
                alive = decoder
                    .decode(&mut raw, |p| {
                        frames.feed(p, 5_000_000, &mut hist, &mut counts)
                    })
                    .unwrap();
            }
            assert!(!alive, "step {step}");
            assert!(frames.partial.is_empty(), "step {step}");
            assert_eq!(counts.logs, logs, "step {step}");
            assert_eq!(counts.dropped, 7);
            assert_eq!(counts.lag_frames, 1);
            assert!(counts.ready);
            assert_eq!(hist.len(), 3);
            assert_eq!(hist.max(), hist.highest_equivalent(4000));
        }
    }

    #[test]
    fn helpers() {
        let hay = b"0123456789abcdef\n0123";
        assert_eq!(find_byte(hay, b'\n'), Some(16));
        assert_eq!(find_byte(hay, b'3'), Some(3));
        assert_eq!(find_byte(hay, b'z'), None);
        assert_eq!(find(b"aaab\"message\":\"t=9", b"\"message\":\"t="), Some(4));
        assert_eq!(
            sent_at(b"{\"a\":\"x=1\",\"message\":\"t=42\"}"),
            Some(Some(42))
        );
        assert_eq!(sent_at(b"{\"message\":\"t=\"}"), Some(None));
        assert_eq!(sent_at(b"{\"message\":\"xt=5\"}"), None);
        assert_eq!(accepted_count(b"{\"accepted\":100,\"ids\":[]}"), Some(100));
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(123), "123");
        let metrics = "# HELP loggate_events_delivered_total x\n\
                       loggate_events_delivered_total{transport=\"sse\"} 12\n\
                       loggate_events_delivered_total{transport=\"ws\"} 3\n\
                       loggate_events_delivered_totalx 99\n";
        assert_eq!(
            metric_sum(metrics, "loggate_events_delivered_total"),
            Some(15)
        );
        assert_eq!(metric_sum(metrics, "loggate_events_dropped_total"), None);
        let metrics = "loggate_events_dropped_total{reason=\"nats_backlog\",service=\"etl\"} 4\n\
                       loggate_events_dropped_total{reason=\"slow_consumer\",service=\"etl\"} 5\n\
                       loggate_events_dropped_total{reason=\"x_nats_backlog\",service=\"etl\"} 6\n\
                       loggate_nats_messages_total{direction=\"out\",link=\"cluster\"} 7\n\
                       loggate_nats_messages_total{direction=\"in\",link=\"cluster\"} 8\n";
        let dropped = "loggate_events_dropped_total";
        assert_eq!(
            metric_sum_with(metrics, dropped, &["reason=\"nats_backlog\""]),
            Some(4)
        );
        assert_eq!(metric_sum(metrics, dropped), Some(15));
        assert_eq!(
            metric_sum_with(metrics, dropped, &["reason=\"nats\""]),
            None
        );
        assert_eq!(
            metric_sum_with(
                metrics,
                "loggate_nats_messages_total",
                &["link=\"cluster\"", "direction=\"in\""]
            ),
            Some(8)
        );
        assert_eq!(
            sibling_log(Path::new("target/loggate-bench-server.log"), "a"),
            PathBuf::from("target/loggate-bench-server-a.log")
        );
        assert_eq!(
            sibling_log(Path::new("server"), "nats"),
            PathBuf::from("server-nats")
        );
    }
}
