//! OTLP/HTTP log exports (`POST /v1/logs`): every input is read both as
//! protobuf and as OTLP/JSON, for the `etl` service's token. Every accepted
//! record must encode to a well-formed event (see `check_event`) of the
//! token's service, and no more records than a batch holds are accepted.

use loggate::ingest::otlp::{Encoding, parse};
use loggate_fuzz::{check_shipper_events, received, shipper_input};

fn main() {
    loggate_fuzz::fuzz!(|body: &[u8]| {
        let now = received();
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            check_shipper_events(parse(encoding, body, &shipper_input(&now)));
        }
    });
}
