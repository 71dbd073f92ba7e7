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
