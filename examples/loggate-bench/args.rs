//! The command line: every option of the benchmark, its validation, and the
//! `parameters:` line printed under the summary table. Nothing here starts
//! a process or opens a socket.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::ensure;
use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loggate-bench",
    about = "Benchmark loggate: idle SSE memory, full-speed fan-out, fixed-rate latency"
)]
pub struct Args {
    /// The gateway binary to start.
    #[arg(
        long,
        env = "LOGGATE_BENCH_BINARY",
        default_value = "target/release/loggate"
    )]
    pub binary: PathBuf,
    /// SSE subscribers, spread round-robin over the channels.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Channels `logs:etl:bench:c0..c{N-1}`.
    #[arg(long, default_value_t = 10)]
    pub channels: usize,
    /// Seconds of full-speed publishing.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Concurrent publishers (one keep-alive connection each) at full speed
    /// [default: 2; with --peer: 4].
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Events per publish request at full speed, 1..=1000 [default: 100;
    /// with --peer: 1, since Nchan takes one message per request].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Single-event publishes per second in the latency phase.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seconds of fixed-rate publishing.
    #[arg(long, default_value_t = 10.0)]
    pub latency_duration: f64,
    /// Length of the message text of batched events (full speed; with
    /// --peer, the ingest run).
    #[arg(long, default_value_t = 64)]
    pub message_bytes: usize,
    /// Seconds to wait for subscribers to receive everything after a phase.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// Seconds to wait for the gateway to answer /healthz, and for all
    /// subscribers to see `event: ready`.
    #[arg(long, default_value_t = 30.0)]
    pub setup_timeout: f64,
    /// Worker threads of the benchmark's own runtime.
    #[arg(long, default_value_t = 2)]
    pub bench_threads: usize,
    /// Extra environment for the gateway, `KEY=VALUE` (repeatable). The
    /// gateway otherwise gets a clean environment: built-in defaults plus
    /// HOST, PORT, RUST_LOG=warn, MAX_CONNECTIONS, and the per-address and
    /// rate limits off (MAX_CONNECTIONS_PER_IP=0, CONNECT_RATE_PER_IP=0,
    /// PUBLISH_RATE_PER_SEC=0, PUBLISH_BYTES_PER_SEC=0; --neighbour keeps
    /// the per-service ones).
    #[arg(long, value_name = "KEY=VALUE")]
    pub server_env: Vec<String>,
    /// Where the gateway's stderr goes. With `--cluster`, node A's and
    /// B's go to `<stem>-a.<ext>` and `<stem>-b.<ext>` and nats-server's to
    /// `<stem>-nats.<ext>` beside it.
    #[arg(long, default_value = "target/loggate-bench-server.log")]
    pub server_log: PathBuf,
    /// Cluster mode: one nats-server and two gateways joined through it
    /// (`NATS_URL`); subscribe on node B, publish on node A.
    #[arg(long)]
    pub cluster: bool,
    /// With --cluster: nats-server runs JetStream (`-js`, a fresh store in
    /// a temporary directory) and the gateways keep the cluster's events in
    /// it (`NATS_JETSTREAM=true`).
    #[arg(long, requires = "cluster")]
    pub jetstream: bool,
    /// The nats-server binary for `--cluster` (if it is not found,
    /// /usr/sbin/nats-server, where Debian's package puts it, is tried).
    #[arg(long, env = "LOGGATE_BENCH_NATS_SERVER", default_value = "nats-server")]
    pub nats_server: PathBuf,
    /// Side-by-side mode: the same single-event workload on loggate and on
    /// the peer, a fresh server for each, runs interleaved (L P L P …).
    #[arg(long, value_enum, conflicts_with = "cluster")]
    pub peer: Option<Peer>,
    /// Ingest mode: records/s through each ingest endpoint (publish JSON,
    /// OTLP protobuf and JSON, Loki snappy protobuf and JSON), in batches
    /// of `--ingest-batch`, `--message-bytes` of text each, with nobody
    /// subscribed, `--duration` seconds each, on one fresh gateway.
    #[arg(long, conflicts_with_all = ["cluster", "peer"])]
    pub ingest: bool,
    /// Noisy-neighbour mode: service etl pushes large requests
    /// (`--neighbour-format`) from `--publishers` connections as hard as
    /// its limits allow, while service faas publishes one small event at a
    /// time; faas's round trip alone and beside it. The gateway keeps its
    /// rate limits (the defaults, or `--server-env`).
    #[arg(long, conflicts_with_all = ["cluster", "peer", "ingest"])]
    pub neighbour: bool,
    /// With --neighbour: what the pusher sends.
    #[arg(long, value_enum, default_value = "publish")]
    pub neighbour_format: NeighbourFormat,
    /// With --neighbour or --largest: lines per request [default: 1000 for
    /// publish, else 10000].
    #[arg(long)]
    pub neighbour_lines: Option<usize>,
    /// With --neighbour: bytes of each line (a pino request log).
    #[arg(long, default_value_t = 850)]
    pub neighbour_line_bytes: usize,
    /// Memory mode: the gateway's peak RSS for the largest request each
    /// shipper format may send (`--neighbour-lines` lines, just under
    /// `--largest-bytes` decoded), one at a time, then `--publishers` at
    /// once; rate limits off.
    #[arg(long, conflicts_with_all = ["cluster", "peer", "ingest", "neighbour"])]
    pub largest: bool,
    /// With --largest: the decoded size each request stays under (the
    /// gateway's `ingest.max_body_bytes`).
    #[arg(long, default_value_t = 8 << 20)]
    pub largest_bytes: usize,
    /// With --peer: runs of each server.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// With --peer: idle SSE connections weighed for memory per connection.
    #[arg(long, default_value_t = 10_000)]
    pub idle_connections: usize,
    /// With --peer: the fixed rates (events/s), comma-separated; the
    /// latency and CPU per delivery are measured at each.
    #[arg(long, value_delimiter = ',', default_value = "500,2000")]
    pub rates: Vec<f64>,
    /// With --peer: size of each published event (its JSON body).
    #[arg(long, default_value_t = 256)]
    pub body_bytes: usize,
    /// With --peer or --ingest: events per request in loggate's ingest run
    /// (no subscribers, `--message-bytes` of text each; Nchan has no batch
    /// publish, so with --peer this run is loggate's only).
    #[arg(long, default_value_t = 100)]
    pub ingest_batch: usize,
    /// With --peer nchan: the nginx binary (Debian's package puts it in
    /// /usr/sbin, which is tried when it is not found).
    #[arg(long, env = "LOGGATE_BENCH_NGINX", default_value = "nginx")]
    pub nginx: PathBuf,
    /// With --peer nchan: the nginx configuration template.
    #[arg(long, default_value = "scripts/nchan/nginx.conf.in")]
    pub nchan_config: PathBuf,
    /// With --peer: where the raw results go, one JSON object per line,
    /// in `peer-<peer>-<unix time>.jsonl`.
    #[arg(long, default_value = "target/bench-results")]
    pub results_dir: PathBuf,
}

