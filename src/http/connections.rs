//! Open subscriber connections by transport, as `/health`, the admin
//! stats, the stream status and the metrics dashboard all show them: one
//! shape, read one way, so the four cannot drift apart.

use serde::Serialize;

use crate::delivery::Transport;
use crate::state::AppState;

/// `{"sse":N,"websocket":N[,"total":N]}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConnectionCounts {
    pub sse: i64,
    pub websocket: i64,
    /// Connection slots held, SSE and WebSocket together (`MAX_CONNECTIONS`
    /// counts these); left out where an answer's documented shape has no
    /// total (the stream status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
}

impl ConnectionCounts {
    /// The counts now, with the total.
    pub fn of(state: &AppState) -> Self {
        let open = |t: Transport| {
            state
                .metrics
                .connections
                .with_label_values(&[t.as_str()])
                .get()
        };
        ConnectionCounts {
            sse: open(Transport::Sse),
            websocket: open(Transport::WebSocket),
            total: Some(state.connections.count()),
        }
    }

    /// The counts by transport only.
    pub fn without_total(self) -> Self {
        ConnectionCounts {
            total: None,
            ..self
        }
    }
}
