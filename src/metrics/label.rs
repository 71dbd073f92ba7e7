//! Every label value besides service names and error codes, named once.
//! [`Metrics::new`](super::Metrics::new) creates each combination at zero, so a series exists
//! from the start and `rate()` or an alert on it works before its first
//! increment.

/// `transport`: how a subscriber is connected
/// (`delivery::Transport::as_str`).
pub mod transport {
    pub const SSE: &str = "sse";
    pub const WEBSOCKET: &str = "websocket";
    pub const ALL: [&str; 2] = [SSE, WEBSOCKET];
}

/// `source` of `events_published_total` and `publish_rejected_total`:
/// the way events came in.
pub mod source {
    /// `POST /api/logs/publish`.
    pub const HTTP: &str = "http";
    /// OTLP/HTTP, `POST /v1/logs`.
    pub const OTLP: &str = "otlp";
    /// The Loki push API, `POST /loki/api/v1/push`.
    pub const LOKI: &str = "loki";
    /// Fly.io's log bus and the NATS subject rules (not cluster peers:
    /// their events were counted by the node that accepted them).
    pub const NATS: &str = "nats";
    pub const ALL: [&str; 4] = [HTTP, OTLP, LOKI, NATS];
    /// The sources that answer a request, and so count refusals.
    pub const REQUESTS: [&str; 3] = [HTTP, OTLP, LOKI];
}

/// `reason` of `events_dropped_total`.
pub mod dropped {
    /// A subscriber's queue was full; its oldest events went.
    pub const SLOW_CONSUMER: &str = "slow_consumer";
    /// The queue of events for the cluster was full (NATS slow or down).
    pub const NATS_BACKLOG: &str = "nats_backlog";
    /// async-nats dropped messages a subscription could not buffer.
    pub const NATS_SLOW_CONSUMER: &str = "nats_slow_consumer";
    /// Events another node accepted never arrived here (a hole in its
    /// cluster sequence). Which service they were of is unknown, so
    /// they are counted under `other`.
    pub const CLUSTER_LOSS: &str = "cluster_loss";
    pub const ALL: [&str; 4] = [
        SLOW_CONSUMER,
        NATS_BACKLOG,
        NATS_SLOW_CONSUMER,
        CLUSTER_LOSS,
    ];
}

/// `what` of `history_recovered_total`: what a start found damaged in the
/// history store and dealt with.
pub mod recovered {
    /// The newest segment ended inside a record (a crash mid-write); the
    /// torn record was cut off.
    pub const TORN_TAIL: &str = "torn_tail";
    /// The newest segment ended in bytes that fail their checksum; cut off
    /// from there.
    pub const CORRUPT_TAIL: &str = "corrupt_tail";
    /// An older segment could not be read to its end; set aside whole.
    pub const CORRUPT_SEGMENT: &str = "corrupt_segment";
    pub const ALL: [&str; 3] = [TORN_TAIL, CORRUPT_TAIL, CORRUPT_SEGMENT];
}

/// `limit` of `rate_limited_total`.
pub mod limit {
    pub const PUBLISH: &str = "publish";
    /// A service's publish bytes per second (`PUBLISH_BYTES_PER_SEC`).
    pub const PUBLISH_BYTES: &str = "publish_bytes";
    /// A large publish body found every decode slot taken for the
    /// whole wait (`503 ingest_busy`).
    pub const DECODE_SLOTS: &str = "decode_slots";
    pub const CONNECT: &str = "connect";
    pub const CONNECT_TABLE_FULL: &str = "connect_table_full";
    pub const HISTORY: &str = "history";
    pub const HISTORY_TABLE_FULL: &str = "history_table_full";
    pub const CHAT: &str = "chat";
    pub const CHAT_TABLE_FULL: &str = "chat_table_full";
    pub const ALL: [&str; 9] = [
        PUBLISH,
        PUBLISH_BYTES,
        DECODE_SLOTS,
        CONNECT,
        CONNECT_TABLE_FULL,
        HISTORY,
        HISTORY_TABLE_FULL,
        CHAT,
        CHAT_TABLE_FULL,
    ];
}

/// `reason` of `idempotency_evicted_total`: why a remembered
/// `Idempotency-Key` was forgotten before its window ended.
pub mod idempotency {
    /// `publish.idempotency_max_keys` keys were remembered.
    pub const MAX_KEYS: &str = "max_keys";
    /// The remembered answers took their whole byte budget
    /// (`ingest::idempotency::MAX_BYTES`).
    pub const MAX_BYTES: &str = "max_bytes";
    pub const ALL: [&str; 2] = [MAX_KEYS, MAX_BYTES];
}

