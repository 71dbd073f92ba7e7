//! Benchmark of AI log analysis: what a chat's tools cost over a full
//! history, and what chats cost everyone else.
//!
//! Starts the release gateway (a child process) pointed at a scripted
//! model server in this process, fills history with `--events` events on
//! one tenant's channels, then runs `--chats` chats one after another, each
//! calling `top_patterns`, `count_by` and `search_logs` before answering.
//! Meanwhile another tenant publishes one event at a time; its publish
//! latency is compared with the same loop before the chats. The model
//! server answers at once, so a chat's time is loggate's own: the tools
//! and the rounds on loopback.
//!
//! ```text
//! scripts/bench.sh --ai [--events 200000] [--chats 20]
//! ```
//!
//! With `--redact` it measures only the redactor, in this process: MB/s
//! over a realistic mix of log lines (access logs, JSON, stack traces,
//! Kubernetes events, ids and times, one line in twenty with a secret),
//! and over hostile inputs of growing size, whose MB/s stay flat if the
//! scan is linear.
//!
//! ```text
//! cargo run --release --example ai-bench -- --redact [--mb 32]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use serde_json::{Value, json};
use testkit::model::{ModelServer, Reply};
use testkit::{ETL_TOKEN, process};

#[derive(Parser, Debug)]
#[command(
    name = "ai-bench",
    about = "Benchmark AI log analysis over a full history"
)]
struct Args {
    #[arg(
        long,
        env = "LOGGATE_BENCH_BINARY",
        default_value = "target/release/loggate"
    )]
    binary: PathBuf,
    /// Events in history before the chats.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Chats, one after another.
    #[arg(long, default_value_t = 20)]
    chats: usize,
    /// Measure the redactor alone, in this process, and nothing else.
    #[arg(long)]
    redact: bool,
    /// Megabytes of log lines the redactor is timed over.
    #[arg(long, default_value_t = 32)]
    mb: usize,
}

/// Log lines as services write them; `{n}` a number, `{h}` hex, `{u}` a
/// UUID. One in twenty carries a secret.
const LINES: [&str; 20] = [
    "10.0.{n}.{n} - - [01/May/2024:12:34:56 +0000] \"GET /api/v1/users/{n}?page={n} HTTP/1.1\" 200 {n} \"-\" \"Mozilla/5.0\"",
    "{\"level\":\"info\",\"ts\":\"2024-05-01T12:34:56.{n}Z\",\"msg\":\"request done\",\"request_id\":\"{u}\",\"status\":200,\"duration_ms\":{n}}",
    "traceparent: 00-{h}{h}-{h}-01 span ended after {n}ms",
    "db timeout after {n} ms on shard {n} (query SELECT * FROM orders WHERE id = {n})",
    "    at com.example.service.OrderServiceImpl.place(OrderServiceImpl.java:{n})",
    "pod/api-7d9f8c6b5-x{n}k restarted in namespace prod, reason OOMKilled, {n} MiB",
    "deployed commit {h}{h}{h} version 1.{n}.{n} to eu-west-1",
    "cache miss for key user:{n}:profile ({n} bytes), idempotency_key={u}",
    "worker {n} finished job {u} in {n}.{n}s, {n} rows",
    "connection reset by peer 10.0.{n}.{n}:5432 after {n} retries",
    "GC pause {n}ms heap {n}MiB -> {n}MiB",
    "user {n} logged in from 203.0.113.{n} via sso",
    "payment {u} failed: card declined code {n}",
    "{\"level\":\"warn\",\"msg\":\"slow request\",\"path\":\"/api/orders/{n}\",\"trace_id\":\"{h}{h}\"}",
    "retrying request {u} (attempt {n}/5) in {n}ms",
    "kafka consumer group orders lag {n} on partition {n}",
    "TLS handshake with api.example.com:443 took {n}ms",
    "s3://logs-bucket/2024/05/01/part-{n}.gz uploaded ({n} bytes)",
    "scheduler: {n} jobs queued, {n} running, {n} failed",
    "login failed for bob{n}@example.com password=hunter{n} key AKIAIOSFODNN7EXAMPLE",
];

