//! How a publish body is packed, and undoing it under the body limit:
//! `Content-Encoding` (gzip, deflate), and the snappy that Loki's protobuf
//! body always is. The limit holds for what comes out, so a small bomb
//! costs no more than a body at the limit.
//!
//! Inflating is work proportional to what comes out, so it is done in
//! steps ([`Inflating::run`]): the request's own task inflates the first
//! `publish.large_body_bytes`, and a body that turns out larger goes on
//! inflating on the blocking pool, under a decode slot
//! ([`request`](super::request) decides where). A gzip body states its
//! inflated size in its trailer ([`gzip_stated_len`]), so the byte rate
//! can refuse it before any inflating.

use std::io::Read;

use actix_web::HttpRequest;
use actix_web::http::header;
use bytes::{Buf, Bytes};

use super::PublishError;

/// How the body is compressed (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed, or compressed in a way the format itself carries
    /// (Loki's snappy).
    Identity,
    Gzip,
    /// zlib, which is what HTTP's `deflate` means.
    Deflate,
}

/// The request's `Content-Encoding`; `own` names encodings the endpoint's
/// format carries itself.
pub fn content_encoding(req: &HttpRequest, own: &[&str]) -> Result<Encoding, PublishError> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("?").trim();
    match text.to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        e if own.contains(&e) => Ok(Encoding::Identity),
        _ => Err(PublishError::UnsupportedEncoding(
            text.chars().take(64).collect(),
        )),
    }
}

/// Compression a body format carries inside itself, whatever the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    Plain,
    /// A snappy block (Loki's protobuf push), undone by the parser.
    Snappy,
}

/// What the parser will read: the body's size once its packing is undone.
/// Snappy states it in its header, so it is known before any work.
pub fn unpacked_len(packing: Packing, body: &[u8]) -> Result<usize, PublishError> {
    match packing {
        Packing::Plain => Ok(body.len()),
        Packing::Snappy => snap::raw::decompress_len(body).map_err(|e| PublishError::InvalidBody {
            message: format!("the body is not snappy-compressed protobuf: {e}"),
        }),
    }
}

/// The size a gzip body says it inflates to: its trailer's ISIZE, the
/// length of the last member's data modulo 2^32 (bodies here are far
/// smaller). `None` when it is too short to be gzip or does not start as
/// gzip. A client can state anything; the caller charges the truth once
/// inflated.
pub fn gzip_stated_len(body: &[u8]) -> Option<usize> {
    // A header (10 bytes), an empty deflate block, CRC32 and ISIZE.
    const SMALLEST: usize = 18;
    if body.len() < SMALLEST || !body.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let trailer: [u8; 4] = body[body.len() - 4..].try_into().ok()?;
    usize::try_from(u32::from_le_bytes(trailer)).ok()
}

/// A body being inflated, refused as soon as it passes `max` bytes.
pub struct Inflating {
    decoder: Box<dyn Read + Send>,
    out: Vec<u8>,
    /// The encoding's name, for errors.
    name: &'static str,
    max: usize,
    /// The wire size, to guess the output's.
    sent: usize,
}

impl Inflating {
    /// `None` for a body that is not compressed.
    pub fn new(encoding: Encoding, body: Bytes, max: usize) -> Option<Inflating> {
        let sent = body.len();
        let (decoder, name): (Box<dyn Read + Send>, _) = match encoding {
            Encoding::Identity => return None,
            Encoding::Gzip => (
                Box::new(flate2::read::MultiGzDecoder::new(body.reader())),
                "gzip",
            ),
            Encoding::Deflate => (
                Box::new(flate2::read::ZlibDecoder::new(body.reader())),
                "deflate (zlib)",
            ),
        };
        Some(Inflating {
            decoder,
            out: Vec::new(),
            name,
            max,
            sent,
        })
    }

