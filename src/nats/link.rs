//! A NATS link's connection and its live status, which `/ready`,
//! `/health`, `/metrics` and the admin stats read.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::{Client, ConnectOptions};

use super::backoff::Backoff;
use crate::config::Secret;
use crate::metrics::{Metrics, label};

/// Between reconnect attempts: 200 ms after the first failure, doubling,
/// at most 2 s.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));

/// Why a link could not be set up; shown as the link's `last_error`.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot read {}: {source}", path.display())]
    Credentials {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Connect(#[from] async_nats::ConnectError),
    #[error(transparent)]
    Subscribe(#[from] async_nats::SubscribeError),
}

/// The live state of one NATS link, shared with the HTTP probes.
#[derive(Debug)]
pub struct LinkStatus {
    pub name: &'static str,
    /// Set once connected; `pub(super)` for the bridge that connects.
    pub(super) client: OnceLock<Client>,
    last_error: Mutex<Option<String>>,
}

impl LinkStatus {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(LinkStatus {
            name,
            client: OnceLock::new(),
            last_error: Mutex::new(None),
        })
    }

    pub fn is_connected(&self) -> bool {
        self.client
            .get()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// `connecting`, `connected` or `disconnected`.
    pub fn state(&self) -> &'static str {
        match self.client.get().map(|c| c.connection_state()) {
            None | Some(async_nats::connection::State::Pending) => "connecting",
            Some(async_nats::connection::State::Connected) => "connected",
            Some(async_nats::connection::State::Disconnected) => "disconnected",
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = e;
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"state": self.state(), "last_error": self.last_error()})
    }
}

/// How to reach a NATS server.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    pub creds_file: Option<std::path::PathBuf>,
}

/// Connects (and keeps reconnecting) with a capped backoff; connection
/// events update `status` and count dropped messages.
pub async fn connect(
    conn: Connection,
    status: Arc<LinkStatus>,
    metrics: Arc<Metrics>,
) -> Result<Client, LinkError> {
    let events = Arc::clone(&status);
    let slow = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut opts = ConnectOptions::new()
        .name("loggate")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| RECONNECT.delay(attempts))
        .event_callback(move |event| {
            let status = Arc::clone(&events);
            let metrics = Arc::clone(&metrics);
            let slow = Arc::clone(&slow);
            async move {
                match &event {
                    // async-nats dropped a message this subscription could
                    // not buffer: count it, and warn without flooding.
                    async_nats::Event::SlowConsumer(_) => {
                        metrics.dropped(
                            label::dropped::NATS_SLOW_CONSUMER,
                            crate::metrics::OTHER_SERVICE,
                            1,
                        );
                        let n = slow.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if n.is_multiple_of(1000) {
                            tracing::warn!(
                                link = status.name,
                                dropped_so_far = n + 1,
                                "NATS slow consumer: messages dropped"
                            );
                        }
                    }
                    async_nats::Event::Connected => {
                        tracing::info!(link = status.name, "NATS connected");
                        status.set_error(None);
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(link = status.name, "NATS disconnected; reconnecting");
                        status.set_error(Some("disconnected".into()));
                    }
                    other => {
                        tracing::warn!(link = status.name, event = %other, "NATS");
                        status.set_error(Some(other.to_string()));
                    }
                }
            }
        });
    if let (Some(u), Some(p)) = (&conn.user, &conn.password) {
        opts = opts.user_and_password(u.clone(), p.expose().to_owned());
    }
    if let Some(t) = &conn.token {
        opts = opts.token(t.expose().to_owned());
    }
    if let Some(path) = &conn.creds_file {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|source| LinkError::Credentials {
                path: path.clone(),
                source,
            })?;
    }
    Ok(opts.connect(conn.url.as_str()).await?)
}

impl crate::state::Link for LinkStatus {
    fn name(&self) -> &'static str {
        self.name
    }

    fn is_connected(&self) -> bool {
        LinkStatus::is_connected(self)
    }

    fn to_json(&self) -> serde_json::Value {
        LinkStatus::to_json(self)
    }
}
