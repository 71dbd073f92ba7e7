//! Wiring and lifecycle: start the registry and the HTTP server, stop them
//! gracefully.
//!
//! [`serve`] takes a bound listener and a shutdown future, as mini-redis's
//! `server::run` does, so tests inject their own shutdown and port 0. On
//! shutdown (SIGTERM/SIGINT in the binary): new publishes and streams get
//! 503, the registry ends every session with its transport's shutdown frame
//! and refuses new work, the streams drain what they hold and end, and the
//! HTTP server stops, waiting at most `server.shutdown_timeout_secs` for the
//! slowest client. [`spawn`] runs all of it on a thread of its own for tests
//! and the benchmark. [`app_data`] builds what the handlers share (registry,
//! state, the AI chat's data) with no server and no port: [`Gateway::start`]
//! serves it, and in-process tests call the application on it.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{HttpServer, web};
use anyhow::Context as _;

use crate::ai::Ai;
use crate::config::Config;
use crate::http;
use crate::ingest::PublishError;
use crate::metrics::Metrics;
use crate::nats;
use crate::registry::history::{HistoryLimits, SharedHistory};
use crate::registry::{self, GetStats, Registry, RegistryGauges, RegistryStats, Shutdown, Start};
use crate::state::AppState;
use crate::store::{self, StoreKind, StoreSettings, WriterHandle};

/// A started gateway: the registry and the HTTP server, not yet awaited.
pub struct Gateway {
    addr: SocketAddr,
    server: actix_web::dev::Server,
    state: web::Data<AppState>,
    ai: web::Data<Ai>,
    registry_arbiter: actix::Arbiter,
    store: Option<WriterHandle>,
}

