//! NATS: the bridge actor that joins loggate nodes into a cluster, and the
//! ingest of Fly.io's log bus.
//!
//! One [`NatsBridge`] actor per configured link owns its async-nats client
//! (which reconnects by itself, with a capped backoff) and the link's
//! [`LinkStatus`], read by `/ready` and `/health`.
//!
//! - **Cluster** (`NATS_URL`): the registry hands every event it accepted
//!   from a local publisher to [`ClusterOutbox::offer`], a bounded queue: when
//!   NATS is slow or down, the queue fills and further events are dropped and
//!   counted rather than held. The bridge publishes each on
//!   `<prefix>.<service>[.<workspace>[.<resource>]]` with the event's JSON
//!   (without its id) as payload and metadata in NATS headers (origin node,
//!   level, times); [`cluster`] owns that format. Every node subscribes to
//!   `<prefix>.>`, drops its own echoes by the origin header, checks the
//!   rest with [`cluster::decode_cluster`] and publishes what passes into
//!   its registry, which gives them local ids, fans them out and keeps them
//!   in history.
//! - **Fly.io** (`FLY_ORG` + `ACCESS_TOKEN`): see [`fly`]; **ingest rules**
//!   on the cluster connection: see [`rules`].
//!
//! Whoever can publish on these subjects can inject events, so no inbound
//! message is trusted: each gets the checks of an HTTP publish (size up to
//! `publish.max_event_bytes`, fields, level, timestamp, `meta`), is encoded
//! afresh rather than passed through, and a refusal is counted in
//! `loggate_nats_refused_total{link,reason}` (and as `direction="invalid"`).
//! Who may publish is NATS's to decide, through its credentials and
//! per-user subject permissions.
//!
//! Nothing here blocks the registry or an HTTP handler: the registry only
//! `try_send`s into the outbound queue, and inbound events reach the
//! registry through its bounded mailbox.

pub mod cluster;
pub mod fly;
pub mod rules;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use async_nats::{Client, ConnectOptions, HeaderMap};
use bytes::{BufMut, Bytes, BytesMut};

use crate::channel::ChannelName;
use crate::event::{EventTimes, Level, NewEvent};
use crate::ingest::{PublishError, Received};
use crate::metrics::{Metrics, label};
use crate::registry::{Origin, Publish, Registry};
use cluster::{HEADER_LEVEL, HEADER_ORIGIN, HEADER_RECEIVED, HEADER_TIMESTAMP};

/// The longest wait between reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// The live state of one NATS link, shared with the HTTP probes.
#[derive(Debug)]
pub struct LinkStatus {
    pub name: &'static str,
    client: OnceLock<Client>,
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

    fn set_error(&self, e: Option<String>) {
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
    pub password: Option<String>,
    pub token: Option<String>,
    pub creds_file: Option<std::path::PathBuf>,
}

async fn connect(
    conn: Connection,
    status: Arc<LinkStatus>,
    metrics: Arc<Metrics>,
) -> Result<Client, String> {
    let events = Arc::clone(&status);
    let slow = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut opts = ConnectOptions::new()
        .name("loggate")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100u64.saturating_mul(1 << attempts.min(10)))
                .min(MAX_RECONNECT_DELAY)
        })
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
        opts = opts.user_and_password(u.clone(), p.clone());
    }
    if let Some(t) = &conn.token {
        opts = opts.token(t.clone());
    }
    if let Some(path) = &conn.creds_file {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    opts.connect(conn.url.as_str())
        .await
        .map_err(|e| e.to_string())
}

/// One event on its way out to the cluster.
#[derive(Debug)]
pub struct ClusterMessage {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

/// The registry's side of the outbound queue.
#[derive(Clone)]
pub struct ClusterOutbox {
    tx: tokio::sync::mpsc::Sender<ClusterMessage>,
    node_id: Arc<str>,
    prefix: Arc<str>,
    metrics: Arc<Metrics>,
}

impl ClusterOutbox {
    /// Queues an accepted local event for the cluster without waiting; a
    /// full queue (NATS slow or down) drops it and counts the drop.
    pub fn offer(&self, channel: &ChannelName, level: Level, times: EventTimes, body_tail: &Bytes) {
        let subject = cluster::subject(&self.prefix, channel);
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_ORIGIN, self.node_id.as_ref());
        headers.insert(HEADER_LEVEL, level.as_str());
        headers.insert(HEADER_TIMESTAMP, times.timestamp_ms.to_string().as_str());
        headers.insert(HEADER_RECEIVED, times.received_ms.to_string().as_str());
        let mut payload = BytesMut::with_capacity(body_tail.len() + 1);
        payload.put_u8(b'{');
        payload.put_slice(body_tail);
        let msg = ClusterMessage {
            subject,
            headers,
            payload: payload.freeze(),
        };
        if self.tx.try_send(msg).is_err() {
            self.metrics
                .dropped(label::dropped::NATS_BACKLOG, channel.service(), 1);
        }
    }
}

