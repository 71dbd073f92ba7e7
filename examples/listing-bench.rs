//! Benchmark of the channel listing (`GET /api/logs/channels`) over a large
//! history: how long its pages take (an upper bound of how long each holds
//! history's lock, and so can delay the registry), and what a client paging
//! through it without pause does to publish latency.
//!
//! Starts a gateway in this process on a loopback port, publishes one event
//! on each of `--channels` channels (4 services × workspaces × 5 resources),
//! then measures, over real HTTP:
//!
//! - every page of the whole listing at `limit=1000`;
//! - a workspace's page (`logs:*:wNNNNN`, a tenant's view);
//! - pages of `logs:*:*:r7`, whose `*` levels make each page spend its
//!   whole budget of 10,000 nodes (the most work one page can do);
//! - single-event publishes, first alone, then while another task pages
//!   through the listing as fast as it can;
//! - for comparison, history's own pages (`GET /api/logs/history`), which
//!   hold the same lock: at their scan budget, and paged through while
//!   publishing.
//!
//! ```text
//! cargo run --release --example listing-bench -- --channels 100000
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use serde_json::Value;
use testkit::event;

#[derive(Parser, Debug)]
#[command(name = "listing-bench", about = "Benchmark the channel listing")]
struct Args {
    /// Channels with history (a multiple of 20).
    #[arg(long, default_value_t = 100_000)]
    channels: usize,
    /// Publishes timed in each publish phase.
    #[arg(long, default_value_t = 2000)]
    publishes: usize,
}

const SERVICES: [(&str, &str); 4] = [
    ("analytics", "analytics-token"),
    ("etl", "l5-etl-token"),
    ("faas", "faas-token"),
    ("function", "function-token"),
];
const RESOURCES: usize = 5;
const CHANNELS: &str = "/api/logs/channels";
const HISTORY: &str = "/api/logs/history";
/// History's own pages, for comparison (they hold the same lock).
const HISTORY_PAGES: &str = "channels=logs:*&limit=1000";
/// History pages whose filter matches nothing: each looks at 20,000 events.
const NOTHING: &str = "channels=logs:*&q=no-such-text&limit=1000";

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!(
        "{:.2} | {:.2} | {:.2} | {}",
        at(0.5),
        at(0.99),
        ms[ms.len() - 1],
        ms.len()
    )
}

async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<(Value, f64)> {
    let started = Instant::now();
    let res = client.get(url).send().await?;
    ensure!(res.status().is_success(), "{url}: {}", res.status());
    let body: Value = res.json().await?;
    Ok((body, started.elapsed().as_secs_f64() * 1000.0))
}

/// Every page of `path?query`: the time of each, and the channels (or
/// events) listed.
async fn pages(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    query: &str,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut times = Vec::new();
    let mut listed = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}{path}?{query}");
        if let Some(c) = &cursor {
            url.push_str("&cursor=");
            url.push_str(c);
        }
        let (body, ms) = get(client, &url).await?;
        times.push(ms);
        listed += body["channels"]
            .as_array()
            .or(body["logs"].as_array())
            .map_or(0, Vec::len);
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok((times, listed)),
        }
    }
}

async fn publish_latencies(
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let body = event("etl", Some("timed"), None, &format!("m{i}")).to_string();
        let started = Instant::now();
        let res = client
            .post(format!("{base}/api/logs/publish"))
            .header("x-service-token", "l5-etl-token")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        ensure!(res.status().as_u16() == 202, "publish: {}", res.status());
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.channels % (SERVICES.len() * RESOURCES) == 0,
        "--channels: a multiple of 20"
    );
    let workspaces = args.channels / SERVICES.len() / RESOURCES;
    let gateway = loggate::spawn(testkit::config(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.history_rate_per_ip = 0;
        c.history.max_channels = args.channels + 10;
    }))
    .context("the gateway starts")?;
    let base = gateway.url("");
    let client = reqwest::Client::new();

    let started = Instant::now();
    for (service, token) in SERVICES {
        let all: Vec<Value> = (0..workspaces)
            .flat_map(|w| {
                (0..RESOURCES).map(move |r| {
                    event(
                        service,
                        Some(&format!("w{w:05}")),
                        Some(&format!("r{r}")),
                        "m",
                    )
                })
            })
            .collect();
        for batch in all.chunks(1000) {
            let res = client
                .post(format!("{base}/api/logs/publish"))
                .header("x-service-token", token)
                .json(&batch)
                .send()
                .await?;
            ensure!(res.status().as_u16() == 202, "publish: {}", res.status());
        }
    }
    println!(
        "{} channels ({} services × {workspaces} workspaces × {RESOURCES} resources) published in {:.1} s\n",
        args.channels,
        SERVICES.len(),
        started.elapsed().as_secs_f64()
    );

    println!("| what | p50 ms | p99 ms | max ms | requests |\n|---|---|---|---|---|");
    let row = |what: &str, times: Vec<f64>| println!("| {what} | {} |", summary(times));
    let (times, listed) = pages(&client, &base, CHANNELS, "limit=1000").await?;
    ensure!(
        listed == args.channels,
        "listed {listed} of {}",
        args.channels
    );
    row("every page of the whole listing, limit=1000", times);
    let mut tenant = Vec::new();
    for k in 0..200 {
        let w = k * 7 % workspaces;
        let url = format!("{base}{CHANNELS}?pattern=logs:*:w{w:05}");
        tenant.push(get(&client, &url).await?.1);
    }
    row("a workspace's page (`logs:*:wNNNNN`, 20 channels)", tenant);
    let (times, listed) = pages(&client, &base, CHANNELS, "pattern=logs:*:*:r7").await?;
    ensure!(listed == 0, "r7 does not exist");
    row("a page that spends its whole budget (`logs:*:*:r7`)", times);
    let (times, _) = pages(&client, &base, HISTORY, NOTHING).await?;
    row(
        "for comparison: a history page that spends its whole budget (`q` matching nothing)",
        times,
    );
    let (times, _) = pages(&client, &base, HISTORY, HISTORY_PAGES).await?;
    row("for comparison: every history page, limit=1000", times);

    let alone = publish_latencies(&client, &base, args.publishes).await?;
    row("publish, one event, nothing else running", alone);
    for (what, path, query) in [
        ("the listing", CHANNELS, "limit=1000"),
        ("history, limit=1000", HISTORY, HISTORY_PAGES),
        ("history at its budget", HISTORY, NOTHING),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let pager = {
            let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    n += pages(&client, &base, path, query).await?.0.len();
                }
                anyhow::Ok(n)
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let busy = publish_latencies(&client, &base, args.publishes).await?;
        stop.store(true, Ordering::Relaxed);
        let n = pager.await??;
        row(
            &format!("publish, one event, while a client pages {what} ({n} pages)"),
            busy,
        );
    }
    Ok(())
}
