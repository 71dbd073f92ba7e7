//! Benchmark of the web viewer under a fast stream: how smoothly `/ui/`
//! renders, in real headless Chromium, while lines arrive at a fixed rate.
//!
//! Starts the release gateway (a child process on a free loopback port),
//! opens the viewer on `logs:etl`, publishes `--rate` lines per second for
//! `--seconds` (batches every 10 ms, on schedule), and reads from the page:
//! frames rendered and the gaps between them, long animation frames (the
//! browser's own measure of a frame over 50 ms), how busy the page's main
//! thread was (DevTools' `TaskDuration`), its JS heap, and whether every
//! line arrived (the newest `max` are kept, none lost, no lag notice).
//!
//! ```text
//! scripts/bench.sh --viewer [--rate 2000] [--seconds 10] [--runs 3] [--max 5000]
//! ```
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh`
//! installs them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use serde_json::{Value, json};
use testkit::browser::Browser;
use testkit::{ETL_TOKEN, event, process, viewer};

#[derive(Parser, Debug)]
#[command(
    name = "viewer-bench",
    about = "Benchmark the web viewer under a fast stream"
)]
struct Args {
    /// The gateway binary to start.
    #[arg(
        long,
        env = "LOGGATE_BENCH_BINARY",
        default_value = "target/release/loggate"
    )]
    binary: PathBuf,
    /// Lines published per second.
    #[arg(long, default_value_t = 2000)]
    rate: usize,
    /// Seconds of publishing per run.
    #[arg(long, default_value_t = 10)]
    seconds: usize,
    /// Lines the viewer keeps (`&max=`).
    #[arg(long, default_value_t = 5000)]
    max: usize,
    /// Runs, each with a fresh browser.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// What one run measured.
struct Run {
    published: usize,
    frames_per_second: f64,
    gap_p50: f64,
    gap_p95: f64,
    gap_p99: f64,
    gap_max: f64,
    long_frames: u64,
    long_frame_max: f64,
    busy_percent: f64,
    heap_mib: f64,
    kept: usize,
    lost: usize,
    lag_notices: usize,
}

/// Starts counting frames and long animation frames in the page.
const RECORD: &str = r#"
  window.__bench = { frames: [], long: [] };
  (function tick(t) { __bench.frames.push(t); requestAnimationFrame(tick); })(performance.now());
  new PerformanceObserver((l) => { for (const e of l.getEntries()) __bench.long.push(e.duration); })
    .observe({ type: "long-animation-frame" });
  return 1;
"#;

/// The frame gaps' quantiles and the long frames, from the recording.
const RESULTS: &str = r#"
  const f = __bench.frames, gaps = [];
  for (let i = 1; i < f.length; i++) gaps.push(f[i] - f[i - 1]);
  gaps.sort((a, b) => a - b);
  const q = (p) => gaps.length ? gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))] : 0;
  return { frames: f.length, span: f.length > 1 ? f[f.length - 1] - f[0] : 0,
           p50: q(0.5), p95: q(0.95), p99: q(0.99), max: gaps.length ? gaps[gaps.length - 1] : 0,
           long: __bench.long.length, long_max: Math.max(0, ...__bench.long),
           heap: performance.memory ? performance.memory.usedJSHeapSize : 0 };
"#;

fn metric(metrics: &Value, name: &str) -> f64 {
    metrics["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_f64())
        .unwrap_or(0.0)
}

async fn one_run(args: &Args, gateway: &process::Proc) -> anyhow::Result<Run> {
    let b = Browser::launch().await;
    b.open(&gateway.url(&format!("/ui/?channels=logs:etl&max={}", args.max)))
        .await;
    viewer::wait_status(&b, "live").await;
    b.eval(RECORD).await;
    b.cdp("Performance.enable", json!({})).await;
    let before = b.cdp("Performance.getMetrics", json!({})).await;

    let client = reqwest::Client::new();
    let base = gateway.url("");
    let per_batch = args.rate.div_ceil(100);
    let mut ids = Vec::new();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for round in 0..args.seconds * 100 {
        tick.tick().await;
        let batch: Vec<Value> = (0..per_batch)
            .map(|i| {
                event(
                    "etl",
                    Some("ws1"),
                    Some("job7"),
                    &format!("line {round}.{i} GET /api/orders/{round} 200 took=12ms user=alice"),
                )
            })
            .collect();
        let (status, answer) = testkit::http::publish(
            &client,
            &base,
            ETL_TOKEN,
            "application/json",
            Value::Array(batch).to_string(),
            testkit::DEADLINE,
        )
        .await;
        ensure!(status.is_success(), "publish refused: {answer}");
        for id in answer["ids"].as_array().into_iter().flatten() {
            ids.push(id.as_str().unwrap_or_default().to_owned());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = b.cdp("Performance.getMetrics", json!({})).await;
    let r = b.eval(RESULTS).await;
    let last = ids.last().context("nothing published")?.clone();
    b.wait_for(
        "the last line",
        &format!(
            "const l = document.querySelectorAll('[data-testid=log-line]'); return l.length > 0 && l[l.length - 1].dataset.id === {};",
            Value::from(last)
        ),
    )
    .await;
    let lines = viewer::lines(&b).await;
    let kept: Vec<&str> = lines.iter().map(|l| l.id.as_str()).collect();
    let want: Vec<&str> = ids[ids.len().saturating_sub(args.max)..]
        .iter()
        .map(String::as_str)
        .collect();
    let lost = want.iter().filter(|id| !kept.contains(id)).count();
    let lag_notices = viewer::notices(&b)
        .await
        .iter()
        .filter(|n| n.contains("Lag"))
        .count();
    let busy = metric(&after, "TaskDuration") - metric(&before, "TaskDuration");
    let span_s = r["span"].as_f64().unwrap_or(0.0) / 1000.0;
    let run = Run {
        published: ids.len(),
        frames_per_second: if span_s > 0.0 {
            r["frames"].as_f64().unwrap_or(0.0) / span_s
        } else {
            0.0
        },
        gap_p50: r["p50"].as_f64().unwrap_or(0.0),
        gap_p95: r["p95"].as_f64().unwrap_or(0.0),
        gap_p99: r["p99"].as_f64().unwrap_or(0.0),
        gap_max: r["max"].as_f64().unwrap_or(0.0),
        long_frames: r["long"].as_u64().unwrap_or(0),
        long_frame_max: r["long_max"].as_f64().unwrap_or(0.0),
        busy_percent: 100.0 * busy / elapsed,
        heap_mib: r["heap"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0),
        kept: kept.len(),
        lost,
        lag_notices,
    };
    b.close().await;
    Ok(run)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.rate > 0 && args.seconds > 0 && args.runs > 0,
        "rate, seconds and runs must be positive"
    );
    ensure!(
        args.binary.is_file(),
        "no gateway binary at {} (scripts/bench.sh builds it)",
        args.binary.display()
    );
    let mut cmd = process::base_command(&args.binary);
    cmd.env("PUBLISH_RATE_PER_SEC", "0")
        .env("PUBLISH_BYTES_PER_SEC", "0")
        .env("CONNECT_RATE_PER_IP", "0")
        .env("HISTORY_RATE_PER_IP", "0")
        .env("RUST_LOG", "warn,loggate=info");
    let gateway = process::spawn(cmd);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut runs = Vec::new();
    for i in 0..args.runs {
        eprintln!("viewer-bench: run {} of {}", i + 1, args.runs);
        runs.push(runtime.block_on(one_run(&args, &gateway))?);
    }
    println!(
        "| run | lines published | frames/s | frame gap p50 / p95 / p99 / max (ms) | long frames (max ms) | main thread busy | JS heap | kept | lost | lag notices |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (i, r) in runs.iter().enumerate() {
        println!(
            "| {} | {} | {:.0} | {:.1} / {:.1} / {:.1} / {:.1} | {} ({:.0}) | {:.0}% | {:.1} MiB | {} | {} | {} |",
            i + 1,
            r.published,
            r.frames_per_second,
            r.gap_p50,
            r.gap_p95,
            r.gap_p99,
            r.gap_max,
            r.long_frames,
            r.long_frame_max,
            r.busy_percent,
            r.heap_mib,
            r.kept,
            r.lost,
            r.lag_notices
        );
    }
    println!(
        "\nparameters: --rate {} --seconds {} --max {} (lines published in batches every 10 ms; headless Chromium {}x{})",
        args.rate,
        args.seconds,
        args.max,
        testkit::browser::WINDOW.0,
        testkit::browser::WINDOW.1
    );
    Ok(())
}
