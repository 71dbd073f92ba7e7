//! HTTP/1.1 response bodies, decoded incrementally as bytes arrive on the
//! subscriber's raw socket: chunked transfer coding, or a plain body. Hands
//! the body bytes on where they lie, without copying them.

use anyhow::{anyhow, ensure};
use bytes::{Buf, BytesMut};
use memchr::memchr;

/// Where the decoder is in the chunk stream.
enum ChunkState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes of it left.
    Data(usize),
    /// After a chunk's data, before its closing line end.
    DataEnd,
    /// The terminal zero-size chunk has been read.
    Done,
}

/// Incremental decoder of one response body.
pub struct Decoder {
    /// False for a body without `Transfer-Encoding: chunked`: every byte is
    /// body, until the connection closes.
    chunked: bool,
    state: ChunkState,
}

impl Decoder {
    pub fn new(chunked: bool) -> Decoder {
        Decoder {
            chunked,
            state: ChunkState::Size,
        }
    }

    /// Hands the decoded body bytes in `raw` to `out`, piece by piece, and
    /// removes what it used from `raw`. Returns false at the end of the body.
    pub fn decode(
        &mut self,
        raw: &mut BytesMut,
        mut out: impl FnMut(&[u8]),
    ) -> anyhow::Result<bool> {
        if !self.chunked {
            out(raw);
            raw.clear();
            return Ok(true);
        }
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(nl) = memchr(b'\n', raw) else {
                        ensure!(raw.len() < 1024, "chunk-size line too long");
                        return Ok(true);
                    };
                    let line = raw[..nl].trim_ascii();
                    let hex = line
                        .split(|&b| b == b';')
                        .next()
                        .unwrap_or_default()
                        .trim_ascii();
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| usize::from_str_radix(h, 16).ok())
                        .ok_or_else(|| {
                            anyhow!("bad chunk size line {:?}", String::from_utf8_lossy(line))
                        })?;
                    raw.advance(nl + 1);
                    self.state = if size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if raw.is_empty() {
                        return Ok(true);
                    }
                    let n = left.min(raw.len());
                    out(&raw[..n]);
                    raw.advance(n);
                    self.state = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => {
                    let Some(nl) = memchr(b'\n', raw) else {
                        return Ok(true);
                    };
                    ensure!(raw[..nl].trim_ascii().is_empty(), "junk after chunk data");
                    raw.advance(nl + 1);
                    self.state = ChunkState::Size;
                }
                ChunkState::Done => return Ok(false),
            }
        }
    }
}
