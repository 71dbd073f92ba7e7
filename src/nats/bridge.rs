//! The actor that owns one NATS link: connects, subscribes, hands what it
//! receives to the registry in batches, and (in cluster mode) publishes
//! what the registry shares and tells the registry (`ClusterLoss`) when
//! another node's sequence shows messages that never arrived. A message
//! whose number no node could have sent (`wire::Followed`) is refused
//! whole and counted (`nats_refused_total{reason="implausible_sequence"}`
//! or `"sequence_rewound"`), never told as a loss.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::link::{Connection, LinkStatus, connect};
use super::stream::{self as js, StreamPublisher, StreamSettings};
use super::wire::{self, Followed, HEADER_ORIGIN, HEADER_SEQ, OriginSequences};
use super::{fly, rules};
use crate::config::IngestRule;
use crate::event::NewEvent;
use crate::ingest::Received;
use crate::metrics::{Metrics, label};
use crate::registry::outbound::ClusterOutbound;
use crate::registry::{ClusterLoss, Origin, Publish, Registry};

/// At most one loss notice to the registry per this long: each one costs a
/// pass over every session, and the origin and sequence headers are
/// whoever publishes on the cluster subjects. Losses in between add up.
const LOSS_INTERVAL: Duration = Duration::from_millis(500);
/// Most origins one loss notice names; the rest are added up under
/// [`OTHER_ORIGINS`].
const MAX_LOSS_ORIGINS: usize = 8;
const OTHER_ORIGINS: &str = "(other nodes)";
/// A node that has sent no event for this long sends its sequence mark,
/// and again each time as long as it stays quiet: a hole at the end of
/// what it sent is then seen within about this long, even if a mark is
/// itself lost in an outage. One small message a second per idle node.
const MARK_INTERVAL: Duration = Duration::from_secs(1);

/// How a cluster node shares what it accepts.
pub enum Sharing {
    /// Core NATS: what the registry queues for the cluster, published as
    /// it comes.
    Core(ClusterOutbound),
    /// JetStream: the stream every node reads, and what publishes to it.
    Stream(StreamPublisher, StreamSettings),
}

impl Sharing {
    /// JetStream mode's publisher.
    pub fn stream(&self) -> Option<&StreamPublisher> {
        match self {
            Sharing::Stream(p, _) => Some(p),
            Sharing::Core(_) => None,
        }
    }
}

/// What a link does with its connection.
pub enum Role {
    Cluster {
        node_id: Arc<str>,
        prefix: Arc<str>,
        sharing: Sharing,
        /// Generic ingest rules, read on the same connection.
        rules: Vec<IngestRule>,
        /// `nats.max_node_events_per_sec`: how fast another node's
        /// sequence can plausibly move.
        max_node_rate: u64,
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
    rules: Vec<IngestRule>,
    /// JetStream mode: what this link reads goes to the stream, not
    /// straight to the registry.
    stream: Option<StreamPublisher>,
    /// Where each origin node's cluster sequence stands, to see holes.
    sequences: OriginSequences,
    /// Losses not yet told to the registry, by origin.
    losses: Vec<(String, u64)>,
    last_loss_notice: Option<Instant>,
}

impl NatsBridge {
    pub fn new(
        connection: Connection,
        role: Role,
        registry: Addr<Registry>,
        metrics: Arc<Metrics>,
        max_event_bytes: usize,
        stream: Option<StreamPublisher>,
    ) -> Self {
        let (name, node_id, prefix, max_node_rate) = match &role {
            Role::Cluster {
                node_id,
                prefix,
                max_node_rate,
                ..
            } => (
                label::nats::CLUSTER,
                Some(Arc::clone(node_id)),
                Arc::clone(prefix),
                *max_node_rate,
            ),
            Role::Fly(_) => (label::nats::FLY, None, Arc::from(""), u64::MAX),
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
            stream,
            fly: None,
            rules: Vec::new(),
            sequences: OriginSequences::new(max_node_rate),
            losses: Vec::new(),
            last_loss_notice: None,
        }
    }

    /// Adds `lost` events of `origin` to what the registry will be told.
    fn note_loss(&mut self, origin: &str, lost: u64) {
        if let Some((_, n)) = self.losses.iter_mut().find(|(o, _)| o == origin) {
            *n = n.saturating_add(lost);
            return;
        }
        if self.losses.len() < MAX_LOSS_ORIGINS {
            self.losses.push((origin.to_owned(), lost));
            return;
        }
        match self.losses.iter_mut().find(|(o, _)| o == OTHER_ORIGINS) {
            Some((_, n)) => *n = n.saturating_add(lost),
            None => {
                // The last named slot becomes the sum of the rest.
                if let Some(last) = self.losses.last_mut() {
                    *last = (OTHER_ORIGINS.to_owned(), last.1.saturating_add(lost));
                }
            }
        }
    }

