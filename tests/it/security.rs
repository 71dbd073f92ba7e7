//! Multi-tenant security over real sockets: subscriber JWTs and their
//! sources, grants, RS256/ES256 keys, tenant isolation, the admin scope,
//! rate limits, CORS and token expiry.

use std::collections::BTreeSet;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use loggate::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::jwt::{self, now};
use testkit::*;

const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// `claims` signed with this file's secret.
fn hs256(claims: &Value) -> String {
    jwt::hs256(SECRET, claims)
}

fn workspace_token(ws: &[&str]) -> String {
    hs256(&json!({"exp": now() + 600, "workspaces": ws}))
}

fn secured(adjust: impl FnOnce(&mut loggate::Config)) -> InProcessGateway {
    start_with(|c| {
        c.auth.jwt_secret = Some(Secret::new(SECRET));
        adjust(c);
    })
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn status_of(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = tokio::time::timeout(WAIT, req.send())
        .await
        .unwrap()
        .unwrap();
    let status = res.status();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Opens a stream with `token` in the query; returns status and error code.
async fn try_stream(gw: &InProcessGateway, channels: &str, token: &str) -> (StatusCode, String) {
    let mut c = SseClient::connect(&gw.url(&format!(
        "/api/logs/stream?channels={channels}&token={token}"
    )))
    .await;
    let code = c.error_body().await["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (c.status, code)
}

#[tokio::test]
async fn the_token_may_come_from_header_query_or_cookie() {
    let gw = secured(|_| {});
    let token = workspace_token(&["ws1"]);
    let url = gw.url("/api/logs/stream?channels=logs:etl:ws1");
    let client = reqwest::Client::new();
    for req in [
        client.get(&url).bearer_auth(&token),
        client.get(format!("{url}&token={token}")),
        client
            .get(&url)
            .header("cookie", format!("theme=dark; loggate_token={token}")),
    ] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let (s, body) = status_of(client.get(&url)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "missing_token");
    let (s, body) = status_of(client.get(&url).bearer_auth("not-a-jwt")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_token");
    assert!(
        !body.to_string().contains("not-a-jwt"),
        "tokens are never echoed"
    );
}

#[tokio::test]
async fn a_bad_credential_is_never_rescued_by_another_source() {
    let gw = secured(|_| {});
    let good = workspace_token(&["ws1"]);
    let url = gw.url("/api/logs/stream?channels=logs:etl:ws1");
    let client = reqwest::Client::new();
    let cookie = format!("loggate_token={good}");
    // Bad header + good cookie, bad header + good query, bad query + good cookie.
    for req in [
        client
            .get(&url)
            .bearer_auth("garbage")
            .header("cookie", &cookie),
        client
            .get(format!("{url}&token={good}"))
            .bearer_auth("garbage"),
        client
            .get(format!("{url}&token=garbage"))
            .header("cookie", &cookie),
        client
            .get(&url)
            .header("authorization", format!("Basic {good}"))
            .header("cookie", &cookie),
    ] {
        let (s, _) = status_of(req).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // The cookie is no source at all when cookie auth is off.
    let gw = secured(|c| c.auth.cookie = false);
    let url = gw.url("/api/logs/stream?channels=logs:etl:ws1");
    let (s, body) = status_of(client.get(&url).header("cookie", &cookie)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "missing_token");
}

#[tokio::test]
async fn grants_cover_requests_or_the_answer_is_403() {
    let gw = secured(|_| {});
    let ws1 = workspace_token(&["ws1"]);
    for ok in [
        "logs:*:ws1",
        "logs:etl:ws1",
        "logs:etl:ws1:job7",
        "logs:*:ws1:*",
    ] {
        assert_eq!(try_stream(&gw, ok, &ws1).await.0, StatusCode::OK, "{ok}");
    }
    for no in [
        "logs:*",
        "logs:etl",
        "logs:*:ws2",
        "logs:*:*",
        "logs:etl:*",
        "logs:etl:ws1,logs:etl:ws2",
    ] {
        let (s, code) = try_stream(&gw, no, &ws1).await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::FORBIDDEN, "forbidden_channel"),
            "{no}"
        );
    }
    let narrow = hs256(&json!({"exp": now() + 600, "channels": ["logs:etl:ws2:*", "logs:faas"]}));
    assert_eq!(
        try_stream(&gw, "logs:etl:ws2:job1", &narrow).await.0,
        StatusCode::OK
    );
    assert_eq!(
        try_stream(&gw, "logs:faas:anything", &narrow).await.0,
        StatusCode::OK
    );
    // `logs:etl:ws2` itself is not under `logs:etl:ws2:*`: events published
    // at workspace level would leak.
    assert_eq!(
        try_stream(&gw, "logs:etl:ws2", &narrow).await.0,
        StatusCode::FORBIDDEN
    );
    let nothing = hs256(&json!({"exp": now() + 600}));
    assert_eq!(
        try_stream(&gw, "logs:etl:ws1", &nothing).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn expired_premature_and_foreign_tokens_are_refused() {
    let gw = secured(|c| c.auth.jwt_leeway_secs = 0);
    let cases = [
        hs256(&json!({"exp": now() - 10, "workspaces": ["ws1"]})),
        hs256(&json!({"exp": now() + 600, "nbf": now() + 300, "workspaces": ["ws1"]})),
        hs256(&json!({"workspaces": ["ws1"]})),
        jwt::hs256(
            b"someone-else's-secret-of-32-bytes!",
            &json!({"exp": now() + 600, "workspaces": ["ws1"]}),
        ),
    ];
    for token in cases {
        let (s, code) = try_stream(&gw, "logs:etl:ws1", &token).await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
    }
}

#[tokio::test]
async fn rs256_keys_refuse_hs256_and_none() {
    let gw = start_with(|c| c.auth.jwt_public_key_file = Some(fixture("rsa_public.pem")));
    let claims = json!({"exp": now() + 600, "workspaces": ["ws1"]});
    let rs = jwt::pem(Algorithm::RS256, &fixture("rsa_private.pem"), &claims);
    assert_eq!(try_stream(&gw, "logs:etl:ws1", &rs).await.0, StatusCode::OK);

    // The classic confusion: HS256 "signed" with the RSA public key's bytes.
    let public = std::fs::read(fixture("rsa_public.pem")).unwrap();
    let confused = jwt::hs256(public, &claims);
    assert_eq!(
        try_stream(&gw, "logs:etl:ws1", &confused).await.0,
        StatusCode::UNAUTHORIZED
    );

    // alg: none, no signature.
    let none = jwt::alg_none(&claims);
    assert_eq!(
        try_stream(&gw, "logs:etl:ws1", &none).await.0,
        StatusCode::UNAUTHORIZED
    );
    // RS384 with the same key is still not the configured algorithm.
    let rs384 = jwt::pem(Algorithm::RS384, &fixture("rsa_private.pem"), &claims);
    assert_eq!(
        try_stream(&gw, "logs:etl:ws1", &rs384).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn es256_keys_work() {
    let gw = start_with(|c| c.auth.jwt_public_key_file = Some(fixture("ec_public.pem")));
    let claims = json!({"exp": now() + 600, "channels": ["logs:etl"]});
    let es = jwt::pem(Algorithm::ES256, &fixture("ec_private.pem"), &claims);
    assert_eq!(try_stream(&gw, "logs:etl:ws9", &es).await.0, StatusCode::OK);
    assert_eq!(
        try_stream(&gw, "logs:faas", &es).await.0,
        StatusCode::FORBIDDEN
    );
}

/// Many subscribers with different grants, traffic on many workspaces:
/// each receives exactly the events its grants cover.
#[tokio::test]
async fn tenants_see_exactly_their_own_logs() {
    let gw = secured(|_| {});
    // (grant claims, requested channel)
    let subscribers: Vec<(Value, &str)> = vec![
        (json!({"workspaces": ["w0"]}), "logs:*:w0"),
        (json!({"workspaces": ["w1"]}), "logs:*:w1"),
        (json!({"workspaces": ["w1", "w2"]}), "logs:*:w2"),
        (json!({"workspaces": ["w3"]}), "logs:etl:w3"),
        (json!({"channels": ["logs:faas"]}), "logs:faas"),
        (json!({"channels": ["logs:etl:w4:*"]}), "logs:etl:w4:*"),
        (json!({"channels": ["logs:*:w5:r1"]}), "logs:*:w5:r1"),
        (json!({"workspaces": ["w6"]}), "logs:*:w6"),
    ];
    let mut clients = Vec::new();
    for (grant, channel) in &subscribers {
        let mut claims = grant.clone();
        claims["exp"] = json!(now() + 600);
        let url = gw.url(&format!(
            "/api/logs/stream?channels={channel}&token={}",
            hs256(&claims)
        ));
        let mut c = SseClient::connect(&url).await;
        assert_eq!(c.status, StatusCode::OK, "{channel}");
        assert_eq!(c.next_event().await.unwrap().event, "ready");
        clients.push(c);
    }
    // Traffic: 2 services x 7 workspaces x (workspace level + 3 resources).
    let mut published: Vec<(String, String)> = Vec::new(); // (channel, message)
    for (service, token) in [("etl", ETL_TOKEN), ("faas", "faas-token")] {
        let mut batch = Vec::new();
        for w in 0..7 {
            for r in [None, Some("r1"), Some("r2"), Some("r3")] {
                let ws = format!("w{w}");
                let msg = format!("{service}/{ws}/{}", r.unwrap_or("-"));
                let channel = match r {
                    Some(r) => format!("logs:{service}:{ws}:{r}"),
                    None => format!("logs:{service}:{ws}"),
                };
                batch.push(event(service, Some(&ws), r, &msg));
                published.push((channel, msg));
            }
        }
        let (s, answer) = gw
            .publish_raw(token, "application/json", Value::Array(batch).to_string())
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{answer}");
    }
    for ((_, requested), client) in subscribers.iter().zip(clients.iter_mut()) {
        let pattern = loggate::channel::ChannelPattern::parse(requested).unwrap();
        let want: BTreeSet<String> = published
            .iter()
            .filter(|(c, _)| pattern.matches(&loggate::channel::ChannelName::parse(c).unwrap()))
            .map(|(_, m)| m.clone())
            .collect();
        assert!(!want.is_empty(), "{requested} should see something");
        let got: BTreeSet<String> = client
            .logs(want.len())
            .await
            .into_iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "subscriber of {requested}");
        client.expect_silence(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn admin_scope_needs_the_admin_token() {
    let client = reqwest::Client::new();
    let open = start();
    for path in ["/admin/logs/stats", "/admin/anything"] {
        let (s, body) = status_of(client.get(open.url(path))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["error"]["code"], "admin_disabled");
    }
    let gw = start_with(|c| c.auth.admin_token = Some(Secret::new("admin-token-for-tests")));
    let url = gw.url("/admin/logs/stats");
    let (s, body) = status_of(client.get(&url)).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_admin_token"))
    );
    let (s, _) = status_of(client.get(&url).bearer_auth("admin-token-for-test")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = status_of(client.get(gw.url("/admin/anything"))).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "unknown admin paths are guarded too"
    );

    let _sub = gw.subscribe("channels=logs:etl:ws1").await;
    gw.publish(&event("etl", Some("ws1"), None, "x")).await;
    let (s, stats) = status_of(client.get(&url).bearer_auth("admin-token-for-tests")).await;
    assert_eq!(s, StatusCode::OK, "{stats}");
    assert_eq!(stats["connections"]["sse"], 1);
    assert_eq!(
        stats["channels"][0],
        json!({"channel": "logs:etl:ws1", "subscribers": 1})
    );
    assert_eq!(stats["services"]["etl"]["published"], 1);
    assert_eq!(stats["services"]["etl"]["delivered"], 1, "one subscriber");
    assert!(stats["uptime_seconds"].is_u64());
    let (s, _) = status_of(
        client
            .get(gw.url("/admin/anything"))
            .bearer_auth("admin-token-for-tests"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn publish_rate_limit_per_service() {
    let gw = in_process_with(|c| c.limits.publish_rate_per_sec = 1000).await;
    let batch = |service: &str| {
        Value::Array(
            (0..1000)
                .map(|i| event(service, None, None, &format!("{i}")))
                .collect(),
        )
    };
    // The burst is twice the rate: two full batches pass at once.
    for _ in 0..2 {
        let (s, answer) = gw.publish(&batch("etl")).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{answer}");
    }
    let res = gw
        .post(
            "/api/logs/publish",
            &[
                ("x-service-token", ETL_TOKEN),
                ("content-type", "application/json"),
            ],
            batch("etl").to_string(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = res.json();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        gw.registry_stats().await.last_seq,
        2000,
        "the refused batch published nothing"
    );
    // Another service has its own budget.
    let (s, _) = gw
        .publish_raw("faas-token", "application/json", batch("faas").to_string())
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let metrics = gw.metrics().await;
    assert!(metric_value(&metrics, r#"loggate_rate_limited_total{limit="publish"}"#) >= Some(1.0));
}

#[tokio::test]
async fn connection_rate_limit_per_address() {
    let gw = start_with(|c| c.limits.connect_rate_per_ip = 2);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(gw.subscribe("channels=logs:etl").await);
    }
    let mut c = SseClient::connect(&gw.url("/api/logs/stream?channels=logs:etl")).await;
    assert_eq!(c.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(c.headers.contains_key("retry-after"));
    assert_eq!(c.error_body().await["error"]["code"], "rate_limited");
    let metrics = gw.metrics().await;
    assert!(metric_value(&metrics, r#"loggate_rate_limited_total{limit="connect"}"#) >= Some(1.0));
}

#[actix_web::test]
async fn cors_answers_allowed_origins_only() {
    use actix_web::http::Method;
    use testkit::app::request;
    let gw = in_process_with(|c| {
        c.auth.allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let preflight = |origin: &str| {
        request(Method::OPTIONS, "/api/logs/stream")
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "GET"))
            .insert_header(("access-control-request-headers", "authorization"))
    };
    let res = gw.call(preflight("https://app.example.com")).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let res = gw.call(preflight("https://evil.example")).await;
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let res = gw
        .call(request(Method::GET, "/healthz").insert_header(("origin", "https://evil.example")))
        .await;
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

/// Waits on the wall clock (1 to 2 s, in parallel with the other tests):
/// the token is checked against the system clock inside jsonwebtoken and
/// the expiry timer runs on the gateway's own actix runtime, which a
/// paused tokio clock in this test cannot reach.
#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let gw = secured(|c| c.auth.jwt_leeway_secs = 0);
    let token = hs256(&json!({"exp": now() + 2, "workspaces": ["ws1"]}));
    let mut c = SseClient::connect(&gw.url(&format!(
        "/api/logs/stream?channels=logs:etl:ws1&token={token}"
    )))
    .await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.next_event().await.unwrap().event, "ready");
    let f = c.next_event().await.expect("expired frame");
    assert_eq!(f.event, "expired");
    assert!(c.next_event().await.is_none(), "then the stream ends");
    gw.wait_for_registry("session gone", |s| s.sessions == 0)
        .await;
}

#[tokio::test]
async fn the_static_auth_token_grants_everything() {
    let gw = start_with(|c| c.auth.auth_token = Some(Secret::new("ops-static-token")));
    assert_eq!(
        try_stream(&gw, "logs:*", "ops-static-token").await.0,
        StatusCode::OK
    );
    assert_eq!(
        try_stream(&gw, "logs:*", "ops-static-tokens").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn service_tokens_may_be_configured_as_digests() {
    let digest = hex::encode(loggate::digest::sha256(b"billing-secret-1"));
    let gw = in_process_with(|c| {
        c.service_tokens
            .insert("billing".into(), Secret::new(format!("sha256:{digest}")));
    })
    .await;
    let body = json!({"service":"billing","logData":{"message":"m"}});
    let (s, _) = gw
        .publish_raw("billing-secret-1", "application/json", body.to_string())
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = gw
        .publish_raw(
            &format!("sha256:{digest}"),
            "application/json",
            body.to_string(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the digest itself is not a token"
    );
}

/// A small publish rate is a normal setting: the gateway starts with it,
/// and a batch larger than the burst gets a 413 that says so (waiting
/// would never let it through), not a 429.
#[actix_web::test]
async fn a_small_publish_rate_refuses_batches_over_its_burst_with_413() {
    let gw = in_process_with(|c| c.limits.publish_rate_per_sec = 50).await;
    let batch = |n: usize| {
        Value::Array(
            (0..n)
                .map(|i| event("etl", None, None, &format!("{i}")))
                .collect(),
        )
    };
    let (status, body) = gw.publish(&batch(150)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "batch_exceeds_burst");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("100"),
        "{body}"
    );
    let (status, body) = gw.publish(&batch(100)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // The burst is spent; a full one again needs 2 s of refill (a single
    // event needs 20 ms, which a busy machine can take between requests).
    let (status, body) = gw.publish(&batch(100)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

/// One expiry rule everywhere: `exp` to the second, whatever the leeway.
/// A token a few seconds past `exp` is refused by streams, WebSockets and
/// history alike (it used to get `ready`, then `expired` at once, and a
/// browser reconnected in a loop), and the refusal says how to
/// authenticate.
#[tokio::test]
async fn an_expired_token_is_refused_everywhere_despite_the_leeway() {
    let gw = secured(|c| c.auth.jwt_leeway_secs = 30);
    let token = hs256(&json!({"exp": now() - 5, "workspaces": ["ws1"]}));
    let (s, code) = try_stream(&gw, "logs:etl:ws1", &token).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let (s, body) = status_of(
        gw.client
            .get(gw.url("/api/logs/history?channels=logs:etl:ws1"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "history: {body}");
    let url = format!(
        "ws://{}/api/logs/ws?channels=logs:etl:ws1&token={token}",
        gw.running.addr
    );
    assert_eq!(testkit::ws::refusal(url).await, 401, "websocket");
    let res = gw
        .client
        .get(gw.url("/api/logs/stream?channels=logs:etl:ws1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="loggate""#
    );
}

/// Tokens that live longer than `auth.jwt_max_lifetime_secs` (by `iat`, or
/// from now) and tokens with a `crit` header are refused.
#[tokio::test]
async fn long_lived_and_critical_tokens_are_refused() {
    let gw = secured(|c| c.auth.jwt_max_lifetime_secs = 3600);
    let ok = hs256(&json!({"exp": now() + 3000, "iat": now(), "workspaces": ["ws1"]}));
    assert_eq!(try_stream(&gw, "logs:etl:ws1", &ok).await.0, StatusCode::OK);
    for claims in [
        json!({"exp": now() + 2 * 86_400, "workspaces": ["ws1"]}),
        json!({"exp": now() + 60, "iat": now() - 7200, "workspaces": ["ws1"]}),
    ] {
        let (s, code) = try_stream(&gw, "logs:etl:ws1", &hs256(&claims)).await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "{claims}"
        );
    }
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["b64".into()]);
    let crit = jwt::sign(
        &header,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        &json!({"exp": now() + 60, "workspaces": ["ws1"]}),
    );
    let (s, body) = status_of(
        gw.client
            .get(gw.url("/api/logs/history?channels=logs:etl:ws1"))
            .bearer_auth(&crit),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("crit"),
        "{body}"
    );
}

/// Headers a browser page on `origin` would send, with the visitor's
/// `loggate_token` cookie.
fn from_page(
    req: reqwest::RequestBuilder,
    origin: Option<&str>,
    cookie_token: &str,
) -> reqwest::RequestBuilder {
    let req = req.header(
        "cookie",
        format!("theme=dark; loggate_token={cookie_token}"),
    );
    match origin {
        Some(o) => req.header("origin", o),
        None => req,
    }
}

/// Status and error body of `req`; a 200 (possibly an endless stream) is
/// not read.
async fn answer(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("answered in time")
        .expect("request");
    let status = res.status();
    if status == StatusCode::OK {
        return (status, Value::Null);
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The status of a WebSocket handshake on `/api/logs/ws?{query}` with
/// `headers`, as a real client sees it.
async fn ws_handshake(gw: &InProcessGateway, query: &str, headers: &[(&str, String)]) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
    let url = format!("ws://{}/api/logs/ws?{query}", gw.running.addr);
    let mut req = url.into_client_request().unwrap();
    for (name, value) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake answered in time")
    {
        Ok((_, res)) => res.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// With `ALLOWED_ORIGINS=*` (the default) and cookie auth on (the default),
/// CORS answers `*` and never grants credentials, and the cookie counts
/// only on requests from the gateway's own pages: another site's page
/// cannot read a visitor's streams, history or chat with it, over HTTP or
/// WebSocket. Header and query tokens work from anywhere (a page can only
/// send those if it already holds the token).
#[tokio::test]
async fn any_origin_never_lends_the_cookie_to_another_site() {
    let model = testkit::model::ModelServer::start_repeating(
        vec![],
        Some(testkit::model::Reply::text("nothing alarming")),
    )
    .await;
    let gw = secured(|c| {
        c.ai.api_key = Some(Secret::new("test-key"));
        c.ai.base_url = model.base_url();
    });
    let defaults = loggate::Config::default().auth;
    assert!(
        defaults.any_origin() && defaults.cookie,
        "the defaults under test"
    );
    let token = workspace_token(&["ws1"]);
    let own = format!("http://{}", gw.running.addr);
    let evil = "http://evil.example";
    let client = reqwest::Client::new();
    let stream = gw.url("/api/logs/stream?channels=logs:etl:ws1");
    let history = gw.url("/api/logs/history?channels=logs:etl:ws1");
    let chat = gw.url("/api/logs/chat");
    let question = json!({"message": "anything wrong?", "channels": ["logs:etl:ws1"]}).to_string();

    // CORS: `*`, never credentials, preflight and simple request alike.
    let res = client
        .request(reqwest::Method::OPTIONS, &stream)
        .header("origin", evil)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(
        !res.headers()
            .contains_key("access-control-allow-credentials"),
        "{:?}",
        res.headers()
    );
    let res = from_page(client.get(gw.url("/healthz")), Some(evil), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(
        !res.headers()
            .contains_key("access-control-allow-credentials")
    );

    // The cookie from another site's page: as if no credential was sent.
    for (what, origin_header) in [
        ("foreign origin", Some(evil)),
        ("opaque origin", Some("null")),
        ("same host, other port", Some("http://127.0.0.1:1")),
    ] {
        for (path, req) in [
            ("stream", client.get(&stream)),
            ("history", client.get(&history)),
            (
                "chat",
                client
                    .post(&chat)
                    .header("content-type", "application/json")
                    .body(question.clone()),
            ),
        ] {
            let (s, body) = answer(from_page(req, origin_header, &token)).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}, {path}: {body}");
            assert_eq!(body["error"]["code"], "missing_token", "{what}, {path}");
        }
        let mut headers = vec![("cookie", format!("loggate_token={token}"))];
        if let Some(o) = origin_header {
            headers.push(("origin", o.to_owned()));
        }
        assert_eq!(
            ws_handshake(&gw, "channels=logs:etl:ws1", &headers).await,
            401,
            "{what}, websocket"
        );
    }
    // A cross-site navigation (no Origin header) does not carry it either.
    let (s, _) = answer(
        from_page(client.get(&history), None, &token).header("sec-fetch-site", "cross-site"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "cross-site navigation");

    // The same cookie from the gateway's own pages (and from clients that
    // are not browsers) works everywhere.
    for origin_header in [Some(own.as_str()), None] {
        let (s, body) = answer(from_page(client.get(&history), origin_header, &token)).await;
        assert_eq!(s, StatusCode::OK, "{origin_header:?}: {body}");
        let (s, body) = answer(from_page(client.get(&stream), origin_header, &token)).await;
        assert_eq!(s, StatusCode::OK, "{origin_header:?}: {body}");
        let req = client
            .post(&chat)
            .header("content-type", "application/json")
            .body(question.clone());
        let (s, body) = answer(from_page(req, origin_header, &token)).await;
        assert_eq!(s, StatusCode::OK, "{origin_header:?}: {body}");
        let mut headers = vec![("cookie", format!("loggate_token={token}"))];
        if let Some(o) = origin_header {
            headers.push(("origin", o.to_owned()));
        }
        assert_eq!(
            ws_handshake(&gw, "channels=logs:etl:ws1", &headers).await,
            101
        );
    }
    let (s, _) = answer(
        from_page(client.get(&history), None, &token).header("sec-fetch-site", "same-origin"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "same-origin navigation");

    // Header and query tokens work from any origin.
    let (s, _) = answer(
        client
            .get(&history)
            .header("origin", evil)
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = answer(
        client
            .get(format!("{history}&token={token}"))
            .header("origin", evil),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = answer(
        client
            .get(&stream)
            .header("origin", evil)
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        ws_handshake(
            &gw,
            &format!("channels=logs:etl:ws1&token={token}"),
            &[("origin", evil.to_owned())]
        )
        .await,
        101,
        "query token from a foreign origin"
    );
    assert_eq!(
        ws_handshake(
            &gw,
            "channels=logs:etl:ws1",
            &[
                ("origin", evil.to_owned()),
                ("authorization", format!("Bearer {token}"))
            ]
        )
        .await,
        101,
        "header token from a foreign origin"
    );
}

/// With a listed origin, CORS grants that origin credentials and the
/// cookie works from its pages (and the gateway's own); any other origin
/// gets neither.
#[tokio::test]
async fn a_listed_origin_may_use_the_cookie_and_others_may_not() {
    let app = "https://app.example.com";
    let gw = secured(|c| c.auth.allowed_origins = vec![app.into()]);
    let token = workspace_token(&["ws1"]);
    let own = format!("http://{}", gw.running.addr);
    let client = reqwest::Client::new();
    let history = gw.url("/api/logs/history?channels=logs:etl:ws1");
    let stream = gw.url("/api/logs/stream?channels=logs:etl:ws1");

    let res = from_page(client.get(&history), Some(app), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], app);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    for origin in [app, own.as_str()] {
        let (s, body) = answer(from_page(client.get(&stream), Some(origin), &token)).await;
        assert_eq!(s, StatusCode::OK, "{origin}: {body}");
        let headers = [
            ("cookie", format!("loggate_token={token}")),
            ("origin", origin.to_owned()),
        ];
        assert_eq!(
            ws_handshake(&gw, "channels=logs:etl:ws1", &headers).await,
            101,
            "{origin}"
        );
    }
    let (s, _) = answer(from_page(
        client.get(&stream),
        Some("https://evil.example"),
        &token,
    ))
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // An origin that only starts like the listed one is another origin.
    let (s, _) = answer(from_page(
        client.get(&history),
        Some("https://app.example.com.evil.example"),
        &token,
    ))
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// What a page reads with the visitor's cookie, in real Chromium: a
/// stream (`EventSource` with credentials), history (`fetch` with
/// credentials) and a WebSocket, each "read" or "refused".
async fn what_a_page_reads(b: &testkit::browser::Browser, gw: &InProcessGateway) -> Value {
    let base = format!("{}/api/logs", gw.url(""));
    let ws = format!("ws://{}/api/logs/ws?channels=logs:etl:ws1", gw.running.addr);
    b.eval_with(
        r#"
        const [base, wsUrl] = arguments;
        const r = window.__reads = {};
        const es = new EventSource(base + "/stream?channels=logs:etl:ws1", {withCredentials: true});
        es.addEventListener("ready", () => { r.stream = "read"; es.close(); });
        es.onerror = () => { r.stream = r.stream || "refused"; es.close(); };
        fetch(base + "/history?channels=logs:etl:ws1", {credentials: "include"})
            .then(res => res.ok ? res.json().then(() => "read") : "refused")
            .catch(() => "refused")
            .then(v => { r.history = v; });
        const ws = new WebSocket(wsUrl);
        ws.onmessage = () => { r.websocket = "read"; ws.close(); };
        ws.onclose = () => { r.websocket = r.websocket || "refused"; };
        return true;
        "#,
        vec![json!(base), json!(ws)],
    )
    .await;
    b.wait_for(
        "the page's three reads",
        "const r = window.__reads; return r.stream && r.history && r.websocket ? r : null;",
    )
    .await
}

/// In headless Chromium, with `ALLOWED_ORIGINS=*` and the visitor's
/// `loggate_token` cookie set: the gateway's own page reads the stream,
/// history and a WebSocket with it; a page of another origin (same host,
/// another port: the cookie goes along) reads none of them.
#[tokio::test]
async fn in_a_browser_another_origin_cannot_read_with_the_cookie() {
    let gw = secured(|_| {});
    let elsewhere = start();
    let token = workspace_token(&["ws1"]);
    let b = testkit::browser::Browser::launch().await;
    b.open(&gw.url("/healthz")).await;
    b.eval_with(
        "document.cookie = 'loggate_token=' + arguments[0] + '; path=/'; return true;",
        vec![json!(token)],
    )
    .await;
    let own = what_a_page_reads(&b, &gw).await;
    assert_eq!(
        own,
        json!({"stream": "read", "history": "read", "websocket": "read"}),
        "the gateway's own page"
    );
    b.open(&elsewhere.url("/healthz")).await;
    let foreign = what_a_page_reads(&b, &gw).await;
    assert_eq!(
        foreign,
        json!({"stream": "refused", "history": "refused", "websocket": "refused"}),
        "a page of another origin"
    );
    b.close().await;
}
