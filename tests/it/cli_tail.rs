//! `loggate tail`, run as the real binary against real gateways: history
//! then live with nothing twice at the seam, output formats and filters,
//! notices on stderr only, reconnect across a restart, exit codes
//! 0/2/3/4/130 (and a quiet end when the reader of stdout goes away), and
//! what publishers' control characters become on a terminal (a pty): text,
//! unless `--raw-control`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use testkit::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const LIMIT: Duration = Duration::from_secs(60);

fn tail_cmd(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loggate"));
    cmd.arg("tail")
        .args(["--url", url])
        .args(args)
        .env_remove("LOGGATE_URL")
        .env_remove("LOGGATE_TOKEN")
        .env_remove("LOGGATE_PROFILE")
        .env("LOGGATE_CLI_CONFIG", "/nonexistent/cli.toml")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn run(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(LIMIT, tail_cmd(url, args).output())
        .await
        .expect("tail ends in time")
        .expect("tail runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn line_of(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    tokio::time::timeout(LIMIT, out.read_line(&mut line))
        .await
        .expect("a line in time")
        .expect("read");
    line.trim_end().to_owned()
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
}

fn gateway() -> InProcessGateway {
    start_with(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.connect_rate_per_ip = 0;
        c.limits.history_rate_per_ip = 0;
    })
}

async fn publish(gw: &InProcessGateway, events: Vec<Value>) {
    let (status, v) = gw.publish(&Value::Array(events)).await;
    assert_eq!(status, 202, "{v}");
}

fn numbered(from: usize, n: usize) -> Vec<Value> {
    (from..from + n)
        .map(|i| event("etl", Some("ws1"), Some("job7"), &format!("m{i}")))
        .collect()
}

#[tokio::test]
async fn history_then_live_with_nothing_twice_and_ctrl_c_exits_130() {
    let gw = gateway();
    publish(&gw, numbered(0, 5)).await;
    let mut child = tail_cmd(&gw.url(""), &["logs:etl:ws1", "-n", "3", "-o", "raw"])
        .spawn()
        .expect("runs");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    for want in ["m2", "m3", "m4"] {
        assert_eq!(line_of(&mut out).await, want);
    }
    gw.wait_for_registry("tail subscribed", |s| s.sessions >= 1)
        .await;
    publish(&gw, numbered(5, 2)).await;
    assert_eq!(line_of(&mut out).await, "m5");
    assert_eq!(line_of(&mut out).await, "m6");
    interrupt(&child);
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "nothing twice");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no traceback");
}