/// `reason` of `connections_rejected_total`.
pub mod rejected {
    /// `MAX_CONNECTIONS` reached.
    pub const CONNECTION_LIMIT: &str = "connection_limit";
    /// `MAX_CONNECTIONS_PER_IP` reached for the client's address.
    pub const PER_ADDRESS_LIMIT: &str = "per_address_limit";
    pub const ALL: [&str; 2] = [CONNECTION_LIMIT, PER_ADDRESS_LIMIT];
}

/// `reason` of `disconnects_total`: sessions the gateway ended.
pub mod disconnect {
    /// A WebSocket frame declared more than the client-frame limit.
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    /// A WebSocket frame the codec could not read.
    pub const PROTOCOL_ERROR: &str = "protocol_error";
    /// The client made the gateway queue more replies than it read.
    pub const CONTROL_OVERFLOW: &str = "control_overflow";
    /// No answer to pings for three keepalive intervals.
    pub const DEAD_PEER: &str = "dead_peer";
    /// An SSE reader whose queue stayed full with nothing written for
    /// `sse.stall_timeout_secs`.
    pub const STALLED: &str = "stalled";
    pub const ALL: [&str; 5] = [
        FRAME_TOO_LARGE,
        PROTOCOL_ERROR,
        CONTROL_OVERFLOW,
        DEAD_PEER,
        STALLED,
    ];
}

/// Labels of the `ai_*` metrics.
pub mod ai {
    /// `tool` of `ai_tool_calls_total`: the tools, and `unknown` for a
    /// name the model made up.
    pub const TOOLS: [&str; 7] = [
        "list_channels",
        "search_logs",
        "count_by",
        "top_patterns",
        "get_context",
        "get_stats",
        UNKNOWN_TOOL,
    ];
    pub const UNKNOWN_TOOL: &str = "unknown";
    /// `outcome` of `ai_chats_total`: answered; stopped by a bound
    /// (rounds, tokens, time) with a partial answer; the model server
    /// failed; the client went away.
    pub const ANSWERED: &str = "answered";
    pub const STOPPED: &str = "stopped";
    pub const UPSTREAM_ERROR: &str = "upstream_error";
    pub const CANCELLED: &str = "cancelled";
    pub const OUTCOMES: [&str; 4] = [ANSWERED, STOPPED, UPSTREAM_ERROR, CANCELLED];
    /// `reason` of `ai_upstream_errors_total`.
    pub const STATUS: &str = "status";
    pub const TRANSPORT: &str = "transport";
    pub const TIMEOUT: &str = "timeout";
    pub const GARBAGE: &str = "garbage";
    pub const TOO_LARGE: &str = "too_large";
    pub const UPSTREAM_REASONS: [&str; 5] = [STATUS, TRANSPORT, TIMEOUT, GARBAGE, TOO_LARGE];
    /// `kind` of `ai_tokens_total`.
    pub const PROMPT: &str = "prompt";
    pub const COMPLETION: &str = "completion";
}

/// `link` and `direction` of `nats_messages_total`.
pub mod nats {
    pub const CLUSTER: &str = "cluster";
    pub const FLY: &str = "fly";
    pub const RULES: &str = "rules";
    /// The JetStream stream, as a link of `nats_connected` (1 once
    /// it is known to exist).
    pub const JETSTREAM: &str = "jetstream";
    pub const IN: &str = "in";
    pub const OUT: &str = "out";
    pub const INVALID: &str = "invalid";
    pub const PLAIN: &str = "plain";
    /// `reason` of `nats_refused_total{link="cluster"}`: a sequence
    /// number further past the expected one than a node can have gone
    /// since its number last moved. Forged; not counted as loss.
    pub const IMPLAUSIBLE_SEQUENCE: &str = "implausible_sequence";
    /// `reason` of `nats_refused_total{link="cluster"}`: a sequence mark
    /// below what its origin was already heard at.
    pub const SEQUENCE_REWOUND: &str = "sequence_rewound";
    /// The refusals of a cluster message for its number, not its content.
    pub const SEQUENCE_REFUSALS: [&str; 2] = [IMPLAUSIBLE_SEQUENCE, SEQUENCE_REWOUND];
    /// The directions each link counts.
    pub fn directions(link: &str) -> &'static [&'static str] {
        match link {
            CLUSTER => &[IN, OUT, INVALID],
            FLY => &[IN, INVALID, PLAIN],
            _ => &[IN, INVALID],
        }
    }
}
