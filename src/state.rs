//! What every handler may reach: the shared state of one gateway.
//!
//! Built once by the server and handed to every worker. It holds the
//! runtime objects built from the configuration (token checks, rate
//! limits, connection slots), the registry's address and the history it
//! writes, metrics, the NATS links' status, the table of idempotency keys
//! and, in JetStream mode, the stream's publisher. It imports no handler, so
//! every handler can import it.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use actix::Addr;
use actix_web::HttpRequest;

use crate::auth::{AdminToken, ServiceTokens, SubscriberAuth};
use crate::config::{Config, ConfigError, TrustProxy};
use crate::delivery::SessionId;
use crate::event::{EventId, NewEvent};
use crate::idempotency;
use crate::limits::decode_slots::{DecodeSlots, SLOT_WAIT};
use crate::limits::slots::Connections;
use crate::limits::{RateLimits, Rates};
use crate::metrics::Metrics;
use crate::registry::history::SharedHistory;
use crate::registry::{Registry, RegistryGauges};

/// A link to an outside system the gateway depends on (the NATS links):
/// what the probes and stats need to know of it.
pub trait Link: Send + Sync {
    /// `cluster` or `fly`: the `link` label.
    fn name(&self) -> &'static str;
    fn is_connected(&self) -> bool;
    /// Its state and last error, for `/health` and the admin stats.
    fn to_json(&self) -> serde_json::Value;
}

/// Where accepted events go in JetStream mode, instead of the registry
/// (`nats::jetstream::JetStreamPublisher`): the stream, which answers
/// their ids in order, or why it did not take them. `msg_ids` is the
/// base of the events' `Nats-Msg-Id`s for a publish with an
/// `Idempotency-Key` (`idempotency::Claim::msg_id_base`), the
/// same on every node; without one each node numbers its own.
pub trait JetStreamPublish: Send + Sync {
    fn publish<'a>(
        &'a self,
        events: &'a [NewEvent],
        msg_ids: Option<&'a str>,
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<EventId>, JetStreamRefused>>;
}

/// Why the cluster stream took no publish: answered
/// `503 nats_unavailable` with this as the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JetStreamRefused {
    #[error(
        "the cluster stream is not reachable yet (NATS connecting); nothing was published, retry"
    )]
    Connecting,
    #[error(
        "the cluster stream is being checked again after an error; nothing was published, retry"
    )]
    Checking,
    #[error("the cluster stream has too many events waiting for it; nothing was published, retry")]
    Backlog,
    #[error("the cluster stream was made again while publishing; the events may be stored; retry")]
    Replaced,
    #[error(
        "the cluster stream did not confirm the events within {within_secs}s ({confirmed} of {of} confirmed; the others may yet be stored); retry"
    )]
    Unconfirmed {
        within_secs: u64,
        confirmed: usize,
        of: usize,
    },
}

/// Everything a handler may reach, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Addr<Registry>,
    /// Read directly by the history endpoint, never through the registry.
    pub history: SharedHistory,
    pub metrics: Arc<Metrics>,
    pub tokens: ServiceTokens,
    pub subscriber_auth: SubscriberAuth,
    pub admin_token: Option<AdminToken>,
    pub limits: RateLimits,
    /// Large publish bodies decoded at once (`publish.large_body_slots`).
    pub decode_slots: DecodeSlots,
    pub connections: Arc<Connections>,
    /// The registry's counts, readable without a message round trip.
    pub gauges: Arc<RegistryGauges>,
    /// Set once on SIGTERM: new publishes and streams get 503 from then on.
    pub shutting_down: AtomicBool,
    pub started: Instant,
    /// The configured NATS links; `/ready` is 503 while one is down.
    pub nats: Vec<Arc<dyn Link>>,
    /// JetStream mode: where publishes go instead of the registry
    /// (`nats::Cluster::publisher`).
    pub jetstream: Option<Arc<dyn JetStreamPublish>>,
    /// `Idempotency-Key`s answered, per service (`publish.idempotency_*`):
    /// on the HTTP workers, never on the registry's thread.
    pub idempotency: Arc<idempotency::Table>,
    next_session: AtomicU64,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        registry: Addr<Registry>,
        history: SharedHistory,
        metrics: Arc<Metrics>,
        gauges: Arc<RegistryGauges>,
        nats: Vec<Arc<dyn Link>>,
        jetstream: Option<Arc<dyn JetStreamPublish>>,
    ) -> Result<Self, ConfigError> {
        Ok(AppState {
            tokens: ServiceTokens::new(&config.service_tokens),
            subscriber_auth: SubscriberAuth::new(&config.auth)?,
            admin_token: config.auth.admin_token.as_ref().map(AdminToken::new),
            limits: RateLimits::new(Rates {
                publish: config.limits.publish_rate_per_sec,
                publish_bytes: config.publish.bytes_per_sec,
                connect: config.limits.connect_rate_per_ip,
                history: config.limits.history_rate_per_ip,
                chat_per_minute: config.ai.rate_per_minute,
            }),
            decode_slots: DecodeSlots::new(
                config.publish.large_body_slots,
                config.publish.large_body_bytes,
                SLOT_WAIT,
            ),
            connections: Connections::new(
                config.server.max_connections,
                config.server.max_connections_per_ip,
                Arc::clone(&metrics),
            ),
            idempotency: idempotency::Table::from_config(&config, &metrics),
            config,
            registry,
            history,
            metrics,
            gauges,
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            nats,
            jetstream,
            next_session: AtomicU64::new(1),
        })
    }

    /// The epoch of the ids this gateway hands out: cursors and resume ids
    /// of other runs (or, in JetStream mode, other streams) differ.
    pub fn epoch(&self) -> u64 {
        self.gauges.epoch.load(Ordering::Acquire)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub fn next_session_id(&self) -> SessionId {
        SessionId(self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    /// `{"state":"disabled"}` without NATS; else the overall state and each
    /// link's state and last error.
    pub fn links_json(&self) -> serde_json::Value {
        if self.nats.is_empty() {
            return serde_json::json!({"state": "disabled"});
        }
        let all_up = self.nats.iter().all(|l| l.is_connected());
        let each: serde_json::Map<String, serde_json::Value> = self
            .nats
            .iter()
            .map(|l| (l.name().to_owned(), l.to_json()))
            .collect();
        serde_json::json!({"state": if all_up { "connected" } else { "degraded" }, "links": each})
    }

    /// The client's address, as `TRUST_PROXY` says to read it.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        client_ip(req, self.config.server.trust_proxy)
    }
}

/// The client's address: the header the operator said to trust
/// (`TRUST_PROXY`), or the socket's peer address. Only that one header is
/// read: a client can send any of them, and only the one the proxy in
/// front of loggate sets (or appends to) is not the client's own claim.
/// Without the header (a request that did not come through the proxy) the
/// peer address is used.
pub fn client_ip(req: &HttpRequest, trust: TrustProxy) -> Option<IpAddr> {
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