#[tokio::test]
async fn no_follow_formats_and_filters() {
    let gw = gateway();
    let mut warn = event("etl", Some("ws1"), Some("job7"), "disk nearly full");
    warn["logData"]["level"] = "warn".into();
    warn["logData"]["meta"] = serde_json::json!({"rows": 12, "user": "alice"});
    warn["logData"]["timestamp"] = "2025-09-25T10:30:00Z".into();
    publish(&gw, vec![event("etl", Some("ws1"), None, "hello"), warn]).await;
    let other = event("faas", Some("ws1"), None, "other").to_string();
    let (status, v) = gw
        .publish_raw("faas-token", "application/json", other.into_bytes())
        .await;
    assert_eq!(status, 202, "{v}");
    let url = gw.url("");

    let (code, out, err) = run(&url, &["logs:etl:ws1", "--no-follow", "-o", "json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON per line"))
        .collect();
    assert_eq!(messages(&events), ["hello", "disk nearly full"]);
    // Byte for byte as the gateway wrote them.
    let raw = reqwest::get(gw.url("/api/logs/history?channels=logs:etl:ws1"))
        .await
        .expect("history")
        .text()
        .await
        .expect("body");
    for line in out.lines() {
        assert!(raw.contains(line), "{line} is not in {raw}");
    }

    let (_, out, _) = run(
        &url,
        &[
            "logs:etl:ws1",
            "--no-follow",
            "--timestamps",
            "rfc3339",
            "--utc",
            "-l",
            "warn",
        ],
    )
    .await;
    assert_eq!(
        out,
        "2025-09-25T10:30:00Z WARN  logs:etl:ws1:job7 disk nearly full rows=12 user=alice\n"
    );
    let (_, out, _) = run(
        &url,
        &[
            "logs:etl:ws1",
            "--no-follow",
            "--timestamps",
            "short",
            "--utc",
            "-q",
            "DISK",
        ],
    )
    .await;
    assert_eq!(
        out,
        "10:30:00.000 WARN  logs:etl:ws1:job7 disk nearly full rows=12 user=alice\n"
    );
    let (_, out, _) = run(
        &url,
        &[
            "logs:etl:ws1",
            "--no-follow",
            "--timestamps",
            "none",
            "--color",
            "always",
            "-l",
            "warn",
        ],
    )
    .await;
    assert_eq!(
        out,
        "\x1b[33mWARN \x1b[0m logs:etl:ws1:job7 disk nearly full rows=12 user=alice\n"
    );
    // Patterns, the shorthand, and -n.
    let (_, out, _) = run(&url, &["logs:*:ws1", "--no-follow", "-o", "raw"]).await;
    assert_eq!(out, "hello\ndisk nearly full\nother\n");
    let (_, out, _) = run(&url, &["--service", "faas", "--no-follow", "-o", "raw"]).await;
    assert_eq!(out, "other\n");
    let (_, out, _) = run(&url, &["logs:*", "--no-follow", "-o", "raw", "-n", "1"]).await;
    assert_eq!(out, "other\n");
    let (_, out, _) = run(
        &url,
        &["logs:*", "--no-follow", "-o", "raw", "--since", "1h"],
    )
    .await;
    assert_eq!(out, "hello\nother\n", "the 2025 line is older than an hour");
    // Both: the newest N of those since.
    for (n, want) in [("1", "other\n"), ("0", "")] {
        let args = [
            "logs:*",
            "--no-follow",
            "-o",
            "raw",
            "--since",
            "1h",
            "-n",
            n,
        ];
        let (_, out, _) = run(&url, &args).await;
        assert_eq!(out, want, "-n {n}");
    }
}

#[tokio::test]
async fn a_reader_that_goes_away_ends_tail_quietly() {
    let gw = gateway();
    publish(&gw, numbered(0, 500)).await;
    let mut child = tail_cmd(&gw.url(""), &["logs:etl", "-n", "500", "-o", "raw"])
        .spawn()
        .expect("runs");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    assert_eq!(line_of(&mut out).await, "m0");
    drop(out);
    // History may all fit in the pipe before the reader left; like
    // `tail -f | head`, the next write finds the pipe closed.
    let deadline = tokio::time::Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "tail never noticed");
        publish(&gw, numbered(500, 1)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .await
        .expect("stderr");
    assert_eq!(err, "");
}

