//! The web viewer (`/ui/`) in real headless Chromium, against a real
//! gateway over real sockets: history then live with no seam, the view in
//! the address, filters, pausing, a line's JSON, tokens, reconnects after a
//! restart, refusals, the ring bound under a fast stream, paging back and
//! downloading, the gateway panel, a path prefix, the channel box's offers
//! (within the token's grants), and a clean console.
//!
//! Screenshots of the main views are saved under the target directory
//! (`target/tmp/viewer/`) as test artifacts.

use std::path::PathBuf;
use std::time::Duration;

use loggate::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::browser::Browser;
use testkit::proxy::PrefixProxy;
use testkit::viewer::{self, Entry};
use testkit::*;

const SECRET: &str = "viewer-test-secret-viewer-test-secret";
const ADMIN: &str = "viewer-admin-token-for-the-tests";

fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("viewer")
        .join(name)
}

/// A gateway with no publish or connect rate limits (the tests publish
/// fast and reconnect often).
fn gateway(adjust: impl FnOnce(&mut loggate::Config)) -> InProcessGateway {
    start_with(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.connect_rate_per_ip = 0;
        c.limits.history_rate_per_ip = 0;
        adjust(c);
    })
}

fn at_level(mut e: Value, level: &str) -> Value {
    e["logData"]["level"] = level.into();
    e
}

/// Publishes `events` as one batch; returns their ids.
async fn publish(gw: &InProcessGateway, events: Vec<Value>) -> Vec<String> {
    let (status, answer) = gw.publish(&Value::Array(events)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|i| i.as_str().expect("id").to_owned())
        .collect()
}

async fn publish_one(gw: &InProcessGateway, e: Value) -> String {
    publish(gw, vec![e]).await.remove(0)
}

