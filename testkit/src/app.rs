//! The gateway in this process, two ways, from a default [`Config`] a test
//! adjusts: [`InProcessGateway`], started on its own thread on 127.0.0.1:0
//! and talked to over real sockets with reqwest; and [`InProcessApp`], its
//! application called with no server and no port (`actix_web::test`), for
//! handlers that only answer a request. Not to be confused with
//! `loggate::Gateway` (the started registry and server it runs) or
//! `crate::node::GatewayProcess` (the real binary as a child process).

use std::rc::Rc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::Method;
use actix_web::test::TestRequest;
use futures_util::future::LocalBoxFuture;
use loggate::Config;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{ETL_TOKEN, SseClient, WAIT};

/// A gateway running in this process, on a thread of its own and an
/// ephemeral port; it stops when dropped.
pub struct InProcessGateway {
    pub running: loggate::GatewayThread,
    /// Keeps no idle connections, so a test's requests never hold a slot.
    pub client: reqwest::Client,
}

/// The defaults on 127.0.0.1:0 with two workers, then `adjust`.
pub fn config(adjust: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    c.server.host = "127.0.0.1".into();
    c.server.port = 0;
    c.server.workers = 2;
    c.server.shutdown_timeout_secs = 5;
    // Tests that need the disk store ask for it with a directory of
    // their own; two gateways must never share one.
    c.history.store = loggate::config::StoreKind::Memory;
    adjust(&mut c);
    c
}

pub fn start() -> InProcessGateway {
    start_with(|_| {})
}

pub fn start_with(adjust: impl FnOnce(&mut Config)) -> InProcessGateway {
    let running = loggate::spawn(config(adjust)).expect("gateway starts");
    InProcessGateway {
        running,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
    }
}

impl InProcessGateway {
    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// POSTs a JSON body with the etl token; returns status and JSON answer.
    pub async fn publish(&self, body: &Value) -> (StatusCode, Value) {
        self.publish_raw(ETL_TOKEN, "application/json", body.to_string().into_bytes())
            .await
    }

    /// POSTs any body with any service token (none if empty).
    pub async fn publish_raw(
        &self,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let base = self.url("");
        crate::http::publish(&self.client, &base, token, content_type, body, WAIT).await
    }

    /// Opens an SSE stream on `/api/logs/stream?{query}` and waits for its
    /// `ready` event.
    pub async fn subscribe(&self, query: &str) -> SseClient {
        let url = self.url(&format!("/api/logs/stream?{query}"));
        SseClient::open(crate::sse::stream_client().get(url), WAIT).await
    }

    /// POSTs `body` to `path` with `headers`; the response, answered in time.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        tokio::time::timeout(WAIT, req.send())
            .await
            .expect("answered in time")
            .expect("request")
    }

    /// GET that returns status and JSON (or the text as a JSON string).
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let res = tokio::time::timeout(WAIT, self.client.get(self.url(path)).send())
            .await
            .expect("answered in time")
            .expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Polls `check` on the registry's stats until it holds.
    pub async fn wait_for_registry(
        &self,
        what: &str,
        check: impl Fn(&loggate::registry::RegistryStats) -> bool,
    ) -> loggate::registry::RegistryStats {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let stats = self.running.registry_stats().await.expect("stats");
            if check(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let (_, v) = self.get_json("/metrics").await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The value of one series of `/metrics`, e.g.
    /// `loggate_events_published_total{service="etl",source="otlp"}`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        crate::metric_value(&self.metrics().await, series)
    }
}

/// The gateway's application called in this process, with no server and
/// no port (`actix_web::test`), the way axum's examples call
/// `app().oneshot(...)`: for handlers that answer a request and need no
/// socket. Build it inside an actix system (`#[actix_web::test]`); the
/// registry it started stops when it is dropped.
pub struct InProcessApp {
    call: Call,
    data: loggate::server::AppData,
}

