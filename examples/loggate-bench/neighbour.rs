//! The noisy-neighbour mode (`--neighbour`): what one tenant's large
//! requests cost another tenant. One fresh gateway with its per-service
//! limits on (the built-in defaults, or `--server-env`); service `etl`
//! pushes large requests (`--neighbour-format`, `--neighbour-lines` lines
//! of `--neighbour-line-bytes`) from `--publishers` connections as hard as
//! its limits allow (a refused request is sent again after
//! [`PUSH_BACKOFF`], whatever `Retry-After` says), while service `faas`
//! publishes one small event at a time. The table gives `faas`'s round
//! trip alone, then beside the pusher, and what the pusher got through.
//!
//! With `--largest` it measures memory instead (see [`largest`]).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use loggate::ingest::loki::{EntryAdapter, PushRequest, StreamAdapter};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio::time::sleep;

use crate::args::{Args, NeighbourFormat, secs};
use crate::nodes::free_ports;
use crate::procfs::{CpuMeter, ProcStatus, clock_ticks_per_sec};
use crate::publish::http_client;
use crate::report::{Report, mib, progress, thousands};
use crate::server::Server;

/// The pusher's service and token (a dev token).
const PUSHER_TOKEN: &str = "l5-etl-token";
/// The other tenant's service and token.
const OTHER_SERVICE: &str = "faas";
const OTHER_TOKEN: &str = "faas-token";
/// How long a pusher waits after a refusal before it sends again.
const PUSH_BACKOFF: Duration = Duration::from_millis(20);
/// The other tenant's pause between two publishes.
const PROBE_PAUSE: Duration = Duration::from_millis(5);

impl NeighbourFormat {
    fn name(self) -> &'static str {
        match self {
            NeighbourFormat::Publish => "POST /api/logs/publish (JSON array)",
            NeighbourFormat::LokiJson => "POST /loki/api/v1/push (JSON, pino-loki's shape)",
            NeighbourFormat::LokiJsonGzip => {
                "POST /loki/api/v1/push (JSON, pino-loki's shape, gzip)"
            }
            NeighbourFormat::LokiProtobuf => "POST /loki/api/v1/push (snappy protobuf)",
            NeighbourFormat::OtlpProtobuf => "POST /v1/logs (OTLP protobuf, gzip)",
        }
    }

    fn path(self) -> &'static str {
        match self {
            NeighbourFormat::Publish => "/api/logs/publish",
            NeighbourFormat::LokiJson
            | NeighbourFormat::LokiJsonGzip
            | NeighbourFormat::LokiProtobuf => "/loki/api/v1/push",
            NeighbourFormat::OtlpProtobuf => "/v1/logs",
        }
    }

    /// Content type and content encoding.
    fn headers(self) -> (&'static str, Option<&'static str>) {
        match self {
            NeighbourFormat::Publish | NeighbourFormat::LokiJson => ("application/json", None),
            NeighbourFormat::LokiJsonGzip => ("application/json", Some("gzip")),
            NeighbourFormat::LokiProtobuf => ("application/x-protobuf", None),
            NeighbourFormat::OtlpProtobuf => ("application/x-protobuf", Some("gzip")),
        }
    }

    /// One request body of `lines` lines of about `line_bytes` each, and
    /// its size once decoded (what the gateway's byte rate counts).
    pub fn body(self, lines: usize, line_bytes: usize) -> anyhow::Result<(Bytes, usize)> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
        let line = |i: usize| pino_line(i, now, line_bytes);
        let plain = match self {
            NeighbourFormat::Publish => {
                let events: Vec<serde_json::Value> = (0..lines)
                    .map(|i| {
                        serde_json::json!({"service": "etl", "workspace_id": "noisy",
                            "logData": {"level": "info", "message": line(i)}})
                    })
                    .collect();
                serde_json::to_vec(&events)?
            }
            NeighbourFormat::LokiJson | NeighbourFormat::LokiJsonGzip => {
                pino_loki_push(lines, now, line_bytes)?
            }
            NeighbourFormat::LokiProtobuf => PushRequest {
                streams: vec![StreamAdapter {
                    labels: r#"{service="etl", workspace="noisy", level="info"}"#.into(),
                    entries: (0..lines)
                        .map(|i| EntryAdapter {
                            timestamp: Some(prost_types::Timestamp {
                                seconds: (now / 1_000_000_000) as i64,
                                nanos: (now % 1_000_000_000) as i32,
                            }),
                            line: line(i).into_bytes(),
                            structured_metadata: Vec::new(),
                        })
                        .collect(),
                    hash: 0,
                }],
            }
            .encode_to_vec(),
            NeighbourFormat::OtlpProtobuf => otlp(lines, now, &line).encode_to_vec(),
        };
        let decoded = plain.len();
        let body = match self {
            NeighbourFormat::LokiProtobuf => snap::raw::Encoder::new()
                .compress_vec(&plain)
                .context("snappy")?,
            NeighbourFormat::LokiJsonGzip | NeighbourFormat::OtlpProtobuf => gzip(&plain)?,
            _ => plain,
        };
        Ok((Bytes::from(body), decoded))
    }
}

fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

/// A line as pino writes it (what pino-loki sends as the Loki line), about
/// `bytes` long: a request log of pino-http, padded in its user agent.
fn pino_line(i: usize, now_ns: u64, bytes: usize) -> String {
    let head = format!(
        r#"{{"level":30,"time":{},"pid":4242,"req":{{"id":{i},"method":"GET","url":"/api/items/{i}","headers":{{"host":"api.example.com","user-agent":""#,
        now_ns / 1_000_000
    );
    let tail = r#""}},"res":{"statusCode":200},"responseTime":3,"msg":"request completed"}"#;
    let pad = bytes.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "m".repeat(pad))
}

/// A push as pino-loki (2.x) sends a batch: one stream per line, labelled
/// with its level and host (pino-loki's `LogBuilder.build`), the pino line
/// as the value.
pub fn pino_loki_push(lines: usize, now_ns: u64, line_bytes: usize) -> anyhow::Result<Vec<u8>> {
    let streams: Vec<serde_json::Value> = (0..lines)
        .map(|i| {
            serde_json::json!({
                "stream": {"level": "info", "hostname": "web-1", "service": "etl",
                           "workspace": "noisy"},
                "values": [[now_ns.to_string(), pino_line(i, now_ns, line_bytes)]],
            })
        })
        .collect();
    Ok(serde_json::to_vec(
        &serde_json::json!({ "streams": streams }),
    )?)
}

