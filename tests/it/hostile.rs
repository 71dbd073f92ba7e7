//! What an attacker would send: malformed and oversized tokens, forged
//! algorithms, control characters, huge queries and bodies, half-sent
//! requests. Each gets the right status, and the gateway keeps serving an
//! honest subscriber throughout.

use std::time::Duration;

use loggate::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::jwt::{self, now};
use testkit::*;

const SECRET: &str = "hostile-test-secret-0123456789abcdef";

#[tokio::test]
async fn hostile_requests_are_refused_and_others_keep_being_served() {
    let gw = start_with(|c| c.auth.jwt_secret = Some(Secret::new(SECRET)));
    let honest = jwt::hs256(SECRET, &json!({"exp": now() + 600, "workspaces": ["ws1"]}));
    let mut witness = SseClient::connect(&gw.url(&format!(
        "/api/logs/stream?channels=logs:etl:ws1&token={honest}"
    )))
    .await;
    assert_eq!(witness.next_event().await.unwrap().event, "ready");
    let addr = gw.running.addr;

    // Malformed and oversized tokens in every source: 401, never a crash.
    let long = "a".repeat(10_000);
    let garbage = [
        "a.b.c",
        "...",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "%FF%FE",
        long.as_str(),
    ];
    let client = reqwest::Client::new();
    let url = gw.url("/api/logs/stream?channels=logs:etl:ws1");
    for t in garbage {
        for req in [
            client.get(&url).bearer_auth(t),
            client.get(format!("{url}&token={t}")),
            client
                .get(&url)
                .header("cookie", format!("loggate_token={t}")),
        ] {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{:.40}", t);
        }
    }
    // A 200 KB header is refused before any handler runs.
    let huge = format!(
        "GET /api/logs/stream?channels=logs:etl:ws1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        "b".repeat(200_000)
    );
    let (status, _) = raw_request(addr, huge.as_bytes()).await;
    assert!((400..500).contains(&status) || status == 0, "{status}");
    // A non-UTF-8 Authorization header counts as present and invalid: the
    // valid query token does not rescue it.
    let bad_header = format!(
        "GET /api/logs/stream?channels=logs:etl:ws1&token={honest} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \u{0}\r\nConnection: close\r\n\r\n"
    )
    .replace('\u{0}', "\u{FFFD}");
    let (status, _) = raw_request(addr, bad_header.as_bytes()).await;
    assert_eq!(status, 401);
    let mut bytes = format!("GET /api/logs/stream?channels=logs:etl:ws1&token={honest} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\r\nConnection: close\r\n\r\n");
    let (status, _) = raw_request(addr, &bytes).await;
    assert_eq!(status, 401);

    // Channel names with control characters, NUL, and friends: 400.
    for bad in [
        "logs:etl%00",
        "logs:etl%01ws1",
        "logs:etl%7F",
        "logs:%E2%80%AEetl",
        "logs:etl%0D%0Aevent:%20log",
        "logs:etl:ws1:%20",
    ] {
        let res = client
            .get(format!("{url}&channels={bad}"))
            .bearer_auth(&honest)
            .send()
            .await
            .unwrap();
        // The duplicate `channels` key is itself a 400, so use the bad one alone:
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let res = client
            .get(gw.url(&format!("/api/logs/stream?channels={bad}")))
            .bearer_auth(&honest)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_channel", "{bad}");
    }
    // A very long query string (60 KB): refused, not parsed channel by channel.
    let long_query = format!(
        "GET /api/logs/stream?channels=logs:etl&q={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "q".repeat(60_000)
    );
    let (status, _) = raw_request(addr, long_query.as_bytes()).await;
    assert!((400..500).contains(&status), "{status}");

    // Hostile publish bodies.
    let nested = format!(
        r#"{{"service":"etl","logData":{{"message":"m","meta":{}1{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let lone_surrogate = r#"{"service":"etl","logData":{"message":"\ud800"}}"#.to_owned();
    let many_keys = format!(
        r#"{{"service":"etl","logData":{{"message":"m","meta":{{{}}}}}}}"#,
        (0..8000)
            .map(|i| format!(r#""k{i}":{i}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (body, want) in [
        (nested, StatusCode::BAD_REQUEST),
        (lone_surrogate, StatusCode::BAD_REQUEST),
        (many_keys, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let (s, answer) = gw.publish_raw(ETL_TOKEN, "application/json", body).await;
        assert_eq!(s, want, "{answer}");
    }
    // Service-token forgery attempts.
    for t in [
        "",
        " l5-etl-token-",
        "l5-etl-token ,l5-etl-token",
        &"x".repeat(100_000),
    ] {
        let (s, _) = gw
            .publish_raw(
                t,
                "application/json",
                event("etl", Some("ws1"), None, "forged").to_string(),
            )
            .await;
        assert!(s == StatusCode::UNAUTHORIZED || s.is_client_error(), "{s}");
    }

    // A NUL inside the token header: the request is malformed HTTP.
    let body = event("etl", Some("ws1"), None, "forged").to_string();
    let nul = format!(
        "POST /api/logs/publish HTTP/1.1\r\nHost: x\r\nX-Service-Token: l5-etl-token\0\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _) = raw_request(addr, nul.as_bytes()).await;
    assert!((400..500).contains(&status), "{status}");

    // Through all of it the honest subscriber was served, and still is.
    let (s, _) = gw
        .publish(&event("etl", Some("ws1"), None, "still here"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let got = witness.logs(1).await;
    assert_eq!(
        got[0]["message"], "still here",
        "no forged event got through"
    );
}

/// A client that sends half a request head is dropped by the server's own
/// request timeout instead of holding a connection forever.
#[tokio::test]
async fn a_half_sent_request_is_timed_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = start();
    let mut sock = tokio::net::TcpStream::connect(gw.running.addr)
        .await
        .unwrap();
    sock.write_all(b"GET /api/logs/stream?channels=logs:etl HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(WAIT, sock.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server kept a half-sent request open past {WAIT:?}"
    );
    let _ = Duration::ZERO;
}

/// JSON allows raw whitespace between tokens and `meta` is free-form JSON:
/// a newline left in it would end an SSE `data:` line early, and split an
/// NDJSON history line in two, the second a record of the publisher's
/// choosing that claims another tenant's channel.
#[tokio::test]
async fn whitespace_in_meta_cannot_split_frames_or_forge_records() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:*").await;
    let forged = r#"{"id":"000000000001-000000000001","channel":"logs:faas:ws2","service":"faas","workspace_id":"ws2","level":"error","message":"forged","timestamp":"2025-09-25T10:30:00Z","received_at":"2025-09-25T10:30:00.000Z"}"#;
    // Escaped line breaks, quotes, backslashes and spaces inside a string
    // are data and must stay as they are.
    let s = r#""a\nb \"q\" \\ c\r""#;
    // Every JSON line ending, a blank line (an SSE frame end), and the
    // forged record alone on its line.
    let meta =
        format!("{{\r\n  \"n\": 1.50e3,\r  \"s\" :\t{s},\n\n  \"x\":\n{forged}\n,\"e\":[ ] }}");
    let compact = format!(r#"{{"n":1.50e3,"s":{s},"x":{forged},"e":[]}}"#);
    let body = format!(
        r#"{{"service":"etl","workspace_id":"ws1","logData":{{"message":"with meta","meta":{meta}}}}}"#
    );
    let (status, answer) = gw.publish_raw(ETL_TOKEN, "application/json", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = gw.publish(&event("etl", Some("ws1"), None, "plain")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    // SSE: exactly one `log` frame per event, its data one line of JSON.
    for expected in ["with meta", "plain"] {
        let f = sub.next_event().await.expect("stream still open");
        assert_eq!(f.event, "log", "{f:?}");
        assert!(!f.data.contains(['\n', '\r']), "data spans lines: {f:?}");
        let j: serde_json::Value = serde_json::from_str(&f.data)
            .unwrap_or_else(|e| panic!("data is one JSON value ({e}): {:?}", f.data));
        assert_eq!(j["message"], expected, "{f:?}");
        assert_eq!(j["channel"], "logs:etl:ws1", "{f:?}");
        assert_eq!(f.id.as_deref(), j["id"].as_str(), "{f:?}");
        if expected == "with meta" {
            // Key order and number spelling are kept; only whitespace
            // between tokens went.
            assert!(
                f.data.ends_with(&format!(r#","meta":{compact}}}"#)),
                "{f:?}"
            );
            assert_eq!(j["meta"]["s"], "a\nb \"q\" \\ c\r");
            assert_eq!(j["meta"]["x"]["channel"], "logs:faas:ws2", "kept as data");
        }
    }
    sub.expect_silence(Duration::from_millis(300)).await;

    // NDJSON history: one line per event, none claiming another channel.
    let res = tokio::time::timeout(
        WAIT,
        gw.client
            .get(gw.url("/api/logs/history?channels=logs:*&format=ndjson"))
            .send(),
    )
    .await
    .expect("history answered in time")
    .expect("history request");
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.expect("history body");
    assert!(!text.contains('\r'), "{text:?}");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 2, "one line per event: {text:?}");
    for (line, expected) in lines.iter().zip(["with meta", "plain"]) {
        let j: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line is one JSON value ({e}): {line:?}"));
        assert_eq!(j["channel"], "logs:etl:ws1", "{line}");
        assert_eq!(j["message"], expected, "{line}");
    }
}

/// Characters JSON allows raw that a terminal or a line reader acts on:
/// the C1 controls (U+009B is CSI on its own, U+009D OSC, U+0085 a line
/// end), DEL, and U+2028/U+2029 (line ends to JavaScript before ES2019 and
/// to Python's `splitlines`).
const JSON_UNSAFE: &[(char, &str)] = &[
    ('\u{7f}', r"\u007f"),
    ('\u{9b}', r"\u009b"),
    ('\u{9d}', r"\u009d"),
    ('\u{9c}', r"\u009c"),
    ('\u{85}', r"\u0085"),
    ('\u{80}', r"\u0080"),
    ('\u{9f}', r"\u009f"),
    ('\u{2028}', r"\u2028"),
    ('\u{2029}', r"\u2029"),
];

/// `json` holds none of [`JSON_UNSAFE`] raw, and each of them escaped.
fn assert_json_escapes_all(json: &str, what: &str) {
    for (c, escaped) in JSON_UNSAFE {
        assert!(!json.contains(*c), "{what}: a raw {c:?} in {json:?}");
        assert!(json.contains(escaped), "{what}: no {escaped} in {json:?}");
    }
}

/// The next text frame of a WebSocket, as the gateway wrote it.
async fn next_ws_text(ws: &mut testkit::ws::Ws) -> String {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("valid frame");
        match msg {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A publisher's C1 controls, DEL and line separators, in the message, `meta`
/// (keys and values), `stream` and `source`, leave the gateway as JSON
/// escapes on every way out (SSE `data:`, WebSocket frames, history JSON
/// and NDJSON), so `curl -N` in a terminal shows them as text; the JSON
/// still reads back as what was published. An error that quotes the
/// publisher's text escapes them too.
#[tokio::test]
async fn c1_controls_and_line_separators_leave_only_as_json_escapes() {
    let gw = start();
    let all: String = JSON_UNSAFE.iter().map(|(c, _)| *c).collect();
    let message = format!("csi \u{9b}2J osc \u{9d}52;c;eA==\u{9c} all {all} kept é ✓ \u{a0}");
    let meta = json!({format!("k{all}"): ["v\u{2028}", {"\u{2029}": "\u{85}"}], "n": 1});
    let mut sse = gw.subscribe("channels=logs:etl:ws1").await;
    let mut ws = testkit::ws::connect(&gw, "channels=logs:etl:ws1").await;
    let ready = next_ws_text(&mut ws).await;
    assert!(ready.contains("\"ready\""), "{ready}");
    let mut e = event("etl", Some("ws1"), None, &message);
    e["logData"]["meta"] = meta.clone();
    e["logData"]["stream"] = all.clone().into();
    e["logData"]["source"] = all.clone().into();
    // Sent raw: serde_json escapes only what JSON requires.
    let body = e.to_string();
    assert!(body.contains('\u{9b}') && body.contains('\u{2028}'));
    let (status, answer) = gw
        .publish_raw(ETL_TOKEN, "application/json", body.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    // The same in `meta` with whitespace to remove (the minified path).
    let spaced = body.replacen(r#""meta":{"#, "\"meta\" : {\n ", 1);
    assert_ne!(spaced, body);
    let (status, answer) = gw.publish_raw(ETL_TOKEN, "application/json", spaced).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    let as_published = |e: &Value, what: &str| {
        assert_eq!(e["message"], message.as_str(), "{what}");
        assert_eq!(e["meta"], meta, "{what}");
        assert_eq!(e["stream"], all.as_str(), "{what}");
        assert_eq!(e["source"], all.as_str(), "{what}");
    };
    let check = |json: &str, what: &str| {
        assert_json_escapes_all(json, what);
        let v: Value = serde_json::from_str(json).expect("valid JSON");
        as_published(if v["type"] == "log" { &v["event"] } else { &v }, what);
    };
    for _ in 0..2 {
        let frame = sse.next_event().await.expect("a log frame");
        assert_eq!(frame.event, "log");
        check(&frame.data, "SSE data");
        check(&next_ws_text(&mut ws).await, "WebSocket frame");
    }
    let history = gw.url("/api/logs/history?channels=logs:etl:ws1");
    let page = gw.client.get(&history).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert_json_escapes_all(&page, "history page");
    let page: Value = serde_json::from_str(&page).unwrap();
    let logs = page["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 2, "{page}");
    for e in logs {
        as_published(e, "history event");
    }
    let ndjson = gw.client.get(format!("{history}&format=ndjson")).send();
    let ndjson = ndjson.await.unwrap().text().await.unwrap();
    assert_eq!(ndjson.lines().count(), 2, "{ndjson:?}");
    for line in ndjson.lines() {
        check(line, "NDJSON line");
    }

    // An error that quotes the publisher's text.
    let mut bad = event("etl", Some("ws1"), None, "m");
    bad["logData"]["timestamp"] = all.clone().into();
    let res = gw
        .post(
            "/api/logs/publish",
            &[
                ("x-service-token", ETL_TOKEN),
                ("content-type", "application/json"),
            ],
            bad.to_string(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    assert_json_escapes_all(&text, "error body");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "invalid_timestamp");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&all),
        "{v}"
    );
}