    /// Hands inbound events to the registry, in order.
    fn publish(&self, events: Vec<NewEvent>, ctx: &mut Context<Self>) {
        if events.is_empty() {
            return;
        }
        // JetStream mode: read through a queue group, so this node alone
        // has these; the stream hands them to every node. `wait` keeps
        // them in order and pushes back on this link while NATS is slow.
        if let Some(stream) = self.stream.clone() {
            let metrics = Arc::clone(&self.metrics);
            let publish = async move {
                if let Err(e) = stream.publish(&events).await {
                    metrics.dropped(
                        label::dropped::NATS_BACKLOG,
                        crate::metrics::OTHER_SERVICE,
                        events.len() as u64,
                    );
                    tracing::warn!(lost = events.len(), error = %e, "events for the cluster stream dropped");
                }
            };
            ctx.wait(publish.into_actor(self));
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

    /// Whether a loss notice may go out now.
    fn may_notify(&self) -> bool {
        self.last_loss_notice
            .is_none_or(|t| t.elapsed() >= LOSS_INTERVAL)
    }

    /// Tells the registry what was lost, unless it was told less than
    /// [`LOSS_INTERVAL`] ago (the interval timer tries again). Waits for
    /// the registry, so the notice comes before the events after the hole.
    fn flush_losses(&mut self, ctx: &mut Context<Self>) {
        if self.losses.is_empty() || !self.may_notify() {
            return;
        }
        self.last_loss_notice = Some(Instant::now());
        let losses = std::mem::take(&mut self.losses);
        for (origin, lost) in &losses {
            tracing::warn!(
                origin,
                lost,
                "cluster events from another node never arrived"
            );
        }
        let send = self.registry.send(ClusterLoss { losses });
        ctx.wait(send.into_actor(self).map(|_, _, _| ()));
    }

    pub fn status(&self) -> Arc<LinkStatus> {
        Arc::clone(&self.status)
    }
}

/// Inbound NATS messages that were ready together, and the subscription
/// they came through.
struct Inbound(Vec<async_nats::Message>, Source);

/// The queue group ingest rules are read through in JetStream mode.
const RULES_QUEUE: &str = "loggate-rules";

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
        // Losses held back by the notice interval, told once it passed.
        ctx.run_interval(LOSS_INTERVAL, |act, ctx| act.flush_losses(ctx));
        let conn = self.connection.clone();
        let status = Arc::clone(&self.status);
        let role = self.role.take();
        let metrics = Arc::clone(&self.metrics);
        let fut = async move {
            let client = connect(conn, Arc::clone(&status), metrics).await?;
            let _ = status.client.set(client.clone());
            let (subject, queue) = match &role {
                // JetStream mode reads the cluster's events from the stream.
                Some(Role::Cluster {
                    sharing: Sharing::Stream(..),
                    ..
                }) => (None, None),
                Some(Role::Cluster { prefix, .. }) => (Some(format!("{prefix}.>")), None),
                Some(Role::Fly(f)) => (Some(f.subject()), f.queue.clone()),
                None => return Err("bridge started twice".to_string()),
            };
            let mut subscribers = Vec::new();
            if let Some(subject) = subject {
                let main = match queue {
                    Some(q) => client.queue_subscribe(subject, q).await,
                    None => client.subscribe(subject).await,
                }
                .map_err(|e| e.to_string())?;
                subscribers.push((Source::Main, main));
            }
            if let Some(Role::Cluster { rules, sharing, .. }) = &role {
                for (i, rule) in rules.iter().enumerate() {
                    let subject = rule.subject.clone();
                    // With JetStream one node takes each message and the
                    // stream shares it; without, every node reads them all.
                    let sub = match sharing {
                        Sharing::Stream(..) => {
                            client.queue_subscribe(subject, RULES_QUEUE.into()).await
                        }
                        Sharing::Core(_) => client.subscribe(subject).await,
                    }
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
                        sharing: Sharing::Stream(publisher, settings),
                        rules,
                        node_id,
                        ..
                    }) => {
                        act.rules = rules;
                        let registry = act.registry.clone();
                        let metrics = Arc::clone(&act.metrics);
                        actix::spawn(js::run(
                            client, publisher, settings, node_id, registry, metrics,
                        ));
                    }
                    Some(Role::Cluster {
                        sharing: Sharing::Core(mut outbound),
                        rules,
                        node_id,
                        prefix,
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
                            loop {
                                let next = outbound.recv_many(&mut batch, INBOUND_BATCH);
                                let mark = match tokio::time::timeout(MARK_INTERVAL, next).await {
                                    Ok(0) => break, // the registry has stopped
                                    Ok(_) => None,
                                    Err(_) => Some(wire::encode_mark(
                                        &prefix,
                                        &node_id,
                                        outbound.last_offered(),
                                    )),
                                };
                                // Events count as sent messages; a mark does not.
                                let events = batch
                                    .drain(..)
                                    .map(|event| (wire::encode(&prefix, &node_id, &event), true));
                                for (m, counted) in events.chain(mark.map(|m| (m, false))) {
                                    match client
                                        .publish_with_headers(m.subject, m.headers, m.payload)
                                        .await
                                    {
                                        Ok(()) if counted => out.inc(),
                                        Ok(()) => {}
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
            let had_losses = self.losses.len();
            let event = self.inbound_event(msg, source);
            // A hole before this message: what came before it goes to the
            // registry first, then the notice, so subscribers see the gap
            // where it happened (unless a notice went out just now; then
            // it waits for the interval and comes later).
            if self.losses.len() > had_losses && self.may_notify() {
                self.publish(std::mem::take(&mut events), ctx);
                self.flush_losses(ctx);
            }
            events.extend(event);
        }
        self.flush_losses(ctx);
        self.publish(events, ctx);
    }

    fn finished(&mut self, _: &mut Self::Context) {
        tracing::warn!(link = self.status.name, "NATS subscription ended");
    }
}

impl NatsBridge {
    /// One inbound message as an event, counted; `None` for our own cluster
    /// echoes and for messages refused by the checks an HTTP publish gets.
    fn inbound_event(&mut self, msg: &async_nats::Message, source: Source) -> Option<NewEvent> {
        let header = |name: &str| wire::header(msg.headers.as_ref(), name);
        let subject = msg.subject.as_str();
        let max = self.max_event_bytes;
        let (link, result) = match (&self.fly, source) {
            (_, Source::Rule(i)) => {
                let rule = self.rules.get(i)?;
                let event = rules::decode_rule(rule, subject, &msg.payload, &Received::now(), max);
                (label::nats::RULES, event)
            }
            (Some(f), Source::Main) => {
                let event = f.decode(subject, &msg.payload, max).map(|(event, plain)| {
                    if plain {
                        self.metrics
                            .nats_messages
                            .with_label_values(&[label::nats::FLY, label::nats::PLAIN])
                            .inc();
                    }
                    event
                });
                (label::nats::FLY, event)
            }
            (None, Source::Main) => {
                let origin = header(HEADER_ORIGIN);
                if origin == self.node_id.as_deref() {
                    return None; // our own echo
                }
                let seq = header(HEADER_SEQ).and_then(|s| s.parse::<u64>().ok());
                let mark = wire::is_mark(&self.prefix, subject);
                // Followed before the content checks: a message refused
                // there was received, not lost.
                if let (Some(origin), Some(seq)) = (origin, seq) {
                    let forgotten = self.sequences.forgotten;
                    let now = Instant::now();
                    let followed = if mark {
                        self.sequences.mark(origin, seq, now)
                    } else {
                        self.sequences.observe(origin, seq, now)
                    };
                    if self.sequences.forgotten > forgotten {
                        self.metrics.cluster_origins_forgotten.inc();
                    }
                    let refused = match followed {
                        Followed::Lost(0) => None,
                        Followed::Lost(lost) => {
                            self.note_loss(origin, lost);
                            None
                        }
                        Followed::Implausible => Some(label::nats::IMPLAUSIBLE_SEQUENCE),
                        Followed::Rewound => Some(label::nats::SEQUENCE_REWOUND),
                    };
                    // A number no node could have sent: the message is
                    // refused whole, as one with a bad field is.
                    if let Some(reason) = refused {
                        super::count_refused_number(&self.metrics, reason, !mark, origin, seq);
                        return None;
                    }
                }
                if mark {
                    return None; // not an event, and not counted as one
                }
                let headers = wire::ClusterHeaders::of(msg.headers.as_ref());
                let event = wire::decode_cluster(&self.prefix, subject, headers, &msg.payload, max);
                (label::nats::CLUSTER, event)
            }
        };
        self.metrics
            .nats_messages
            .with_label_values(&[link, label::nats::IN])
            .inc();
        let event = result
            .inspect_err(|e| super::count_refused(&self.metrics, link, subject, e))
            .ok()?;
        // A peer's events were counted by the node that accepted them.
        if link != label::nats::CLUSTER {
            let service = event.channel.service();
            self.metrics.published(service, label::source::NATS, 1);
        }
        Some(event)
    }
}
