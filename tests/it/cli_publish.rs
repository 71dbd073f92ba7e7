//! `loggate publish`, run as the real binary against a real gateway: piped
//! lines arrive complete and in order, JSON lines keep their fields, rate
//! limits are waited out, Ctrl-C flushes, and every refusal has its exit
//! code and the gateway's words on stderr.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use testkit::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const LIMIT: Duration = Duration::from_secs(60);

fn publish_cmd(gw_url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loggate"));
    cmd.arg("publish")
        .args(["--url", gw_url])
        .args(args)
        .env_remove("LOGGATE_URL")
        .env_remove("LOGGATE_TOKEN")
        .env_remove("LOGGATE_PROFILE")
        .env("LOGGATE_CLI_CONFIG", "/nonexistent/cli.toml")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `loggate publish ARGS` with `input` on stdin, to its end.
async fn run(gw_url: &str, args: &[&str], input: Vec<u8>) -> Ran {
    let mut child = publish_cmd(gw_url, args).spawn().expect("loggate runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = tokio::spawn(async move {
        // A process that exits early closes the pipe: that is its answer.
        let _ = stdin.write_all(&input).await;
    });
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("publish ends in time")
        .expect("publish output");
    writer.await.expect("writer");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn open_gateway(adjust: impl FnOnce(&mut loggate::Config)) -> InProcessGateway {
    start_with(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.history_rate_per_ip = 0;
        adjust(c);
    })
}

