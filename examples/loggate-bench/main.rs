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
//!
//! With `--peer nchan` it runs the same single-event workload on loggate
//! and on Nchan (nginx), alternately and each on a fresh server, and prints
//! the two side by side with their ratios (`peer/`).
//!
//! With `--ingest` it measures batched records/s through each ingest
//! endpoint in turn (`/api/logs/publish`, OTLP's `/v1/logs` in both
//! encodings, Loki's push in both), with nobody subscribed (`ingest`).
//!
//! With `--neighbour` one service pushes large requests as hard as its
//! limits allow while another publishes small events, and the other's
//! round trip is measured alone and beside it; with `--largest`, the
//! gateway's peak memory for the largest shipper requests (`neighbour`).
//!
//! The modules, from the command line down to the socket:
//!
//! - `args`: the options and their validation.
//! - `phases`: the run in order (warm-up, idle, full speed, latency,
//!   closing); each phase measures and adds its rows to the table.
//! - `peer`: the side-by-side mode: its runs, the two servers, the table.
//! - `ingest`: the ingest mode: the bodies of each format and the table.
//! - `neighbour`: the noisy-neighbour and largest-request modes.
//! - `nodes`: which processes run (one gateway, or nats-server and A, B);
//!   `server`: one such process; `procfs`: its memory and CPU from /proc.
//! - `publish`: channel names, event bodies, one publish request.
//! - `subscribers`: a group of subscriber tasks; `sse`: one subscriber on
//!   a raw socket; `chunked`: its body decoding; `frames`: its SSE frames.
//! - `stats`: the subscribers' shared counters and histograms.
//! - `metrics`: the gateway's own counters from /metrics.
//! - `report`: the summary table and its number formats.

mod args;
mod chunked;
mod frames;
mod ingest;
mod metrics;
mod neighbour;
mod nodes;
mod peer;
mod phases;
mod procfs;
mod publish;
mod report;
mod server;
mod sse;
mod stats;
mod subscribers;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::Parser;

use crate::args::Args;

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
        let bench = async {
            match args.peer {
                Some(peer) => peer::run(&args, peer).await,
                None if args.ingest => ingest::run(&args).await,
                None if args.neighbour => neighbour::run(&args).await,
                None if args.largest => neighbour::largest::run(&args).await,
                None => phases::run(&args).await,
            }
        };
        tokio::select! {
            r = bench => r,
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
