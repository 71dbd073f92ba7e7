//! What every session actor owns, whatever its transport: its id, its
//! outbox, its registration, and the expiry of its credential.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::delivery::SessionId;
use crate::delivery::outbox::Outbox;
use crate::registry::{Registry, SessionClosed};
use crate::state::AppState;

/// A session's response body was dropped: its client is gone.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct ClientGone;

/// Expiry timers further out than this are not armed (tokio's timer wheel
/// tops out near two years, and a token valid that long is as good as
/// permanent).
const MAX_EXPIRY_TIMER: Duration = Duration::from_secs(365 * 24 * 3600);

pub struct SessionCore {
    pub id: SessionId,
    pub outbox: Arc<Outbox>,
    pub registry: actix::Addr<Registry>,
    /// Counts live session actors, so a leak shows in `/health`.
    alive: prometheus::IntGauge,
    /// The stream ends then, so a token stops granting access when it says.
    expires_at: Option<SystemTime>,
    /// For the close log line.
    opened: Instant,
}

impl SessionCore {
    pub fn new(
        id: SessionId,
        outbox: Arc<Outbox>,
        state: &AppState,
        expires_at: Option<SystemTime>,
    ) -> Self {
        SessionCore {
            id,
            outbox,
            registry: state.registry.clone(),
            alive: state.metrics.session_actors.clone(),
            expires_at,
            opened: Instant::now(),
        }
    }

    /// Call from `Actor::started`: counts the actor and arms the expiry,
    /// which ends the stream with the transport's `expired` notice.
    pub fn started<A>(&self, ctx: &mut actix::Context<A>)
    where
        A: actix::Actor<Context = actix::Context<A>>,
    {
        use actix::AsyncContext;
        self.alive.inc();
        if let Some(at) = self.expires_at {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            if left < MAX_EXPIRY_TIMER {
                let outbox = Arc::clone(&self.outbox);
                ctx.run_later(left, move |_, _| outbox.expire());
            }
        }
    }

    /// Call from `Actor::stopping`: closes the outbox and deregisters.
    pub fn stopping(&self) {
        tracing::info!(
            session = %self.id,
            transport = self.outbox.transport().as_str(),
            seconds = self.opened.elapsed().as_secs(),
            "connection closed"
        );
        self.outbox.close_with(None);
        // One message per session, bounded by the connection cap.
        self.registry.do_send(SessionClosed { session: self.id });
    }

    /// Call from `Actor::stopped`.
    pub fn stopped(&self) {
        self.alive.dec();
    }
}
