//! What the fuzz targets in `src/bin/` share: fixed inputs (so a crashing
//! input reproduces exactly) and the invariants every accepted event must
//! hold once encoded, whichever ingest path produced it.
//!
//! Each target is one small file in `src/bin/` that feeds its input to one
//! library entry point and asserts what must hold; a failed assertion is a
//! panic, which the `afl` crate turns into an abort, which AFL++ records as
//! a crash.
//!
//! A target's loop is [`fuzz!`]: AFL++'s persistent loop under
//! `cargo afl build` (scripts/fuzz.sh), and a replay of the files named on
//! the command line under a plain `cargo build`, which needs no AFL++ runtime.
//! scripts/test.sh builds the targets that way and replays each one's seeds,
//! so a change that breaks a target, or makes a seed fail its assertions,
//! fails the tests.

use std::path::{Path, PathBuf};

use loggate::channel::ChannelName;
use loggate::event::{Event, EventId, NewEvent};
use loggate::ingest::{Limits, Received};
use serde_json::Value;

#[cfg(fuzzing)]
#[doc(hidden)]
pub use afl;

/// A target's loop over its inputs: `fuzz!(|data: &[u8]| { ... })`, as
/// `afl::fuzz!` is written. Under `cargo afl build` (`--cfg fuzzing`) it is
/// `afl::fuzz!`.
#[cfg(fuzzing)]
#[macro_export]
macro_rules! fuzz {
    ($($closure:tt)*) => { $crate::afl::fuzz!($($closure)*) };
}

/// A target's loop over its inputs: `fuzz!(|data: &[u8]| { ... })`, as
/// `afl::fuzz!` is written. Under a plain `cargo build` it is [`replay`].
#[cfg(not(fuzzing))]
#[macro_export]
macro_rules! fuzz {
    (|$data:ident: &[u8]| $body:block) => {
        $crate::replay(|$data: &[u8]| $body)
    };
}

/// Runs `target` on every file named on the command line, and on every
/// file in every directory named there (not recursing), in name order.
/// Prints how many inputs ran. A failed assertion names the input and exits
/// 1; an unreadable path, or no inputs at all, exits 2.
pub fn replay(mut target: impl FnMut(&[u8])) {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let mut inputs = Vec::new();
    for path in &args {
        if let Err(e) = collect_inputs(path, &mut inputs) {
            eprintln!("{}: {e}", path.display());
            std::process::exit(2);
        }
    }
    if inputs.is_empty() {
        eprintln!("no inputs: name files or directories of inputs to replay");
        std::process::exit(2);
    }
    for input in &inputs {
        let data = match std::fs::read(input) {
            Ok(data) => data,
            Err(e) => {
                eprintln!("{}: {e}", input.display());
                std::process::exit(2);
            }
        };
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&data)));
        if ran.is_err() {
            eprintln!("the target failed on {}", input.display());
            std::process::exit(1);
        }
    }
    println!("{} inputs replayed", inputs.len());
}

fn collect_inputs(path: &Path, inputs: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        inputs.push(path.to_path_buf());
        return Ok(());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    inputs.extend(files);
    Ok(())
}

/// The gateway's default publish limits (`publish.max_event_bytes`,
/// `publish.max_batch_events`).
pub const LIMITS: Limits = Limits {
    max_event_bytes: 64 * 1024,
    max_batch_events: 1000,
};

/// The id every checked event is encoded with.
pub const ID: EventId = EventId {
    epoch: 0x019a_b2c3_d4e5,
    seq: 1,
};

/// Checks a shipper's parsed request (OTLP, Loki) for the `etl` token:
/// at most a batch, and every event well formed and the token's.
pub fn check_shipper_events(result: Result<Vec<NewEvent>, loggate::ingest::PublishError>) {
    let Ok(events) = result else {
        return;
    };
    assert!(events.len() <= LIMITS.max_batch_events);
    for event in events {
        assert_eq!(check_event(event)["service"], "etl");
    }
}

/// What a shipper's parser is given: the `etl` token, the default limits.
pub fn shipper_input(received: &Received) -> loggate::ingest::request::ParseInput<'_> {
    loggate::ingest::request::ParseInput {
        service: "etl",
        received,
        limits: LIMITS,
        body_limit: 1 << 20,
    }
}