#[tokio::test]
async fn exit_codes_for_usage_refusal_and_unreachable() {
    let gw = start_with(|c| {
        c.auth.jwt_secret = Some(loggate::config::Secret::new(
            "tail-test-secret-tail-test-secret",
        ));
    });
    let url = gw.url("");
    for (args, code, said) in [
        (&["--no-follow"][..], 2, "name a channel"),
        (&["bad.x"][..], 2, "logs:"),
        (&["logs:etl", "-l", "loud"][..], 2, "--level"),
        (&["logs:etl", "--since", "later"][..], 2, "--since"),
        (&["logs:etl", "-o", "yaml"][..], 2, "yaml"),
        (&["logs:etl"][..], 3, "401"),
        (&["logs:etl", "--token", "forged.jwt.value"][..], 3, "401"),
    ] {
        let (got, _, err) = run(&url, args).await;
        assert_eq!(got, Some(code), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
    let closed = format!("http://127.0.0.1:{}", process::free_port());
    let (got, _, err) = run(&closed, &["logs:etl", "--retry-for", "1s"]).await;
    assert_eq!(got, Some(4), "{err}");
    assert!(err.contains("cannot reach"), "{err}");
}

#[tokio::test]
async fn it_reconnects_after_a_restart_with_notices_on_stderr_only() {
    let port = process::free_port();
    let spawn = || {
        let mut cmd = process::base_command(env!("CARGO_BIN_EXE_loggate"));
        cmd.env("PORT", port.to_string())
            .env("CONNECT_RATE_PER_IP", "0");
        process::spawn(cmd)
    };
    let client = reqwest::Client::new();
    let publish = |base: String, m: &'static str| {
        let client = client.clone();
        async move {
            let body = event("etl", Some("ws1"), None, m).to_string();
            let (s, v) =
                testkit::http::publish(&client, &base, ETL_TOKEN, "application/json", body, LIMIT)
                    .await;
            assert_eq!(s, 202, "{v}");
        }
    };
    let gw = spawn();
    let base = gw.url("");
    let mut child = tail_cmd(&base, &["logs:etl", "-o", "raw", "-n", "0"])
        .spawn()
        .expect("runs");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    // Live once a publish is seen (the stream may open after the first).
    let mut first = String::new();
    while first.is_empty() {
        publish(base.clone(), "before").await;
        first = tokio::select! {
            l = line_of(&mut out) => l,
            _ = tokio::time::sleep(Duration::from_millis(200)) => String::new(),
        };
    }
    assert_eq!(first, "before");
    drop(gw);
    let mut notice = String::new();
    tokio::time::timeout(LIMIT, err.read_line(&mut notice))
        .await
        .expect("notice")
        .expect("stderr");
    assert!(notice.contains("reconnecting"), "{notice}");
    let gw = spawn();
    // Lines published once it is back arrive on stdout; nothing else does.
    let mut got = String::new();
    while got.is_empty() {
        publish(base.clone(), "after").await;
        got = tokio::select! {
            l = line_of(&mut out) => l,
            _ = tokio::time::sleep(Duration::from_millis(200)) => String::new(),
        };
    }
    assert!(got == "after" || got == "before", "{got}");
    interrupt(&child);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(130));
    drop(gw);
}

/// Something posing as a gateway that answers every request with a body
/// that never ends: history as an endless JSON page, the stream as one
/// endless SSE frame.
async fn endless_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let stream = head.starts_with(b"GET /api/logs/stream");
                let (kind, start) = if stream {
                    ("text/event-stream", &b"event: log\ndata: "[..])
                } else {
                    ("application/json", &b"{\"logs\":[\""[..])
                };
                let header = format!("HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\n\r\n");
                if conn.write_all(header.as_bytes()).await.is_err()
                    || conn.write_all(start).await.is_err()
                {
                    return;
                }
                let filler = vec![b'x'; 64 * 1024];
                while conn.write_all(&filler).await.is_ok() {}
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn endless_answers_are_cut_off_not_buffered() {
    let url = endless_server().await;
    let (code, out, err) = run(&url, &["logs:etl", "--no-follow"]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("history: answer larger than"), "{err}");
    assert_eq!(out, "");
    let (code, out, err) = run(&url, &["logs:etl", "-n", "0", "--retry-for", "0s"]).await;
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("a frame over 65 MiB"), "{err}");
    assert_eq!(out, "");
}

