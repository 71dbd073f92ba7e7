//! The ingest mode (`--ingest`): one fresh gateway, nobody subscribed, and
//! each ingest endpoint in turn driven flat out for `--duration` seconds
//! with batches of `--ingest-batch` records of `--message-bytes` text:
//! `/api/logs/publish` (JSON), `/v1/logs` (OTLP protobuf, OTLP/JSON) and
//! `/loki/api/v1/push` (snappy protobuf, JSON). The records carry the same
//! channel, level and message in every format, so the rows compare the
//! cost of reading each format, not of different events.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use loggate::ingest::loki::{EntryAdapter, PushRequest, StreamAdapter};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio::time::sleep;

use crate::args::Args;
use crate::nodes::free_ports;
use crate::peer::target::Target;
use crate::phases::full_speed::publish_flat_out;
use crate::procfs::{CpuMeter, clock_ticks_per_sec};
use crate::publish::{Endpoint, SERVICE, WORKSPACE, batch_body, http_client};
use crate::report::{progress, thousands};

/// The formats measured, in the order they run.
#[derive(Clone, Copy, Debug)]
enum Format {
    Publish,
    OtlpProtobuf,
    OtlpJson,
    LokiProtobuf,
    LokiJson,
}

const FORMATS: [Format; 5] = [
    Format::Publish,
    Format::OtlpProtobuf,
    Format::OtlpJson,
    Format::LokiProtobuf,
    Format::LokiJson,
];

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Publish => "POST /api/logs/publish (JSON array)",
            Format::OtlpProtobuf => "POST /v1/logs (OTLP protobuf)",
            Format::OtlpJson => "POST /v1/logs (OTLP/JSON)",
            Format::LokiProtobuf => "POST /loki/api/v1/push (snappy protobuf)",
            Format::LokiJson => "POST /loki/api/v1/push (JSON)",
        }
    }

    fn endpoint(self, base: &str, records: u64) -> Endpoint {
        let shipper = |path: &str, content_type, success| Endpoint::Shipper {
            url: format!("{base}{path}"),
            content_type,
            success,
            records,
        };
        match self {
            Format::Publish => Endpoint::Loggate(format!("{base}/api/logs/publish")),
            Format::OtlpProtobuf => shipper("/v1/logs", "application/x-protobuf", 200),
            Format::OtlpJson => shipper("/v1/logs", "application/json", 200),
            Format::LokiProtobuf => shipper("/loki/api/v1/push", "application/x-protobuf", 204),
            Format::LokiJson => shipper("/loki/api/v1/push", "application/json", 204),
        }
    }

    /// One request body of `batch` records for channel `c`.
    fn body(self, c: usize, batch: usize, message: &str) -> anyhow::Result<Bytes> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
        Ok(Bytes::from(match self {
            Format::Publish => return Ok(batch_body(c, batch, message)),
            Format::OtlpProtobuf => otlp(c, batch, message, now).encode_to_vec(),
            Format::OtlpJson => serde_json::to_vec(&otlp(c, batch, message, now))?,
            Format::LokiProtobuf => snap::raw::Encoder::new()
                .compress_vec(&loki(c, batch, message, now).encode_to_vec())
                .context("snappy")?,
            Format::LokiJson => {
                let values: Vec<_> = (0..batch)
                    .map(|_| serde_json::json!([now.to_string(), message]))
                    .collect();
                serde_json::to_vec(&serde_json::json!({"streams": [{
                    "stream": {"service": SERVICE, "workspace": WORKSPACE,
                               "resource": format!("c{c}"), "level": "info"},
                    "values": values,
                }]}))?
            }
        }))
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn otlp(c: usize, batch: usize, message: &str, now: u64) -> ExportLogsServiceRequest {
    let record = LogRecord {
        time_unix_nano: now,
        severity_number: 9,
        body: Some(AnyValue {
            value: Some(Value::StringValue(message.into())),
        }),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", SERVICE),
                    string("loggate.workspace", WORKSPACE),
                    string("loggate.resource", &format!("c{c}")),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![record; batch],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn loki(c: usize, batch: usize, message: &str, now: u64) -> PushRequest {
    let entry = EntryAdapter {
        timestamp: Some(prost_types::Timestamp {
            seconds: (now / 1_000_000_000) as i64,
            nanos: (now % 1_000_000_000) as i32,
        }),
        line: message.as_bytes().to_vec(),
        structured_metadata: Vec::new(),
    };
    PushRequest {
        streams: vec![StreamAdapter {
            labels: format!(
                r#"{{service="{SERVICE}", workspace="{WORKSPACE}", resource="c{c}", level="info"}}"#
            ),
            entries: vec![entry; batch],
            hash: 0,
        }],
    }
}

/// What one format measured.
struct Row {
    format: Format,
    records_per_s: f64,
    cpu_pct: f64,
    failed: u64,
    first_error: Option<String>,
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let tck = clock_ticks_per_sec();
    let client = http_client()?;
    let port = free_ports(1)?[0];
    let mut running = Target::Loggate.start(args, &client, 1, port).await?;
    let base = format!("http://{}", running.server.addr);
    progress(format!(
        "ingest: gateway pid {} on {base} (log: {})",
        running.server.pid,
        running.server.log.display()
    ));
    let batch = args.ingest_batch;
    let message = "x".repeat(args.message_bytes);
    let mut rows = Vec::new();
    for format in FORMATS {
        let bodies: Vec<Bytes> = (0..args.channels)
            .map(|c| format.body(c, batch, &message))
            .collect::<anyhow::Result<_>>()?;
        let size = bodies[0].len();
        progress(format!("  {}: {size} bytes per request", format.name()));
        let endpoint = format.endpoint(&base, batch as u64);
        let cpu = CpuMeter::start(&running.pids());
        let began = Instant::now();
        let end = began + std::time::Duration::from_secs_f64(args.duration);
        let stats = publish_flat_out(&endpoint, args.publishers(), Arc::new(bodies), end).await?;
        let wall = began.elapsed().as_secs_f64();
        let seconds = cpu.children_seconds(tck).unwrap_or(f64::NAN);
        let row = Row {
            format,
            records_per_s: stats.events() as f64 / wall,
            cpu_pct: seconds / wall * 100.0,
            failed: stats
                .requests_failed
                .load(std::sync::atomic::Ordering::Relaxed),
            first_error: stats.error_text(),
        };
        progress(format!(
            "  {}: {} records/s",
            format.name(),
            thousands(row.records_per_s as u64)
        ));
        rows.push(row);
        sleep(std::time::Duration::from_millis(300)).await;
    }
    let stopped = running.server.stop(std::time::Duration::from_secs(15));
    progress(format!("ingest: gateway {stopped}"));
    println!();
    println!("| endpoint | records/s | server CPU | CPU µs per record | failed requests |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        let per_record = r.cpu_pct / 100.0 / r.records_per_s.max(1e-9) * 1e6;
        println!(
            "| {} | {} | {:.0} % | {per_record:.2} | {}{} |",
            r.format.name(),
            thousands(r.records_per_s as u64),
            r.cpu_pct,
            r.failed,
            r.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    println!();
    println!(
        "parameters: ingest-batch={batch} message-bytes={} publishers={} duration={}s channels={}, \
         no subscribers",
        args.message_bytes,
        args.publishers(),
        args.duration,
        args.channels
    );
    Ok(())
}