/// What a link does with its connection.
pub enum Role {
    Cluster {
        node_id: Arc<str>,
        prefix: Arc<str>,
        outbound: tokio::sync::mpsc::Receiver<ClusterMessage>,
        /// Generic ingest rules, read on the same connection.
        rules: Vec<rules::IngestRule>,
    },
    Fly(fly::FlyIngest),
}

/// The actor that owns one NATS link.
pub struct NatsBridge {
    connection: Connection,
    role: Option<Role>,
    status: Arc<LinkStatus>,
    registry: Addr<Registry>,
    metrics: Arc<Metrics>,
    /// The cluster node id, to drop our own echoes.
    node_id: Option<Arc<str>>,
    /// The cluster subject prefix, which inbound subjects must start with.
    prefix: Arc<str>,
    /// `publish.max_event_bytes`: NATS messages get no larger allowance
    /// than HTTP publishers.
    max_event_bytes: usize,
    fly: Option<Arc<fly::FlyIngest>>,
    rules: Vec<rules::IngestRule>,
}

/// The cluster's outbound queue (for the registry) and the role of the
/// bridge that drains it. Built before the registry, which needs the
/// outbox, while the bridge needs the registry's address.
pub fn cluster_channel(
    prefix: &str,
    node_id: &str,
    backlog: usize,
    rules: Vec<rules::IngestRule>,
    metrics: Arc<Metrics>,
) -> (ClusterOutbox, Role) {
    let (tx, rx) = tokio::sync::mpsc::channel(backlog.max(1));
    let node_id: Arc<str> = Arc::from(node_id);
    let prefix: Arc<str> = Arc::from(prefix);
    let outbox = ClusterOutbox {
        tx,
        node_id: Arc::clone(&node_id),
        prefix: Arc::clone(&prefix),
        metrics,
    };
    let role = Role::Cluster {
        node_id,
        prefix,
        outbound: rx,
        rules,
    };
    (outbox, role)
}

impl NatsBridge {
    pub fn new(
        connection: Connection,
        role: Role,
        registry: Addr<Registry>,
        metrics: Arc<Metrics>,
        max_event_bytes: usize,
    ) -> Self {
        let (name, node_id, prefix) = match &role {
            Role::Cluster {
                node_id, prefix, ..
            } => ("cluster", Some(Arc::clone(node_id)), Arc::clone(prefix)),
            Role::Fly(_) => ("fly", None, Arc::from("")),
        };
        NatsBridge {
            connection,
            role: Some(role),
            status: LinkStatus::new(name),
            registry,
            metrics,
            node_id,
            prefix,
            max_event_bytes,
            fly: None,
            rules: Vec::new(),
        }
    }

    pub fn status(&self) -> Arc<LinkStatus> {
        Arc::clone(&self.status)
    }
}

/// Inbound NATS messages that were ready together, and the subscription
/// they came through.
struct Inbound(Vec<async_nats::Message>, Source);

/// Most messages handed to the registry in one `Publish`. Batching is what
/// lets a node keep up with a busy cluster: one registry round trip per
/// message caps intake far below what NATS delivers, and async-nats drops
/// what a subscription cannot buffer.
const INBOUND_BATCH: usize = 512;

#[derive(Clone, Copy)]
enum Source {
    /// The link's own subscription: cluster events or Fly's log bus.
    Main,
    /// A generic ingest rule, by index.
    Rule(usize),
}