/// A fixed time of receipt instead of `Received::now()`, so that the same
/// input always takes the same path.
pub fn received() -> Received {
    Received {
        text: "2025-09-25T10:31:00.123Z".into(),
        ms: 1_758_796_260_123,
    }
}

/// SSE ends a line at CR, LF or CRLF.
fn line_breaks(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| matches!(b, b'\n' | b'\r')).count()
}

/// Encodes `new` and checks what every subscriber relies on: the JSON
/// parses back to an object whose fields agree with the event; its SSE
/// frame is `event`, `id`, one `data:` line; its WebSocket frame carries
/// the same JSON. Returns the JSON object for target-specific checks
/// (indexing it with an absent key gives `null`).
pub fn check_event(new: NewEvent) -> Value {
    let channel = new.channel.clone();
    let level = new.level;
    let message = new.message.clone();
    let ev = Event::encode(ID, new);
    let json = ev.json();

    let obj = match serde_json::from_slice::<Value>(&json) {
        Ok(obj @ Value::Object(_)) => obj,
        other => panic!("event JSON does not parse as an object ({other:?}): {json:?}"),
    };
    let id = ID.to_string();
    assert_eq!(obj["id"], id.as_str());
    check_channel_fields(&obj, &channel);
    assert_eq!(obj["level"], level.as_str());
    assert_eq!(
        obj["message"], &*message,
        "the q filter sees the delivered text"
    );
    for key in ["timestamp", "received_at"] {
        let Some(text) = obj[key].as_str() else {
            panic!("{key} is not a string: {obj}");
        };
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "{key} {text:?} is not RFC 3339"
        );
    }
    for key in obj.as_object().expect("an object").keys() {
        assert!(KEYS.contains(&key.as_str()), "unexpected key {key:?}");
    }

    // SSE: `event: log\nid: …\ndata: {…}\n\n`, the data on one line.
    let frame: &[u8] = ev.sse_frame();
    let head = format!("event: log\nid: {id}\ndata: ");
    assert!(frame.starts_with(head.as_bytes()), "{frame:?}");
    assert!(frame.ends_with(b"\n\n"), "{frame:?}");
    let data = &frame[head.len()..frame.len() - 2];
    assert_eq!(data, &json[..]);
    assert_eq!(
        line_breaks(data),
        0,
        "the SSE data line is split: {:?}",
        String::from_utf8_lossy(data)
    );

    // WebSocket: `{"type":"log","event":{…}}` in one unmasked text frame.
    let ws: &[u8] = ev.ws_frame();
    assert_eq!(ws[0], 0x81, "FIN + text");
    let (len, header) = match ws[1] {
        126 => (u16::from_be_bytes([ws[2], ws[3]]) as usize, 4),
        127 => (
            u64::from_be_bytes(ws[2..10].try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    assert_eq!(len, ws.len() - header);
    assert!(
        len < 126 || (len <= 0xffff) == (header == 4),
        "shortest length form"
    );
    let expected = [&b"{\"type\":\"log\",\"event\":"[..], &json, b"}"].concat();
    assert_eq!(&ws[header..], &expected[..]);
    obj
}

/// Every key a delivered event may have.
const KEYS: [&str; 12] = [
    "id",
    "channel",
    "service",
    "workspace_id",
    "resource_id",
    "level",
    "message",
    "timestamp",
    "received_at",
    "stream",
    "source",
    "meta",
];

/// `channel`, `service`, `workspace_id`, `resource_id` agree with the
/// event's channel, which is itself valid.
fn check_channel_fields(obj: &Value, channel: &ChannelName) {
    assert_eq!(obj["channel"], channel.as_str());
    assert!(channel.as_str().starts_with("logs:"));
    assert_eq!(ChannelName::parse(channel.as_str()).as_ref(), Ok(channel));
    assert_eq!(obj["service"], channel.service());
    let opt = |key: &str| obj.get(key).map(|v| v.as_str().expect("a string"));
    assert_eq!(opt("workspace_id"), channel.workspace());
    assert_eq!(opt("resource_id"), channel.resource());
}

/// Splits `data` at its first `\n`: (before, after). Without one, all of
/// `data` is the first part and the second is empty.
pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
