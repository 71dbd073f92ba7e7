//! The live view: history then live with no seam, pausing, filters on the
//! stream, reconnects after a restart, a full gateway, the ring bound under
//! a fast stream, and lag shown where it happened.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::browser::Browser;
use testkit::viewer::{self, Entry};
use testkit::*;

use super::*;

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
