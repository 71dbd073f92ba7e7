//! Loki pushes (`POST /loki/api/v1/push`): every input is read both as
//! snappy-compressed protobuf and as Loki's JSON, for the `etl` service's
//! token. Every accepted entry must encode to a well-formed event (see
//! `check_event`) of the token's service, no more entries than a batch
//! holds are accepted, and a label set parses to at most `MAX_LABELS`.

use loggate::ingest::loki::{Format, MAX_LABELS, parse, parse_labels};
use loggate_fuzz::{check_shipper_events, received, shipper_input};

fn main() {
    loggate_fuzz::fuzz!(|body: &[u8]| {
        let now = received();
        for format in [Format::SnappyProtobuf, Format::Json] {
            check_shipper_events(parse(format, body, &shipper_input(&now)));
        }
        if let Ok(text) = std::str::from_utf8(body)
            && let Ok(labels) = parse_labels(text)
        {
            assert!(labels.len() <= MAX_LABELS);
        }
    });
}
