//! The HTTP surface as clients and proxies meet it: HEAD on probes, 405
//! with `Allow` for wrong methods, the headers CORS exposes, unknown query
//! parameters refused, and the 401 challenge.

use reqwest::{Method, StatusCode};
use testkit::*;

#[tokio::test]
async fn probes_and_metrics_answer_head() {
    let gw = start();
    for path in ["/healthz", "/health", "/ready", "/metrics"] {
        let res = gw.client.head(gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "HEAD {path}");
        assert!(
            res.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
}

#[tokio::test]
async fn wrong_methods_get_405_with_allow() {
    let gw = start();
    let cases = [
        (Method::GET, "/api/logs/publish", "POST"),
        (Method::POST, "/api/logs/stream", "GET"),
        (Method::DELETE, "/api/logs/history", "GET"),
        (Method::PUT, "/healthz", "GET, HEAD"),
        (Method::POST, "/metrics", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let res = gw
            .client
            .request(method.clone(), gw.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
    let (status, body) = gw.get_json("/api/logs/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn unknown_query_parameters_are_refused() {
    let gw = start();
    for path in [
        "/api/logs/stream?chanels=logs:etl",
        "/api/logs/stream?channels=logs:etl&levle=warn",
        "/api/logs/history?channels=logs:etl&limt=5",
    ] {
        let (status, body) = gw.get_json(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{path}");
    }
    let url = format!("ws://{}/api/logs/ws?chanels=logs:etl", gw.running.addr);
    assert_eq!(testkit::ws::refusal(url).await, 400, "websocket");
    // A 60 KB unknown parameter name is not echoed back whole.
    let long = "x".repeat(60_000);
    let (status, body) = gw
        .get_json(&format!("/api/logs/stream?channels=logs:etl&{long}=1"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.to_string().len() < 1000,
        "{} bytes",
        body.to_string().len()
    );
}

#[tokio::test]
async fn cors_exposes_the_headers_pages_need() {
    let gw = start();
    let res = gw
        .client
        .get(gw.url("/api/logs/history?channels=logs:etl"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-next-cursor"), "{exposed}");
    assert!(exposed.contains("retry-after"), "{exposed}");
}

#[tokio::test]
async fn refusals_for_want_of_a_token_carry_a_bearer_challenge() {
    let gw = start_with(|c| {
        c.auth.jwt_secret = Some(loggate::config::Secret::new(
            "a-secret-of-at-least-32-bytes-for-tests",
        ));
        c.auth.admin_token = Some(loggate::config::Secret::new("an-admin-token-for-tests"));
    });
    for (path, challenge) in [
        (
            "/api/logs/stream?channels=logs:etl",
            r#"Bearer realm="loggate""#,
        ),
        (
            "/api/logs/history?channels=logs:etl&token=nope",
            r#"Bearer realm="loggate", error="invalid_token""#,
        ),
        (
            "/admin/logs/stats",
            r#"Bearer realm="loggate", error="invalid_token""#,
        ),
    ] {
        let res = gw.client.get(gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(res.headers()["www-authenticate"], challenge, "{path}");
    }
    let res = gw
        .client
        .post(gw.url("/api/logs/publish"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="loggate""#
    );
}
