//! The HTTP surface: shared state, routes, and extractor error handling.
//!
//! Owns [`AppState`] (what every handler may reach) and the route table. The
//! handlers themselves live with their concern: publishing in
//! `ingest::http`, streams in `session::sse`, probes and metrics in
//! [`health`]. Every error leaves as the JSON body of [`error`].

pub mod admin;
pub mod error;
pub mod health;
pub mod history;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::{ServiceTokens, SubscriberAuth};
use crate::config::{Config, TrustProxy};
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::registry::{Registry, RegistryGauges};
use crate::session::{Connections, SessionId};
use error::ApiError;

/// Everything a handler may reach, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Addr<Registry>,
    /// Read directly by the history endpoint, never through the registry.
    pub history: crate::registry::history::SharedHistory,
    pub metrics: Arc<Metrics>,
    pub tokens: ServiceTokens,
    pub subscriber_auth: SubscriberAuth,
    pub limits: RateLimits,
    pub connections: Arc<Connections>,
    /// The registry's counts, readable without a message round trip.
    pub gauges: Arc<RegistryGauges>,
    /// Set once on SIGTERM: new publishes and streams get 503 from then on.
    pub shutting_down: AtomicBool,
    pub started: Instant,
    /// This run's id epoch: cursors and resume ids of other runs differ.
    pub epoch: u64,
    /// The configured NATS links; `/ready` is 503 while one is down.
    pub nats: Vec<Arc<crate::nats::LinkStatus>>,
    next_session: AtomicU64,
}

impl AppState {
    pub fn new(
        epoch: u64,
        config: Arc<Config>,
        registry: Addr<Registry>,
        history: crate::registry::history::SharedHistory,
        metrics: Arc<Metrics>,
        gauges: Arc<RegistryGauges>,
        nats: Vec<Arc<crate::nats::LinkStatus>>,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(AppState {
            tokens: ServiceTokens::new(&config.service_tokens),
            subscriber_auth: SubscriberAuth::new(&config.auth)?,
            limits: RateLimits::new(crate::limits::Rates {
                publish: config.limits.publish_rate_per_sec,
                connect: config.limits.connect_rate_per_ip,
                history: config.limits.history_rate_per_ip,
            }),
            connections: Connections::new(
                config.server.max_connections,
                config.server.max_connections_per_ip,
                Arc::clone(&metrics),
            ),
            config,
            registry,
            history,
            metrics,
            gauges,
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            epoch,
            nats,
            next_session: AtomicU64::new(1),
        })
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub fn next_session_id(&self) -> SessionId {
        SessionId(self.next_session.fetch_add(1, Ordering::Relaxed))
    }
}

/// Longest excerpt of a parser's message (which may quote client input)
/// an error answer carries.
const MAX_PARSER_MESSAGE: usize = 200;

fn clipped(message: String) -> String {
    match message.char_indices().nth(MAX_PARSER_MESSAGE) {
        Some((i, _)) => format!("{}…", &message[..i]),
        None => message,
    }
}

/// The route table; `production` leaves out the dev-only endpoints. Each
/// path answers its own methods (probes and `/metrics` also `HEAD`, for
/// load balancers) and 405 with `Allow` for any other.
pub fn routes(cfg: &mut web::ServiceConfig, production: bool) {
    use crate::ingest::http as ingest;
    use crate::session::{sse, ws};
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            clipped(e.to_string()),
        )
        .into()
    }))
    .app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|e, _| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    clipped(e.to_string()),
                )
                .into()
            }),
    )
    .service(probe("/healthz").route(get_or_head().to(health::healthz)))
    .service(probe("/health").route(get_or_head().to(health::health)))
    .service(probe("/ready").route(get_or_head().to(health::ready)))
    .service(probe("/metrics").route(get_or_head().to(health::metrics)))
    .service(only("/metrics/ws", "GET").route(web::get().to(ws::metrics_websocket)))
    .service(only("/api/logs/publish", "POST").route(web::post().to(ingest::publish)))
    .service(only("/api/logs/stream", "GET").route(web::get().to(sse::stream)))
    .service(only("/api/logs/ws", "GET").route(web::get().to(ws::websocket)))
    .service(only("/api/logs/stream/status", "GET").route(web::get().to(admin::stream_status)))
    .service(only("/api/logs/history", "GET").route(web::get().to(history::history)));
    if !production {
        cfg.service(only("/test/logs", "POST").route(web::post().to(ingest::test_logs)));
    }
    cfg.service(admin::scope());
    cfg.default_service(web::to(not_found));
}

/// A route for GET and HEAD (actix sends no body for HEAD).
fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A probe: GET and HEAD.
fn probe(path: &str) -> actix_web::Resource {
    only(path, "GET, HEAD")
}

/// A path whose other methods are answered 405 with `Allow: allow`.
fn only(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        let mut res = actix_web::ResponseError::error_response(&ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed here; use {allow}", req.method()),
        ));
        res.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        res
    }))
}

/// CORS from `ALLOWED_ORIGINS`. Credentials are allowed so that browsers
/// can send the `loggate_token` cookie; production refuses `*` with cookies.
pub fn cors(auth: &crate::config::AuthConfig) -> actix_cors::Cors {
    use actix_web::http::header;
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-service-token"),
            header::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-next-cursor"),
        ])
        .supports_credentials()
        .max_age(3600);
    if auth.any_origin() {
        cors = cors.allow_any_origin();
    } else {
        for origin in &auth.allowed_origins {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

async fn not_found(req: HttpRequest) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route for {} {}",
            req.method(),
            req.path().chars().take(128).collect::<String>()
        ),
    )
}

/// The client's address: the header the operator said to trust
/// (`TRUST_PROXY`), or the socket's peer address. Only that one header is
/// read: a client can send any of them, and only the one the proxy in
/// front of loggate sets (or appends to) is not the client's own claim.
/// Without the header (a request that did not come through the proxy) the
/// peer address is used.
pub fn client_ip(req: &HttpRequest, trust: TrustProxy) -> Option<std::net::IpAddr> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let from_header = match trust {
        TrustProxy::Off => None,
        TrustProxy::Fly => header("fly-client-ip").and_then(|v| v.trim().parse().ok()),
        // Several headers concatenate as one list; the last entry is the
        // address the nearest proxy saw.
        TrustProxy::XForwardedFor => req
            .headers()
            .get_all("x-forwarded-for")
            .last()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok()),
    };
    from_header.or_else(|| req.peer_addr().map(|a| a.ip()))
}

/// Lets a handler return `ApiError` directly as its response.
impl actix_web::Responder for ApiError {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}
