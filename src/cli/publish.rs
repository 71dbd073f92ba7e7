//! `loggate publish`: standard input (or `--message`) to events on the
//! gateway's `POST /api/logs/publish`, in order, in batches.
//!
//! A reader thread owns stdin (a blocking read must not hold the runtime)
//! and hands bounded lines through a bounded channel; the sender batches
//! them by count, by body size and by a short linger, and posts one batch
//! at a time, so order is the input's. Nothing read is dropped: on EOF or
//! Ctrl-C what was read is flushed first (a second Ctrl-C gives up).
//!
//! Each batch carries an `Idempotency-Key` of its own, random, and every
//! retry of it the same one: a batch whose answer was lost (the
//! connection cut, a `503` after the gateway or the stream took it) and
//! is sent again is answered the first `202` and never published twice.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};

use super::{Connection, Failure, Gateway, exit};
use crate::channel::ChannelName;
use crate::event::Level;

/// The gateway takes events up to 64 KiB; a longer line is cut here (and
/// said so) rather than have its whole batch refused.
const MAX_LINE: usize = 60 * 1024;
/// The gateway takes bodies up to 1 MiB and batches up to 1000 events.
const MAX_BODY: usize = 768 * 1024;
const MAX_BATCH: usize = 1000;

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The service the events are from (the token's service).
    #[arg(long, short = 's')]
    pub service: String,
    /// The workspace below the service.
    #[arg(long, short = 'w')]
    pub workspace: Option<String>,
    /// The resource below the workspace (a job, a function).
    #[arg(long, short = 'r', requires = "workspace")]
    pub resource: Option<String>,
    /// The level of lines that do not say their own.
    #[arg(long, short = 'l', default_value = "info")]
    pub level: String,
    /// Publish this one message instead of reading stdin.
    #[arg(long, short = 'm')]
    pub message: Option<String>,
    /// Also copy the input to stdout, to sit in the middle of a pipeline.
    #[arg(long)]
    pub tee: bool,
    /// Events per request (at most 1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch: u16,
    /// How long a line may wait for others to share its request.
    #[arg(long, default_value = "100ms", value_parser = super::parse_duration)]
    pub linger: Duration,
}

/// What the reader hands on: a line (cut to `MAX_LINE`, and whether it was).
struct Line {
    text: String,
    cut: bool,
}

pub async fn run(args: PublishArgs) -> Result<(), Failure> {
    let gateway = args.connection.resolve()?;
    let Some(level) = Level::parse(&args.level) else {
        return Err(Failure::new(
            exit::USAGE,
            format!(
                "--level: unknown level {:?} (trace, debug, info, warn, error, fatal)",
                args.level
            ),
        ));
    };
    channel_of(&args)?;
    let target = Target {
        url: format!("{}/api/logs/publish", gateway.base),
        gateway,
        interrupts: interrupts(),
    };
    let template = Template {
        service: args.service.clone(),
        workspace: args.workspace.clone(),
        resource: args.resource.clone(),
        level,
    };

    if let Some(message) = &args.message {
        if args.tee {
            println!("{message}");
        }
        let body = Value::Array(vec![template.event(message)]).to_string();
        return target.send(body.into_bytes()).await;
    }

    let (tx, rx) = mpsc::channel::<Line>(4096);
    let tee = args.tee;
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_lines(tx, tee))
        .map_err(|e| Failure::new(1, format!("cannot read stdin: {e}")))?;
    pump(rx, &template, &target, usize::from(args.batch), args.linger).await
}

/// Checks the ids make a channel the gateway takes, before reading a line.
fn channel_of(args: &PublishArgs) -> Result<ChannelName, Failure> {
    let mut name = format!("logs:{}", args.service);
    for part in [&args.workspace, &args.resource].into_iter().flatten() {
        name.push(':');
        name.push_str(part);
    }
    ChannelName::parse(&name).map_err(|e| Failure::new(exit::USAGE, format!("{name}: {e}")))
}

/// Each Ctrl-C bumps the count: the first ends reading, the second the wait.
fn interrupts() -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        let mut n = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            n += 1;
            if tx.send(n).is_err() {
                break;
            }
        }
    });
    rx
}

