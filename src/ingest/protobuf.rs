//! A look at protobuf's wire format without decoding it: how many records
//! a body holds, read from tags and lengths alone.
//!
//! Decoding allocates a struct for every message, and an empty message is
//! two bytes on the wire: 1 MiB of empty OTLP log records would become
//! about 100 MB of `LogRecord`s before the batch limit could refuse them.
//! Counting first refuses such a body having allocated nothing.

use prost::encoding::{WireType, decode_key, decode_varint};

/// How many messages lie at `path` (field numbers from the top message
/// down, each a repeated message field) in `buf`; `None` when the wire
/// format is broken on the way, which the decoder then reports.
pub fn count_at(mut buf: &[u8], path: &[u32]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let mut n = 0usize;
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf).ok()?;
        match wire {
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                let inner = buf.get(..len)?;
                if tag == *first {
                    n += if rest.is_empty() {
                        1
                    } else {
                        count_at(inner, rest)?
                    };
                }
                buf = &buf[len..];
            }
            WireType::Varint => {
                decode_varint(&mut buf).ok()?;
            }
            WireType::SixtyFourBit => buf = buf.get(8..)?,
            WireType::ThirtyTwoBit => buf = buf.get(4..)?,
            // Groups: no message loggate reads has them.
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nested_repeated_messages_and_skips_the_rest() {
        // {1: {2: {}, 2: {}, 3: varint}, 4: fixed64, 1: {2: {}}}
        let body = [
            0x0a, 0x06, 0x12, 0x00, 0x12, 0x00, 0x18, 0x05, // field 1, len 6
            0x21, 0, 0, 0, 0, 0, 0, 0, 0, // field 4, fixed64
            0x0a, 0x02, 0x12, 0x00, // field 1, len 2
        ];
        assert_eq!(count_at(&body, &[1]), Some(2));
        assert_eq!(count_at(&body, &[1, 2]), Some(3));
        assert_eq!(count_at(&body, &[1, 3]), Some(0));
        assert_eq!(count_at(&body[..body.len() - 1], &[1, 2]), None);
        assert_eq!(count_at(&[0x0a, 0x7f], &[1]), None, "a length past the end");
    }
}
