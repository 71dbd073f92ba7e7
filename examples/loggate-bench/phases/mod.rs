//! The run, phase by phase, in the order the table shows them: start the
//! nodes, warm the cluster path up (`--cluster`), open the idle subscribers
//! and weigh them, publish at full speed, publish at a fixed rate, then
//! cross-check with the gateway's counters, stop everything and print.
//! Each phase measures and adds its own rows; this file holds what they
//! share ([`Bench`]) and their order.

mod closing;
pub mod full_speed;
mod idle;
pub mod latency;
mod warm_up;

use std::sync::Arc;

use tokio::sync::{Semaphore, watch};

use crate::args::Args;
use crate::nodes::Nodes;
use crate::procfs::{clock_ticks_per_sec, open_file_limit};
use crate::publish::{http_client, subscribers_per_channel};
use crate::report::{Report, progress};

/// Subscribers connecting (not yet ready) at once.
const CONNECT_CONCURRENCY: usize = 128;

/// What every phase uses.
pub struct Bench<'a> {
    args: &'a Args,
    /// For /metrics, health checks and the warm-up probes; the publishers
    /// have their own.
    client: reqwest::Client,
    nodes: Nodes,
    /// `http://<publishing node>/api/logs/publish`.
    publish_url: String,
    /// Subscribers on each channel, by channel index: what one event on a
    /// channel owes in deliveries.
    subs_on: Vec<u64>,
    report: Report,
    /// Clock ticks per second, for the CPU rows.
    tck: f64,
}

impl Bench<'_> {
    fn cluster(&self) -> bool {
        self.nodes.cluster()
    }
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let tck = clock_ticks_per_sec();
    warn_if_few_files(args);
    let client = http_client()?;
    let nodes = Nodes::start(args, &client).await?;
    let publish_url = format!("http://{}/api/logs/publish", nodes.publisher().addr);
    let subs_on = subscribers_per_channel(args.subscribers, args.channels);
    let mut bench = Bench {
        args,
        client,
        nodes,
        publish_url,
        subs_on,
        report: Report::default(),
        tck,
    };
    bench.report.row("Mode", mode(&bench.nodes));
    let (stop_tx, stop_rx) = watch::channel(false);
    let connect = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));

    let warm = if bench.cluster() {
        Some(warm_up::run(&mut bench, &connect, &stop_rx).await?)
    } else {
        None
    };
    let subscribers = idle::run(&mut bench, &connect, &stop_rx).await?;
    if let Some(w) = &warm {
        w.report(&mut bench.report);
    }
    let full = full_speed::run(&mut bench, &subscribers.shared).await?;
    let fixed = latency::run(&mut bench, &subscribers.shared).await?;
    let shared = Arc::clone(&subscribers.shared);
    let counts =
        closing::GatewayCounts::read(&bench, &shared, &warm, [&full, &fixed.publish]).await;
    let hist = closing::stop_subscribers(subscribers, warm, &stop_tx).await;
    fixed.report(&mut bench.report, args.rate, &hist, &shared);
    let report = closing::finish(bench, counts, &shared).await;

    println!();
    report.print();
    println!();
    println!("{}", args.summary_line());
    Ok(())
}

fn mode(nodes: &Nodes) -> String {
    if nodes.cluster() {
        format!(
            "cluster: publish on A, subscribe on B, one nats-server ({})",
            nodes.nats_version.as_deref().unwrap_or("version unknown")
        )
    } else {
        "single node".into()
    }
}

/// Every subscriber is a socket here and one in the gateway.
fn warn_if_few_files(args: &Args) {
    let needed = args.subscribers as u64 + 256;
    match open_file_limit() {
        Some(limit) if limit < needed => progress(format!(
            "warning: the open-file limit is {limit}, but {} subscribers need about {needed} \
             (in this process and in the gateway); raise it with `ulimit -n` or use scripts/bench.sh",
            args.subscribers
        )),
        _ => {}
    }
}