async fn history(gw: &InProcessGateway, channel: &str) -> Vec<Value> {
    let (status, v) = gw
        .get_json(&format!("/api/logs/history?channels={channel}&limit=1000"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["logs"].as_array().cloned().unwrap_or_default()
}

const JOB: [&str; 8] = [
    "--token",
    ETL_TOKEN,
    "--service",
    "etl",
    "--workspace",
    "ws1",
    "--resource",
    "job7",
];

#[tokio::test]
async fn ten_thousand_piped_lines_arrive_complete_and_in_order() {
    let gw = open_gateway(|_| {});
    let mut sub = gw.subscribe("channels=logs:etl:ws1:job7").await;
    let input: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
    let ran = run(&gw.url(""), &JOB, input.into_bytes()).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.stdout, "", "nothing on stdout without --tee");
    let got = sub.logs_within(10_000, LIMIT).await;
    let expected: Vec<String> = (0..10_000).map(|i| format!("line {i}")).collect();
    assert_eq!(messages(&got), expected);
    assert!(got.iter().all(|e| e["level"] == "info"));
    assert!(got.iter().all(|e| e["channel"] == "logs:etl:ws1:job7"));
    sub.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn json_lines_keep_their_fields_and_plain_lines_take_the_default_level() {
    let gw = open_gateway(|_| {});
    let mut input = Vec::new();
    input.extend_from_slice(b"plain words\r\n");
    input.extend_from_slice(br#"{"message":"rows loaded","level":"WARNING","timestamp":"2025-09-25T10:30:00Z","stream":"stderr","meta":{"rows":12}}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"message":"odd level","level":"verbose"}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"msg":"no message field"}"#);
    input.push(b'\n');
    input.extend_from_slice(b"bad \xff utf-8\n");
    input.extend_from_slice(b"last line without a newline");
    let mut args = JOB.to_vec();
    args.extend(["--level", "error"]);
    let ran = run(&gw.url(""), &args, input).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let got = history(&gw, "logs:etl:ws1:job7").await;
    assert_eq!(
        messages(&got),
        [
            "plain words",
            "rows loaded",
            "odd level",
            r#"{"msg":"no message field"}"#,
            "bad \u{fffd} utf-8",
            "last line without a newline"
        ]
    );
    let levels: Vec<_> = got.iter().map(|e| e["level"].as_str().unwrap()).collect();
    assert_eq!(
        levels,
        ["error", "warn", "error", "error", "error", "error"]
    );
    assert_eq!(got[1]["timestamp"], "2025-09-25T10:30:00Z");
    assert_eq!(got[1]["stream"], "stderr");
    assert_eq!(got[1]["meta"]["rows"], 12);
    assert_eq!(got[2]["meta"]["original_level"], "verbose");
}

#[tokio::test]
async fn message_publishes_one_event_and_tee_copies_the_input() {
    let gw = open_gateway(|_| {});
    let mut args = JOB.to_vec();
    args.extend(["--message", "deploy started", "--level", "warn"]);
    let ran = run(&gw.url(""), &args, Vec::new()).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let got = history(&gw, "logs:etl:ws1:job7").await;
    assert_eq!(messages(&got), ["deploy started"]);
    assert_eq!(got[0]["level"], "warn");

    // Shorter channels, and the input passed through unchanged.
    let input = b"one\ntwo \xff\r\nthree".to_vec();
    let ran = run(
        &gw.url(""),
        &["--token", ETL_TOKEN, "--service", "etl", "--tee"],
        input.clone(),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(
        ran.stdout.as_bytes(),
        String::from_utf8_lossy(&input).as_bytes()
    );
    let got = history(&gw, "logs:etl").await;
    assert_eq!(messages(&got)[1..], ["one", "two \u{fffd}", "three"]);
    assert_eq!(got[1]["channel"], "logs:etl");
}

#[tokio::test]
async fn refusals_have_their_exit_codes_and_the_gateways_words() {
    let gw = open_gateway(|_| {});
    let url = gw.url("");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--token", "not-a-token", "--service", "etl", "-m", "x"],
            3,
            "unknown service token",
        ),
        (&["--service", "etl", "-m", "x"], 3, "no token given"),
        (
            &["--token", ETL_TOKEN, "--service", "faas", "-m", "x"],
            3,
            "403",
        ),
        (
            &[
                "--token",
                ETL_TOKEN,
                "--service",
                "etl",
                "--level",
                "loud",
                "-m",
                "x",
            ],
            2,
            "--level",
        ),
        (
            &["--token", ETL_TOKEN, "--service", "etl.x", "-m", "x"],
            2,
            "logs:etl.x",
        ),
        (
            &[
                "--token",
                ETL_TOKEN,
                "--service",
                "etl",
                "--resource",
                "r",
                "-m",
                "x",
            ],
            2,
            "--workspace",
        ),
        (
            &[
                "--token",
                ETL_TOKEN,
                "--service",
                "etl",
                "--retry-for",
                "soon",
                "-m",
                "x",
            ],
            2,
            "--retry-for",
        ),
        (
            &["--token", ETL_TOKEN, "--service", "etl", "--no-such-flag"],
            2,
            "--no-such-flag",
        ),
        (&["--token", ETL_TOKEN], 2, "--service"),
    ];
    for (args, code, said) in cases {
        let ran = run(&url, args, b"a line\n".to_vec()).await;
        assert_eq!(ran.code, Some(*code), "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(said), "{args:?}: {}", ran.stderr);
    }
    // Stdin's lines refused with their line numbers.
    let ran = run(
        &url,
        &["--token", "not-a-token", "--service", "etl"],
        b"a\nb\n".to_vec(),
    )
    .await;
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert!(ran.stderr.contains("lines 1–2"), "{}", ran.stderr);
    assert!(
        history(&gw, "logs:etl").await.is_empty(),
        "nothing published"
    );

    // Nobody listening: retried for --retry-for, then exit 4.
    let closed = format!("http://127.0.0.1:{}", testkit::process::free_port());
    let ran = run(
        &closed,
        &[
            "--token",
            ETL_TOKEN,
            "--service",
            "etl",
            "--retry-for",
            "1s",
        ],
        b"a\n".to_vec(),
    )
    .await;
    assert_eq!(ran.code, Some(4), "{}", ran.stderr);
    assert!(ran.stderr.contains("cannot reach"), "{}", ran.stderr);
    assert!(ran.stderr.contains("retrying"), "{}", ran.stderr);
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_nothing_is_lost() {
    // 100 events/s, burst 200: 600 lines need several Retry-After waits.
    let gw = open_gateway(|c| c.limits.publish_rate_per_sec = 100);
    let input: String = (0..600).map(|i| format!("r{i}\n")).collect();
    let mut args = JOB.to_vec();
    args.extend(["--batch", "100"]);
    let ran = run(&gw.url(""), &args, input.into_bytes()).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let got = history(&gw, "logs:etl:ws1:job7").await;
    let expected: Vec<String> = (0..600).map(|i| format!("r{i}")).collect();
    assert_eq!(messages(&got), expected);
    let refused = metric_value(
        &gw.metrics().await,
        "loggate_rate_limited_total{limit=\"publish\"}",
    );
    assert!(
        refused.unwrap_or(0.0) >= 1.0,
        "the limit was hit: {refused:?}"
    );
}

async fn read_line(child: &mut BufReader<tokio::process::ChildStdout>) -> String {
    let mut line = String::new();
    tokio::time::timeout(LIMIT, child.read_line(&mut line))
        .await
        .expect("a line in time")
        .expect("stdout");
    line
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("running");
    let ok = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
}

#[tokio::test]
async fn ctrl_c_publishes_what_was_read_and_exits_130() {
    let gw = open_gateway(|_| {});
    let mut args = JOB.to_vec();
    // Nothing would leave before an hour without the interrupt.
    args.extend(["--tee", "--linger", "1h"]);
    let mut child = publish_cmd(&gw.url(""), &args).spawn().expect("runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    stdin
        .write_all(b"first\nsecond\nthird\n")
        .await
        .expect("write");
    // Teed lines have been read.
    for want in ["first\n", "second\n", "third\n"] {
        assert_eq!(read_line(&mut out).await, want);
    }
    assert!(history(&gw, "logs:etl:ws1:job7").await.is_empty());
    interrupt(&child);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exits in time")
        .expect("status");
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        messages(&history(&gw, "logs:etl:ws1:job7").await),
        ["first", "second", "third"]
    );
    drop(stdin);
}

/// Polls `base`'s history (bounded) until it holds `n` events of `channel`.
async fn wait_history(base: &str, channel: &str, n: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let url = format!("{base}/api/logs/history?channels={channel}&limit=1000");
        if let Ok(answer) = client.get(&url).send().await
            && let Ok(v) = answer.json::<Value>().await
        {
            let logs = v["logs"].as_array().cloned().unwrap_or_default();
            if logs.len() >= n {
                return messages(&logs);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history of {channel} never held {n} events"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lines_written_while_the_gateway_restarts_are_published_when_it_is_back() {
    let port = process::free_port();
    let spawn = || {
        let mut cmd = process::base_command(env!("CARGO_BIN_EXE_loggate"));
        cmd.env("PORT", port.to_string())
            .env("PUBLISH_RATE_PER_SEC", "0");
        process::spawn(cmd)
    };
    let gw = spawn();
    let base = gw.url("");
    let mut args = JOB.to_vec();
    args.extend(["--linger", "20ms", "--retry-for", "60s"]);
    let mut child = publish_cmd(&base, &args).spawn().expect("runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    stdin.write_all(b"before\n").await.expect("write");
    assert_eq!(
        wait_history(&base, "logs:etl:ws1:job7", 1).await,
        ["before"]
    );

    drop(gw);
    stdin
        .write_all(b"during 1\nduring 2\n")
        .await
        .expect("write");
    let mut line = String::new();
    tokio::time::timeout(LIMIT, err.read_line(&mut line))
        .await
        .expect("a notice in time")
        .expect("stderr");
    assert!(
        line.contains("cannot reach") && line.contains("retrying"),
        "{line}"
    );
    let gw = spawn();
    assert_eq!(
        wait_history(&base, "logs:etl:ws1:job7", 2).await,
        ["during 1", "during 2"]
    );
    stdin.write_all(b"after\n").await.expect("write");
    drop(stdin);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exits in time")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut err, &mut rest)
        .await
        .expect("stderr");
    assert!(rest.contains("answers again"), "{rest}");
    assert_eq!(
        wait_history(&base, "logs:etl:ws1:job7", 3).await,
        ["during 1", "during 2", "after"]
    );
    drop(gw);
}

/// A proxy in front of the gateway that passes every request on (asking
/// the gateway to close after answering) but cuts the first one's
/// connection without its answer, as a load balancer that times out
/// does; later answers are passed back. It keeps each request's
/// `Idempotency-Key`.
struct LosesFirstAnswer {
    addr: std::net::SocketAddr,
    keys: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for LosesFirstAnswer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl LosesFirstAnswer {
    async fn start(upstream: std::net::SocketAddr) -> LosesFirstAnswer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&keys);
        let accept = tokio::spawn(async move {
            let mut first = true;
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(Self::serve(client, upstream, first, kept.clone()));
                first = false;
            }
        });
        LosesFirstAnswer { addr, keys, accept }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }

    async fn serve(
        mut client: tokio::net::TcpStream,
        upstream: std::net::SocketAddr,
        lose_answer: bool,
        keys: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use tokio::io::AsyncReadExt;
        let mut request = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        // The head, then as many body bytes as it declares.
        let (head_end, length) = loop {
            if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&request[..i]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (i + 4, length);
            }
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        };
        while request.len() < head_end + length {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
        let mut forwarded = String::new();
        for line in head.split("\r\n").filter(|l| !l.is_empty()) {
            let lower = line.to_ascii_lowercase();
            if let Some(key) = lower.strip_prefix("idempotency-key:") {
                // Keys are case-sensitive: keep the line's own text.
                let at = line.len() - key.len();
                keys.lock().unwrap().push(line[at..].trim().to_owned());
            }
            if !lower.starts_with("connection:") {
                forwarded.push_str(line);
                forwarded.push_str("\r\n");
            }
        }
        forwarded.push_str("connection: close\r\n\r\n");
        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
            return;
        };
        if server.write_all(forwarded.as_bytes()).await.is_err()
            || server.write_all(&request[head_end..]).await.is_err()
        {
            return;
        }
        let mut answer = Vec::new();
        let read = tokio::time::timeout(LIMIT, server.read_to_end(&mut answer)).await;
        if lose_answer || read.is_err() {
            // The gateway answered; the publisher never hears it.
            return;
        }
        let _ = client.write_all(&answer).await;
    }
}

#[tokio::test]
async fn a_batch_whose_answer_was_lost_is_sent_again_and_published_once() {
    let gw = open_gateway(|_| {});
    let proxy = LosesFirstAnswer::start(gw.running.addr).await;
    let mut args = JOB.to_vec();
    args.extend(["--batch", "1", "--linger", "1ms"]);
    let ran = run(&proxy.url(), &args, b"first\nsecond\n".to_vec()).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stderr.contains("retrying"), "{}", ran.stderr);
    // The first batch twice under one key, the second under its own.
    let keys = proxy.keys();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(keys[0], keys[1], "a retry sends the same key");
    assert_ne!(keys[1], keys[2], "each batch has its own key");
    assert!(keys.iter().all(|k| !k.is_empty() && k.len() <= 128));
    assert_eq!(
        messages(&history(&gw, "logs:etl:ws1:job7").await),
        ["first", "second"],
        "the retried batch is published once"
    );
    assert_eq!(
        gw.metric("loggate_idempotency_replayed_total").await,
        Some(1.0)
    );
}