/// The reader thread: lines of stdin, at most `MAX_LINE` bytes kept of each
/// (the rest skipped to the newline), bad UTF-8 replaced.
fn read_lines(tx: mpsc::Sender<Line>, tee: bool) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut teeing = tee;
    let mut kept: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let (done, used) = match input.fill_buf() {
            Ok([]) => (true, 0),
            Ok(buf) => {
                let (part, end) = match memchr::memchr(b'\n', buf) {
                    Some(i) => (&buf[..i], Some(i + 1)),
                    None => (buf, None),
                };
                let room = MAX_LINE.saturating_sub(kept.len());
                kept.extend_from_slice(&part[..part.len().min(room)]);
                cut |= part.len() > room;
                if teeing {
                    let mut out = stdout.lock();
                    let copied = out.write_all(&buf[..end.unwrap_or(buf.len())]);
                    // Downstream went away: stop copying, keep publishing.
                    teeing = copied.and_then(|()| out.flush()).is_ok();
                }
                match end {
                    Some(used) => {
                        if kept.last() == Some(&b'\r') {
                            kept.pop();
                        }
                        let text = String::from_utf8_lossy(&kept).into_owned();
                        kept.clear();
                        if tx.blocking_send(Line { text, cut }).is_err() {
                            return;
                        }
                        cut = false;
                        (false, used)
                    }
                    None => (false, buf.len()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => (false, 0),
            Err(e) => {
                eprintln!("loggate publish: reading stdin: {e}");
                (true, 0)
            }
        };
        input.consume(used);
        if done {
            break;
        }
    }
    if !kept.is_empty() {
        let text = String::from_utf8_lossy(&kept).into_owned();
        let _ = tx.blocking_send(Line { text, cut });
    }
}

/// Lines to batches to requests, until the input ends or Ctrl-C.
async fn pump(
    mut rx: mpsc::Receiver<Line>,
    template: &Template,
    target: &Target,
    batch_max: usize,
    linger: Duration,
) -> Result<(), Failure> {
    let mut batch = Batch::default();
    let mut interrupts = target.interrupts.clone();
    let mut deadline = tokio::time::Instant::now();
    let mut warned_cut = false;
    let mut interrupted = false;
    loop {
        tokio::select! {
            biased;
            _ = interrupts.changed() => {
                interrupted = true;
                // What was read already is published; what is still in the
                // pipe was never ours.
                while let Ok(line) = rx.try_recv() {
                    batch.push(template, line, &mut warned_cut);
                    if batch.full(batch_max) {
                        target.send_batch(&mut batch).await?;
                    }
                }
                break;
            }
            line = rx.recv() => match line {
                Some(line) => {
                    if batch.is_empty() {
                        deadline = tokio::time::Instant::now() + linger;
                    }
                    batch.push(template, line, &mut warned_cut);
                    if batch.full(batch_max) {
                        target.send_batch(&mut batch).await?;
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline), if !batch.is_empty() => {
                target.send_batch(&mut batch).await?;
            }
        }
    }
    if !batch.is_empty() {
        target.send_batch(&mut batch).await?;
    }
    if interrupted {
        return Err(Failure::new(exit::INTERRUPTED, ""));
    }
    Ok(())
}

/// The ids and default level every event gets.
struct Template {
    service: String,
    workspace: Option<String>,
    resource: Option<String>,
    level: Level,
}

impl Template {
    /// A plain line is the message; a JSON object with a `message` is the
    /// event's `logData` (its level, timestamp, meta and the rest kept).
    fn event(&self, line: &str) -> Value {
        let data = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(mut fields))
                if fields.get("message").is_some_and(Value::is_string) =>
            {
                match fields.get("level").and_then(Value::as_str) {
                    Some(l) if Level::parse(l).is_some() => {}
                    // Refused by the gateway, with the whole batch: keep the
                    // event at the default level, and the word in meta.
                    Some(l) => {
                        let l = l.to_owned();
                        fields.insert("level".into(), self.level.as_str().into());
                        if let Value::Object(meta) = fields
                            .entry("meta")
                            .or_insert_with(|| Value::Object(Map::new()))
                        {
                            meta.insert("original_level".into(), l.into());
                        }
                    }
                    None => {
                        fields.insert("level".into(), self.level.as_str().into());
                    }
                }
                fields
            }
            _ => {
                let mut fields = Map::new();
                fields.insert("level".into(), self.level.as_str().into());
                fields.insert("message".into(), line.into());
                fields
            }
        };
        let mut event = Map::new();
        event.insert("service".into(), self.service.clone().into());
        if let Some(w) = &self.workspace {
            event.insert("workspace_id".into(), w.clone().into());
        }
        if let Some(r) = &self.resource {
            event.insert("resource_id".into(), r.clone().into());
        }
        event.insert("logData".into(), Value::Object(data));
        Value::Object(event)
    }
}

/// A request being filled: a JSON array, built as it grows.
#[derive(Default)]
struct Batch {
    body: Vec<u8>,
    count: usize,
    /// The input line number of the first event, for error messages.
    first_line: u64,
    lines_seen: u64,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn full(&self, max: usize) -> bool {
        self.count >= max.min(MAX_BATCH) || self.body.len() >= MAX_BODY
    }

    fn push(&mut self, template: &Template, line: Line, warned_cut: &mut bool) {
        self.lines_seen += 1;
        if line.cut && !*warned_cut {
            *warned_cut = true;
            eprintln!(
                "loggate publish: line {} is over {} KiB; cut there (and any later such lines)",
                self.lines_seen,
                MAX_LINE / 1024
            );
        }
        if self.count == 0 {
            self.first_line = self.lines_seen;
            self.body.clear();
            self.body.push(b'[');
        } else {
            self.body.push(b',');
        }
        let event = template.event(&line.text);
        // Writing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.body, &event);
        self.count += 1;
    }

    fn take(&mut self) -> (Vec<u8>, usize, u64) {
        self.body.push(b']');
        let count = std::mem::replace(&mut self.count, 0);
        (std::mem::take(&mut self.body), count, self.first_line)
    }
}

/// Where batches go, and how hard to try.
struct Target {
    gateway: Gateway,
    url: String,
    interrupts: watch::Receiver<u32>,
}

impl Target {
    async fn send_batch(&self, batch: &mut Batch) -> Result<(), Failure> {
        let (body, count, first) = batch.take();
        self.send(body).await.map_err(|mut f| {
            if f.code != exit::INTERRUPTED && count > 0 {
                f.message = format!("lines {first}–{}: {}", first + count as u64 - 1, f.message);
            }
            f
        })
    }

    /// Posts one body until it is taken: waits out 429 and 409 (another
    /// sending of it still in progress; their Retry-After) and, for up to
    /// `retry_for`, an unreachable or restarting gateway. Every sending
    /// carries the same `Idempotency-Key`.
    async fn send(&self, body: Vec<u8>) -> Result<(), Failure> {
        let key = batch_key();
        let mut trouble_since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        let mut said = false;
        let mut interrupts = self.interrupts.clone();
        loop {
            let mut request = self
                .gateway
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("idempotency-key", key.as_str())
                .timeout(Duration::from_secs(30))
                .body(body.clone());
            if let Some(t) = &self.gateway.token {
                request = request.header("x-service-token", t);
            }
            let wait = match request.send().await {
                Ok(answer) => {
                    let status = answer.status();
                    if status.is_success() {
                        if said {
                            eprintln!("loggate publish: {} answers again", self.gateway.base);
                        }
                        return Ok(());
                    }
                    let retry_after = answer
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.clamp(1, 60)));
                    let text = super::body_within(answer, super::MAX_ERROR_BODY)
                        .await
                        .unwrap_or_default();
                    let why = super::refusal(status, &text);
                    match status.as_u16() {
                        // Slowed down, not refused: no give-up clock. A 409
                        // is an earlier sending of this batch still being
                        // published: its answer comes to the next try.
                        429 | 409 => retry_after.unwrap_or(Duration::from_secs(1)),
                        503 => {
                            let since = *trouble_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= self.gateway.retry_for {
                                return Err(Failure::new(exit::UNREACHABLE, why));
                            }
                            if !said {
                                eprintln!("loggate publish: {why}; retrying");
                                said = true;
                            }
                            retry_after.unwrap_or(backoff)
                        }
                        401 | 403 => {
                            let hint = if self.gateway.token.is_none() {
                                " (no token given: --token or LOGGATE_TOKEN)"
                            } else {
                                ""
                            };
                            return Err(Failure::new(exit::REFUSED, format!("{why}{hint}")));
                        }
                        _ => return Err(Failure::new(1, why)),
                    }
                }
                Err(e) => {
                    let why = super::error_chain(&e);
                    let since = *trouble_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.gateway.retry_for || !self.gateway.retryable(&why) {
                        return Err(self.gateway.gave_up(&why));
                    }
                    if !said {
                        eprintln!(
                            "loggate publish: cannot reach {}: {why}; retrying",
                            self.gateway.base
                        );
                        said = true;
                    }
                    backoff
                }
            };
            backoff = (backoff * 2).min(Duration::from_secs(5));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // The first Ctrl-C ends reading (and this flush goes on);
                // the second gives up waiting.
                _ = async {
                    loop {
                        if interrupts.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        if *interrupts.borrow() >= 2 {
                            break;
                        }
                    }
                } => {
                    return Err(Failure::new(exit::INTERRUPTED, "interrupted; the rest was not published"));
                }
            }
        }
    }
}

/// A fresh `Idempotency-Key` for one batch: 128 bits, from std's
/// randomly keyed hasher (keyed from the operating system's random
/// source, a new key for each hasher) over the time, the process and a
/// count, so no other batch of this or any other run has it.
fn batch_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut key = String::from("cli-");
    for half in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(count);
        h.write_u8(half);
        key.push_str(&format!("{:016x}", h.finish()));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keys_are_valid_and_differ() {
        let keys: std::collections::HashSet<String> = (0..1000).map(|_| batch_key()).collect();
        assert_eq!(keys.len(), 1000);
        for k in &keys {
            // What the gateway takes: 1 to 128 visible ASCII characters.
            assert!(k.bytes().all(|b| b.is_ascii_graphic()), "{k}");
            assert_eq!(k.len(), 4 + 32);
        }
    }
}
