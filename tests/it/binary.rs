//! The real `loggate` binary: start-up with embedded defaults, configuration
//! errors that name their key, `--config`, and graceful SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use testkit::process::{self, Guard, exit_within, free_port, rss_kib, sigterm, spawn};
use testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_loggate");

fn base_command() -> Command {
    process::base_command(BIN)
}

/// Runs the binary to its exit, killing it (and failing) if it is still
/// running after `WAIT`: a start that should have been refused must not
/// hang the test.
fn run_to_exit(mut cmd: Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().expect("binary runs");
    if exit_within(&mut child, WAIT).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the binary kept running instead of exiting");
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn configuration_errors_name_the_key_and_exit_2() {
    let cases = [
        ("PORT", "not-a-port"),
        ("MAX_CONNECTIONS", "0"),
        ("LOGGATE_ENV", "staging"),
        ("SERVICE_TOKENS", "etl"),
        ("NATS_URL", "localhost:4222"),
        ("FLY_ORG", "myorg-without-a-token"),
        ("JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem"),
        ("ALLOWED_ORIGINS", "not-an-origin"),
    ];
    for (key, value) in cases {
        let mut cmd = base_command();
        cmd.env(key, value);
        let (code, stderr) = run_to_exit(cmd);
        assert_eq!(code, Some(2), "{key}={value}: {stderr}");
        let named = if key == "FLY_ORG" {
            "ACCESS_TOKEN"
        } else {
            key
        };
        assert!(stderr.contains(named), "{key}={value}: {stderr}");
        assert!(stderr.contains("configuration error"), "{stderr}");
    }
    let mut cmd = base_command();
    cmd.env("LOGGATE_ENV", "production");
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("dev token"), "{stderr}");

    let mut cmd = base_command();
    cmd.args(["--config", "/nonexistent/loggate.toml"]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--config"), "{stderr}");
}

/// Misspelt settings are not silent: the real process environment is
/// read whole at start. Development warns (naming the setting meant) and
/// runs; production refuses to start, naming each one.
#[test]
fn misspelt_environment_names_warn_and_stop_production() {
    let mut cmd = base_command();
    cmd.env("JWT_SECERT", "0123456789abcdef0123456789abcdef")
        .env("LOGGATE_ENVIRONMENT", "production");
    let proc = spawn(cmd);
    let log = proc.log_lines().join("\n");
    assert!(
        log.contains(
            "JWT_SECERT is not a loggate setting and is ignored (did you mean JWT_SECRET?)"
        ),
        "{log}"
    );
    assert!(log.contains("(did you mean LOGGATE_ENV?)"), "{log}");
    assert!(log.contains("subscriptions are OPEN"), "{log}");
    assert!(
        !log.contains("0123456789abcdef"),
        "a value was logged: {log}"
    );
    drop(proc);

    let mut cmd = base_command();
    cmd.env("LOGGATE_ENV", "production")
        .env("SERVICE_TOKENS", "etl=a-production-secret")
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .env("ALLOWED_ORIGINS", "https://app.example.com")
        .env("ADMN_TOKEN", "an-admin-token-of-length");
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("ADMN_TOKEN: is not a loggate setting (did you mean ADMIN_TOKEN?)"),
        "{stderr}"
    );

    // Only the documented words, quoted back as given.
    let mut cmd = base_command();
    cmd.env("LOGGATE_ENV", "prod");
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(r#"LOGGATE_ENV: "prod" is not one of: production, development"#),
        "{stderr}"
    );
}

/// A shell's soft open-file limit (often 1024) is below what
/// `MAX_CONNECTIONS` needs, two descriptors a subscriber: the gateway raises
/// it to the hard limit at start.
#[cfg(target_os = "linux")]
#[test]
fn the_open_file_limit_is_raised_to_the_hard_one() {
    let mut cmd = process::base_command("sh");
    cmd.args(["-c", &format!("ulimit -Sn 256 && exec {BIN}")]);
    let proc = spawn(cmd);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proc.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft raised to hard: {line}");
    assert_ne!(numbers[0], "256", "{line}");
}