type Call = Box<dyn Fn(TestRequest) -> LocalBoxFuture<'static, HttpResponse>>;

/// The defaults of [`config`], called in process.
pub async fn in_process() -> InProcessApp {
    in_process_with(|_| {}).await
}

/// [`config`] with `adjust`, called in process.
pub async fn in_process_with(adjust: impl FnOnce(&mut Config)) -> InProcessApp {
    let data = loggate::server::app_data(config(adjust)).expect("app data");
    let app = loggate::http::app(data.state.clone(), data.ai.clone());
    let service = Rc::new(actix_web::test::init_service(app).await);
    let call: Call = Box::new(move |req: TestRequest| {
        let service = Rc::clone(&service);
        Box::pin(async move {
            // What the server would send: the answer, or the error turned
            // into one, as the HTTP layer does.
            match actix_web::test::try_call_service(&*service, req.to_request()).await {
                Ok(res) => res.into_parts().1.map_into_boxed_body(),
                Err(e) => e.error_response(),
            }
        })
    });
    InProcessApp { call, data }
}

/// A request as the server hands it to the application, from a loopback
/// peer (the limits key on the peer's address).
pub fn request(method: Method, path: &str) -> TestRequest {
    TestRequest::default()
        .method(method)
        .uri(path)
        .peer_addr(([127, 0, 0, 1], 40000).into())
}

/// An answer of the in-process app, read whole, in reqwest's types so
/// assertions read as they do against a socket.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }

    /// A header that must be there.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("a visible-ASCII header")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or as a JSON string when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::String(self.text()))
    }
}

impl InProcessApp {
    /// The state the handlers share (registry, limits, metrics).
    pub fn state(&self) -> &actix_web::web::Data<loggate::state::AppState> {
        &self.data.state
    }

    /// The application's answer to `req` (see [`request`]), read whole.
    pub async fn call(&self, req: TestRequest) -> Reply {
        let res = tokio::time::timeout(WAIT, (self.call)(req))
            .await
            .expect("answered in time");
        let status = StatusCode::from_u16(res.status().as_u16()).expect("a status");
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in res.headers() {
            headers.append(
                reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).expect("name"),
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()).expect("value"),
            );
        }
        let body = actix_web::body::to_bytes(res.into_body())
            .await
            .unwrap_or_else(|_| panic!("the body of a {status} answer"));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET that returns status and JSON (or the text as a JSON string).
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let reply = self.call(request(Method::GET, path)).await;
        (reply.status, reply.json())
    }

    /// POSTs `body` to `path` with `headers`.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<bytes::Bytes>,
    ) -> Reply {
        let mut req = request(Method::POST, path).set_payload(body.into());
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        self.call(req).await
    }

    /// POSTs a JSON body with the etl token; returns status and JSON answer.
    pub async fn publish(&self, body: &Value) -> (StatusCode, Value) {
        self.publish_raw(ETL_TOKEN, "application/json", body.to_string())
            .await
    }

    /// POSTs any body with any service token (none if empty) to the
    /// publish endpoint.
    pub async fn publish_raw(
        &self,
        token: &str,
        content_type: &str,
        body: impl Into<bytes::Bytes>,
    ) -> (StatusCode, Value) {
        let mut headers = vec![("content-type", content_type)];
        if !token.is_empty() {
            headers.push(("x-service-token", token));
        }
        let reply = self.post("/api/logs/publish", &headers, body).await;
        (reply.status, reply.json())
    }

    /// Asks the registry for its size.
    pub async fn registry_stats(&self) -> loggate::registry::RegistryStats {
        self.data
            .state
            .registry
            .send(loggate::registry::GetStats)
            .await
            .expect("registry stats")
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.call(request(Method::GET, "/metrics")).await.text()
    }

    /// The value of one series of `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        crate::metric_value(&self.metrics().await, series)
    }
}

impl Drop for InProcessApp {
    fn drop(&mut self) {
        self.data.registry_arbiter.stop();
    }
}