    /// Inflates until the output holds `upto` bytes (or `max`); true once
    /// the body is all inflated.
    pub fn run(&mut self, upto: usize) -> Result<bool, PublishError> {
        let target = upto.min(self.max).saturating_add(1);
        if self.out.capacity() < target {
            // A guess from the wire size, never past what may come out.
            let want = self.sent.saturating_mul(4).max(4096).min(target);
            self.out.reserve(want.saturating_sub(self.out.len()));
        }
        let more = target.saturating_sub(self.out.len());
        (&mut self.decoder)
            .take(u64::try_from(more).unwrap_or(u64::MAX))
            .read_to_end(&mut self.out)
            .map_err(|e| PublishError::InvalidBody {
                message: format!("the body is not valid {}: {e}", self.name),
            })?;
        if self.out.len() < target {
            return Ok(true);
        }
        if self.out.len() > self.max {
            return Err(PublishError::BodyTooLarge { max: self.max });
        }
        Ok(false)
    }

    /// The whole body, inflated.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.out)
    }
}

/// A gzip body inflated at once, refused as soon as it passes `max`
/// bytes.
pub fn gunzip(body: &[u8], max: usize) -> Result<Bytes, PublishError> {
    let mut inflating = Inflating {
        decoder: Box::new(flate2::read::MultiGzDecoder::new(
            Bytes::copy_from_slice(body).reader(),
        )),
        out: Vec::new(),
        name: "gzip",
        max,
        sent: body.len(),
    };
    inflating.run(usize::MAX)?;
    Ok(inflating.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gunzip_inflates_up_to_the_limit_and_no_further() {
        let data = vec![b'a'; 10_000];
        let packed = gzip(&data);
        assert_eq!(gunzip(&packed, 10_000).unwrap().len(), 10_000);
        assert!(matches!(
            gunzip(&packed, 9_999),
            Err(PublishError::BodyTooLarge { max: 9_999 })
        ));
    }

    #[test]
    fn inflating_in_steps_stops_where_asked_and_goes_on() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut inflating =
            Inflating::new(Encoding::Gzip, Bytes::from(gzip(&data)), 1 << 20).unwrap();
        assert!(!inflating.run(1000).unwrap(), "more than 1000 bytes");
        assert_eq!(inflating.out.len(), 1001);
        assert!(inflating.run(usize::MAX).unwrap());
        assert_eq!(&inflating.finish()[..], &data[..]);
        let mut small = Inflating::new(Encoding::Deflate, Bytes::from(zlib(b"tiny")), 100).unwrap();
        assert!(small.run(1000).unwrap());
        assert_eq!(&small.finish()[..], b"tiny");
        assert!(Inflating::new(Encoding::Identity, Bytes::new(), 1).is_none());
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // 100 MiB of zeros packs into about 100 KiB.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 200 * 1024);
        assert!(matches!(
            gunzip(&bomb, 1 << 20),
            Err(PublishError::BodyTooLarge { .. })
        ));
    }

    #[test]
    fn bad_gzip_is_invalid_body() {
        let e = gunzip(b"not gzip at all", 1 << 20).unwrap_err();
        assert_eq!(e.code(), "invalid_body");
        let mut truncated = gzip(b"hello world, hello world");
        truncated.truncate(truncated.len() / 2);
        assert_eq!(
            gunzip(&truncated, 1 << 20).unwrap_err().code(),
            "invalid_body"
        );
    }

    #[test]
    fn gzip_states_its_size_in_its_trailer() {
        let packed = gzip(&[7u8; 123_456]);
        assert_eq!(gzip_stated_len(&packed), Some(123_456));
        assert_eq!(gzip_stated_len(&gzip(b"")), Some(0));
        assert_eq!(gzip_stated_len(b"not gzip, though long enough"), None);
        assert_eq!(gzip_stated_len(&packed[..10]), None);
    }

    #[test]
    fn snappy_states_its_size() {
        let packed = snap::raw::Encoder::new()
            .compress_vec(&[7u8; 5000])
            .unwrap();
        assert_eq!(unpacked_len(Packing::Snappy, &packed).unwrap(), 5000);
        assert_eq!(unpacked_len(Packing::Plain, &packed).unwrap(), packed.len());
        assert_eq!(
            unpacked_len(Packing::Snappy, b"\xff\xff\xff\xff\xff\xff")
                .unwrap_err()
                .code(),
            "invalid_body"
        );
    }
}