#[test]
fn config_file_and_environment_layers() {
    let dir = std::env::temp_dir().join(format!("loggate-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("loggate.toml");
    std::fs::write(&file, "[service_tokens]\nbilling = \"billing-secret\"\n").unwrap();
    let mut cmd = base_command();
    cmd.env("LOGGATE_CONFIG", &file);
    let proc = spawn(cmd);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("http://{}/api/logs/publish", proc.addr);
        let body = serde_json::json!({"service":"billing","logData":{"message":"m"}});
        let res = client
            .post(&url)
            .header("x-service-token", "billing-secret")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::ACCEPTED,
            "token from the file works"
        );
        // The file's table is merged over the defaults: dev tokens remain.
        let body = serde_json::json!({"service":"etl","logData":{"message":"m"}});
        let res = client
            .post(&url)
            .header("x-service-token", ETL_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    });
    drop(proc);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_tells_clients_drains_and_exits_zero() {
    let mut proc = spawn(base_command());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let base = format!("http://{}", proc.addr);
        let res = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(res.text().await.unwrap(), "ok");
        let mut sub =
            SseClient::connect(&format!("{base}/api/logs/stream?channels=logs:etl")).await;
        assert_eq!(sub.next_event().await.unwrap().event, "ready");
        let client = reqwest::Client::new();
        let res = client
            .post(format!("{base}/api/logs/publish"))
            .header("x-service-token", ETL_TOKEN)
            .json(&event("etl", Some("ws1"), None, "before shutdown"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);

        // A publisher keeps going through the shutdown: every answer it
        // gets is 202 or 503, never an error status or a hang.
        let publisher = {
            let base = base.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut statuses = Vec::new();
                for i in 0..100_000 {
                    let res = client
                        .post(format!("{base}/api/logs/publish"))
                        .header("x-service-token", ETL_TOKEN)
                        .json(&event("etl", Some("pub"), None, &format!("p{i}")))
                        .timeout(WAIT)
                        .send()
                        .await;
                    match res {
                        Ok(r) => statuses.push(r.status()),
                        Err(_) => break, // the listener is closed
                    }
                }
                statuses
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;

        assert!(sigterm(proc.pid()));

        // Queued events are drained first (the publisher's too), then the
        // shutdown notice.
        let first = sub.next_event().await.unwrap();
        assert_eq!(first.event, "log");
        assert_eq!(first.json()["message"], "before shutdown");
        loop {
            let f = sub
                .next_event()
                .await
                .expect("a shutdown frame before the end");
            if f.event == "shutdown" {
                break;
            }
            assert_eq!(f.event, "log", "{f:?}");
        }
        assert!(sub.next_event().await.is_none(), "then the stream ends");
        let statuses = publisher.await.unwrap();
        assert!(
            statuses.contains(&StatusCode::ACCEPTED),
            "the publisher ran"
        );
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::ACCEPTED || *s == StatusCode::SERVICE_UNAVAILABLE),
            "{:?}",
            statuses
                .iter()
                .filter(|s| !s.is_success())
                .collect::<Vec<_>>()
        );
    });
    let status = exit_within(&mut proc.child, WAIT).expect("gateway did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0));
    // The process has exited, so its stderr closes and the reader ends.
    let mut rest = Vec::new();
    while let Ok(line) = proc.lines.recv_timeout(WAIT) {
        rest.push(line);
    }
    assert!(rest.iter().any(|l| l.contains("clients told")), "{rest:?}");
}

#[test]
fn healthcheck_subcommand_probes_the_running_gateway() {
    let proc = spawn(base_command());
    let port = proc.addr.rsplit(':').next().unwrap().to_owned();
    let status = base_command()
        .env("PORT", &port)
        .arg("healthcheck")
        .status()
        .unwrap();
    assert!(status.success());
    drop(proc);
    // Nothing listens there any more.
    let status = base_command()
        .env("PORT", &port)
        .arg("healthcheck")
        .status()
        .unwrap();
    assert!(!status.success());
}

