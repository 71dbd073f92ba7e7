//! Reading server-sent events as a client, for `loggate tail` (the
//! gateway's own stream) and the AI module (a model server's streamed
//! answer).
//!
//! Owns only the framing: bytes in, complete frames out, with a bound on a
//! frame's size so that a server that never ends one cannot fill memory.
//! Only the new bytes of each chunk (and the two before them) are scanned
//! for a frame's end, so a frame that arrives byte by byte costs one scan,
//! not one per chunk. Frames end with a blank line, `\n\n` or `\r\n\r\n`.

/// One event: its `event:` name (`message` when none), `id:` and the
/// `data:` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// A frame grew past the reader's bound without ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge(pub usize);

/// Splits a byte stream into frames.
#[derive(Debug)]
pub struct FrameReader {
    pending: Vec<u8>,
    max_frame: usize,
}

impl FrameReader {
    pub fn new(max_frame: usize) -> FrameReader {
        FrameReader {
            pending: Vec::new(),
            max_frame,
        }
    }

    /// Adds a chunk; returns the frames it completed, in order. Comment
    /// lines (`: keepalive`) and frames of comments only yield nothing.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Frame>, FrameTooLarge> {
        let from = self.pending.len().saturating_sub(2);
        self.pending.extend_from_slice(chunk);
        let mut frames = Vec::new();
        let mut start = 0;
        let mut search = from;
        while let Some(at) = memchr::memchr(b'\n', &self.pending[search..]) {
            let nl = search + at;
            let end = match (self.pending.get(nl + 1), self.pending.get(nl + 2)) {
                (Some(b'\n'), _) => Some(nl + 2),
                (Some(b'\r'), Some(b'\n')) => Some(nl + 3),
                // The blank line may still be coming: the next chunk's
                // scan starts two bytes back, so it looks here again.
                (None, _) | (Some(b'\r'), None) => break,
                _ => None,
            };
            match end {
                Some(end) => {
                    if let Some(f) = parse(&self.pending[start..end]) {
                        frames.push(f);
                    }
                    start = end;
                    search = end;
                }
                None => search = nl + 1,
            }
        }
        self.pending.drain(..start);
        if self.pending.len() > self.max_frame {
            return Err(FrameTooLarge(self.max_frame));
        }
        Ok(frames)
    }
}

fn parse(frame: &[u8]) -> Option<Frame> {
    let mut event = None;
    let mut id = None;
    let mut data: Option<String> = None;
    for line in String::from_utf8_lossy(frame).lines() {
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    if event.is_none() && id.is_none() && data.is_none() {
        return None;
    }
    Some(Frame {
        event: event.unwrap_or_else(|| "message".into()),
        id,
        data: data.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(reader: &mut FrameReader, chunks: &[&[u8]]) -> Vec<Frame> {
        chunks
            .iter()
            .flat_map(|c| reader.push(c).expect("within the bound"))
            .collect()
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let text = b"retry: 3000\n\nevent: log\nid: 7\ndata: {\"a\":1}\n\n: keepalive\n\ndata: one\ndata: two\n\n";
        let expected = vec![
            Frame {
                event: "log".into(),
                id: Some("7".into()),
                data: "{\"a\":1}".into(),
            },
            Frame {
                event: "message".into(),
                id: None,
                data: "one\ntwo".into(),
            },
        ];
        for cut in 0..text.len() {
            let mut r = FrameReader::new(1024);
            let got = all(&mut r, &[&text[..cut], &text[cut..]]);
            assert_eq!(got, expected, "cut at {cut}");
        }
        let mut r = FrameReader::new(1024);
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(all(&mut r, &bytes), expected, "byte by byte");
    }

    #[test]
    fn crlf_frames_are_frames() {
        let mut r = FrameReader::new(1024);
        let got = all(&mut r, &[b"data: a\r\n\r", b"\ndata: b\r\n\r\n"]);
        let data: Vec<&str> = got.iter().map(|f| f.data.as_str()).collect();
        assert_eq!(data, ["a", "b"]);
    }

    #[test]
    fn a_frame_that_never_ends_is_refused() {
        let mut r = FrameReader::new(100);
        assert!(r.push(&[b'x'; 60]).is_ok());
        assert_eq!(r.push(&[b'x'; 60]), Err(FrameTooLarge(100)));
    }
}
