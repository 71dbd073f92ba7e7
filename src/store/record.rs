//! One stored event as bytes, and back: the unit of the segment log.
//!
//! ```text
//! record := len u32 | crc u32 | body            (little-endian)
//! body   := seq u64 | received_ms i64 | timestamp_ms i64 | level u8
//!           | channel_len u16 | channel | body_tail
//! ```
//!
//! `crc` is CRC-32 of `body`, so a torn or corrupt record is found when it
//! is read, whatever part of it was hit. `body_tail` is the event's JSON
//! without `{` and `id` ([`NewEvent::body_tail`]): an event read back is
//! encoded by [`Event::encode`] exactly as it was when it was accepted, so
//! a replayed event is byte for byte the one delivered live.
//!
//! Pure functions over byte slices (no I/O), for the segment reader, unit
//! tests and fuzzing.

use std::sync::Arc;

use bytes::{BufMut, Bytes};

use crate::channel::ChannelName;
use crate::event::{Event, EventId, EventTimes, Level, NewEvent};

/// `len` and `crc`.
pub const HEADER_LEN: usize = 8;

/// The fixed part of a body, before the channel's bytes.
const FIXED_LEN: usize = 8 + 8 + 8 + 1 + 2;

/// The largest body a record may claim: an event is at most 64 KiB of
/// JSON plus its channel, so anything much larger is corruption, not an
/// event, and is not allocated for.
pub const MAX_BODY_LEN: usize = 1 << 20;

/// Appends `event`'s record to `out`.
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    let json = event.json();
    // `{"id":"…",` then the tail: the tail is what follows the first comma.
    let tail = match json.iter().position(|&b| b == b',') {
        Some(comma) => &json[comma + 1..],
        None => &json[json.len()..],
    };
    let channel = event.channel.as_str().as_bytes();
    let body_len = FIXED_LEN + channel.len() + tail.len();
    out.reserve(HEADER_LEN + body_len);
    out.put_u32_le(body_len as u32);
    let crc_at = out.len();
    out.put_u32_le(0);
    let body_at = out.len();
    out.put_u64_le(event.id.seq);
    out.put_i64_le(event.times.received_ms);
    out.put_i64_le(event.times.timestamp_ms);
    out.put_u8(event.level as u8);
    out.put_u16_le(channel.len() as u16);
    out.put_slice(channel);
    out.put_slice(tail);
    let crc = crc32fast::hash(&out[body_at..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// What reading one record from the front of a buffer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// A whole, intact record, and the bytes it took.
    Record(RawRecord<'a>, usize),
    /// The buffer ends inside a record (or is empty): a torn tail, or
    /// more to read.
    Short,
    /// The bytes there are no record: a bad length or checksum.
    Corrupt,
}

/// A record's fields, borrowed from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub seq: u64,
    pub times: EventTimes,
    pub level: Level,
    pub channel: &'a str,
    pub body_tail: &'a [u8],
}

/// Reads the record at the front of `buf`.
pub fn read(buf: &[u8]) -> Read<'_> {
    if buf.len() < HEADER_LEN {
        return Read::Short;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if !(FIXED_LEN..=MAX_BODY_LEN).contains(&len) {
        return Read::Corrupt;
    }
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Read::Short;
    };
    if crc32fast::hash(body) != crc {
        return Read::Corrupt;
    }
    match parse_body(body) {
        Some(record) => Read::Record(record, HEADER_LEN + len),
        None => Read::Corrupt,
    }
}

fn parse_body(body: &[u8]) -> Option<RawRecord<'_>> {
    let u64_at = |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(body.get(i..i + 8)?.try_into().ok()?))
    };
    let seq = u64_at(0)?;
    let received_ms = u64_at(8)? as i64;
    let timestamp_ms = u64_at(16)? as i64;
    let level = *Level::ALL.get(*body.get(24)? as usize)?;
    let channel_len = u16::from_le_bytes(body.get(25..27)?.try_into().ok()?) as usize;
    let channel = std::str::from_utf8(body.get(FIXED_LEN..FIXED_LEN + channel_len)?).ok()?;
    Some(RawRecord {
        seq,
        times: EventTimes {
            timestamp_ms,
            received_ms,
        },
        level,
        channel,
        body_tail: &body[FIXED_LEN + channel_len..],
    })
}

/// Just the `message` of an event's JSON.
#[derive(serde::Deserialize)]
struct MessageOnly<'a> {
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
}

impl RawRecord<'_> {
    /// The event again, with id `(epoch, seq)`. `None` if the record
    /// checks out but its contents are no event (a channel or JSON that
    /// does not parse): it is skipped like a corrupt one.
    pub fn event(&self, epoch: u64) -> Option<Arc<Event>> {
        let channel = ChannelName::parse(self.channel).ok()?;
        let mut json = Vec::with_capacity(self.body_tail.len() + 1);
        json.push(b'{');
        json.extend_from_slice(self.body_tail);
        let message: MessageOnly<'_> = serde_json::from_slice(&json).ok()?;
        let message = Box::from(message.message.as_ref());
        let new = NewEvent {
            channel,
            level: self.level,
            times: self.times,
            message,
            body_tail: Bytes::from(json).slice(1..),
        };
        Some(Event::encode(
            EventId {
                epoch,
                seq: self.seq,
            },
            new,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::testing::event;

    fn encoded(seq: u64, channel: &str, message: &str) -> (Arc<Event>, Vec<u8>) {
        let e = event(seq, channel, Level::Warn, message, 1_700_000_000_000);
        let mut out = Vec::new();
        encode(&e, &mut out);
        (e, out)
    }

    #[test]
    fn an_event_reads_back_byte_for_byte() {
        let (e, bytes) = encoded(42, "logs:etl:ws1:job7", "a \"quoted\" line, with commas");
        let Read::Record(raw, used) = read(&bytes) else {
            panic!("no record");
        };
        assert_eq!(used, bytes.len());
        let back = raw.event(1).expect("an event");
        assert_eq!(back.id, e.id);
        assert_eq!(back.sse_frame(), e.sse_frame());
        assert_eq!(back.message, e.message);
        assert_eq!((back.level, back.times), (e.level, e.times));
    }

    #[test]
    fn a_cut_record_is_short_and_a_changed_byte_is_corrupt() {
        let (_, bytes) = encoded(1, "logs:etl", "hello");
        for cut in 0..bytes.len() {
            assert_eq!(read(&bytes[..cut]), Read::Short, "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                !matches!(read(&bad), Read::Record(..)),
                "flipped byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn records_follow_each_other() {
        let mut buf = Vec::new();
        for seq in 1..=3 {
            encode(&event(seq, "logs:etl", Level::Info, "m", 0), &mut buf);
        }
        let mut at = 0;
        let mut seqs = Vec::new();
        while let Read::Record(raw, used) = read(&buf[at..]) {
            seqs.push(raw.seq);
            at += used;
        }
        assert_eq!((seqs, at), (vec![1, 2, 3], buf.len()));
    }

    #[test]
    fn a_huge_claimed_length_is_corrupt_without_reading_on() {
        let mut bytes = vec![0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0; 64]);
        assert_eq!(read(&bytes), Read::Corrupt);
    }
}
