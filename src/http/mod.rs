//! The HTTP surface: shared state, routes, and extractor error handling.
//!
//! Owns [`AppState`] (what every handler may reach) and the route table. The
//! handlers themselves live with their concern: publishing in
//! `ingest::http`, streams in `session::sse`, probes and metrics in
//! [`health`]. Every error leaves as the JSON body of [`error`].

pub mod error;
pub mod health;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::ServiceTokens;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::{Registry, RegistryGauges};
use crate::session::{Connections, SessionId};
use error::ApiError;

/// Everything a handler may reach, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Addr<Registry>,
    pub metrics: Arc<Metrics>,
    pub tokens: ServiceTokens,
    pub connections: Arc<Connections>,
    /// The registry's counts, readable without a message round trip.
    pub gauges: Arc<RegistryGauges>,
    /// Set once on SIGTERM: new publishes and streams get 503 from then on.
    pub shutting_down: AtomicBool,
    pub started: Instant,
    next_session: AtomicU64,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        registry: Addr<Registry>,
        metrics: Arc<Metrics>,
        gauges: Arc<RegistryGauges>,
    ) -> Self {
        AppState {
            tokens: ServiceTokens::new(&config.service_tokens),
            connections: Connections::new(config.server.max_connections, Arc::clone(&metrics)),
            config,
            registry,
            metrics,
            gauges,
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            next_session: AtomicU64::new(1),
        }
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
    .route("/metrics", web::get().to(health::metrics))
    .route(
        "/api/logs/publish",
        web::post().to(crate::ingest::http::publish),
    )
    .route(
        "/api/logs/stream",
        web::get().to(crate::session::sse::stream),
    );
    if !production {
        cfg.route("/test/logs", web::post().to(crate::ingest::http::test_logs));
    }
    cfg.default_service(web::to(not_found));
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
