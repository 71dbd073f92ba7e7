//! What a line shows: the view in the address, times, a line's JSON and its
//! filters, paging back and the download, level colours, and publisher
//! text that stays text.

use serde_json::{Value, json};
use testkit::browser::Browser;
use testkit::viewer::{self};
use testkit::*;

use super::*;

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
