//! `--peer nchan`: loggate and Nchan side by side under the same workload.
//! Runs alternate, loggate then the peer, `--runs` times, each on a fresh
//! server (`run.rs`); every run's figures go to a JSON-lines file as they
//! come, and the end prints medians, ranges, per-run ratios and the
//! targets of issue 14 (`summary.rs`). `target.rs` knows how to start and
//! talk to each server.

mod run;
mod summary;
pub mod target;

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::args::{Args, Peer};
use crate::procfs::{clock_ticks_per_sec, open_file_limit};
use crate::publish::http_client;
use crate::report::progress;
use target::Target;

pub async fn run(args: &Args, peer: Peer) -> anyhow::Result<()> {
    let tck = clock_ticks_per_sec();
    let client = http_client()?;
    let peer = Target::peer(peer);
    let needed = args.idle_connections.max(args.subscribers) as u64 + 256;
    if let Some(limit) = open_file_limit().filter(|l| *l < needed) {
        progress(format!(
            "warning: the open-file limit is {limit}; {needed} are needed here and in each \
             server (raise it with `ulimit -n` or use scripts/bench.sh)"
        ));
    }
    let versions = target::versions(args, peer);
    for (what, v) in &versions {
        progress(format!("{what}: {v}"));
    }
    let (path, mut raw) = results_file(args, peer)?;
    let header = serde_json::json!({
        "parameters": parameters(args),
        "versions": versions.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "unix_time": unix_time(),
    });
    writeln!(raw, "{header}")?;
    let mut results = Vec::new();
    for n in 1..=args.runs {
        for target in [Target::Loggate, peer] {
            let r = run::one_run(args, &client, target, n, tck)
                .await
                .with_context(|| format!("run {n} of {}", target.name()))?;
            writeln!(raw, "{}", serde_json::to_string(&r)?)?;
            raw.flush()?;
            results.push(r);
        }
    }
    println!();
    for (what, v) in &versions {
        println!("- {what}: {v}");
    }
    println!();
    summary::print(&results, args, peer);
    println!();
    println!("{}", parameters(args));
    println!("raw results: {}", path.display());
    Ok(())
}

/// The line under the table: how it was made.
fn parameters(args: &Args) -> String {
    format!(
        "parameters: runs={} (interleaved, fresh server each) idle-connections={} \
         subscribers={} channels={} publishers={} batch=1 body-bytes={} duration={}s \
         rates={} latency-duration={}s ingest-batch={} bench-threads={}",
        args.runs,
        args.idle_connections,
        args.subscribers,
        args.channels,
        args.publishers(),
        args.body_bytes,
        args.duration,
        args.rates
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(","),
        args.latency_duration,
        args.ingest_batch,
        args.bench_threads
    )
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `<results-dir>/peer-<peer>-<unix time>.jsonl`, created.
fn results_file(args: &Args, peer: Target) -> anyhow::Result<(PathBuf, File)> {
    std::fs::create_dir_all(&args.results_dir)
        .with_context(|| format!("cannot create {}", args.results_dir.display()))?;
    let path = args.results_dir.join(format!(
        "peer-{}-{}.jsonl",
        peer.name().to_ascii_lowercase(),
        unix_time()
    ));
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok((path, file))
}
