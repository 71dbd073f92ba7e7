//! The stream as a link of its own for the probes: `/ready` is 503 until
//! it is known to exist, since publishes cannot be taken before, and
//! `/health` shows its state (`waiting`, `checking`, `ready`) and the
//! last problem.

use super::JetStreamPublisher;
use crate::metrics::label;

impl crate::state::Link for JetStreamPublisher {
    fn name(&self) -> &'static str {
        label::nats::JETSTREAM
    }

    fn is_connected(&self) -> bool {
        self.is_ready()
    }

    fn to_json(&self) -> serde_json::Value {
        let (state, stream, problem) = self.health();
        serde_json::json!({"state": state, "stream": stream, "last_error": problem})
    }
}
