//! Which channels exist: `GET /api/logs/channels` over real sockets (events,
//! newest times and subscribers; paging with a cursor, each channel once;
//! patterns and hierarchy; tenants' grants, open mode and `AUTH_TOKEN`;
//! refusals), and `loggate channels`, run as the real binary (table, JSON,
//! every page, exit codes, and no control character from a hostile server
//! on the terminal).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use loggate::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::jwt::{self, now};
use testkit::*;
use tokio::process::Command;

const SECRET: &str = "channels-test-secret-0123456789abcdef";
const ALL: &str = "channels-test-auth-token-0123456789";
const LIMIT: Duration = Duration::from_secs(60);

/// A gateway without rate limits (the tests page fast).
fn open_gateway() -> InProcessGateway {
    start_with(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.connect_rate_per_ip = 0;
        c.limits.history_rate_per_ip = 0;
    })
}

/// The same, with JWTs (`SECRET`) and a static `AUTH_TOKEN` (`ALL`).
fn secured() -> InProcessGateway {
    start_with(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.connect_rate_per_ip = 0;
        c.limits.history_rate_per_ip = 0;
        c.auth.jwt_secret = Some(Secret::new(SECRET));
        c.auth.auth_token = Some(Secret::new(ALL));
    })
}

fn token(claims: Value) -> String {
    let mut claims = claims;
    claims["exp"] = json!(now() + 600);
    jwt::hs256(SECRET, &claims)
}

