//! The actor that owns one NATS link: connects, subscribes, hands what it
//! receives to the registry in batches (or, in JetStream mode, to the
//! stream), and on the cluster link starts its mode's work: core NATS's
//! publishing loop ([`super::core`]) or the JetStream consumer
//! ([`super::jetstream::consumer`]). In core mode it tells the registry
//! (`ClusterLoss`) when another node's sequence shows messages that never
//! arrived. A message whose number no node could have sent
//! (`wire::Followed`) is refused whole and counted
//! (`nats_refused_total{reason="implausible_sequence"}` or
//! `"sequence_rewound"`), never told as a loss.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::jetstream::{self, JetStreamPublisher};
use super::link::{Connection, LinkError, LinkStatus, connect};
use super::wire::{self, Followed, HEADER_ORIGIN, HEADER_SEQ, OriginSequences};
use super::{Cluster, fly, inbound, rules};
use crate::config::IngestRule;
use crate::event::NewEvent;
use crate::ingest::Received;
use crate::metrics::{Metrics, label};
use crate::registry::{ClusterLoss, Origin, Publish, Registry};

/// At most one loss notice to the registry per this long: each one costs a
/// pass over every session, and the origin and sequence headers are
/// whoever publishes on the cluster subjects. Losses in between add up.
const LOSS_INTERVAL: Duration = Duration::from_millis(500);
/// Most origins one loss notice names; the rest are added up under
/// [`OTHER_ORIGINS`].
const MAX_LOSS_ORIGINS: usize = 8;
const OTHER_ORIGINS: &str = "(other nodes)";

/// What a link does with its connection.
pub enum Role {
    Cluster {
        node_id: Arc<str>,
        prefix: Arc<str>,
        /// The cluster mode, handed over whole: core's outbound queue or
        /// JetStream's publisher and stream.
        cluster: Cluster,
        /// Generic ingest rules, read on the same connection.
        rules: Vec<IngestRule>,
        /// `nats.max_node_events_per_sec`: how fast another node's
        /// sequence can plausibly move.
        max_node_rate: u64,
    },
    Fly(fly::FlyIngest),
}

/// Where what a link reads goes.
#[derive(Clone)]
pub enum Intake {
    /// To this node's registry, as events of `Origin`.
    Registry(Origin),
    /// JetStream mode: to the stream, which hands them to every node.
    JetStream(JetStreamPublisher),
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
    intake: Intake,
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
        intake: Intake,
        registry: Addr<Registry>,
        metrics: Arc<Metrics>,
        max_event_bytes: usize,
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
            intake,
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