/// A small PRNG: the mix is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn log_line(rng: &mut XorShift) -> String {
    let template = LINES[(rng.next() % LINES.len() as u64) as usize];
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let (piece, skip) = match rest.get(at..at + 3) {
            Some("{n}") => ((rng.next() % 100_000).to_string(), 3),
            Some("{h}") => (format!("{:016x}", rng.next()), 3),
            Some("{u}") => {
                let (a, b) = (rng.next(), rng.next());
                (
                    format!(
                        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                        a >> 32,
                        a & 0xffff,
                        b & 0xfff,
                        (b >> 12) & 0xfff,
                        b >> 16
                    ),
                    3,
                )
            }
            _ => ("{".to_owned(), 1),
        };
        out.push_str(&piece);
        rest = &rest[at + skip..];
    }
    out.push_str(rest);
    out
}

/// MB/s of `text` over `lines`, the best of three runs.
fn throughput(redactor: &loggate::ai::redact::Redactor, lines: &[String]) -> (f64, usize) {
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut best = f64::INFINITY;
    let mut found = 0;
    for _ in 0..3 {
        let t = Instant::now();
        found = lines.iter().map(|l| redactor.text(l).1).sum();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (bytes as f64 / best / 1e6, found)
}

fn redact_bench(mb: usize) {
    let redactor = loggate::ai::redact::Redactor::new();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut lines = Vec::new();
    let mut bytes = 0;
    while bytes < mb << 20 {
        let line = log_line(&mut rng);
        bytes += line.len();
        lines.push(line);
    }
    eprintln!(
        "ai-bench: redacting {} lines, {} MB",
        lines.len(),
        bytes >> 20
    );
    let (rate, found) = throughput(&redactor, &lines);
    println!("| Input | MB/s | Redacted |");
    println!("|---|---|---|");
    println!(
        "| {} log lines ({} MB), realistic mix | {rate:.1} | {found} |",
        lines.len(),
        bytes >> 20
    );
    // Hostile lines: the same MB/s at 1 and 4 MiB means linear time.
    for (name, unit) in [
        ("nested keys `a_key=`", "a_key="),
        ("`password=`", "password="),
        ("word starts in one token `-sk_live_`", "-sk_live_"),
        (
            "prefixes inside words `xsk_live_abcdefghijk `",
            "xsk_live_abcdefghijk ",
        ),
        ("digit groups `4111 `", "4111 "),
        ("`AKIA `", "AKIA "),
        ("`secret ` + random", "secret 9f8Kq2LmZ7xR4vT1wE "),
        ("e-mail-ish `a@b.`", "a@b."),
    ] {
        let mut cells = Vec::new();
        for size in [1usize << 20, 4 << 20] {
            let line = unit.repeat(size / unit.len());
            let (rate, _) = throughput(&redactor, std::slice::from_ref(&line));
            cells.push(format!("{rate:.1}"));
        }
        println!(
            "| {name}, one 1 MiB / 4 MiB line | {} | |",
            cells.join(" / ")
        );
    }
}

const TEMPLATES: [&str; 8] = [
    "GET /api/users/{} 200 {}ms",
    "POST /api/orders {} created in {}ms",
    "db timeout after {} ms on shard {}",
    "cache miss for key user:{} ({} bytes)",
    "worker {} finished job in {}s",
    "retrying request {} (attempt {})",
    "payment {} failed: card declined code {}",
    "connection reset by peer 10.0.{}.{}:5432",
];

fn message(i: usize) -> (String, &'static str) {
    let t = TEMPLATES[i % TEMPLATES.len()];
    let text = t
        .replacen("{}", &(i * 7919 % 100_000).to_string(), 1)
        .replacen("{}", &(i % 250).to_string(), 1);
    let level = match i % TEMPLATES.len() {
        2 | 6 => "error",
        5 | 7 => "warn",
        _ => "info",
    };
    (text, level)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn publish_latencies(
    client: &reqwest::Client,
    url: &str,
    stop: Arc<AtomicBool>,
    max: usize,
) -> Vec<f64> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) && out.len() < max {
        let body = json!({"service": "faas", "workspace_id": "ws2", "logData": {"level": "info", "message": "other tenant"}});
        let t = Instant::now();
        let res = client
            .post(format!("{url}/api/logs/publish"))
            .header("X-Service-Token", "faas-token")
            .json(&body)
            .send()
            .await;
        if res.is_ok_and(|r| r.status().is_success()) {
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    out.sort_by(f64::total_cmp);
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.redact {
        redact_bench(args.mb);
        return Ok(());
    }
    let mut script = Vec::new();
    for _ in 0..args.chats {
        script.push(Reply::tool("top_patterns", json!({})));
        script.push(Reply::tool("count_by", json!({"field": "level"})));
        script.push(Reply::tool(
            "search_logs",
            json!({"query": "timeout", "limit": 100}),
        ));
        script.push(Reply::text("done"));
    }
    let model = ModelServer::start(script).await;
    let mut cmd = process::base_command(&args.binary);
    cmd.env("OPENROUTER_API_KEY", "bench")
        .env("AI_BASE_URL", model.base_url())
        .env("AI_RATE_PER_MINUTE", "0")
        .env("PUBLISH_RATE_PER_SEC", "0")
        .env("PUBLISH_BYTES_PER_SEC", "0")
        .env("LOG_BUFFER_MAX_ENTRIES", args.events.to_string());
    let gw = process::spawn(cmd);
    let url = gw.url("");
    let client = reqwest::Client::new();

    eprintln!("ai-bench: filling history with {} events", args.events);
    let fill = Instant::now();
    for start in (0..args.events).step_by(1000) {
        let batch: Vec<Value> = (start..(start + 1000).min(args.events))
            .map(|i| {
                let (text, level) = message(i);
                json!({"service": "etl", "workspace_id": "ws1", "resource_id": format!("job{}", i % 10),
                    "logData": {"level": level, "message": text}})
            })
            .collect();
        let res = client
            .post(format!("{url}/api/logs/publish"))
            .header("X-Service-Token", ETL_TOKEN)
            .json(&batch)
            .send()
            .await
            .context("publish")?;
        ensure!(res.status().is_success(), "publish: {}", res.status());
    }
    let fill_secs = fill.elapsed().as_secs_f64();
    let rss_before = gw.rss_kib();

    eprintln!("ai-bench: baseline publish latency");
    let baseline = publish_latencies(&client, &url, Arc::new(AtomicBool::new(false)), 500).await;

    eprintln!("ai-bench: {} chats", args.chats);
    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn({
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        async move { publish_latencies(&client, &url, stop, usize::MAX).await }
    });
    let mut chat_ms = Vec::new();
    let mut looked_at = 0;
    for _ in 0..args.chats {
        let t = Instant::now();
        let res = client
            .post(format!("{url}/api/logs/chat"))
            .json(&json!({"message": "what is going wrong?", "channels": ["logs:etl:ws1"]}))
            .send()
            .await
            .context("chat")?;
        ensure!(res.status().is_success(), "chat: {}", res.status());
        let _: Value = res.json().await?;
        chat_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    stop.store(true, Ordering::Relaxed);
    let during = during.await?;
    let rss_after = gw.rss_kib();
    for r in model.requests() {
        for m in r["messages"].as_array().into_iter().flatten() {
            if m["role"] == "tool"
                && let Ok(v) = serde_json::from_str::<Value>(m["content"].as_str().unwrap_or(""))
                && let Some(n) = v["events_looked_at"].as_u64()
            {
                looked_at = looked_at.max(n);
            }
        }
    }
    chat_ms.sort_by(f64::total_cmp);
    let bytes_sent: usize = model
        .requests()
        .iter()
        .map(|r| r.to_string().len())
        .sum::<usize>()
        / args.chats.max(1);

    println!("| Metric | Value |");
    println!("|---|---|");
    println!(
        "| Events in history | {} (filled in {fill_secs:.1} s) |",
        args.events
    );
    println!("| Events an aggregating tool looked at | {looked_at} |");
    println!(
        "| Chat (3 tools, 4 rounds) p50 / max | {:.0} ms / {:.0} ms |",
        percentile(&chat_ms, 0.5),
        percentile(&chat_ms, 1.0)
    );
    println!(
        "| Bytes sent to the model per chat (4 requests) | {} KiB |",
        bytes_sent / 1024
    );
    println!(
        "| Other tenant's publish p50 / p99, no chats | {:.2} ms / {:.2} ms ({} requests) |",
        percentile(&baseline, 0.5),
        percentile(&baseline, 0.99),
        baseline.len()
    );
    println!(
        "| Other tenant's publish p50 / p99, during chats | {:.2} ms / {:.2} ms ({} requests) |",
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        during.len()
    );
    println!(
        "| Gateway RSS before → after the chats | {:.1} MiB → {:.1} MiB |",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    Ok(())
}