async fn publish_as(gw: &InProcessGateway, service_token: &str, events: Vec<Value>) -> Value {
    let (status, v) = gw
        .publish_raw(
            service_token,
            "application/json",
            Value::Array(events).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    v
}

async fn publish(gw: &InProcessGateway, events: Vec<Value>) -> Value {
    publish_as(gw, ETL_TOKEN, events).await
}

/// `GET /api/logs/channels?{query}` with `token` (if any): status and body.
async fn list(gw: &InProcessGateway, query: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = gw
        .client
        .get(gw.url(&format!("/api/logs/channels?{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("answered in time")
        .expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body)
}

/// Every page, following `next_cursor`: the rows in order, and the
/// number of pages.
async fn list_all(gw: &InProcessGateway, query: &str, token: Option<&str>) -> (Vec<Value>, usize) {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..=1000 {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let (status, body) = list(gw, &q, token).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        rows.extend(body["channels"].as_array().expect("channels").clone());
        match body["next_cursor"].as_str() {
            Some(next) => {
                assert_ne!(cursor.as_deref(), Some(next), "the cursor moves on");
                cursor = Some(next.to_owned());
            }
            None => {
                assert!(body["next_cursor"].is_null(), "{body}");
                return (rows, pages);
            }
        }
    }
    panic!("more than 1000 pages");
}

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["channel"].as_str().expect("a name").to_owned())
        .collect()
}

async fn listed(gw: &InProcessGateway, query: &str, token: Option<&str>) -> Vec<String> {
    names(&list_all(gw, query, token).await.0)
}

/// Subscribes to `channels` (SSE, open mode or with `token`).
async fn subscribe(gw: &InProcessGateway, channels: &str, token: Option<&str>) -> SseClient {
    let mut req =
        testkit::sse::stream_client().get(gw.url(&format!("/api/logs/stream?channels={channels}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    SseClient::open(req, WAIT).await
}

/// Polls the listing until `check` holds on its rows.
async fn wait_listing(gw: &InProcessGateway, what: &str, check: impl Fn(&[Value]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (rows, _) = list_all(gw, "", None).await;
        if check(&rows) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn channels_are_listed_with_events_newest_time_and_subscribers() {
    let gw = open_gateway();
    publish(
        &gw,
        vec![
            event("etl", Some("ws1"), None, "a"),
            event("etl", Some("ws1"), None, "b"),
            event("etl", Some("ws1"), Some("job7"), "c"),
        ],
    )
    .await;
    publish_as(
        &gw,
        "faas-token",
        vec![event("faas", Some("ws2"), None, "d")],
    )
    .await;
    // Two sessions on logs:etl:ws1 by name, one on a pattern (which names
    // no channel), and one on a channel that holds no history yet.
    let _a = subscribe(&gw, "logs:etl:ws1", None).await;
    let _b = subscribe(&gw, "logs:etl:ws1,logs:*:ws2", None).await;
    let quiet = subscribe(&gw, "logs:analytics:ws9", None).await;

    let (status, body) = list(&gw, "", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["next_cursor"], Value::Null);
    // The newest times are the received_at of each channel's last event.
    let (_, history) = gw
        .get_json("/api/logs/history?channels=logs:*&limit=1000")
        .await;
    let newest = |channel: &str| {
        history["logs"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|e| e["channel"] == channel)
            .map(|e| e["received_at"].clone())
            .unwrap_or(Value::Null)
    };
    let row = |channel: &str, events: u64, subscribers: u64| {
        json!({"channel": channel, "events": events, "newest": newest(channel),
               "subscribers": subscribers})
    };
    assert_eq!(
        body["channels"],
        json!([
            row("logs:analytics:ws9", 0, 1),
            row("logs:etl:ws1", 2, 2),
            row("logs:etl:ws1:job7", 1, 0),
            row("logs:faas:ws2", 1, 0),
        ])
    );
    assert!(body["channels"][1]["newest"].is_string());
    assert_eq!(body["channels"][0]["newest"], Value::Null);
    let res = gw
        .client
        .get(gw.url("/api/logs/channels"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    // A channel that only had a subscriber goes when the subscriber does.
    drop(quiet);
    wait_listing(&gw, "the quiet channel to go", |rows| {
        !names(rows).contains(&"logs:analytics:ws9".to_owned())
    })
    .await;
}

/// The listing's (channel, subscribers) pairs.
fn watched(rows: &[Value]) -> Vec<(String, u64)> {
    rows.iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap_or_default().to_owned(),
                r["subscribers"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn websocket_subscriptions_are_counted_as_they_change() {
    let gw = open_gateway();
    let w = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    };
    let mut ws = testkit::ws::connect(&gw, "channels=logs:etl:ws1").await;
    testkit::ws::next_json(&mut ws).await;
    let want = w(&[("logs:etl:ws1", 1)]);
    wait_listing(&gw, "ws1 watched", |rows| watched(rows) == want).await;

    testkit::ws::send(
        &mut ws,
        json!({"type":"subscribe","channels":["logs:faas"]}),
    )
    .await;
    testkit::ws::next_json(&mut ws).await;
    let want = w(&[("logs:etl:ws1", 1), ("logs:faas", 1)]);
    wait_listing(&gw, "faas watched too", |rows| watched(rows) == want).await;

    testkit::ws::send(
        &mut ws,
        json!({"type":"unsubscribe","channels":["logs:etl:ws1"]}),
    )
    .await;
    testkit::ws::next_json(&mut ws).await;
    let want = w(&[("logs:faas", 1)]);
    wait_listing(&gw, "ws1 left", |rows| watched(rows) == want).await;

    drop(ws);
    wait_listing(&gw, "nobody left", |rows| rows.is_empty()).await;
}

#[tokio::test]
async fn pages_follow_the_cursor_through_every_channel_once() {
    let gw = open_gateway();
    let mut want = BTreeSet::new();
    let events: Vec<Value> = (0..250)
        .map(|i| {
            let r = format!("r{i:03}");
            want.insert(format!("logs:etl:ws1:{r}"));
            event("etl", Some("ws1"), Some(&r), "m")
        })
        .collect();
    publish(&gw, events).await;
    let _s = subscribe(&gw, "logs:etl:ws0", None).await;
    want.insert("logs:etl:ws0".to_owned());

    for (query, pages) in [("limit=7", 36), ("", 3), ("limit=1000", 1)] {
        let (rows, n) = list_all(&gw, query, None).await;
        let got = names(&rows);
        assert_eq!(got.len(), 251, "{query}: each once");
        assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
        assert_eq!(got[0], "logs:etl:ws0", "{query}: in order");
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "{query}: in order");
        assert_eq!(n, pages, "{query}");
    }
    // A full page says where the next begins.
    let (_, body) = list(&gw, "limit=2", None).await;
    assert_eq!(body["next_cursor"], "logs:etl:ws1:r000");
    // Channels published after a cursor are found after it.
    publish(&gw, vec![event("etl", Some("ws1"), Some("r999"), "m")]).await;
    let (_, body) = list(&gw, "cursor=logs:etl:ws1:r249", None).await;
    assert_eq!(
        names(body["channels"].as_array().unwrap()),
        ["logs:etl:ws1:r999"]
    );
}

#[tokio::test]
async fn a_page_stops_after_its_budget_and_the_cursor_goes_on() {
    // 12,000 workspaces, each with a channel that `logs:etl:*:job7` does
    // not reach: a page looks at no more than its budget of them, answers
    // (maybe with nothing) and hands back a cursor; the pages together
    // list each match once.
    let gw = open_gateway();
    for batch in 0..12 {
        let events: Vec<Value> = (0..1000)
            .map(|i| {
                let ws = format!("w{:05}", batch * 1000 + i);
                let res = if i % 500 == 0 { "job7" } else { "other" };
                event("etl", Some(&ws), Some(res), "m")
            })
            .collect();
        publish(&gw, events).await;
    }
    let (rows, pages) = list_all(&gw, "pattern=logs:etl:*:job7", None).await;
    let want: Vec<String> = (0..24)
        .map(|k| format!("logs:etl:w{:05}:job7", k * 500))
        .collect();
    assert_eq!(names(&rows), want);
    assert!(
        pages >= 2,
        "12,000 workspaces take more than one page's budget"
    );
    let (status, first) = list(&gw, "pattern=logs:etl:*:job7", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(first["next_cursor"].is_string(), "{first}");
}

#[tokio::test]
async fn a_pattern_lists_its_channels_and_everything_below_them() {
    let gw = open_gateway();
    publish(
        &gw,
        vec![
            event("etl", None, None, "a"),
            event("etl", Some("ws1"), None, "b"),
            event("etl", Some("ws1"), Some("job7"), "c"),
            event("etl", Some("ws2"), None, "d"),
        ],
    )
    .await;
    publish_as(
        &gw,
        "faas-token",
        vec![
            event("faas", Some("ws1"), None, "e"),
            event("faas", Some("ws1-x"), None, "f"),
        ],
    )
    .await;
    publish_as(
        &gw,
        "function-token",
        vec![event("function", None, None, "g")],
    )
    .await;
    for (pattern, want) in [
        (
            "logs:etl",
            &[
                "logs:etl",
                "logs:etl:ws1",
                "logs:etl:ws1:job7",
                "logs:etl:ws2",
            ][..],
        ),
        (
            "logs:*:ws1",
            &["logs:etl:ws1", "logs:etl:ws1:job7", "logs:faas:ws1"][..],
        ),
        ("logs:etl:ws1:job7", &["logs:etl:ws1:job7"][..]),
        ("logs:*:*:job7", &["logs:etl:ws1:job7"][..]),
        ("logs:nope", &[][..]),
    ] {
        assert_eq!(
            listed(&gw, &format!("pattern={pattern}"), None).await,
            want,
            "{pattern}"
        );
    }
    // Without a pattern, open mode lists everything.
    assert_eq!(listed(&gw, "", None).await.len(), 7);
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_channels() {
    let gw = secured();
    publish(
        &gw,
        vec![
            event("etl", Some("wsA"), None, "a"),
            event("etl", Some("wsA"), Some("job1"), "a"),
        ],
    )
    .await;
    publish(
        &gw,
        (0..300)
            .map(|i| event("etl", Some("wsB"), Some(&format!("secret{i}")), "b"))
            .collect(),
    )
    .await;
    let a = token(json!({"workspaces": ["wsA"]}));
    let b = token(json!({"workspaces": ["wsB"]}));
    let c = token(json!({"workspaces": ["wsC"]}));
    // B watches its channel by name; A must not learn of it.
    let _watch = subscribe(&gw, "logs:faas:wsB", Some(&b)).await;

    let (rows, pages) = list_all(&gw, "limit=1", Some(&a)).await;
    assert_eq!(names(&rows), ["logs:etl:wsA", "logs:etl:wsA:job1"]);
    assert_eq!(pages, 2);
    // Not in a row, a count or a cursor: nothing of B in any answer of A.
    for query in [
        "",
        "limit=1",
        "cursor=logs:etl:wsA",
        "cursor=logs:etl:wsB:secret1",
        "pattern=logs:*:wsA",
    ] {
        let (status, body) = list(&gw, query, Some(&a)).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert!(!body.to_string().contains("wsB"), "{query}: {body}");
    }
    // A tenant with no channels gets an empty last page, whatever the
    // others hold.
    let (status, body) = list(&gw, "", Some(&c)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"channels": [], "next_cursor": null}));
    // B sees its own, subscriber-only channel included.
    let b_names = listed(&gw, "limit=1000", Some(&b)).await;
    assert_eq!(b_names.len(), 301);
    assert!(b_names.contains(&"logs:faas:wsB".to_owned()));
    assert!(b_names.iter().all(|n| n.contains(":wsB")));

    // A pattern outside the grants is refused as a subscription is.
    for pattern in ["logs:*:wsB", "logs:etl", "logs:*", "logs:etl:*"] {
        let (status, body) = list(&gw, &format!("pattern={pattern}"), Some(&a)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{pattern}: {body}");
        assert_eq!(body["error"]["code"], "forbidden_channel");
    }
    // A token's channel claim reaches that channel and what is below it.
    let one = token(json!({"channels": ["logs:etl:wsB:secret7"]}));
    assert_eq!(listed(&gw, "", Some(&one)).await, ["logs:etl:wsB:secret7"]);
    // AUTH_TOKEN reads everything; no token, or a forged one, nothing.
    assert_eq!(listed(&gw, "limit=1000", Some(ALL)).await.len(), 303);
    let (status, body) = list(&gw, "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "missing_token");
    let forged = jwt::hs256(
        "another-secret-another-secret-0000",
        &json!({"exp": now() + 600, "workspaces": ["wsB"]}),
    );
    let (status, body) = list(&gw, "", Some(&forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_token");
    // The token may come in the query, as for history.
    let (status, body) = list(&gw, &format!("token={a}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["channels"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn bad_parameters_are_refused_with_their_codes() {
    let app = in_process_with(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.connect_rate_per_ip = 0;
        c.limits.history_rate_per_ip = 0;
    })
    .await;
    let (status, answer) = app
        .publish(&Value::Array(vec![event("etl", Some("ws1"), None, "a")]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    for (query, code) in [
        ("limit=0", "invalid_query"),
        ("limit=1001", "invalid_query"),
        ("limit=ten", "invalid_query"),
        ("limit=-1", "invalid_query"),
        ("cursor=nope", "invalid_cursor"),
        ("cursor=logs:*", "invalid_cursor"),
        ("cursor=logs:etl:a.b", "invalid_cursor"),
        ("pattern=logs:et.l", "invalid_channel"),
        ("pattern=etl", "invalid_channel"),
        ("pattern=logs:a:b:c:d", "invalid_channel"),
        ("channels=logs:etl", "invalid_query"),
    ] {
        let (status, body) = app.get_json(&format!("/api/logs/channels?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        assert!(body["error"]["message"].is_string(), "{query}: {body}");
    }
    let res = app.post("/api/logs/channels", &[], "").await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn listing_shares_the_history_rate_limit_per_address() {
    let gw = start_with(|c| c.limits.history_rate_per_ip = 1);
    let mut codes = Vec::new();
    for _ in 0..5 {
        let res = gw
            .client
            .get(gw.url("/api/logs/channels"))
            .send()
            .await
            .unwrap();
        codes.push(res.status().as_u16());
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers().contains_key("retry-after"));
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(&codes[..2], [200, 200], "a burst of two");
    assert!(codes.contains(&429), "{codes:?}");
}

// ---- loggate channels, the real binary ----

fn channels_cmd(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loggate"));
    cmd.arg("channels")
        .args(["--url", url])
        .args(args)
        .env_remove("LOGGATE_URL")
        .env_remove("LOGGATE_TOKEN")
        .env_remove("LOGGATE_PROFILE")
        .env("LOGGATE_CLI_CONFIG", "/nonexistent/cli.toml")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn run(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(LIMIT, channels_cmd(url, args).output())
        .await
        .expect("ends in time")
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_prints_a_table_or_json_and_reads_every_page() {
    let gw = open_gateway();
    publish(
        &gw,
        vec![
            event("etl", Some("ws1"), None, "a"),
            event("etl", Some("ws1"), None, "b"),
        ],
    )
    .await;
    let _s = subscribe(&gw, "logs:faas:ws1", None).await;
    let (_, history) = gw.get_json("/api/logs/history?channels=logs:etl:ws1").await;
    let newest = history["logs"][1]["received_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = gw.url("");

    let (code, out, err) = run(&url, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let table: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        table,
        [
            vec!["CHANNEL", "EVENTS", "NEWEST", "SUBSCRIBERS"],
            vec!["logs:etl:ws1", "2", &newest, "0"],
            vec!["logs:faas:ws1", "0", "-", "1"],
        ]
    );
    let (code, out, _) = run(&url, &["logs:faas", "-o", "json"]).await;
    assert_eq!(code, Some(0));
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows,
        [json!({"channel": "logs:faas:ws1", "events": 0, "newest": null, "subscribers": 1})]
    );
    let (code, out, err) = run(&url, &["logs:nope"]).await;
    assert_eq!((code, out.as_str()), (Some(0), ""));
    assert!(err.contains("no channels"), "{err}");

    // More than one page of the gateway's (1,000 a page).
    let events: Vec<Value> = (0..1500)
        .map(|i| event("etl", Some("ws2"), Some(&format!("r{i:04}")), "m"))
        .collect();
    publish(&gw, events[..1000].to_vec()).await;
    publish(&gw, events[1000..].to_vec()).await;
    let (code, out, err) = run(&url, &["logs:etl:ws2", "-o", "json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let got: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["channel"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let want: Vec<String> = (0..1500).map(|i| format!("logs:etl:ws2:r{i:04}")).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn the_cli_exit_codes_are_those_of_tail() {
    let gw = secured();
    publish(&gw, vec![event("etl", Some("ws1"), None, "a")]).await;
    let url = gw.url("");
    let a = token(json!({"workspaces": ["ws1"]}));
    let (code, out, err) = run(&url, &["--token", &a]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("logs:etl:ws1"), "{out}");
    for (args, want, said) in [
        (&["bad.x"][..], 2, "logs:"),
        (&["-o", "yaml"][..], 2, "yaml"),
        (&[][..], 3, "401"),
        (&["--token", "forged.jwt.value"][..], 3, "401"),
        (&["logs:*:ws2", "--token", &a][..], 3, "forbidden_channel"),
    ] {
        let (code, _, err) = run(&url, args).await;
        assert_eq!(code, Some(want), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
    let closed = format!("http://127.0.0.1:{}", process::free_port());
    let (code, _, err) = run(&closed, &["--retry-for", "1s"]).await;
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("cannot reach"), "{err}");
}

/// A server that answers `/api/logs/channels` with `body` (status 200)
/// or, for `status` other than 200, as a refusal.
async fn fake_gateway(status: u16, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_hostile_server_gets_no_control_character_onto_the_terminal() {
    let url = fake_gateway(
        200,
        r#"{"channels":[{"channel":"logs:etl","events":1,"newest":"\u001b]0;owned\u0007","subscribers":0}],"next_cursor":null}"#,
    )
    .await;
    let (code, out, err) = run(&url, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("\\u{1b}]0;owned\\u{7}"), "{out:?}");

    let url = fake_gateway(
        200,
        r#"{"channels":[{"channel":"logs:\u001b[2Jx","events":1,"newest":null,"subscribers":0}],"next_cursor":null}"#,
    )
    .await;
    let (code, out, err) = run(&url, &[]).await;
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(out, "");
    assert!(!err.contains('\u{1b}'), "{err:?}");

    let url = fake_gateway(
        403,
        r#"{"error":{"code":"forbidden_channel","message":"\u001b[31mred\u001b[0m"}}"#,
    )
    .await;
    let (code, _, err) = run(&url, &[]).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(!err.contains('\u{1b}') && err.contains("red"), "{err:?}");

    // A cursor that never moves on ends the command instead of looping.
    let url = fake_gateway(200, r#"{"channels":[],"next_cursor":"logs:etl"}"#).await;
    let (code, _, err) = run(&url, &[]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("repeated its cursor"), "{err}");
}