impl Actor for NatsBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let conn = self.connection.clone();
        let status = Arc::clone(&self.status);
        let role = self.role.take();
        let metrics = Arc::clone(&self.metrics);
        let fut = async move {
            let client = connect(conn, Arc::clone(&status), metrics).await?;
            let _ = status.client.set(client.clone());
            let (subject, queue) = match &role {
                Some(Role::Cluster { prefix, .. }) => (format!("{prefix}.>"), None),
                Some(Role::Fly(f)) => (f.subject(), f.queue.clone()),
                None => return Err("bridge started twice".to_string()),
            };
            let main = match queue {
                Some(q) => client.queue_subscribe(subject, q).await,
                None => client.subscribe(subject).await,
            }
            .map_err(|e| e.to_string())?;
            let mut subscribers = vec![(Source::Main, main)];
            if let Some(Role::Cluster { rules, .. }) = &role {
                for (i, rule) in rules.iter().enumerate() {
                    let sub = client
                        .subscribe(rule.subject.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                    subscribers.push((Source::Rule(i), sub));
                }
            }
            Ok::<_, String>((client, subscribers, role))
        };
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((client, subscribers, role)) => {
                for (source, sub) in subscribers {
                    let batches = futures_util::StreamExt::ready_chunks(sub, INBOUND_BATCH);
                    ctx.add_stream(futures_util::StreamExt::map(batches, move |m| {
                        Inbound(m, source)
                    }));
                }
                match role {
                    Some(Role::Cluster {
                        mut outbound,
                        rules,
                        ..
                    }) => {
                        act.rules = rules;
                        // The publishing loop: one message at a time, so a
                        // stalled connection stalls this loop and fills the
                        // bounded queue instead of memory.
                        let metrics = Arc::clone(&act.metrics);
                        actix::spawn(async move {
                            let out = metrics
                                .nats_messages
                                .with_label_values(&[label::nats::CLUSTER, label::nats::OUT]);
                            let mut batch = Vec::with_capacity(INBOUND_BATCH);
                            while outbound.recv_many(&mut batch, INBOUND_BATCH).await > 0 {
                                for m in batch.drain(..) {
                                    match client
                                        .publish_with_headers(m.subject, m.headers, m.payload)
                                        .await
                                    {
                                        Ok(()) => out.inc(),
                                        Err(e) => tracing::warn!(error = %e, "NATS publish failed"),
                                    }
                                }
                            }
                        });
                    }
                    Some(Role::Fly(f)) => act.fly = Some(Arc::new(f)),
                    None => {}
                }
            }
            Err(e) => {
                tracing::error!(link = act.status.name, error = %e, "NATS link failed");
                act.status.set_error(Some(e));
            }
        }));
    }
}

impl StreamHandler<Inbound> for NatsBridge {
    fn handle(&mut self, Inbound(batch, source): Inbound, ctx: &mut Self::Context) {
        let mut events = Vec::with_capacity(batch.len());
        for msg in &batch {
            if let Some(event) = self.inbound_event(msg, source) {
                events.push(event);
            }
        }
        if events.is_empty() {
            return;
        }
        // Fly messages read through a queue group reach only this node, so
        // this node shares them with the cluster; without one every node
        // reads them all and none may share.
        let origin = match &self.fly {
            Some(f) if f.queue.is_some() => Origin::Local,
            _ => Origin::Cluster,
        };
        // `wait`: batches go to the registry one after another, so events
        // keep the order NATS gave them, and the registry's bounded mailbox
        // pushes back on this link.
        let send = self.registry.send(Publish { events, origin });
        ctx.wait(send.into_actor(self).map(|_, _, _| ()));
    }

    fn finished(&mut self, _: &mut Self::Context) {
        tracing::warn!(link = self.status.name, "NATS subscription ended");
    }
}

impl NatsBridge {
    /// One inbound message as an event, counted; `None` for our own cluster
    /// echoes and for messages refused by the checks an HTTP publish gets.
    fn inbound_event(&self, msg: &async_nats::Message, source: Source) -> Option<NewEvent> {
        let header = |name: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str())
        };
        let subject = msg.subject.as_str();
        let max = self.max_event_bytes;
        let (link, result) = match (&self.fly, source) {
            (_, Source::Rule(i)) => {
                let rule = self.rules.get(i)?;
                let event = rules::to_event(rule, subject, &msg.payload, &Received::now(), max);
                ("rules", event)
            }
            (Some(f), Source::Main) => {
                let event = f
                    .to_event(subject, &msg.payload, max)
                    .map(|(event, plain)| {
                        if plain {
                            self.metrics
                                .nats_messages
                                .with_label_values(&[label::nats::FLY, label::nats::PLAIN])
                                .inc();
                        }
                        event
                    });
                ("fly", event)
            }
            (None, Source::Main) => {
                if header(HEADER_ORIGIN) == self.node_id.as_deref() {
                    return None; // our own echo
                }
                let headers = cluster::ClusterHeaders {
                    level: header(HEADER_LEVEL),
                    timestamp_ms: header(HEADER_TIMESTAMP),
                    received_ms: header(HEADER_RECEIVED),
                };
                let event =
                    cluster::decode_cluster(&self.prefix, subject, headers, &msg.payload, max);
                ("cluster", event)
            }
        };
        self.metrics
            .nats_messages
            .with_label_values(&[link, label::nats::IN])
            .inc();
        result.inspect_err(|e| self.refused(link, subject, e)).ok()
    }

    fn refused(&self, link: &str, subject: &str, e: &PublishError) {
        self.metrics
            .nats_messages
            .with_label_values(&[link, label::nats::INVALID])
            .inc();
        self.metrics
            .nats_refused
            .with_label_values(&[link, e.code()])
            .inc();
        tracing::debug!(link, subject, reason = e.code(), error = %e, "NATS message refused");
    }
}
