//! Fly.io log-bus messages: the first line of the input is the NATS
//! subject, the rest the payload. An accepted message becomes a
//! well-formed event whose channel the subject alone names: a payload can
//! never move a line onto another app's channel.

use loggate::nats::fly::decode_fly;
use loggate_fuzz::{LIMITS, check_event, received, split_line};

const ORG: &str = "myorg";

fn main() {
    loggate_fuzz::fuzz!(|data: &[u8]| {
        let (subject, payload) = split_line(data);
        let Ok(subject) = std::str::from_utf8(subject) else {
            return;
        };
        let Ok(event) = decode_fly(ORG, subject, payload, &received(), LIMITS.max_event_bytes)
        else {
            return;
        };
        let json = check_event(event);
        let tokens: Vec<&str> = subject.split('.').collect();
        assert_eq!(json["service"], tokens[1], "{subject:?}");
        assert_eq!(json["workspace_id"], ORG);
        // (NATS never delivers an empty token; loggate then leaves the
        // resource out.)
        if let Some(instance) = tokens.get(3).filter(|i| !i.is_empty()) {
            assert_eq!(json["resource_id"], *instance, "{subject:?}");
        }
    });
}
