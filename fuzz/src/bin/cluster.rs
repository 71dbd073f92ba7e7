//! Messages on the cluster subject, from any NATS publisher: the first
//! line of the input is the subject, the second the three header values
//! (level, timestamp ms, received ms, separated by spaces), the rest the
//! payload. An accepted message becomes a well-formed event on the channel
//! the subject names, with the level and times its headers name.

use loggate::nats::wire::{ClusterHeaders, decode_cluster, subject};
use loggate_fuzz::{LIMITS, check_event, split_line};

fn main() {
    loggate_fuzz::fuzz!(|data: &[u8]| {
        let (subj, rest) = split_line(data);
        let (headers, payload) = split_line(rest);
        let (Ok(subj), Ok(headers)) = (std::str::from_utf8(subj), std::str::from_utf8(headers))
        else {
            return;
        };
        let mut values = headers.split(' ');
        let headers = ClusterHeaders {
            level: values.next(),
            timestamp_ms: values.next(),
            received_ms: values.next(),
        };
        let Ok(event) = decode_cluster("loggate", subj, headers, payload, LIMITS.max_event_bytes)
        else {
            return;
        };
        assert_eq!(subject("loggate", &event.channel), subj);
        let json = check_event(event);
        // The header names the same level as the body, in any spelling
        // `Level::parse` reads.
        let level = headers.level.and_then(loggate::event::Level::parse);
        assert_eq!(json["level"], level.expect("a level header").as_str());
    });
}