impl Gateway {
    /// Starts the registry and the HTTP server on `listener`. Must be called
    /// inside an actix system (`actix_web::rt::System`).
    pub fn start(config: Config, listener: TcpListener) -> anyhow::Result<Gateway> {
        let addr = listener.local_addr().context("listener has no address")?;
        let AppData {
            state,
            ai,
            registry_arbiter,
            store,
        } = app_data(config)?;
        let config = Arc::clone(&state.config);
        let (app_state, app_ai) = (state.clone(), ai.clone());
        let mut server = HttpServer::new(move || http::app(app_state.clone(), app_ai.clone()))
            .disable_signals()
            // Lets a session reset a socket actix would wait on forever.
            .on_connect(crate::session::socket::on_connect)
            // A subscriber that hangs up must be forgotten at once. With
            // half-closed connections allowed (actix's default) an EOF from an
            // idle SSE client is not acted on until a write fails, up to a
            // keepalive interval later.
            .h1_allow_half_closed(false)
            .shutdown_timeout(config.server.shutdown_timeout_secs)
            // SSE clients hold connections open; the cap on those is ours
            // (`MAX_CONNECTIONS`), so actix's per-worker cap must not bite first.
            .max_connections(config.server.max_connections + 1024)
            .backlog(2048);
        if config.server.workers > 0 {
            server = server.workers(config.server.workers);
        }
        let server = server
            .listen(listener)
            .with_context(|| format!("cannot serve on {addr}"))?
            .run();
        // Refused in production (config validation); here they only warn,
        // before anything else, so a misspelt JWT_SECRET is not missed.
        for stray in &config.stray_env {
            tracing::warn!("environment: {stray}");
        }
        if state.subscriber_auth.is_open() {
            tracing::warn!(
                "subscriptions are OPEN: anyone who can reach {addr} can read every channel; set JWT_SECRET, JWT_PUBLIC_KEY_FILE or AUTH_TOKEN"
            );
        }
        tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "loggate listening on http://{addr}");
        Ok(Gateway {
            addr,
            server,
            state,
            ai,
            registry_arbiter,
            store,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The AI chat's settings, client and slots (app data beside the state).
    pub fn ai(&self) -> web::Data<Ai> {
        self.ai.clone()
    }

    /// Serves until `shutdown` completes, then stops gracefully.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let state = self.state.clone();
        actix_web::rt::spawn(async move {
            shutdown.await;
            begin_shutdown(&state).await;
            handle.stop(true).await;
        });
        let served = self.server.await.context("HTTP server failed");
        // Last: the registry refuses new work since the shutdown began, so
        // the store is closed behind everything it accepted.
        if let Some(store) = self.store {
            match actix_web::rt::task::spawn_blocking(move || store.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("history: closing the store failed: {e}"),
                Err(e) => tracing::error!("history: closing the store failed: {e}"),
            }
        }
        served?;
        self.registry_arbiter.stop();
        tracing::info!("stopped");
        Ok(())
    }
}

/// What the application's handlers share, built without a server or a
/// port: [`Gateway::start`] serves it, and tests hand it to
/// [`http::app`] through `actix_web::test` to call handlers in process.
pub struct AppData {
    pub state: web::Data<AppState>,
    /// The AI chat's settings, client and slots, app data of their own.
    pub ai: web::Data<Ai>,
    /// The registry's thread: it runs as long as this is not stopped, so
    /// whoever holds the data stops it when done.
    pub registry_arbiter: actix::Arbiter,
    /// The durable store's writer, closed last at a stop (`None`: history
    /// in memory, or from the JetStream stream).
    pub store: Option<WriterHandle>,
}

/// Starts the registry (on an arbiter of its own), the cluster links the
/// configuration asks for and the limits' pruning, and builds the state
/// and the AI chat's data. Must be called inside an actix system.
pub fn app_data(config: Config) -> anyhow::Result<AppData> {
    let config = Arc::new(config);
    let new_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let metrics = Arc::new(Metrics::new(
        config.service_tokens.keys().map(String::as_str),
        PublishError::CODES,
    ));
    let gauges = Arc::new(RegistryGauges::default());
    let node_id = format!("{new_epoch:x}-{}", std::process::id());
    // The cluster mode, chosen once: the registry is told what it
    // shares, handlers where publishes go, and the links get the rest.
    let cluster = nats::Cluster::from_config(&config, &node_id, &metrics);
    let history = SharedHistory::new(HistoryLimits::from(&config.history));
    let jetstream = matches!(cluster.sharing(), registry::Sharing::JetStream);
    let (start, store, kept_keys) = open_store(&config, new_epoch, &history, &metrics, jetstream)?;
    let (registry, registry_arbiter) = registry::start(Registry::new(
        start,
        history.clone(),
        Arc::clone(&metrics),
        Arc::clone(&gauges),
        cluster.sharing(),
    ));
    let jetstream = cluster.publisher();
    let links = nats::start_links(&config, &node_id, cluster, &registry, &metrics);
    let state = AppState::new(
        Arc::clone(&config),
        registry,
        history,
        metrics,
        gauges,
        links,
        jetstream,
    )?;
    if let Some(store) = &store {
        // Before serving: a retry after the restart finds its key.
        let taken = state.idempotency.import(kept_keys);
        state
            .idempotency
            .keep_with(store.key_sink(Arc::clone(&state.metrics)));
        if taken > 0 {
            tracing::info!(
                keys = taken,
                "idempotency keys kept from before the restart"
            );
        }
    }
    let state = web::Data::new(state);
    // Only the chat handler and `/health` reach it, as their own app
    // data: the state below them never names the AI.
    let ai = web::Data::new(Ai::new(&config.ai)?);
    let pruned = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(crate::limits::PRUNE_INTERVAL);
        loop {
            tick.tick().await;
            pruned.limits.prune();
        }
    });
    Ok(AppData {
        state,
        ai,
        registry_arbiter,
        store,
    })
}

/// How far a run that stopped without closing its store (killed, or the
/// machine went down) may have handed out ids past what it stored: the
/// next run continues after this many, so no id is ever given to two
/// events. The writer is never more than its queue (64 MiB of events)
/// plus one sync interval behind; a billion ids is far beyond both.
const RESTART_ID_JUMP: u64 = 1 << 30;