/// What a publisher can make a terminal do, one of each, and how `tail`
/// shows it instead (written out by hand: `\x1b` is four characters).
const HOSTILE: &[(&str, &str)] = &[
    ("title \x1b]0;owned\x07", r"title \x1b]0;owned\x07"),
    ("clear \x1b[2J\x1b[H", r"clear \x1b[2J\x1b[H"),
    (
        "clipboard \x1b]52;c;cm0gLXJmIH4=\x07",
        r"clipboard \x1b]52;c;cm0gLXJmIH4=\x07",
    ),
    (
        "link \x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
        r"link \x1b]8;;https://evil.example/\x1b\click\x1b]8;;\x1b\",
    ),
    ("dcs \x1bP$q\"p\x1b\\", r#"dcs \x1bP$q"p\x1b\"#),
    (
        "hidden \x1b[8msecret\x1b[0m",
        r"hidden \x1b[8msecret\x1b[0m",
    ),
    (
        "backspace abc\x08\x08\x08xyz",
        r"backspace abc\x08\x08\x08xyz",
    ),
    ("return\rINFO  all good", r"return\rINFO  all good"),
    (
        "c1 csi \u{9b}2J osc \u{9d}0;t\u{9c} nel \u{85}",
        r"c1 csi \u009b2J osc \u009d0;t\u009c nel \u0085",
    ),
    (
        "forged\n10:30:00.000 ERROR logs:etl:ws1 forged line",
        r"forged\n10:30:00.000 ERROR logs:etl:ws1 forged line",
    ),
    (
        "bell \x07 del \x7f nul \x00 us \x1f",
        r"bell \x07 del \x7f nul \x00 us \x1f",
    ),
    ("separators \u{2028} \u{2029}", r"separators \u2028 \u2029"),
    // Kept: tab, and every other character (a no-break space is U+00A0,
    // just past the C1 controls).
    ("tab\tcafé ✓ 日本 — \u{a0}ok", "tab\tcafé ✓ 日本 — \u{a0}ok"),
];

/// `meta` of the first hostile event: control characters in keys and
/// values, and how `-o text` shows them (keys in sorted order).
fn hostile_meta() -> (Value, &'static str) {
    (
        serde_json::json!({
            "\x1b]0;key\x07": "\x1b[2J",
            "c1": "\u{9b}31mred",
            "spaced": "a \x1b[8m b\n",
        }),
        r#" \x1b]0;key\x07=\x1b[2J c1=\u009b31mred spaced="a \u001b[8m b\n""#,
    )
}

/// Publishes the hostile events on logs:etl:ws1, in order, with hostile
/// `stream` and `source` too (which `-o text` does not print).
async fn publish_hostile(gw: &InProcessGateway) {
    let events = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, (message, _))| {
            let mut e = event("etl", Some("ws1"), None, message);
            if i == 0 {
                e["logData"]["meta"] = hostile_meta().0;
                e["logData"]["stream"] = "\x1b]0;stream\x07".into();
                e["logData"]["source"] = "\u{9b}2J".into();
            }
            e
        })
        .collect();
    publish(gw, events).await;
}

/// `-o text --timestamps none --color never`, as it should read.
fn hostile_text_lines() -> String {
    HOSTILE
        .iter()
        .enumerate()
        .map(|(i, (_, shown))| {
            let meta = if i == 0 { hostile_meta().1 } else { "" };
            format!("INFO  logs:etl:ws1 {shown}{meta}\n")
        })
        .collect()
}