/// What the noisy neighbour sends.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighbourFormat {
    /// A JSON array of events to `/api/logs/publish`.
    Publish,
    /// Loki JSON as pino-loki sends it (a stream per line).
    LokiJson,
    /// The same, gzip-compressed.
    LokiJsonGzip,
    /// Loki's snappy-compressed protobuf, one stream.
    LokiProtobuf,
    /// OTLP protobuf, gzip-compressed.
    OtlpProtobuf,
}

/// A server to compare loggate with.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Nchan, the nginx module (Debian's nginx + libnginx-mod-nchan).
    Nchan,
}

impl Args {
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(self.subscribers >= 1, "--subscribers must be at least 1");
        ensure!(self.channels >= 1, "--channels must be at least 1");
        ensure!(self.publishers() >= 1, "--publishers must be at least 1");
        ensure!(
            (1..=1000).contains(&self.batch()),
            "--batch must be between 1 and 1000"
        );
        if self.peer.is_some() {
            ensure!(
                self.batch() == 1,
                "--batch must be 1 with --peer (Nchan takes one message per request)"
            );
            ensure!(self.runs >= 1, "--runs must be at least 1");
            ensure!(
                self.idle_connections >= 1,
                "--idle-connections must be at least 1"
            );
            ensure!(
                !self.rates.is_empty() && self.rates.iter().all(|r| *r > 0.0 && r.is_finite()),
                "--rates must be positive numbers, e.g. 500,2000"
            );
            ensure!(
                (64..=65536).contains(&self.body_bytes),
                "--body-bytes must be between 64 and 65536"
            );
        }
        if self.peer.is_some() || self.ingest {
            ensure!(
                (1..=1000).contains(&self.ingest_batch),
                "--ingest-batch must be between 1 and 1000"
            );
        }
        if self.neighbour || self.largest {
            ensure!(
                (1..=100_000).contains(&self.neighbour_lines()),
                "--neighbour-lines must be between 1 and 100000"
            );
            ensure!(
                (1..=65_536).contains(&self.neighbour_line_bytes),
                "--neighbour-line-bytes must be between 1 and 65536"
            );
        }
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

    /// Publishers at full speed: `--publishers`, or 2 (4 with --peer; 3
    /// with --neighbour or --largest, as issue 27 measured).
    pub fn publishers(&self) -> usize {
        self.publishers.unwrap_or(if self.peer.is_some() {
            4
        } else if self.neighbour || self.largest {
            3
        } else {
            2
        })
    }

    /// Lines per noisy request: `--neighbour-lines`, or 1000 for the
    /// publish endpoint (its batch limit) and 10000 for the shippers'.
    pub fn neighbour_lines(&self) -> usize {
        self.neighbour_lines.unwrap_or(
            if self.neighbour_format == NeighbourFormat::Publish && !self.largest {
                1000
            } else {
                10_000
            },
        )
    }

    /// Events per full-speed request: `--batch`, or 100 (1 with --peer).
    pub fn batch(&self) -> usize {
        self.batch
            .unwrap_or(if self.peer.is_some() { 1 } else { 100 })
    }

    /// How long start-up steps may take: `--setup-timeout`, at least 1 s.
    pub fn setup_timeout(&self) -> Duration {
        secs(self.setup_timeout.max(1.0))
    }

    /// The line printed under the table, so a table says how it was made.
    pub fn summary_line(&self) -> String {
        format!(
            "parameters: subscribers={} channels={} publishers={} batch={} duration={}s \
             rate={}/s latency-duration={}s message-bytes={} bench-threads={} binary={}{}{}",
            self.subscribers,
            self.channels,
            self.publishers(),
            self.batch(),
            self.duration,
            self.rate,
            self.latency_duration,
            self.message_bytes,
            self.bench_threads,
            self.binary.display(),
            if self.cluster {
                format!(
                    " cluster{} nats-server={}",
                    if self.jetstream { " jetstream" } else { "" },
                    self.nats_server.display()
                )
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

/// Seconds as given on the command line → a `Duration`.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}