/// Opens the durable store (unless history is kept in memory, or comes
/// from the JetStream stream), fills `history` with its newest events and
/// says where the registry's ids continue.
fn open_store(
    config: &Config,
    new_epoch: u64,
    history: &SharedHistory,
    metrics: &Arc<Metrics>,
    jetstream: bool,
) -> anyhow::Result<(Start, Option<WriterHandle>, Vec<crate::idempotency::Entry>)> {
    let fresh = Start {
        epoch: new_epoch,
        ..Start::default()
    };
    if config.history.store == StoreKind::Memory {
        return Ok((fresh, None, Vec::new()));
    }
    if jetstream {
        tracing::info!("history comes from the JetStream stream; the disk store is not used");
        return Ok((fresh, None, Vec::new()));
    }
    let settings = StoreSettings::from(config);
    let dir = settings.dir.clone();
    let started = std::time::Instant::now();
    let (opened, recovered) = store::open(settings, metrics)?;
    let epoch = recovered.epoch.unwrap_or(new_epoch);
    let (last_seq, lost_after) = if recovered.clean {
        (recovered.last_seq, None)
    } else {
        tracing::warn!(
            last_stored = recovered.last_seq,
            "history: the last run did not stop cleanly; ids continue {RESTART_ID_JUMP} later, and a resume from between is told restart_loss"
        );
        (
            recovered.last_seq + RESTART_ID_JUMP,
            Some(recovered.last_seq),
        )
    };
    {
        let now = crate::event::now_ms();
        let mut h = history.write();
        if let Some(first) = recovered.recent.first() {
            // Older events than these are not in memory: a resume from
            // before them is told so.
            h.forget_through(first.id.seq.saturating_sub(1));
        } else if recovered.last_seq > 0 {
            h.forget_through(recovered.last_seq);
        }
        for event in &recovered.recent {
            h.push(event, now);
        }
        let s = h.stats();
        metrics.history_events.set(s.events as i64);
        metrics.history_bytes.set(s.bytes as i64);
        metrics.history_channels.set(s.channels as i64);
    }
    tracing::info!(
        dir = %dir.display(),
        epoch = format_args!("{epoch:x}"),
        last_seq = recovered.last_seq,
        first_seq = recovered.first_seq.unwrap_or(0),
        in_memory = recovered.recent.len(),
        ms = started.elapsed().as_millis() as u64,
        "history: store opened"
    );
    let (appender, handle) = opened.start_writer(epoch, Arc::clone(metrics))?;
    Ok((
        Start {
            epoch,
            last_seq,
            lost_after,
            store: Some(appender),
        },
        Some(handle),
        recovered.keys,
    ))
}

/// The first half of a graceful stop: from here on publishes and new
/// streams get 503, and every session is sent its shutdown frame and closed
/// so its stream drains and ends. The HTTP server is still up.
async fn begin_shutdown(state: &AppState) {
    if state.shutting_down.swap(true, Ordering::AcqRel) {
        return;
    }
    tracing::info!("shutting down: refusing new work, telling clients");
    let told = state.registry.send(Shutdown).await.unwrap_or_default();
    tracing::info!(sessions = told, "clients told; draining");
}

/// Runs the gateway on `listener` until `shutdown` completes, then stops it
/// gracefully. Must run inside an actix system.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    Gateway::start(config, listener)?.run_until(shutdown).await
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                return;
            }
            _ => tracing::warn!("cannot install signal handlers; falling back to Ctrl-C"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A gateway running on a thread of its own (tests, benchmarks).
pub struct GatewayThread {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    state: web::Data<AppState>,
    ai: web::Data<Ai>,
}

impl GatewayThread {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Asks the registry for its size.
    pub async fn registry_stats(&self) -> anyhow::Result<RegistryStats> {
        Ok(self.state.registry.send(GetStats).await?)
    }

    /// The state its handlers share, for serving the same application in a
    /// test without a socket (`crate::http::app`).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The AI chat's app data, for [`http::app`] in tests.
    pub fn ai(&self) -> web::Data<Ai> {
        self.ai.clone()
    }

    /// What SIGTERM does first (503 for new work, `shutdown` frames to every
    /// client), without closing the listener: lets tests observe draining.
    pub async fn begin_shutdown(&self) {
        begin_shutdown(&self.state).await;
    }

    /// Graceful shutdown, as on SIGTERM; waits for the server to exit.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("gateway thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for GatewayThread {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Binds `config`'s address and runs the gateway on a new thread. Returns
/// once it is listening.
pub fn spawn(config: Config) -> anyhow::Result<GatewayThread> {
    let listener = TcpListener::bind(config.listen_addr()?)?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("loggate".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let gateway = Gateway::start(config, listener)?;
                let _ = ready_tx.send((gateway.state(), gateway.ai()));
                gateway
                    .run_until(async move {
                        let _ = stop_rx.await;
                    })
                    .await
            })
        })?;
    let (state, ai) = match ready_rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(shared) => shared,
        Err(_) => {
            drop(stop_tx);
            return match thread.join() {
                Ok(Err(e)) => Err(e.context("gateway did not start")),
                _ => Err(anyhow::anyhow!("gateway did not start")),
            };
        }
    };
    Ok(GatewayThread {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
        state,
        ai,
    })
}