/// No console error of any kind: no exception, no CSP violation, no
/// failed request.
async fn assert_clean_console(b: &mut Browser) {
    let errors: Vec<_> = b
        .console()
        .await
        .iter()
        .filter(|e| e.is_error())
        .cloned()
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// No script error (refused requests are logged by the browser itself and
/// are expected where a test provokes them).
async fn assert_no_script_errors(b: &mut Browser) {
    let errors = b.script_errors().await;
    assert!(errors.is_empty(), "script errors: {errors:#?}");
}

fn ids_of(lines: &[viewer::Line]) -> Vec<String> {
    lines.iter().map(|l| l.id.clone()).collect()
}

#[tokio::test]
async fn history_then_live_without_a_seam() {
    let gw = gateway(|_| {});
    let levels = ["debug", "info", "info", "warn", "error", "info", "fatal"];
    let history: Vec<Value> = (0..40)
        .map(|i| {
            let job = format!("job{}", i % 3);
            at_level(
                event("etl", Some("ws1"), Some(&job), &format!("history {i}")),
                levels[i % levels.len()],
            )
        })
        .collect();
    let mut ids = publish(&gw, history).await;

    // Keep publishing while the page loads: events accepted between its
    // history read and its stream's start must come exactly once.
    let url = gw.url("");
    let publisher = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut ids = Vec::new();
        for i in 0..150 {
            let e = event("etl", Some("ws1"), Some("job9"), &format!("live {i}"));
            let (s, v) = testkit::http::publish(
                &client,
                &url,
                ETL_TOKEN,
                "application/json",
                e.to_string(),
                WAIT,
            )
            .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            ids.push(v["ids"][0].as_str().unwrap().to_owned());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ids
    });
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl:ws1")).await;
    viewer::wait_status(&b, "live").await;
    ids.extend(publisher.await.expect("publisher"));
    viewer::wait_last_line(&b, "live 149").await;

    let lines = viewer::lines(&b).await;
    assert_eq!(ids_of(&lines), ids, "every event once, in order");
    let first = &lines[0];
    assert_eq!(
        (
            first.level.as_str(),
            first.channel.as_str(),
            first.message.as_str()
        ),
        ("debug", "logs:etl:ws1:job0", "history 0")
    );
    assert_eq!(lines[4].level, "error");
    assert!(viewer::notices(&b).await.is_empty());
    // Each line shows time, level, channel and message.
    let cells = b
        .eval("const l = document.querySelector('[data-testid=log-line]'); return [...l.children].map(c => c.className + '=' + c.textContent);")
        .await;
    let cells: Vec<&str> = cells
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(cells[0].starts_with("time=20"), "{cells:?}");
    assert_eq!(
        &cells[1..],
        [
            "level=debug",
            "channel=logs:etl:ws1:job0",
            "message=history 0"
        ]
    );

    b.screenshot(&artifact("history-then-live.png")).await;
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn the_address_opens_a_filtered_view_and_the_open_line() {
    let gw = gateway(|_| {});
    let ws1 = |m: &str| event("etl", Some("ws1"), None, m);
    let ids = publish(
        &gw,
        vec![
            at_level(ws1("request timeout after 30s"), "warn"),
            at_level(ws1("request timeout after 30s"), "info"),
            at_level(ws1("disk full"), "error"),
            at_level(ws1("upstream Timeout"), "error"),
            at_level(
                event("etl", Some("ws2"), None, "timeout elsewhere"),
                "error",
            ),
        ],
    )
    .await;
    let mut b = Browser::launch().await;
    let view = format!(
        "/ui/?channels=logs:etl:ws1&level=warn&q=timeout&sel={}&utc=1",
        ids[3]
    );
    b.open(&gw.url(&view)).await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(
        viewer::wait_lines(&b, 2).await,
        ["request timeout after 30s", "upstream Timeout"]
    );
    // Live lines obey the same filters.
    publish(
        &gw,
        vec![
            at_level(ws1("timeout, but only info"), "info"),
            at_level(ws1("fatal TIMEOUT"), "fatal"),
            at_level(ws1("a warning without the word"), "warn"),
        ],
    )
    .await;
    viewer::wait_last_line(&b, "fatal TIMEOUT").await;
    assert_eq!(viewer::lines(&b).await.len(), 3);
    // The search text is highlighted, whatever its case.
    let marks = b
        .eval("return [...document.querySelectorAll('[data-testid=log-line] mark')].map(m => m.textContent);")
        .await;
    assert_eq!(marks, json!(["timeout", "Timeout", "TIMEOUT"]));
    // The controls show the view.
    let form = b
        .eval(
            "return ['f-channels', 'f-level', 'f-q'].map(id => document.getElementById(id).value);",
        )
        .await;
    assert_eq!(form, json!(["logs:etl:ws1", "warn", "timeout"]));
    // `sel` opened that line; `utc` shows UTC.
    assert!(viewer::is_shown(&b, "detail").await);
    let json: Value = serde_json::from_str(&viewer::text_of(&b, "detail-json").await).unwrap();
    assert_eq!(json["id"], ids[3].as_str());
    assert_eq!(viewer::text_of(&b, "time-zone").await, "UTC");
    assert_eq!(
        viewer::param(&b, "sel").await.as_deref(),
        Some(ids[3].as_str())
    );
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn times_show_in_local_time_or_utc() {
    let gw = gateway(|_| {});
    let mut e = event("etl", Some("ws1"), None, "at half past ten");
    e["logData"]["timestamp"] = "2025-09-25T10:30:00.250Z".into();
    publish_one(&gw, e).await;
    let mut b = Browser::launch().await;
    b.set_time_zone("Asia/Kolkata").await;
    b.open(&gw.url("/ui/?channels=logs:etl")).await;
    viewer::wait_lines(&b, 1).await;
    let time = "return document.querySelector('[data-testid=log-line] .time').textContent;";
    assert_eq!(b.eval(time).await, "2025-09-25 16:00:00.250");
    assert_eq!(viewer::text_of(&b, "time-zone").await, "Local");
    b.click("#time-zone").await;
    assert_eq!(b.eval(time).await, "2025-09-25 10:30:00.250");
    assert_eq!(viewer::param(&b, "utc").await.as_deref(), Some("1"));
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn pausing_keeps_buffering_and_live_jumps_to_the_newest() {
    let gw = gateway(|_| {});
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl")).await;
    viewer::wait_status(&b, "live").await;
    let batch = |from: usize, n: usize| -> Vec<Value> {
        (from..from + n)
            .map(|i| event("etl", Some("ws1"), None, &format!("line {i}")))
            .collect()
    };
    publish(&gw, batch(0, 3)).await;
    viewer::wait_lines(&b, 3).await;

    b.click("#pause").await;
    viewer::wait_status(&b, "paused").await;
    assert!(viewer::is_shown(&b, "paused-bar").await);
    assert_eq!(viewer::param(&b, "paused").await.as_deref(), Some("1"));
    publish(&gw, batch(3, 7)).await;
    b.wait_for(
        "7 new",
        "return document.getElementById('new-count').textContent === '7';",
    )
    .await;
    assert_eq!(viewer::lines(&b).await.len(), 3, "paused: nothing rendered");
    let bar = viewer::text_of(&b, "paused-bar").await;
    assert!(
        bar.contains("Paused") && bar.contains("7 new") && bar.contains("Live"),
        "{bar}"
    );

    b.click("#live").await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 10).await.last().unwrap(), "line 9");
    assert!(!viewer::is_shown(&b, "paused-bar").await);
    assert_eq!(viewer::param(&b, "paused").await, None);

    // Scrolling up pauses too; the view stays where the reader put it.
    publish(&gw, batch(10, 90)).await;
    viewer::wait_last_line(&b, "line 99").await;
    let at_bottom = "const s = document.getElementById('scroller'); return s.scrollHeight - s.scrollTop - s.clientHeight < 40;";
    assert_eq!(
        b.eval(at_bottom).await,
        true,
        "live follows the newest line"
    );
    b.eval("document.getElementById('scroller').scrollTop = 0; return 1;")
        .await;
    viewer::wait_status(&b, "paused").await;
    publish(&gw, batch(100, 2)).await;
    b.wait_for(
        "2 new",
        "return document.getElementById('new-count').textContent === '2';",
    )
    .await;
    assert_eq!(
        b.eval("return document.getElementById('scroller').scrollTop;")
            .await,
        0
    );
    b.click("#live").await;
    viewer::wait_last_line(&b, "line 101").await;
    assert_eq!(
        b.eval(at_bottom).await,
        true,
        "resuming jumps to the newest line"
    );

    // Scrolling back down ends a pause that scrolling started...
    b.eval("document.getElementById('scroller').scrollTop = 0; return 1;")
        .await;
    viewer::wait_status(&b, "paused").await;
    b.eval(
        "const s = document.getElementById('scroller'); s.scrollTop = s.scrollHeight; return 1;",
    )
    .await;
    viewer::wait_status(&b, "live").await;
    // ...but not one the button started: the reader asked for it.
    b.click("#pause").await;
    viewer::wait_status(&b, "paused").await;
    b.eval("const s = document.getElementById('scroller'); s.scrollTop -= 100; return 1;")
        .await;
    let after_scrolls =
        "const s = document.getElementById('scroller'); s.scrollTop = s.scrollHeight;
         return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() =>
           r(document.querySelector('[data-testid=status]').textContent))));";
    let status = b.eval(after_scrolls).await;
    assert!(
        status.as_str().unwrap_or_default().starts_with("paused"),
        "{status}"
    );
    b.click("#live").await;
    viewer::wait_status(&b, "live").await;
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_view_opened_paused_shows_history_and_holds_live_lines() {
    let gw = gateway(|_| {});
    publish_one(&gw, event("etl", None, None, "old")).await;
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl&paused=1")).await;
    viewer::wait_status(&b, "paused").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["old"]);
    publish_one(&gw, event("etl", None, None, "new")).await;
    b.wait_for(
        "1 new",
        "return document.getElementById('new-count').textContent === '1';",
    )
    .await;
    b.click("#pause").await;
    assert_eq!(viewer::wait_lines(&b, 2).await, ["old", "new"]);
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_line_opens_to_its_json_and_its_values_filter() {
    let gw = gateway(|_| {});
    let mut e = event("etl", Some("ws1"), Some("job7"), "rows loaded");
    e["logData"]["meta"] = json!({"rows": 12, "user": "alice"});
    e["logData"]["stream"] = "stdout".into();
    let id = publish_one(&gw, e).await;
    publish_one(
        &gw,
        at_level(
            event("etl", Some("ws1"), Some("job8"), "other job"),
            "error",
        ),
    )
    .await;
    let mut b = Browser::launch().await;
    b.cdp(
        "Browser.grantPermissions",
        json!({"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
    )
    .await;
    b.open(&gw.url("/ui/?channels=logs:etl")).await;
    viewer::wait_lines(&b, 2).await;

    viewer::click_line(&b, &id).await;
    b.wait_for(
        "the detail panel",
        "return !document.getElementById('detail').hidden;",
    )
    .await;
    let shown: Value = serde_json::from_str(&viewer::text_of(&b, "detail-json").await).unwrap();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["meta"], json!({"rows": 12, "user": "alice"}));
    assert_eq!(shown["stream"], "stdout");
    assert_eq!(viewer::param(&b, "sel").await.as_deref(), Some(id.as_str()));
    b.screenshot(&artifact("line-detail.png")).await;

    // Copy JSON puts the event on the clipboard.
    b.click("#copy-json").await;
    b.wait_for(
        "Copied",
        "return document.getElementById('copy-json').textContent === 'Copied';",
    )
    .await;
    let copied = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, e => done('error: ' + e));",
            vec![],
        )
        .await
        .expect("read the clipboard");
    let copied: Value =
        serde_json::from_str(copied.as_str().unwrap()).expect("JSON on the clipboard");
    assert_eq!(copied["meta"]["user"], "alice");

    // A value the gateway can filter by changes the view.
    b.click("#detail-json .v.filter[data-key=resource_id]")
        .await;
    b.wait_for(
        "the job7 view",
        "return new URLSearchParams(location.search).get('channels') === 'logs:etl:ws1:job7';",
    )
    .await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["rows loaded"]);
    assert_eq!(
        b.eval("return document.getElementById('f-channels').value;")
            .await,
        "logs:etl:ws1:job7"
    );
    // Values the gateway cannot filter by are not offered as filters.
    viewer::click_line(&b, &id).await;
    let offered = b
        .eval("return [...document.querySelectorAll('#detail-json .v.filter')].map(v => v.dataset.key);")
        .await;
    assert_eq!(
        offered,
        json!([
            "channel",
            "service",
            "workspace_id",
            "resource_id",
            "level",
            "message"
        ])
    );
    b.click("#detail-json .v.filter[data-key=level]").await;
    b.wait_for(
        "level=info",
        "return new URLSearchParams(location.search).get('level') === 'info';",
    )
    .await;
    // Back returns to the previous view.
    b.client.back().await.expect("back");
    b.wait_for(
        "no level",
        "return new URLSearchParams(location.search).get('level') === null;",
    )
    .await;
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn filters_change_the_live_stream() {
    let gw = gateway(|_| {});
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/")).await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(
        viewer::param(&b, "channels").await.as_deref(),
        Some("logs:*")
    );
    publish(
        &gw,
        vec![
            event("etl", None, None, "a"),
            at_level(event("etl", None, None, "b"), "error"),
        ],
    )
    .await;
    viewer::wait_lines(&b, 2).await;

    b.eval("document.getElementById('f-level').value = 'error'; return 1;")
        .await;
    b.click("#filters button[type=submit]").await;
    b.wait_for(
        "level=error",
        "return new URLSearchParams(location.search).get('level') === 'error';",
    )
    .await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["b"]);
    viewer::wait_status(&b, "live").await;
    publish(
        &gw,
        vec![
            event("etl", None, None, "c"),
            at_level(event("etl", None, None, "d"), "error"),
        ],
    )
    .await;
    viewer::wait_last_line(&b, "d").await;
    assert_eq!(viewer::messages(&b).await, ["b", "d"]);

    b.type_into("#f-channels", "logs:faas").await;
    b.type_into("#f-q", "needle").await;
    b.click("#filters button[type=submit]").await;
    viewer::wait_lines(&b, 0).await;
    viewer::wait_status(&b, "live").await;
    let faas = |m: &str| at_level(json!({"service":"faas","logData":{"message":m}}), "error");
    let (s, _) = gw
        .publish_raw(
            "faas-token",
            "application/json",
            Value::Array(vec![faas("hay"), faas("a needle here")]).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    publish_one(
        &gw,
        at_level(event("etl", None, None, "needle, wrong service"), "error"),
    )
    .await;
    viewer::wait_last_line(&b, "a needle here").await;
    assert_eq!(viewer::messages(&b).await, ["a needle here"]);
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_protected_gateway_asks_for_a_token_and_keeps_it_out_of_the_address() {
    let gw = gateway(|c| c.auth.jwt_secret = Some(Secret::new(SECRET)));
    publish_one(&gw, event("etl", Some("ws1"), None, "for ws1")).await;
    let token = |ws: &str| {
        jwt::hs256(
            SECRET,
            &json!({"sub": "viewer", "exp": jwt::now() + 600, "workspaces": [ws]}),
        )
    };
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:*:ws1")).await;
    viewer::wait_status(&b, "error").await;
    assert!(viewer::is_shown(&b, "token-form").await);
    let why = viewer::text_of(&b, "token-why").await;
    assert!(why.contains("token"), "the 401's message is shown: {why:?}");
    b.screenshot(&artifact("token-form.png")).await;

    // A token that does not cover the view: its 403 is shown the same way.
    b.type_into("#token-input", &token("ws2")).await;
    b.click("#token-entry button[type=submit]").await;
    b.wait_for(
        "the 403's message",
        "return document.getElementById('token-why').textContent.includes('not granted') && !document.getElementById('token-form').hidden;",
    )
    .await;
    let why = viewer::text_of(&b, "token-why").await;
    assert!(why.contains("logs:*:ws1"), "{why}");

    b.type_into("#token-input", &token("ws1")).await;
    b.click("#token-entry button[type=submit]").await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["for ws1"]);
    assert!(!viewer::is_shown(&b, "token-form").await);
    publish_one(&gw, event("etl", Some("ws1"), None, "live for ws1")).await;
    viewer::wait_last_line(&b, "live for ws1").await;
    assert_no_script_errors(&mut b).await;
    b.close().await;

    // `&token=` is taken once and leaves the address bar.
    let mut b = Browser::launch().await;
    let jwt = token("ws1");
    b.open(&gw.url(&format!("/ui/?channels=logs:*:ws1&token={jwt}&level=info")))
        .await;
    viewer::wait_status(&b, "live").await;
    let url = b.url().await;
    assert!(!url.contains("token="), "{url}");
    assert!(url.contains("level=info"), "{url}");
    let kept = b
        .eval("return sessionStorage.getItem('loggate_token');")
        .await;
    assert_eq!(kept, jwt.as_str());
    assert_eq!(viewer::wait_lines(&b, 2).await.len(), 2);
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_static_auth_token_works_and_an_expired_jwt_asks_again() {
    let gw = gateway(|c| {
        c.auth.auth_token = Some(Secret::new("a-static-token-for-viewers"));
        c.auth.jwt_secret = Some(Secret::new(SECRET));
    });
    publish_one(&gw, event("etl", None, None, "hello")).await;
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl&token=a-static-token-for-viewers"))
        .await;
    viewer::wait_status(&b, "live").await;
    viewer::wait_lines(&b, 1).await;
    assert_clean_console(&mut b).await;

    // A JWT that expires while the stream is open.
    let short = jwt::hs256(
        SECRET,
        &json!({"exp": jwt::now() + 2, "channels": ["logs:etl"]}),
    );
    b.open(&gw.url(&format!("/ui/?channels=logs:etl&token={short}")))
        .await;
    viewer::wait_status(&b, "live").await;
    viewer::wait_status(&b, "error").await;
    let why = viewer::text_of(&b, "token-why").await;
    assert!(why.contains("expired"), "{why}");
    assert_no_script_errors(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn it_reconnects_after_the_gateway_restarts_and_shows_the_gap() {
    let port = process::free_port();
    let bin = env!("CARGO_BIN_EXE_loggate");
    let spawn = || {
        let mut cmd = process::base_command(bin);
        cmd.env("PORT", port.to_string())
            .env("CONNECT_RATE_PER_IP", "0")
            .env("PUBLISH_RATE_PER_SEC", "0");
        process::spawn(cmd)
    };
    let client = reqwest::Client::new();
    let publish = |proc: &process::Proc, m: &str| {
        let base = proc.url("");
        let body = event("etl", Some("ws1"), None, m).to_string();
        let client = client.clone();
        async move {
            let (s, v) = testkit::http::publish(
                &client,
                &base,
                ETL_TOKEN,
                "application/json",
                body,
                DEADLINE,
            )
            .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        }
    };
    let gw = spawn();
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl")).await;
    viewer::wait_status(&b, "live").await;
    publish(&gw, "before the restart").await;
    viewer::wait_lines(&b, 1).await;

    drop(gw);
    viewer::wait_status(&b, "reconnecting").await;
    viewer::wait_notice(&b, "Connection lost").await;
    let gw = spawn();
    viewer::wait_status(&b, "live").await;
    publish(&gw, "after the restart").await;
    viewer::wait_last_line(&b, "after the restart").await;

    // The notices sit where they happened: between the two lines.
    let entries = viewer::entries(&b).await;
    let kinds: Vec<String> = entries
        .iter()
        .map(|e| match e {
            Entry::Line(l) => format!("line: {}", l.message),
            Entry::Notice(_, text) if text.contains("Gap") => "gap".into(),
            Entry::Notice(_, text) if text.contains("Connection lost") => "lost".into(),
            Entry::Notice(_, text) if text.contains("Reconnected") => "reconnected".into(),
            Entry::Notice(_, text) => format!("other: {text}"),
        })
        .collect();
    let at = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("no {k}: {kinds:?}"))
    };
    assert_eq!(at("line: before the restart"), 0, "{kinds:?}");
    assert!(
        at("lost") < at("gap") && at("gap") < at("line: after the restart"),
        "{kinds:?}"
    );
    assert!(at("lost") < at("reconnected"), "{kinds:?}");
    let gap = viewer::wait_notice(&b, "Gap").await;
    assert!(gap.contains("the gateway restarted"), "{gap}");
    b.screenshot(&artifact("reconnected-with-gap.png")).await;
    assert_no_script_errors(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_full_gateway_is_retried_and_the_reason_shown() {
    let gw = gateway(|c| c.server.max_connections = 1);
    let holder = gw.subscribe("channels=logs:faas").await;
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl")).await;
    let status = viewer::wait_status(&b, "reconnecting").await;
    assert!(status.contains("gateway busy"), "{status}");
    let refused = viewer::wait_notice(&b, "Refused (503)").await;
    assert!(refused.contains("retrying"), "{refused}");
    drop(holder);
    gw.wait_for_registry("the holder gone", |s| s.sessions == 0)
        .await;
    viewer::wait_status(&b, "live").await;
    viewer::wait_notice(&b, "Reconnected").await;
    publish_one(&gw, event("etl", None, None, "through at last")).await;
    viewer::wait_last_line(&b, "through at last").await;
    assert_no_script_errors(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_fast_stream_keeps_the_ring_bound_and_the_page_usable() {
    const RATE: usize = 2000;
    const SECONDS: usize = 3;
    const MAX: usize = 1000;
    let gw = gateway(|_| {});
    let mut b = Browser::launch().await;
    b.open(&gw.url(&format!("/ui/?channels=logs:etl&max={MAX}")))
        .await;
    viewer::wait_status(&b, "live").await;
    // Count the frames the page renders during the burst.
    b.eval("window.__frames = 0; (function f() { window.__frames++; requestAnimationFrame(f); })(); return 1;")
        .await;

    let url = gw.url("");
    // The burst runs for at least SECONDS, and on until the page has been
    // paused and resumed: on a loaded machine the page may take most of the
    // three seconds to show its first 200 lines, and a burst that ended
    // before the pause would leave nothing to count as "new".
    let resumed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = resumed.clone();
    let burst = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut ids = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut rounds = 0;
        while rounds < SECONDS * 100 || !done.load(std::sync::atomic::Ordering::SeqCst) {
            let round = rounds;
            rounds += 1;
            tick.tick().await;
            let batch: Vec<Value> = (0..RATE / 100)
                .map(|i| event("etl", Some("ws1"), Some("job7"), &format!("fast {round}.{i} a line of ordinary length with a few fields user=alice took=12ms")))
                .collect();
            let (s, v) = testkit::http::publish(
                &client,
                &url,
                ETL_TOKEN,
                "application/json",
                Value::Array(batch).to_string(),
                WAIT,
            )
            .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            ids.extend(
                v["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_str().unwrap().to_owned()),
            );
        }
        (ids, rounds)
    });
    // While the lines pour in, the page still answers: it pauses, opens a
    // line, and goes live again.
    b.wait_for(
        "lines arriving",
        "return document.querySelectorAll('[data-testid=log-line]').length > 200;",
    )
    .await;
    b.click("#pause").await;
    viewer::wait_status(&b, "paused").await;
    b.wait_for(
        "new lines waiting",
        "return Number(document.getElementById('new-count').textContent) > 100;",
    )
    .await;
    b.click("[data-testid=log-line]:last-child").await;
    b.wait_for(
        "the detail panel",
        "return !document.getElementById('detail').hidden;",
    )
    .await;
    b.click("#live").await;
    viewer::wait_status(&b, "live").await;
    resumed.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ids, rounds) = burst.await.expect("burst");
    let frames = b.eval("return window.__frames;").await.as_u64().unwrap();
    let last = format!("fast {}.{} a line", rounds - 1, RATE / 100 - 1);
    b.wait_for(
        "the last line",
        &format!("const l = document.querySelectorAll('[data-testid=log-line]'); return l[l.length - 1].querySelector('.message').textContent.startsWith({});", Value::from(last)),
    )
    .await;
    let lines = viewer::lines(&b).await;
    assert_eq!(lines.len(), MAX, "the ring keeps at most max lines");
    assert_eq!(
        ids_of(&lines),
        ids[ids.len() - MAX..],
        "the newest, in order, none lost"
    );
    assert!(
        viewer::notices(&b).await.is_empty(),
        "no lag: the page kept up"
    );
    let rate = viewer::text_of(&b, "rate").await;
    let per_second: f64 = rate.split_whitespace().next().unwrap().parse().unwrap();
    assert!(per_second > 0.0, "{rate}");
    // Not a timing: a page that froze under the stream renders a handful
    // of frames in three seconds, a working one about 180.
    assert!(
        frames >= 30,
        "only {frames} frames rendered during the burst"
    );
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn older_lines_page_back_and_the_download_has_the_whole_view() {
    let gw = gateway(|_| {});
    let mut ids = Vec::new();
    for part in 0..3 {
        let batch = (0..400)
            .map(|i| event("etl", Some("ws1"), None, &format!("n{}", part * 400 + i)))
            .collect();
        ids.extend(publish(&gw, batch).await);
    }
    publish_one(&gw, event("etl", Some("ws2"), None, "not in the view")).await;
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl:ws1")).await;
    viewer::wait_status(&b, "live").await;
    let shown = viewer::wait_lines(&b, 500).await;
    assert_eq!(shown[0], "n700");
    assert!(viewer::is_shown(&b, "load-older").await);

    b.click("#load-older").await;
    assert_eq!(viewer::wait_lines(&b, 1000).await[0], "n200");
    b.click("#load-older").await;
    let all = viewer::wait_lines(&b, 1200).await;
    assert_eq!(all[0], "n0");
    assert_eq!(ids_of(&viewer::lines(&b).await), ids);
    b.wait_for(
        "no more to load",
        "return document.getElementById('load-older').hidden;",
    )
    .await;

    b.click("#download").await;
    let file = b.downloads().join("loggate-logs_etl_ws1.ndjson");
    b.wait_for(
        "the download",
        "return !document.getElementById('download').disabled;",
    )
    .await;
    let deadline = std::time::Instant::now() + DEADLINE;
    while !file.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "no {}",
            file.display()
        );
        tokio::time::sleep(POLL).await;
    }
    let text = std::fs::read_to_string(&file).expect("read the download");
    let downloaded: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("NDJSON")["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(downloaded, ids, "the view's whole history, oldest first");
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn the_gateway_panel_shows_connections_channels_and_services() {
    let gw = gateway(|c| c.auth.admin_token = Some(Secret::new(ADMIN)));
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl:ws1")).await;
    viewer::wait_status(&b, "live").await;
    publish(
        &gw,
        (0..5)
            .map(|i| event("etl", Some("ws1"), None, &format!("e{i}")))
            .collect(),
    )
    .await;
    viewer::wait_lines(&b, 5).await;

    b.click("#admin-open").await;
    b.wait_for(
        "the admin token form",
        "return !document.getElementById('admin-entry').hidden;",
    )
    .await;
    b.type_into("#admin-input", "not the admin token").await;
    b.click("#admin-entry button[type=submit]").await;
    b.wait_for(
        "the 401's message",
        "return document.getElementById('admin-why').textContent.includes('ADMIN_TOKEN');",
    )
    .await;
    b.type_into("#admin-input", ADMIN).await;
    b.click("#admin-entry button[type=submit]").await;
    b.wait_for(
        "the tables",
        "return !!document.querySelector('[data-testid=admin-services]');",
    )
    .await;
    let rows = |table: &str| {
        format!(
            "return [...document.querySelectorAll('[data-testid={table}] tr')].slice(1).map(r => [...r.children].map(c => c.textContent));"
        )
    };
    let connections = b.eval(&rows("admin-connections")).await;
    assert_eq!(connections[0], json!(["SSE", "1"]), "{connections}");
    let channels = b.eval(&rows("admin-channels")).await;
    assert_eq!(channels[0], json!(["logs:etl:ws1", "1"]), "{channels}");
    let services = b.eval(&rows("admin-services")).await;
    let etl = services
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "etl")
        .unwrap_or_else(|| panic!("{services}"));
    assert_eq!(
        (&etl[1], &etl[3], &etl[5]),
        (&json!("5"), &json!("5"), &json!("0"))
    );
    // It follows the gateway: a rate appears on the next poll.
    publish(
        &gw,
        (0..4)
            .map(|i| event("etl", Some("ws1"), None, &format!("f{i}")))
            .collect(),
    )
    .await;
    b.wait_for(
        "the new count",
        &format!(
            "{} return r.find(x => x[0] === 'etl')[1] === '9';",
            rows("admin-services").replace("return ", "const r = ")
        ),
    )
    .await;
    b.screenshot(&artifact("gateway-panel.png")).await;
    assert_no_script_errors(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn it_works_behind_a_path_prefix() {
    let gw = gateway(|_| {});
    publish_one(&gw, event("etl", None, None, "through the proxy")).await;
    let proxy = PrefixProxy::start(gw.running.addr, "/logs").await;
    let mut b = Browser::launch().await;
    b.open(&proxy.url("/logs/")).await;
    b.wait_for("the viewer", "return location.pathname === '/logs/ui/';")
        .await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["through the proxy"]);
    publish_one(&gw, event("etl", None, None, "live through the proxy")).await;
    viewer::wait_last_line(&b, "live through the proxy").await;
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_headers() {
    let gw = gateway(|_| {});
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/ui"] {
        let res = client.get(gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{path}");
        assert_eq!(
            res.headers()["location"],
            "ui/",
            "relative, for path prefixes"
        );
    }
    let page = client.get(gw.url("/ui/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-cache");
    let tag = h["etag"].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-testid="log-list""#));
    let again = client
        .get(gw.url("/ui/"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    for (file, kind) in [
        ("main.js", "text/javascript; charset=utf-8"),
        ("list.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let res = client
            .get(gw.url(&format!("/ui/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{file}");
        assert_eq!(res.headers()["content-type"], kind, "{file}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }
    let (status, body) = gw.get_json("/ui/../Cargo.toml").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = gw.get_json("/ui/secrets.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let res = client.post(gw.url("/ui/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn each_level_has_its_colour_and_the_main_view_is_saved() {
    let gw = gateway(|_| {});
    let lines = [
        (
            "info",
            "job7",
            "extract started: source=orders_db tables=14",
        ),
        ("debug", "job7", "connection pool ready (size=8, idle=8)"),
        ("info", "job7", "orders: 12,480 rows read in 1.84s"),
        (
            "warn",
            "job7",
            "customers: slow query took 4210ms (threshold 2000ms)",
        ),
        ("info", "job8", "transform step 2/5: dedupe by customer_id"),
        (
            "error",
            "job8",
            "upstream timeout after 30s: GET https://crm.internal/api/contacts",
        ),
        ("info", "job8", "retrying in 2s (attempt 2 of 5)"),
        ("info", "job8", "contacts: 3,902 rows read in 2.10s"),
        ("trace", "job8", "batch 17 flushed: 500 rows, 212 KiB"),
        (
            "fatal",
            "job9",
            "load failed: disk quota exceeded on /var/lib/warehouse",
        ),
        (
            "info",
            "job7",
            "load complete: 16,382 rows written, took 9.4s",
        ),
    ];
    let mut events = Vec::new();
    for (level, job, message) in lines {
        let mut e = at_level(event("etl", Some("ws1"), Some(job), message), level);
        e["logData"]["meta"] = json!({"region": "fra", "attempt": 1});
        events.push(e);
    }
    let ids = publish(&gw, events).await;
    let mut b = Browser::launch().await;
    b.open(&gw.url(&format!("/ui/?channels=logs:etl:ws1&sel={}", ids[5])))
        .await;
    viewer::wait_status(&b, "live").await;
    viewer::wait_lines(&b, lines.len()).await;
    let colours = b
        .eval("return [...document.querySelectorAll('[data-testid=log-line]')].map(l => [l.dataset.level, getComputedStyle(l.querySelector('.level')).color]);")
        .await;
    let mut by_level = std::collections::BTreeMap::new();
    for pair in colours.as_array().unwrap() {
        by_level.insert(
            pair[0].as_str().unwrap().to_owned(),
            pair[1].as_str().unwrap().to_owned(),
        );
    }
    assert_eq!(by_level.len(), 6, "{by_level:?}");
    let distinct: std::collections::BTreeSet<_> = by_level.values().collect();
    assert_eq!(distinct.len(), 6, "each level its own colour: {by_level:?}");
    assert!(viewer::is_shown(&b, "detail").await);
    b.screenshot(&artifact("main-view.png")).await;
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn lines_the_gateway_dropped_for_a_slow_view_are_reported_where_they_were() {
    // A queue of 16 events per subscriber: one batch of 500 overflows it
    // before the page can read, as a slow network would.
    let gw = gateway(|c| {
        c.subscribe.queue_max_events = 16;
    });
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl")).await;
    viewer::wait_status(&b, "live").await;
    publish_one(&gw, event("etl", None, None, "before")).await;
    viewer::wait_lines(&b, 1).await;
    let batch = (0..500)
        .map(|i| event("etl", None, None, &format!("burst {i}")))
        .collect();
    publish(&gw, batch).await;
    viewer::wait_last_line(&b, "burst 499").await;
    let lag = viewer::wait_notice(&b, "Lag:").await;
    assert!(lag.contains("dropped"), "{lag}");
    let entries = viewer::entries(&b).await;
    let lag_at = entries
        .iter()
        .position(|e| matches!(e, Entry::Notice(_, t) if t.contains("Lag:")))
        .unwrap();
    assert!(
        matches!(&entries[0], Entry::Line(l) if l.message == "before") && lag_at > 0,
        "the notice sits after the lines before the loss: {entries:?}"
    );
    let shown = viewer::lines(&b).await.len();
    assert!(
        shown < 501,
        "some lines were dropped, and said so ({shown} shown)"
    );
    assert_clean_console(&mut b).await;
    b.close().await;
}

/// What a publisher could try on a viewer: markup, and the control
/// characters a terminal would obey (ESC sequences, C1 CSI, a CR or
/// backspace that overwrites, line separators). The page sets text as
/// text: each shows as the characters it is, in the list and in the
/// line's JSON, no element is made of it, and no script of it runs.
#[tokio::test]
async fn markup_and_control_characters_show_as_text_and_nothing_runs() {
    let gw = gateway(|_| {});
    let hostile = [
        r#"<img src=x onerror="window.__owned = 1">"#,
        "<script>window.__owned = 2</script>",
        r#"</span><b id="forged">bold</b><a href="javascript:window.__owned=3">x</a>"#,
        "title \x1b]0;owned\x07 clear \x1b[2J clipboard \x1b]52;c;eA==\x07",
        "c1 csi \u{9b}2J osc \u{9d}0;t\u{9c} nel \u{85}",
        "return\roverwrite back\x08\x08 del \x7f",
        "separators \u{2028} \u{2029} & &amp; &lt;",
    ];
    let events: Vec<Value> = hostile
        .iter()
        .map(|m| event("etl", Some("ws1"), None, m))
        .collect();
    publish(&gw, events[..4].to_vec()).await;
    let mut with_meta = events[4].clone();
    with_meta["logData"]["meta"] =
        json!({"<b>k</b>\u{9b}": "<img src=x onerror=\"window.__owned=4\">"});
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl:ws1")).await;
    viewer::wait_status(&b, "live").await;
    // History, then live.
    let live = publish(&gw, vec![with_meta, events[5].clone(), events[6].clone()]).await;
    assert_eq!(viewer::wait_lines(&b, hostile.len()).await, hostile);

    let made = b
        .eval(
            "const list = document.querySelector('[data-testid=log-list]');
             return { owned: window.__owned === undefined ? null : window.__owned,
                      elements: list.querySelectorAll('img, script, b, a, #forged').length };",
        )
        .await;
    assert_eq!(made, json!({"owned": null, "elements": 0}));

    viewer::click_line(&b, &live[0]).await;
    b.wait_for(
        "the detail panel",
        "return !document.getElementById('detail').hidden;",
    )
    .await;
    let shown: Value = serde_json::from_str(&viewer::text_of(&b, "detail-json").await).unwrap();
    assert_eq!(shown["message"], hostile[4]);
    assert_eq!(
        shown["meta"],
        json!({"<b>k</b>\u{9b}": "<img src=x onerror=\"window.__owned=4\">"})
    );
    let owned = b
        .eval(
            "return [window.__owned === undefined,
                     document.querySelectorAll('#detail img, #detail script, #detail b, #forged').length];",
        )
        .await;
    assert_eq!(owned, json!([true, 0]));
    assert_no_script_errors(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn the_channel_box_offers_the_channels_that_exist_and_picking_one_switches() {
    let gw = gateway(|_| {});
    publish(
        &gw,
        vec![
            event("etl", Some("ws1"), None, "one"),
            event("etl", Some("ws2"), None, "two"),
            event("etl", Some("wx"), None, "x"),
        ],
    )
    .await;
    let (s, _) = gw
        .publish_raw(
            "faas-token",
            "application/json",
            event("faas", Some("ws1"), None, "three").to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // A channel someone watches by name, with no history.
    let _watching = gw.subscribe("channels=logs:etl:wz").await;

    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:*")).await;
    viewer::wait_status(&b, "live").await;
    viewer::wait_lines(&b, 4).await;

    b.type_into("#f-channels", "logs:etl:w").await;
    viewer::wait_channel_options(
        &b,
        &["logs:etl:ws1", "logs:etl:ws2", "logs:etl:wx", "logs:etl:wz"],
    )
    .await;
    let ws1 = viewer::channel_option_text(&b, "logs:etl:ws1").await;
    assert!(
        ws1.starts_with("logs:etl:ws1") && ws1.contains("1 event") && ws1.contains("newest"),
        "{ws1}"
    );
    let wz = viewer::channel_option_text(&b, "logs:etl:wz").await;
    assert!(
        wz.contains("0 events") && wz.contains("1 watching") && !wz.contains("newest"),
        "{wz}"
    );
    b.screenshot(&artifact("channel-box.png")).await;
    // Typing narrows what is offered.
    viewer::press(&b, "#f-channels", "s").await;
    viewer::wait_channel_options(&b, &["logs:etl:ws1", "logs:etl:ws2"]).await;

    // A click picks one, and the view switches to it.
    b.click("[data-testid=channel-option][data-channel=\"logs:etl:ws2\"]")
        .await;
    b.wait_for(
        "the view of logs:etl:ws2",
        "return new URLSearchParams(location.search).get('channels') === 'logs:etl:ws2';",
    )
    .await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["two"]);
    assert!(
        viewer::channel_options(&b).await.is_empty(),
        "the list closed"
    );
    publish_one(&gw, event("etl", Some("ws2"), None, "two, live")).await;
    viewer::wait_last_line(&b, "two, live").await;

    // So do the arrow keys and Enter; only the last of several channels
    // is completed.
    b.type_into("#f-channels", "logs:etl:wx,logs:fa").await;
    viewer::wait_channel_options(&b, &["logs:faas:ws1"]).await;
    viewer::press(&b, "#f-channels", "\u{E015}\u{E007}").await;
    b.wait_for(
        "the view of two channels",
        "return new URLSearchParams(location.search).get('channels') === 'logs:etl:wx,logs:faas:ws1';",
    )
    .await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 2).await, ["x", "three"]);

    // Escape closes the list; nothing matching, nothing offered.
    b.type_into("#f-channels", "logs:").await;
    viewer::wait_channel_options(
        &b,
        &[
            "logs:etl:ws1",
            "logs:etl:ws2",
            "logs:etl:wx",
            "logs:etl:wz",
            "logs:faas:ws1",
        ],
    )
    .await;
    viewer::press(&b, "#f-channels", "\u{E00C}").await;
    viewer::wait_channel_options(&b, &[]).await;
    b.type_into("#f-channels", "logs:nothing").await;
    b.wait_for(
        "the lookup of logs:nothing",
        "return document.querySelector('[data-testid=channel-options]').dataset.term === 'logs:nothing';",
    )
    .await;
    assert!(viewer::channel_options(&b).await.is_empty());
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn the_channel_box_offers_only_what_the_token_may_read() {
    let gw = gateway(|c| c.auth.jwt_secret = Some(Secret::new(SECRET)));
    publish(
        &gw,
        vec![
            event("etl", Some("wsA"), None, "mine"),
            event("etl", Some("wsA"), Some("job1"), "mine too"),
            event("etl", Some("wsB"), None, "theirs"),
        ],
    )
    .await;
    let jwt = jwt::hs256(
        SECRET,
        &json!({"exp": jwt::now() + 600, "workspaces": ["wsA"]}),
    );
    let mut b = Browser::launch().await;
    b.open(&gw.url(&format!("/ui/?channels=logs:*:wsA&token={jwt}")))
        .await;
    viewer::wait_status(&b, "live").await;
    b.type_into("#f-channels", "logs:").await;
    viewer::wait_channel_options(&b, &["logs:etl:wsA", "logs:etl:wsA:job1"]).await;
    b.type_into("#f-channels", "logs:etl:ws").await;
    viewer::wait_channel_options(&b, &["logs:etl:wsA", "logs:etl:wsA:job1"]).await;
    b.click("[data-testid=channel-option][data-channel=\"logs:etl:wsA:job1\"]")
        .await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["mine too"]);
    assert_clean_console(&mut b).await;
    b.close().await;
}
