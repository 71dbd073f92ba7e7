//! The durable history store on its own: how fast events are written,
//! how many bytes each takes on disk, and what a start costs (time and
//! memory) with everything already there.
//!
//!   cargo run --release --example store-bench -- [EVENTS] [MESSAGE_BYTES] [DIR]
//!
//! Defaults: 10,000,000 events of 256-byte messages on 100 channels, in a
//! fresh directory under target/. Prints one line per phase.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loggate::channel::ChannelName;
use loggate::event::{Event, EventBody, EventId, EventTimes, Level, NewEvent};
use loggate::metrics::Metrics;
use loggate::store::{self, Fsync, StoreSettings};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(Ok(10_000_000), |a| a.parse())?;
    let message_bytes: usize = args.next().map_or(Ok(256), |a| a.parse())?;
    let dir = args.next().map_or_else(
        || std::path::PathBuf::from("target/store-bench"),
        Into::into,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let settings = StoreSettings {
        dir: dir.clone(),
        fsync: Fsync::Interval,
        fsync_interval: Duration::from_millis(100),
        max_disk_bytes: 64 << 30,
        max_age_ms: i64::MAX / 2,
        memory_bytes: 256 << 20,
        key_window_ms: 300_000,
    };
    let metrics = Arc::new(Metrics::new(["etl"], &[]));
    let epoch = 0x19a_0000_0000;

    // Writing: batches of 100, as a busy publisher sends them.
    let (opened, _) = store::open(settings.clone(), &metrics)?;
    let (appender, handle) = opened.start_writer(epoch, Arc::clone(&metrics))?;
    let channels: Vec<ChannelName> = (0..100)
        .map(|i| ChannelName::parse(&format!("logs:etl:ws{}:job{}", i % 10, i)))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let message: String = "x".repeat(message_bytes);
    let started = Instant::now();
    let mut encoded_bytes = 0u64;
    let mut seq = 0u64;
    while seq < events {
        let batch: Vec<Arc<Event>> = (0..100.min(events - seq))
            .map(|_| {
                seq += 1;
                let e = event(&channels[(seq % 100) as usize], &message, epoch, seq);
                encoded_bytes += e.size() as u64;
                e
            })
            .collect();
        appender.append(batch);
        // The writer's queue is bounded: keep within it, as the registry's
        // pace would.
        while appender.pending_bytes() > loggate::store::MAX_PENDING_BYTES / 2 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    handle.close()?;
    let write_secs = started.elapsed().as_secs_f64();
    let errors = metrics.history_write_errors.get();
    let disk = dir_bytes(&dir.join("history"));
    println!(
        "write: {events} events of {message_bytes}-byte messages in {write_secs:.2} s = {:.0} events/s, {:.0} MB/s encoded; {errors} not stored",
        events as f64 / write_secs,
        encoded_bytes as f64 / write_secs / 1e6,
    );
    println!(
        "disk: {:.2} GB, {:.0} bytes per event on disk ({:.0} encoded)",
        disk as f64 / 1e9,
        disk as f64 / events as f64,
        encoded_bytes as f64 / events as f64
    );
    drop(appender);

    // A start with all of it there: what `server::app_data` does.
    let rss_before = rss_kib();
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new(["etl"], &[]));
    let (opened, recovered) = store::open(settings, &metrics)?;
    let open_secs = started.elapsed().as_secs_f64();
    println!(
        "start: open and read back {} events ({} on disk) in {:.3} s; RSS +{} MiB",
        recovered.recent.len(),
        recovered.last_seq,
        open_secs,
        (rss_kib().saturating_sub(rss_before)) / 1024
    );
    drop(opened);
    Ok(())
}

fn event(channel: &ChannelName, message: &str, epoch: u64, seq: u64) -> Arc<Event> {
    let body = EventBody {
        channel: channel.as_str(),
        service: channel.service(),
        workspace_id: channel.workspace(),
        resource_id: channel.resource(),
        level: Level::Info,
        message,
        timestamp: "2026-12-07T10:30:00.000Z",
        received_at: "2026-12-07T10:30:00.012Z",
        stream: Some("stdout"),
        source: None,
        meta: None,
    };
    let now = loggate::event::now_ms();
    let times = EventTimes {
        timestamp_ms: now,
        received_ms: now,
    };
    Event::encode(
        EventId { epoch, seq },
        NewEvent::new(channel.clone(), Level::Info, times, &body),
    )
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
