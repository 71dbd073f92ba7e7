//! One run of one server in a side-by-side comparison, on a fresh process:
//! memory per idle SSE connection, single events at full speed, single
//! events at each fixed rate (latency from the scheduled send time, CPU per
//! delivery), and, for loggate only, batched ingest with nobody
//! subscribed. Each step opens its own subscribers and closes them after,
//! so no step inherits another's streams or latencies. What it measured is
//! a [`RunResult`], written as one line of the raw results.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::time::sleep;

use super::target::{Running, Target};
use crate::args::{Args, secs};
use crate::nodes::free_ports;
use crate::phases::full_speed::publish_flat_out;
use crate::phases::latency::publish_at_rate;
use crate::procfs::CpuMeter;
use crate::publish::{PublishStats, batch_body, sized_event, subscribers_per_channel};
use crate::report::{progress, thousands};
use crate::stats::{Shared, drain, new_histogram};
use crate::subscribers::Subscribers;

/// Subscribers connecting (not yet ready) at once.
const CONNECT_CONCURRENCY: usize = 128;
/// Let the server settle after start-up before weighing it.
const SETTLE: Duration = Duration::from_millis(300);
/// How long the idle streams idle before they are weighed.
const IDLE: Duration = Duration::from_secs(1);
/// A pause between steps, so that one's tail is not in the next.
const BETWEEN: Duration = Duration::from_millis(300);
/// How long the subscriber tasks get to end once told to stop.
const STOP_SUBSCRIBERS: Duration = Duration::from_secs(10);
/// How long a server gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// What one run of one server measured. Times in ms, CPU in µs of server
/// CPU (all its processes, user + system) per delivery.
#[derive(Serialize, Clone, Debug)]
pub struct RunResult {
    pub run: usize,
    pub server: &'static str,
    pub idle: Idle,
    pub max_rate: MaxRate,
    pub rates: Vec<FixedRate>,
    /// loggate only.
    pub ingest: Option<Ingest>,
    /// How the server stopped.
    pub stopped: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct Idle {
    pub connections: usize,
    /// Pss of all the server's processes, before and with the streams open.
    pub pss_before_kib: u64,
    pub pss_after_kib: u64,
    pub kib_per_connection: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct MaxRate {
    pub publishers: usize,
    pub events: u64,
    pub events_per_s: f64,
    pub delivered: u64,
    pub expected: u64,
    /// Deliveries per second, from the first publish to the last delivery.
    pub deliveries_per_s: f64,
    pub lost: u64,
    pub dropped_by_lag: u64,
    pub cpu_pct: f64,
    pub cpu_us_per_delivery: f64,
    pub failed_publishes: u64,
}

#[derive(Serialize, Clone, Debug)]
pub struct FixedRate {
    pub rate: f64,
    pub achieved_per_s: f64,
    pub delivered: u64,
    pub expected: u64,
    pub lost: u64,
    pub dropped_by_lag: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub cpu_pct: f64,
    pub cpu_us_per_delivery: f64,
    pub failed_publishes: u64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Ingest {
    pub batch: usize,
    pub message_bytes: usize,
    pub publishers: usize,
    pub events_per_s: f64,
    pub cpu_pct: f64,
    pub failed_publishes: u64,
}

/// Runs every step on a fresh `target` and stops it.
pub async fn one_run(
    args: &Args,
    client: &reqwest::Client,
    target: Target,
    run: usize,
    tck: f64,
) -> anyhow::Result<RunResult> {
    let port = free_ports(1)?[0];
    let running = target.start(args, client, run, port).await?;
    progress(format!(
        "run {run}: {} pid {} on http://{} (log: {})",
        target.name(),
        running.server.pid,
        running.server.addr,
        running.server.log.display()
    ));
    let mut m = Measure {
        args,
        running,
        tck,
        connect: Arc::new(Semaphore::new(CONNECT_CONCURRENCY)),
    };
    let idle = m.idle().await?;
    sleep(BETWEEN).await;
    let max_rate = m.max_rate().await?;
    let mut rates = Vec::new();
    for &rate in &args.rates {
        sleep(BETWEEN).await;
        rates.push(m.fixed_rate(rate).await?);
    }
    let ingest = if target == Target::Loggate {
        sleep(BETWEEN).await;
        Some(m.ingest().await?)
    } else {
        None
    };
    let stopped = m.running.server.stop(STOP_GRACE);
    progress(format!("run {run}: {} {stopped}", target.name()));
    Ok(RunResult {
        run,
        server: target.name(),
        idle,
        max_rate,
        rates,
        ingest,
        stopped,
    })
}

/// The server under test and what the steps share.
struct Measure<'a> {
    args: &'a Args,
    running: Running,
    tck: f64,
    connect: Arc<Semaphore>,
}

/// Open subscribers and the switch that stops them.
struct Group {
    subscribers: Subscribers,
    stop: watch::Sender<bool>,
}

impl Group {
    fn shared(&self) -> &Arc<Shared> {
        &self.subscribers.shared
    }

    /// Stops every subscriber and returns their merged latencies.
    async fn close(self) -> Histogram<u64> {
        let mut hist = new_histogram();
        self.subscribers
            .stop_into(&self.stop, &mut hist, STOP_SUBSCRIBERS)
            .await;
        hist
    }
}

impl Measure<'_> {
    /// `n` subscribers, subscriber `i` on `path(i)`, all ready.
    async fn open(&mut self, n: usize, path: impl Fn(usize) -> String) -> anyhow::Result<Group> {
        let (stop, stop_rx) = watch::channel(false);
        let addr = self.running.server.addr;
        let subscribers = Subscribers::spawn(n, path, addr, &self.connect, &stop_rx);
        let deadline = Instant::now() + secs(self.args.setup_timeout);
        let running = &mut self.running;
        subscribers
            .wait_all_ready(
                || running.check_alive(),
                deadline,
                Duration::from_millis(20),
            )
            .await?;
        Ok(Group { subscribers, stop })
    }

    /// The measured subscribers, spread round-robin over the channels.
    async fn open_measured(&mut self) -> anyhow::Result<Group> {
        let (target, channels) = (self.running.target, self.args.channels);
        self.open(self.args.subscribers, |i| target.stream(i % channels))
            .await
    }

    /// Subscribers on each channel, by channel index.
    fn subs_on(&self) -> Vec<u64> {
        subscribers_per_channel(self.args.subscribers, self.args.channels)
    }

    /// The server's CPU seconds since `cpu` started, and that as % of one
    /// core over `wall`.
    fn cpu(&self, cpu: &CpuMeter, wall: Duration) -> (f64, f64) {
        let seconds = cpu.children_seconds(self.tck).unwrap_or(f64::NAN);
        (seconds, seconds / wall.as_secs_f64().max(1e-9) * 100.0)
    }

    async fn idle(&mut self) -> anyhow::Result<Idle> {
        let n = self.args.idle_connections;
        sleep(SETTLE).await;
        let before = self.running.pss_kib()?;
        progress(format!("  idle: opening {n} SSE streams"));
        let target = self.running.target;
        let group = self.open(n, |_| target.idle_stream()).await?;
        sleep(IDLE).await;
        let after = self.running.pss_kib()?;
        group.close().await;
        let per = (after as f64 - before as f64) / n as f64;
        progress(format!("  idle: {per:.2} KiB per connection"));
        Ok(Idle {
            connections: n,
            pss_before_kib: before,
            pss_after_kib: after,
            kib_per_connection: per,
        })
    }

    async fn max_rate(&mut self) -> anyhow::Result<MaxRate> {
        let args = self.args;
        let group = self.open_measured().await?;
        let shared = Arc::clone(group.shared());
        let bodies: Arc<Vec<Bytes>> = Arc::new(
            (0..args.channels)
                .map(|c| sized_event(c, "full speed", args.body_bytes))
                .collect(),
        );
        progress(format!(
            "  full speed: {} publishers, one {}-byte event per request, {} s",
            args.publishers(),
            args.body_bytes,
            args.duration
        ));
        let base = shared.totals();
        let cpu = CpuMeter::start(&self.running.pids());
        let began = Instant::now();
        let first_ns = shared.now_ns();
        let end = began + secs(args.duration);
        let endpoint = self.running.endpoint();
        let stats = publish_flat_out(&endpoint, args.publishers(), bodies, end).await?;
        let pub_elapsed = began.elapsed().as_secs_f64();
        let expected = stats.expected_deliveries(&self.subs_on());
        let (t, _) = drain(&shared, base, expected, secs(args.drain_timeout)).await;
        let (cpu_s, cpu_pct) = self.cpu(&cpu, began.elapsed());
        group.close().await;
        let delivered = t.delivered - base.delivered;
        let span = t.last_delivery_ns.saturating_sub(first_ns) as f64 / 1e9;
        let out = MaxRate {
            publishers: args.publishers(),
            events: stats.events(),
            events_per_s: stats.events() as f64 / pub_elapsed,
            delivered,
            expected,
            deliveries_per_s: if span > 0.0 {
                delivered as f64 / span
            } else {
                0.0
            },
            lost: expected.saturating_sub(delivered),
            dropped_by_lag: t.dropped - base.dropped,
            cpu_pct,
            cpu_us_per_delivery: cpu_s * 1e6 / delivered.max(1) as f64,
            failed_publishes: stats.requests_failed.load(Relaxed),
        };
        progress(format!(
            "  full speed: {} events/s, {} deliveries/s, {} lost",
            thousands(out.events_per_s as u64),
            thousands(out.deliveries_per_s as u64),
            thousands(out.lost)
        ));
        Ok(out)
    }

    async fn fixed_rate(&mut self, rate: f64) -> anyhow::Result<FixedRate> {
        let args = self.args;
        let group = self.open_measured().await?;
        let shared = Arc::clone(group.shared());
        progress(format!("  {rate} events/s for {} s", args.latency_duration));
        let base = shared.totals();
        let stats = Arc::new(PublishStats::new(args.channels));
        let cpu = CpuMeter::start(&self.running.pids());
        let began = Instant::now();
        let body_bytes = args.body_bytes;
        let (_, elapsed) = publish_at_rate(
            &self.running.endpoint(),
            &stats,
            (rate, secs(args.latency_duration)),
            shared.now_ns(),
            move |c, ns| sized_event(c, &format!("t={ns}"), body_bytes),
        )
        .await?;
        let expected = stats.expected_deliveries(&self.subs_on());
        let (t, _) = drain(&shared, base, expected, secs(args.drain_timeout)).await;
        let (cpu_s, cpu_pct) = self.cpu(&cpu, began.elapsed());
        let hist = group.close().await;
        let delivered = t.delivered - base.delivered;
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        let out = FixedRate {
            rate,
            achieved_per_s: stats.requests_ok.load(Relaxed) as f64 / elapsed,
            delivered,
            expected,
            lost: expected.saturating_sub(delivered),
            dropped_by_lag: t.dropped - base.dropped,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: hist.max() as f64 / 1000.0,
            cpu_pct,
            cpu_us_per_delivery: cpu_s * 1e6 / delivered.max(1) as f64,
            failed_publishes: stats.requests_failed.load(Relaxed),
        };
        progress(format!(
            "  {rate} events/s: p99 {:.2} ms, {:.2} µs CPU per delivery, {} lost",
            out.p99_ms,
            out.cpu_us_per_delivery,
            thousands(out.lost)
        ));
        Ok(out)
    }

    /// Batches of `--ingest-batch` events on channels nobody subscribes to:
    /// the events of the standard batched benchmark (`--message-bytes` of
    /// message text), so its figure compares with that one's.
    async fn ingest(&mut self) -> anyhow::Result<Ingest> {
        let args = self.args;
        let batch = args.ingest_batch;
        let filler = "x".repeat(args.message_bytes);
        let bodies: Arc<Vec<Bytes>> = Arc::new(
            (0..args.channels)
                .map(|c| batch_body(c, batch, &filler))
                .collect(),
        );
        progress(format!(
            "  ingest: batches of {batch}, no subscribers, {} s",
            args.duration
        ));
        let cpu = CpuMeter::start(&self.running.pids());
        let began = Instant::now();
        let end = began + secs(args.duration);
        let stats =
            publish_flat_out(&self.running.endpoint(), args.publishers(), bodies, end).await?;
        let elapsed = began.elapsed();
        let (_, cpu_pct) = self.cpu(&cpu, elapsed);
        let out = Ingest {
            batch,
            message_bytes: args.message_bytes,
            publishers: args.publishers(),
            events_per_s: stats.events() as f64 / elapsed.as_secs_f64(),
            cpu_pct,
            failed_publishes: stats.requests_failed.load(Relaxed),
        };
        progress(format!(
            "  ingest: {} events/s",
            thousands(out.events_per_s as u64)
        ));
        Ok(out)
    }
}
