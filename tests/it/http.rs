//! The HTTP surface as clients and proxies meet it: HEAD on probes, 405
//! with `Allow` for wrong methods, the headers CORS exposes, unknown query
//! parameters refused, and the 401 challenge.
//!
//! Wrong methods, CORS headers and the challenge are answered by handlers
//! alone, so those tests call the gateway's application in process
//! (`loggate::http::app` through `actix_web::test`, no socket); HEAD (whose
//! body the HTTP/1 layer drops) and the WebSocket refusal need the server.

use actix_web::HttpResponse;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{TestRequest, init_service, try_call_service};
use reqwest::StatusCode;
use testkit::*;

/// A header of an in-process answer (it must be there), as reqwest's
/// `headers()[name]` gives it.
fn header(res: &HttpResponse, name: &str) -> actix_web::http::header::HeaderValue {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .clone()
}

/// What the server would send for `req`: the application's answer, or its
/// error turned into one, as the HTTP layer does.
async fn answer<S, B>(app: &S, req: TestRequest) -> HttpResponse
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody + 'static,
{
    match try_call_service(app, req.to_request()).await {
        Ok(res) => res.into_parts().1.map_into_boxed_body(),
        Err(e) => e.error_response(),
    }
}

/// The JSON body of an in-process answer.
async fn json(res: HttpResponse) -> serde_json::Value {
    let bytes = actix_web::body::to_bytes(res.into_body())
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("JSON body")
}

/// A request as the server hands it to the application, from a loopback
/// peer (the limits key on the peer's address).
fn request(method: actix_web::http::Method, path: &str) -> TestRequest {
    TestRequest::default()
        .method(method)
        .uri(path)
        .peer_addr(([127, 0, 0, 1], 40000).into())
}

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
    use actix_web::http::{Method, StatusCode};
    let gw = start();
    let app = init_service(loggate::http::app(gw.running.state(), gw.running.ai())).await;
    let cases = [
        (Method::GET, "/api/logs/publish", "POST"),
        (Method::POST, "/api/logs/stream", "GET"),
        (Method::DELETE, "/api/logs/history", "GET"),
        (Method::PUT, "/healthz", "GET, HEAD"),
        (Method::POST, "/metrics", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let res = answer(&app, request(method.clone(), path)).await;
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(header(&res, "allow"), allow, "{method} {path}");
        let body = json(res).await;
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
    let res = answer(&app, request(Method::GET, "/api/logs/nothing-here")).await;
    let status = res.status();
    let body = json(res).await;
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
    let gw = start();
    let app = init_service(loggate::http::app(gw.running.state(), gw.running.ai())).await;
    let req = request(
        actix_web::http::Method::GET,
        "/api/logs/history?channels=logs:etl",
    )
    .insert_header(("origin", "https://app.example.com"));
    let res = answer(&app, req).await;
    let exposed = header(&res, "access-control-expose-headers")
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-next-cursor"), "{exposed}");
    assert!(exposed.contains("retry-after"), "{exposed}");
}

#[actix_web::test]
async fn refusals_for_want_of_a_token_carry_a_bearer_challenge() {
    use actix_web::http::{Method, StatusCode};
    let gw = start_with(|c| {
        c.auth.jwt_secret = Some(loggate::config::Secret::new(
            "a-secret-of-at-least-32-bytes-for-tests",
        ));
        c.auth.admin_token = Some(loggate::config::Secret::new("an-admin-token-for-tests"));
    });
    let app = init_service(loggate::http::app(gw.running.state(), gw.running.ai())).await;
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
        let res = answer(&app, request(Method::GET, path)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(header(&res, "www-authenticate"), challenge, "{path}");
    }
    let res = answer(&app, request(Method::POST, "/api/logs/publish")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&res, "www-authenticate"),
        r#"Bearer realm="loggate""#
    );
}
