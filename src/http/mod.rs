//! The HTTP surface: the route table, extractor error handling, and the
//! handlers that belong to no other concern.
//!
//! The route table is the top of the house: it imports every handler, and
//! nothing imports it. Handlers live with their concern (publishing in
//! `ingest::http`, streams in `session::{sse, ws}`) or here: probes and
//! metrics in [`health`], the admin scope in [`admin`], history pages in
//! [`history`], the channel listing in [`channels`], the metrics dashboard
//! in [`dashboard`]. What handlers
//! share is `crate::state::AppState`. Every error leaves as the JSON body
//! of `crate::error`.

pub mod admin;
pub mod channels;
pub mod connections;
pub mod dashboard;
pub mod health;
pub mod history;
pub mod ui;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// Longest excerpt of a parser's message (which may quote client input)
/// an error answer carries.
const MAX_PARSER_MESSAGE: usize = 200;

fn clipped(message: String) -> String {
    match message.char_indices().nth(MAX_PARSER_MESSAGE) {
        Some((i, _)) => format!("{}…", &message[..i]),
        None => message,
    }
}

/// The application each worker serves: CORS, the shared state, the AI
/// chat's own app data and the route table. The server builds one per worker; tests call it in process
/// through `actix_web::test::init_service`, without a socket.
pub fn app(
    state: web::Data<crate::state::AppState>,
    ai: web::Data<crate::ai::Ai>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let production = state.config.is_production();
    actix_web::App::new()
        .wrap(cors(&state.config.auth))
        .app_data(state)
        .app_data(ai)
        .configure(move |cfg| routes(cfg, production))
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
    .service(probe("/").route(get_or_head().to(ui::to_viewer)))
    .service(probe("/ui").route(get_or_head().to(ui::to_viewer)))
    .service(probe("/ui/").route(get_or_head().to(ui::asset)))
    .service(probe("/ui/{file}").route(get_or_head().to(ui::asset)))
    .service(probe("/healthz").route(get_or_head().to(health::healthz)))
    .service(probe("/health").route(get_or_head().to(health::health)))
    .service(probe("/ready").route(get_or_head().to(health::ready)))
    .service(probe("/metrics").route(get_or_head().to(health::metrics)))
    .service(only("/metrics/ws", "GET").route(web::get().to(dashboard::metrics_websocket)))
    .service(only("/api/logs/publish", "POST").route(web::post().to(ingest::publish)))
    .service(only("/v1/logs", "POST").route(web::post().to(crate::ingest::otlp::export)))
    .service(only("/loki/api/v1/push", "POST").route(web::post().to(crate::ingest::loki::push)))
    .service(only("/api/logs/stream", "GET").route(web::get().to(sse::stream)))
    .service(only("/api/logs/ws", "GET").route(web::get().to(ws::websocket)))
    .service(only("/api/logs/stream/status", "GET").route(web::get().to(admin::stream_status)))
    .service(only("/api/logs/history", "GET").route(web::get().to(history::history)))
    .service(only("/api/logs/channels", "GET").route(web::get().to(channels::channels)))
    .service(only("/api/logs/chat", "POST").route(web::post().to(crate::ai::http::chat)))
    .service(only("/chat", "POST").route(web::post().to(crate::ai::http::chat)));
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

/// CORS from `ALLOWED_ORIGINS`. `*` answers `*` and never allows
/// credentials: a page of any site may read what it can authenticate for
/// with a header or `?token=`, never with a visitor's cookie (which the
/// gate ignores from foreign origins anyway). Listed origins get their own
/// origin back, with credentials, so their pages can send the
/// `loggate_token` cookie.
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
            header::HeaderName::from_static("x-prev-cursor"),
        ])
        .max_age(3600);
    if auth.any_origin() {
        cors = cors.allow_any_origin().send_wildcard();
    } else {
        for origin in &auth.allowed_origins {
            cors = cors.allowed_origin(origin);
        }
        cors = cors.supports_credentials();
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

/// Lets a handler return `ApiError` directly as its response.
impl actix_web::Responder for ApiError {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}
