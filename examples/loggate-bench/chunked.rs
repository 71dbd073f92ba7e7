//! HTTP/1.1 response bodies, decoded incrementally as bytes arrive on the
//! subscriber's raw socket: chunked transfer coding, or a plain body. The
//! chunk-size line is parsed by `httparse` (the parser under hyper); this
//! file only keeps track of where in the chunk stream it is, and hands the
//! body bytes on where they lie, without copying them.

use anyhow::{anyhow, ensure};
use bytes::{Buf, BytesMut};

/// A chunk-size line longer than this is refused (real ones are a few bytes;
/// `httparse` itself would read a chunk extension of any length).
const MAX_SIZE_LINE: usize = 1024;

/// Where the decoder is in the chunk stream.
enum ChunkState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes of it left.
    Data(u64),
    /// After a chunk's data, before its closing CRLF.
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
                    let (used, size) = match httparse::parse_chunk_size(raw) {
                        Ok(httparse::Status::Complete(parsed)) => parsed,
                        Ok(httparse::Status::Partial) => {
                            ensure!(raw.len() < MAX_SIZE_LINE, "chunk-size line too long");
                            return Ok(true);
                        }
                        Err(httparse::InvalidChunkSize) => {
                            let line = &raw[..raw.len().min(40)];
                            return Err(anyhow!(
                                "bad chunk size line {:?}",
                                String::from_utf8_lossy(line)
                            ));
                        }
                    };
                    raw.advance(used);
                    self.state = match size {
                        0 => ChunkState::Done,
                        size => ChunkState::Data(size),
                    };
                }
                ChunkState::Data(left) => {
                    if raw.is_empty() {
                        return Ok(true);
                    }
                    let n = raw.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out(&raw[..n]);
                    raw.advance(n);
                    self.state = match left - n as u64 {
                        0 => ChunkState::DataEnd,
                        left => ChunkState::Data(left),
                    };
                }
                ChunkState::DataEnd => {
                    if raw.len() < 2 {
                        return Ok(true);
                    }
                    ensure!(raw.starts_with(b"\r\n"), "junk after chunk data");
                    raw.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Done => return Ok(false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed `step` bytes at a time; the body and whether the
    /// terminal chunk was seen.
    fn decode_in_steps(input: &[u8], step: usize) -> anyhow::Result<(Vec<u8>, bool)> {
        let mut decoder = Decoder::new(true);
        let mut raw = BytesMut::new();
        let mut body = Vec::new();
        let mut alive = true;
        for piece in input.chunks(step) {
            raw.extend_from_slice(piece);
            alive = decoder.decode(&mut raw, |p| body.extend_from_slice(p))?;
        }
        Ok((body, alive))
    }

    #[test]
    fn chunk_sizes_extensions_and_errors() {
        let input = b"5\r\nhello\r\nA;ext=1\r\n, world!!!\r\n0\r\n\r\n";
        for step in 1..=input.len() {
            let (body, alive) = decode_in_steps(input, step).unwrap();
            assert_eq!(body, b"hello, world!!!", "step {step}");
            assert!(!alive, "step {step}");
        }
        assert!(decode_in_steps(b"zz\r\n", 4).is_err());
        assert!(decode_in_steps(b"2\r\nabXY", 8).is_err());
        let mut long = b"1;".to_vec();
        long.resize(MAX_SIZE_LINE, b'x');
        assert!(decode_in_steps(&long, MAX_SIZE_LINE).is_err());
    }
}
