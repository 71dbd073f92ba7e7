//! `POST /api/logs/publish` bodies: every input is parsed both as JSON (one
//! event or an array) and as NDJSON, as the `etl` service. Every accepted
//! event must encode to a well-formed event (see `check_event`).

use loggate::ingest::{BodyFormat, PublishError, parse_body};
use loggate_fuzz::{LIMITS, check_event, received};

fn main() {
    loggate_fuzz::fuzz!(|body: &[u8]| {
        let now = received();
        let json = parse_body(body, BodyFormat::Json, "etl", &now, LIMITS);
        let ndjson = parse_body(body, BodyFormat::Ndjson, "etl", &now, LIMITS);
        // One object on one line is the same request in both formats (NDJSON
        // also counts the line's surrounding whitespace against the size).
        let one_object =
            !body.contains(&b'\n') && body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if one_object && !matches!(ndjson, Err(PublishError::EventTooLarge { .. })) {
            assert_eq!(json.is_ok(), ndjson.is_ok(), "{json:?} / {ndjson:?}");
        }
        for events in [json, ndjson].into_iter().flatten() {
            assert!(events.len() <= LIMITS.max_batch_events);
            for event in events {
                assert_eq!(check_event(event)["service"], "etl");
            }
        }
    });
}
