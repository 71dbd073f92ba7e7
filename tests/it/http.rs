//! The HTTP surface as clients and proxies meet it: HEAD on probes, 405
//! with `Allow` for wrong methods, the headers CORS exposes, unknown query
//! parameters refused, and the 401 challenge.
//!
//! Wrong methods, CORS headers and the challenge are answered by handlers
//! alone, so those tests call the gateway's application in process
//! (`testkit::InProcessApp`: `loggate::http::app` through `actix_web::test`,
//! no socket); HEAD (whose
//! body the HTTP/1 layer drops) and the WebSocket refusal need the server.

use actix_web::http::Method;
use reqwest::StatusCode;
use testkit::app::request;
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

#[actix_web::test]
async fn wrong_methods_get_405_with_allow() {
    let app = in_process().await;
    let cases = [
        (Method::GET, "/api/logs/publish", "POST"),
        (Method::POST, "/api/logs/stream", "GET"),
        (Method::DELETE, "/api/logs/history", "GET"),
        (Method::PUT, "/healthz", "GET, HEAD"),
        (Method::POST, "/metrics", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let res = app.call(request(method.clone(), path)).await;
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(res.header("allow"), allow, "{method} {path}");
        let body = res.json();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
    let res = app
        .call(request(Method::GET, "/api/logs/nothing-here"))
        .await;
    let status = res.status();
    let body = res.json();
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

#[actix_web::test]
async fn cors_exposes_the_headers_pages_need() {
    let app = in_process().await;
    let req = request(Method::GET, "/api/logs/history?channels=logs:etl")
        .insert_header(("origin", "https://app.example.com"));
    let res = app.call(req).await;
    let exposed = res
        .header("access-control-expose-headers")
        .to_ascii_lowercase();
    assert!(exposed.contains("x-next-cursor"), "{exposed}");
    assert!(exposed.contains("retry-after"), "{exposed}");
}

#[actix_web::test]
async fn refusals_for_want_of_a_token_carry_a_bearer_challenge() {
    let app = in_process_with(|c| {
        c.auth.jwt_secret = Some(loggate::config::Secret::new(
            "a-secret-of-at-least-32-bytes-for-tests",
        ));
        c.auth.admin_token = Some(loggate::config::Secret::new("an-admin-token-for-tests"));
    })
    .await;
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
        let res = app.call(request(Method::GET, path)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(res.header("www-authenticate"), challenge, "{path}");
    }
    let res = app.call(request(Method::POST, "/api/logs/publish")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.header("www-authenticate"), r#"Bearer realm="loggate""#);
}