    /// Hands inbound events to where this link's events go, in order:
    /// `wait` keeps batches one after another, and the registry's bounded
    /// mailbox (or the stream's backlog) pushes back on this link.
    fn publish(&self, events: Vec<NewEvent>, ctx: &mut Context<Self>) {
        if events.is_empty() {
            return;
        }
        match &self.intake {
            Intake::Registry(origin) => {
                let origin = *origin;
                let send = self.registry.send(Publish {
                    events,
                    origin,
                    stored: None,
                });
                ctx.wait(send.into_actor(self).map(|_, _, _| ()));
            }
            Intake::JetStream(stream) => {
                let stream = stream.clone();
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
            }
        }
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

type Subscribed = (
    async_nats::Client,
    Vec<(Source, async_nats::Subscriber)>,
    Role,
);

/// Connects and subscribes to what `role` reads: the cluster subjects in
/// core mode (JetStream mode reads them from the stream), Fly's log bus,
/// and the ingest rules.
async fn subscribe(
    conn: Connection,
    status: Arc<LinkStatus>,
    metrics: Arc<Metrics>,
    role: Role,
) -> Result<Subscribed, LinkError> {
    let client = connect(conn, Arc::clone(&status), metrics).await?;
    let _ = status.client.set(client.clone());
    let (subject, queue) = match &role {
        Role::Cluster {
            cluster: Cluster::Core { .. },
            prefix,
            ..
        } => (Some(format!("{prefix}.>")), None),
        Role::Cluster { .. } => (None, None),
        Role::Fly(f) => (Some(f.subject()), f.queue.clone()),
    };
    let mut subscribers = Vec::new();
    if let Some(subject) = subject {
        let main = match queue {
            Some(q) => client.queue_subscribe(subject, q).await,
            None => client.subscribe(subject).await,
        }?;
        subscribers.push((Source::Main, main));
    }
    if let Role::Cluster { rules, cluster, .. } = &role {
        for (i, rule) in rules.iter().enumerate() {
            let subject = rule.subject.clone();
            // With JetStream one node takes each message and the stream
            // shares it; without, every node reads them all.
            let sub = match cluster {
                Cluster::JetStream { .. } => {
                    client.queue_subscribe(subject, RULES_QUEUE.into()).await
                }
                _ => client.subscribe(subject).await,
            }?;
            subscribers.push((Source::Rule(i), sub));
        }
    }
    Ok((client, subscribers, role))
}

impl NatsBridge {
    /// Connected: reads the subscriptions, and starts the mode's work.
    fn run(&mut self, (client, subscribers, role): Subscribed, ctx: &mut Context<Self>) {
        for (source, sub) in subscribers {
            let batches = futures_util::StreamExt::ready_chunks(sub, INBOUND_BATCH);
            ctx.add_stream(futures_util::StreamExt::map(batches, move |m| {
                Inbound(m, source)
            }));
        }
        let metrics = Arc::clone(&self.metrics);
        match role {
            Role::Cluster {
                cluster,
                rules,
                node_id,
                prefix,
                ..
            } => {
                self.rules = rules;
                match cluster {
                    Cluster::JetStream {
                        publisher,
                        settings,
                    } => {
                        let registry = self.registry.clone();
                        actix::spawn(jetstream::consumer::run(
                            client, publisher, settings, node_id, registry, metrics,
                        ));
                    }
                    Cluster::Core { outbound, .. } => {
                        actix::spawn(super::core::publish_loop(
                            client, outbound, prefix, node_id, metrics,
                        ));
                    }
                    Cluster::Off => {}
                }
            }
            Role::Fly(f) => self.fly = Some(Arc::new(f)),
        }
    }
}

impl Actor for NatsBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Losses held back by the notice interval, told once it passed.
        ctx.run_interval(LOSS_INTERVAL, |act, ctx| act.flush_losses(ctx));
        let Some(role) = self.role.take() else {
            return; // started twice
        };
        let conn = self.connection.clone();
        let status = Arc::clone(&self.status);
        let fut = subscribe(conn, status, Arc::clone(&self.metrics), role);
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok(subscribed) => act.run(subscribed, ctx),
            Err(e) => {
                tracing::error!(link = act.status.name, error = %e, "NATS link failed");
                act.status.set_error(Some(e.to_string()));
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
    /// One inbound message as an event, through [`inbound`]; `None` for
    /// our own cluster echoes, sequence marks, and messages refused.
    fn inbound_event(&mut self, msg: &async_nats::Message, source: Source) -> Option<NewEvent> {
        let subject = msg.subject.as_str();
        let max = self.max_event_bytes;
        match (&self.fly, source) {
            (_, Source::Rule(i)) => {
                let rule = self.rules.get(i)?;
                inbound::process_message(&self.metrics, label::nats::RULES, subject, || {
                    rules::decode_rule(rule, subject, &msg.payload, &Received::now(), max)
                })
            }
            (Some(f), Source::Main) => {
                inbound::process_message(&self.metrics, label::nats::FLY, subject, || {
                    let (event, plain) = f.decode(subject, &msg.payload, max)?;
                    if plain {
                        self.metrics
                            .nats_messages
                            .with_label_values(&[label::nats::FLY, label::nats::PLAIN])
                            .inc();
                    }
                    Ok(event)
                })
            }
            (None, Source::Main) => {
                if !self.follow(msg)? {
                    return None; // a sequence mark: not an event
                }
                let headers = msg.headers.as_ref();
                let prefix = &self.prefix;
                inbound::cluster_message(&self.metrics, prefix, subject, headers, &msg.payload, max)
            }
        }
    }

    /// Follows a core cluster message's origin sequence, before the
    /// content checks (a message refused there was received, not lost).
    /// `None` for our own echo and for a number no node could have sent
    /// (refused whole, as one with a bad field is, and counted); else
    /// whether it is an event (true) or a sequence mark.
    fn follow(&mut self, msg: &async_nats::Message) -> Option<bool> {
        let header = |name: &str| wire::header(msg.headers.as_ref(), name);
        let origin = header(HEADER_ORIGIN);
        if origin == self.node_id.as_deref() {
            return None; // our own echo
        }
        let seq = header(HEADER_SEQ).and_then(|s| s.parse::<u64>().ok());
        let mark = wire::is_mark(&self.prefix, msg.subject.as_str());
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
            if let Some(reason) = refused {
                inbound::count_refused_number(&self.metrics, reason, !mark, origin, seq);
                return None;
            }
        }
        Some(!mark)
    }
}