fn otlp(lines: usize, now: u64, line: &dyn Fn(usize) -> String) -> ExportLogsServiceRequest {
    let string = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", "etl"),
                    string("loggate.workspace", "noisy"),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..lines)
                    .map(|i| LogRecord {
                        time_unix_nano: now,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(line(i))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Round trips in milliseconds, sorted, and the requests that failed.
#[derive(Default)]
struct Probe {
    ms: Vec<f64>,
    failed: u64,
    first_error: Option<String>,
}

impl Probe {
    fn percentile(&self, p: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        self.ms[((self.ms.len() - 1) as f64 * p).round() as usize]
    }

    fn summary(&self) -> String {
        format!(
            "{:.2} / {:.2} / {:.2} / {:.2} ms ({} requests{})",
            self.percentile(0.5),
            self.percentile(0.99),
            self.percentile(0.999),
            self.ms.last().copied().unwrap_or(f64::NAN),
            thousands(self.ms.len() as u64),
            if self.failed > 0 {
                format!(
                    ", {} failed, first: {}",
                    self.failed,
                    self.first_error.as_deref().unwrap_or("")
                )
            } else {
                String::new()
            }
        )
    }
}

/// The other tenant: one small event at a time until `stop`.
async fn probe(url: String, stop: Arc<AtomicBool>) -> anyhow::Result<Probe> {
    let client = http_client()?;
    let mut out = Probe::default();
    let body = serde_json::to_vec(&serde_json::json!({"service": OTHER_SERVICE,
        "workspace_id": "quiet", "logData": {"level": "info", "message": "other tenant"}}))?;
    while !stop.load(Relaxed) {
        let began = Instant::now();
        let res = client
            .post(&url)
            .header("X-Service-Token", OTHER_TOKEN)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let status = match res {
            Ok(r) => {
                let status = r.status();
                let _ = r.bytes().await;
                Ok(status)
            }
            Err(e) => Err(e.to_string()),
        };
        match status {
            Ok(s) if s.as_u16() == 202 => out.ms.push(began.elapsed().as_secs_f64() * 1000.0),
            other => {
                out.failed += 1;
                out.first_error.get_or_insert_with(|| format!("{other:?}"));
            }
        }
        sleep(PROBE_PAUSE).await;
    }
    out.ms.sort_by(f64::total_cmp);
    Ok(out)
}

/// What the pushers got: answers by status, and what was accepted.
#[derive(Default)]
struct Pushed {
    statuses: Mutex<BTreeMap<String, u64>>,
    accepted_requests: AtomicU64,
}

impl Pushed {
    fn count(&self, status: String) {
        *self
            .statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
    }
}

/// `publishers` connections sending `body` to `url` until `stop`, each
/// again [`PUSH_BACKOFF`] after a refusal.
async fn push(
    url: String,
    format: NeighbourFormat,
    body: Bytes,
    publishers: usize,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Arc<Pushed>> {
    let pushed = Arc::new(Pushed::default());
    let (content_type, encoding) = format.headers();
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let client = http_client()?;
        let (url, body, pushed, stop) = (
            url.clone(),
            body.clone(),
            Arc::clone(&pushed),
            Arc::clone(&stop),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Relaxed) {
                let mut req = client
                    .post(&url)
                    .header("Authorization", format!("Bearer {PUSHER_TOKEN}"))
                    .header("Content-Type", content_type)
                    .body(body.clone());
                if let Some(e) = encoding {
                    req = req.header("Content-Encoding", e);
                }
                let ok = match req.send().await {
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        let ok = status.is_success();
                        pushed.count(if ok {
                            status.as_u16().to_string()
                        } else {
                            format!("{} {}", status.as_u16(), code_of(&text))
                        });
                        ok
                    }
                    Err(e) => {
                        pushed.count(format!("error: {e}"));
                        false
                    }
                };
                if ok {
                    pushed.accepted_requests.fetch_add(1, Relaxed);
                } else {
                    sleep(PUSH_BACKOFF).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("pusher task failed")?;
    }
    Ok(pushed)
}

/// The refusal's code, whichever shape the endpoint answers in.
fn code_of(text: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let code = v["error"]["code"]
        .as_str()
        .or(v["code"].as_str())
        .map(str::to_owned);
    code.unwrap_or_else(|| {
        // OTLP: "… (code)".
        text.rsplit_once('(')
            .and_then(|(_, c)| c.split_once(')'))
            .map(|(c, _)| c.to_owned())
            .unwrap_or_default()
    })
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let format = args.neighbour_format;
    let lines = args.neighbour_lines();
    let (body, decoded) = format.body(lines, args.neighbour_line_bytes)?;
    let port = free_ports(1)?[0];
    // Limits as configured: the built-in defaults unless --server-env says.
    let mut server = Server::start_limited(args, "gateway", port, &args.server_log)?;
    let client = http_client()?;
    server.wait_healthy(&client, args.setup_timeout()).await?;
    let base = format!("http://{}", server.addr);
    progress(format!(
        "neighbour: gateway pid {} on {base}; {}: {} lines, {} bytes per request ({} decoded)",
        server.pid,
        format.name(),
        thousands(lines as u64),
        thousands(body.len() as u64),
        thousands(decoded as u64)
    ));
    let duration = secs(args.duration);
    let probe_url = format!("{base}/api/logs/publish");

    progress(format!(
        "neighbour: the other tenant alone for {duration:?}"
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let alone = tokio::spawn(probe(probe_url.clone(), Arc::clone(&stop)));
    sleep(duration).await;
    stop.store(true, Relaxed);
    let alone = alone.await.context("probe task")??;

    progress(format!(
        "neighbour: beside {} pushers for {duration:?}",
        args.publishers()
    ));
    let tck = clock_ticks_per_sec();
    let cpu = CpuMeter::start(&[server.pid]);
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let pusher = tokio::spawn(push(
        format!("{base}{}", format.path()),
        format,
        body.clone(),
        args.publishers(),
        Arc::clone(&stop),
    ));
    // The pushers start first, so the probe never sees a quiet moment.
    sleep(Duration::from_millis(200)).await;
    let beside = tokio::spawn(probe(probe_url, Arc::clone(&stop)));
    sleep(duration).await;
    stop.store(true, Relaxed);
    let beside = beside.await.context("probe task")??;
    let pushed = pusher.await.context("pusher task")??;
    let wall = began.elapsed().as_secs_f64();
    let cpu_seconds = cpu.children_seconds(tck);
    let status = server.status().ok();
    let stopped = server.stop(Duration::from_secs(15));
    progress(format!("neighbour: gateway {stopped}"));

    let accepted = pushed.accepted_requests.load(Relaxed);
    let mut report = Report::default();
    report.row("Pusher (service etl)", format.name());
    report.row(
        "Pusher request",
        format!(
            "{} lines, {} bytes on the wire, {} decoded; {} connections",
            thousands(lines as u64),
            thousands(body.len() as u64),
            thousands(decoded as u64),
            args.publishers()
        ),
    );
    report.row(
        "Other tenant (faas) publish p50 / p99 / p99.9 / max, alone",
        alone.summary(),
    );
    report.row(
        "Other tenant (faas) publish p50 / p99 / p99.9 / max, beside the pusher",
        beside.summary(),
    );
    report.row(
        "Pusher accepted",
        format!(
            "{} requests: {} lines/s, {:.2} MB/s decoded",
            thousands(accepted),
            thousands((accepted as f64 * lines as f64 / wall) as u64),
            accepted as f64 * decoded as f64 / wall / 1e6
        ),
    );
    let statuses = pushed
        .statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(s, n)| format!("{s}: {}", thousands(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    report.row("Pusher answers", statuses);
    report.row(
        "Server CPU beside the pusher (100 % = 1 core)",
        cpu_seconds
            .map(|s| format!("{:.0} %", s / wall * 100.0))
            .unwrap_or_else(|| "n/a".into()),
    );
    if let Some(s) = status {
        report.row(
            "Server RSS at end / peak (VmHWM)",
            format!("{} / {}", mib(s.rss_kib), mib(s.hwm_kib)),
        );
    }
    println!();
    report.print();
    println!();
    println!("{}", args.summary_line());
    Ok(())
}

/// `--largest`: the gateway's peak memory for the largest request each
/// shipper format may send, one at a time, then `--publishers` at once.
/// Rate limits are off, so that every request is decoded.
pub mod largest {
    use super::*;

    /// The formats weighed, each sized to just under the decoded limit.
    const FORMATS: [NeighbourFormat; 4] = [
        NeighbourFormat::LokiJson,
        NeighbourFormat::LokiJsonGzip,
        NeighbourFormat::LokiProtobuf,
        NeighbourFormat::OtlpProtobuf,
    ];

    /// A body of `lines` lines as close under `limit` decoded bytes as
    /// the line length allows.
    fn sized(
        format: NeighbourFormat,
        lines: usize,
        limit: usize,
    ) -> anyhow::Result<(Bytes, usize)> {
        let mut line_bytes = limit / lines;
        loop {
            let (body, decoded) = format.body(lines, line_bytes)?;
            if decoded <= limit {
                return Ok((body, decoded));
            }
            let over = decoded - limit;
            line_bytes = line_bytes.saturating_sub(over / lines + 1);
        }
    }

    async fn send(
        client: &reqwest::Client,
        url: &str,
        format: NeighbourFormat,
        body: Bytes,
    ) -> String {
        let (content_type, encoding) = format.headers();
        let mut req = client
            .post(url)
            .header("Authorization", format!("Bearer {PUSHER_TOKEN}"))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(e) = encoding {
            req = req.header("Content-Encoding", e);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                if status < 300 {
                    status.to_string()
                } else {
                    format!("{status} {}", code_of(&text))
                }
            }
            Err(e) => format!("error: {e}"),
        }
    }

    /// What history holds now (`loggate_history_bytes`), as text.
    async fn history(client: &reqwest::Client, server: &Server) -> String {
        crate::metrics::fetch(client, server.addr)
            .await
            .and_then(|m| m.sum("loggate_history_bytes", &[]))
            .map(|b| mib(b / 1024))
            .unwrap_or_else(|| "n/a".into())
    }

    pub async fn run(args: &Args) -> anyhow::Result<()> {
        let lines = args.neighbour_lines();
        let limit = args.largest_bytes;
        let port = free_ports(1)?[0];
        let mut server = Server::start(args, "gateway", port, &args.server_log, &[])?;
        let client = http_client()?;
        server.wait_healthy(&client, args.setup_timeout()).await?;
        let base = format!("http://{}", server.addr);
        let mut report = Report::default();
        let at_start = server.status()?;
        report.row(
            "Gateway RSS after start / peak (VmHWM)",
            format!("{} / {}", mib(at_start.rss_kib), mib(at_start.hwm_kib)),
        );
        for format in FORMATS {
            let (body, decoded) = sized(format, lines, limit)?;
            let url = format!("{base}{}", format.path());
            let answer = send(&client, &url, format, body.clone()).await;
            let s = server.status()?;
            progress(format!("largest: {} → {answer}", format.name()));
            report.row(
                format!("{}: {} lines", format.name(), thousands(lines as u64)),
                format!(
                    "{answer}; {} bytes sent, {} decoded; RSS after {}, peak so far {}; history holds {}",
                    thousands(body.len() as u64),
                    thousands(decoded as u64),
                    mib(s.rss_kib),
                    mib(s.hwm_kib),
                    history(&client, &server).await
                ),
            );
        }
        let format = NeighbourFormat::LokiJson;
        let (body, decoded) = sized(format, lines, limit)?;
        let url = format!("{base}{}", format.path());
        let at_once: Vec<_> = (0..args.publishers())
            .map(|_| {
                let (client, url, body) = (client.clone(), url.clone(), body.clone());
                tokio::spawn(async move { send(&client, &url, format, body).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in at_once {
            answers.push(t.await.context("sender task")?);
        }
        let s: ProcStatus = server.status()?;
        report.row(
            format!(
                "{} such JSON pushes at once ({} decoded each)",
                args.publishers(),
                thousands(decoded as u64)
            ),
            format!(
                "{}; RSS after {}, peak {}; history holds {}",
                answers.join(", "),
                mib(s.rss_kib),
                mib(s.hwm_kib),
                history(&client, &server).await
            ),
        );
        let stopped = server.stop(Duration::from_secs(15));
        progress(format!("largest: gateway {stopped}"));
        println!();
        report.print();
        println!();
        println!(
            "parameters: lines={lines} decoded-limit={limit} publishers={} binary={}",
            args.publishers(),
            args.binary.display()
        );
        Ok(())
    }
}