/// Connection churn must not grow the server: after a warm-up, 8,000 more
/// connect/disconnect cycles may not add more than a few MiB of RSS (a leak
/// of even one 1 KiB session each would add 8 MiB).
#[test]
fn connection_churn_does_not_grow_server_memory() {
    use futures_util::StreamExt;
    let mut cmd = base_command();
    // 10,000 connections from one address: the per-address limit is
    // another test's subject.
    cmd.env("CONNECT_RATE_PER_IP", "0");
    let proc = spawn(cmd);
    let pid = proc.child.id();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://{}", proc.addr);
    let cycles = |from: usize, to: usize| {
        let base = base.clone();
        async move {
            futures_util::stream::iter(from..to)
                .for_each_concurrent(50, |i| {
                    let url = format!(
                        "{base}/api/logs/stream?channels=logs:s{}:w{i},logs:*:w{}",
                        i % 13,
                        i % 7
                    );
                    async move {
                        let mut c = SseClient::connect(&url).await;
                        assert_eq!(c.status, StatusCode::OK);
                        assert_eq!(c.next_event().await.unwrap().event, "ready");
                    }
                })
                .await;
        }
    };
    rt.block_on(cycles(0, 2_000));
    let warm = rss_kib(pid);
    rt.block_on(cycles(2_000, 10_000));
    let after = rss_kib(pid);
    eprintln!("server RSS: {warm} KiB after warm-up, {after} KiB after 8,000 more cycles");
    assert!(
        after < warm + 4 * 1024,
        "RSS grew from {warm} KiB to {after} KiB over 8,000 cycles"
    );
}

#[test]
fn log_format_json_writes_json_lines() {
    let mut cmd = base_command();
    cmd.env("LOG_FORMAT", "json");
    // The guard kills the child on every path.
    let proc = process::start(cmd);
    let first = proc
        .lines
        .recv_timeout(WAIT)
        .expect("a log line at start-up");
    let line: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(
        line["level"].is_string() && line["fields"].is_object(),
        "{line}"
    );
    assert!(!first.contains('\u{1b}'), "no colour codes in JSON logs");
}

#[test]
fn help_lists_the_serve_command() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve"), "{text}");
    assert!(text.contains("--config"), "{text}");
}

/// Waits (bounded) for the child to exit and returns its exit code.
fn exit_code_within(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    match exit_within(child, limit) {
        Some(status) => status.code(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway did not exit");
        }
    }
}

/// Opens and closes `n` SSE streams: each logs an open and a close line.
fn churn(base: &str, n: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..n {
            let mut c =
                SseClient::connect(&format!("{base}/api/logs/stream?channels=logs:etl")).await;
            assert_eq!(c.next_event().await.unwrap().event, "ready");
        }
    });
}

/// `loggate 2>&1 | head -3`, then SIGTERM: logging into a closed pipe must
/// not wedge the shutdown (it used to panic the shutdown task).
#[test]
fn sigterm_exits_when_the_log_pipe_is_closed() {
    use std::io::{BufRead, BufReader};
    let mut cmd = base_command();
    let port = free_port();
    cmd.env("PORT", port.to_string());
    let mut child = Guard(cmd.spawn().unwrap());
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no listening line"
        );
    }
    drop(stderr);
    let base = format!("http://127.0.0.1:{port}");
    churn(&base, 20);
    sigterm(child.0.id());
    assert_eq!(exit_code_within(&mut child.0, WAIT), Some(0));
}

/// A log pipe that nobody reads fills up; the gateway must keep serving
/// (lines are dropped and counted, never waited for) and still stop.
#[test]
fn a_log_pipe_nobody_reads_never_blocks_the_gateway() {
    let mut cmd = base_command();
    let port = free_port();
    // Trace level: dozens of lines per request, so the log queue overflows.
    cmd.env("PORT", port.to_string())
        .env("CONNECT_RATE_PER_IP", "0")
        .env("RUST_LOG", "trace");
    let mut child = Guard(cmd.spawn().unwrap());
    // Held open, never read.
    let _stderr = child.0.stderr.take().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    churn(&base, 1000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = rt.block_on(async {
        tokio::time::timeout(WAIT, async {
            reqwest::get(format!("{base}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
        .await
        .expect("the gateway still answers")
    });
    let dropped = metric_value(&metrics, "loggate_log_lines_dropped_total").unwrap();
    assert!(dropped > 0.0, "lines were dropped and counted");
    sigterm(child.0.id());
    assert_eq!(exit_code_within(&mut child.0, WAIT), Some(0));
}
