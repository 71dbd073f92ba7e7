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
use crate::config::Config;
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
            connections: Connections::new(config.server.max_connections, Arc::clone(&metrics)),
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

/// The route table; `production` leaves out the dev-only endpoints.
pub fn routes(cfg: &mut web::ServiceConfig, production: bool) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string()).into()
    }))
    .app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|e, _| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()).into()
            }),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/health", web::get().to(health::health))
    .route("/ready", web::get().to(health::ready))
    .route("/metrics", web::get().to(health::metrics))
    .route(
        "/metrics/ws",
        web::get().to(crate::session::ws::metrics_websocket),
    )
    .route(
        "/api/logs/publish",
        web::post().to(crate::ingest::http::publish),
    )
    .route(
        "/api/logs/stream",
        web::get().to(crate::session::sse::stream),
    )
    .route("/api/logs/ws", web::get().to(crate::session::ws::websocket))
    .route(
        "/api/logs/stream/status",
        web::get().to(admin::stream_status),
    )
    .route("/api/logs/history", web::get().to(history::history));
    if !production {
        cfg.route("/test/logs", web::post().to(crate::ingest::http::test_logs));
    }
    cfg.service(admin::scope());
    cfg.default_service(web::to(not_found));
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
        .expose_headers([header::RETRY_AFTER])
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

/// The client's address. Behind a proxy (`TRUST_PROXY=true`) it is
/// `Fly-Client-IP`, else the last hop of `X-Forwarded-For` (the one our own
/// proxy appended; earlier hops are whatever the client claimed); otherwise
/// the peer address of the socket.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> Option<std::net::IpAddr> {
    if trust_proxy {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(ip) = header("fly-client-ip").and_then(|v| v.trim().parse().ok()) {
            return Some(ip);
        }
        if let Some(ip) = header("x-forwarded-for")
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// Lets a handler return `ApiError` directly as its response.
impl actix_web::Responder for ApiError {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}