/// Runs tail with its stdout on a terminal until it exits: its exit code,
/// the bytes it wrote to the terminal, and its stderr.
async fn run_on_terminal(url: &str, args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let terminal = pty::Pty::open();
    let child = tail_cmd(url, args)
        .stdout(terminal.stdio())
        .spawn()
        .expect("tail runs");
    let mut reader = terminal.reader();
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("tail ends in time")
        .expect("tail runs");
    let written = tokio::task::spawn_blocking(move || {
        reader.read_to_end(LIMIT);
        reader.bytes
    })
    .await
    .expect("reader");
    (
        out.status.code(),
        written,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// No byte a terminal would act on: no C0 control but tab and the line
/// ends, no DEL, no C1 control (U+0080-U+009F), and valid UTF-8.
fn assert_inert(bytes: &[u8], what: &str) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    for c in text.chars() {
        let inert = !c.is_control() || c == '\t' || c == '\n';
        assert!(
            inert,
            "{what}: a raw {:?} reached the terminal in {text:?}",
            c
        );
    }
}

#[tokio::test]
async fn control_characters_reach_a_terminal_as_text() {
    let gw = gateway();
    publish_hostile(&gw).await;
    let url = gw.url("");
    let text = ["logs:etl:ws1", "--no-follow", "-n", "100"];
    let plain = ["--timestamps", "none", "--color", "never"];

    // -o text: every event is one line, every control shown, exactly.
    let (code, written, err) = run_on_terminal(&url, &[&text[..], &plain[..]].concat()).await;
    assert_eq!(code, Some(0), "{err}");
    assert_inert(&written, "-o text");
    assert_eq!(String::from_utf8_lossy(&written), hostile_text_lines());
    // With colour, the only escapes are tail's own, around the level.
    let (_, written, _) = run_on_terminal(
        &url,
        &[&text[..], &["--timestamps", "none", "--color", "always"]].concat(),
    )
    .await;
    let coloured = String::from_utf8(written).expect("UTF-8");
    let uncoloured = coloured.replace("\x1b[32m", "").replace("\x1b[0m", "");
    assert_eq!(uncoloured, hostile_text_lines());
    assert_eq!(coloured.matches('\x1b').count(), 2 * HOSTILE.len());

    // -o raw to a terminal: the message, shown the same way.
    let (code, written, err) = run_on_terminal(&url, &[&text[..], &["-o", "raw"]].concat()).await;
    assert_eq!(code, Some(0), "{err}");
    assert_inert(&written, "-o raw");
    let shown: String = HOSTILE.iter().map(|(_, s)| format!("{s}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&written), shown);

    // -o json to a terminal: the gateway's JSON, which escapes C1 and the
    // separators as JSON does C0, and parses back to what was published.
    let (code, written, err) = run_on_terminal(&url, &[&text[..], &["-o", "json"]].concat()).await;
    assert_eq!(code, Some(0), "{err}");
    assert_inert(&written, "-o json");
    let text_out = String::from_utf8(written).expect("UTF-8");
    assert!(!text_out.contains('\u{2028}') && !text_out.contains('\u{2029}'));
    let events: Vec<Value> = text_out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON per line"))
        .collect();
    let published: Vec<&str> = HOSTILE.iter().map(|(m, _)| *m).collect();
    assert_eq!(messages(&events), published);
    assert_eq!(events[0]["meta"], hostile_meta().0);
    assert_eq!(events[0]["stream"], "\x1b]0;stream\x07");
    assert_eq!(events[0]["source"], "\u{9b}2J");

    // --raw-control: the bytes, for whoever wants them.
    let (code, written, err) =
        run_on_terminal(&url, &[&text[..], &plain[..], &["--raw-control"]].concat()).await;
    assert_eq!(code, Some(0), "{err}");
    let raw = String::from_utf8(written).expect("UTF-8");
    for (message, _) in HOSTILE {
        assert!(
            raw.contains(&format!("INFO  logs:etl:ws1 {message}")),
            "{raw:?}"
        );
    }
    assert!(
        raw.contains(" \x1b]0;key\x07=\x1b[2J c1=\u{9b}31mred"),
        "{raw:?}"
    );
    let (_, written, _) =
        run_on_terminal(&url, &[&text[..], &["-o", "raw", "--raw-control"]].concat()).await;
    let verbatim: String = HOSTILE.iter().map(|(m, _)| format!("{m}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&written), verbatim);

    // -o raw to a pipe: the message as published, byte for byte.
    let (code, out, err) = run(&url, &[&text[..], &["-o", "raw"]].concat()).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, verbatim);
    // -o text to a pipe is shown as on a terminal: one line per event.
    let (_, out, _) = run(&url, &[&text[..], &plain[..]].concat()).await;
    assert_eq!(out, hostile_text_lines());
}

#[tokio::test]
async fn live_control_characters_reach_a_terminal_as_text() {
    let gw = gateway();
    let terminal = pty::Pty::open();
    let mut child = tail_cmd(
        &gw.url(""),
        &[
            "logs:etl:ws1",
            "-n",
            "0",
            "--timestamps",
            "none",
            "--color",
            "never",
        ],
    )
    .stdout(terminal.stdio())
    .spawn()
    .expect("tail runs");
    let mut reader = terminal.reader();
    gw.wait_for_registry("tail subscribed", |s| s.sessions >= 1)
        .await;
    publish_hostile(&gw).await;
    let lines = HOSTILE.len();
    let written = tokio::task::spawn_blocking(move || {
        reader.read_until(LIMIT, |b| {
            b.iter().filter(|&&c| c == b'\n').count() >= lines
        });
        reader.bytes
    })
    .await
    .expect("reader");
    assert_inert(&written, "live -o text");
    assert_eq!(String::from_utf8_lossy(&written), hostile_text_lines());
    interrupt(&child);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(130));
}
