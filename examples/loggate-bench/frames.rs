//! Server-Sent Events as the subscriber sees them: splitting the decoded
//! body into frames, telling the frame kinds apart (`log`, `lag`, `ready`,
//! `shutdown`), and reading the send time that the latency phase puts in
//! its messages. The same splitter reads Nchan's streams for `--peer
//! nchan`: their frames start with an `id:` line, and the stream opens with
//! the comment `: hi`, which stands for loggate's `event: ready`. Runs on every delivered byte, so it scans with `memchr`
//! and copies only the unfinished tail of a piece.

use hdrhistogram::Histogram;
use memchr::{memchr, memmem};

/// The marker before a latency-phase send time: the message is `t=<ns>`.
const SENT_AT_MARK: &[u8] = b"\"message\":\"t";
/// The key of a lag frame's count of dropped events.
const DROPPED_KEY: &[u8] = b"\"dropped\":";

/// Splits a subscriber's body into SSE frames. Pieces that hold whole frames
/// are parsed where they lie; only an unfinished frame is copied aside.
#[derive(Default)]
pub struct FrameSplitter {
    /// The start of an unfinished frame.
    partial: Vec<u8>,
    /// How far into `partial` the search for the frame's end has got.
    scan_from: usize,
}

impl FrameSplitter {
    /// Handles every frame that `piece` completes; `now_ns` is the arrival
    /// time that latencies are measured to.
    pub fn feed(
        &mut self,
        piece: &[u8],
        now_ns: u64,
        hist: &mut Histogram<u64>,
        counts: &mut FrameCounts,
    ) {
        if self.partial.is_empty() {
            let mut scan_from = 0;
            let used = parse_frames(piece, &mut scan_from, now_ns, hist, counts);
            self.partial.extend_from_slice(&piece[used..]);
            self.scan_from = scan_from;
        } else {
            self.partial.extend_from_slice(piece);
            let used = parse_frames(&self.partial, &mut self.scan_from, now_ns, hist, counts);
            self.partial.drain(..used);
        }
    }

    /// True if no unfinished frame is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }
}

/// What one subscriber has seen in a batch of frames.
#[derive(Default)]
pub struct FrameCounts {
    /// `event: log` frames.
    pub logs: u64,
    /// Events the `event: lag` frames said were dropped.
    pub dropped: u64,
    pub lag_frames: u64,
    /// An `event: ready` frame came.
    pub ready: bool,
    /// An `event: shutdown` frame came.
    pub shutdown: bool,
    /// Log frames with the send-time marker but no number after it.
    pub bad_latency: u64,
}

/// Handles every complete SSE frame in `sse[..]`, records latencies, and
/// returns how many bytes were consumed. `scan_from` remembers how far a
/// previous call looked for the end of the unfinished frame.
fn parse_frames(
    sse: &[u8],
    scan_from: &mut usize,
    now_ns: u64,
    hist: &mut Histogram<u64>,
    counts: &mut FrameCounts,
) -> usize {
    let mut frame_start = 0;
    let mut pos = *scan_from;
    let resume = loop {
        let Some(p) = memchr(b'\n', &sse[pos..]) else {
            // No newline left: the next call need not look at these bytes.
            break sse.len();
        };
        let nl = pos + p;
        if nl + 1 == sse.len() {
            // Cannot tell yet whether a second newline follows.
            break nl;
        }
        if sse[nl + 1] != b'\n' {
            pos = nl + 1;
            continue;
        }
        // A frame: everything up to this newline, then a blank line.
        handle_frame(&sse[frame_start..nl], now_ns, hist, counts);
        frame_start = nl + 2;
        pos = frame_start;
    };
    *scan_from = resume - frame_start;
    frame_start
}

fn handle_frame(frame: &[u8], now_ns: u64, hist: &mut Histogram<u64>, counts: &mut FrameCounts) {
    // Nchan puts `id:` before `event:`; loggate puts it after, and its
    // `retry:` hint before `event: ready`.
    let frame = match frame
        .strip_prefix(b"id:")
        .or_else(|| frame.strip_prefix(b"retry:"))
    {
        Some(rest) => memchr(b'\n', rest).map_or(&[][..], |nl| &rest[nl + 1..]),
        None => frame,
    };
    if frame.starts_with(b"event: log\n") {
        counts.logs += 1;
        match sent_at(frame) {
            Some(Some(sent)) => hist.saturating_record(now_ns.saturating_sub(sent) / 1000),
            Some(None) => counts.bad_latency += 1,
            None => {}
        }
    } else if frame.starts_with(b"event: lag\n") {
        counts.lag_frames += 1;
        if let Some(at) = memmem::find(frame, DROPPED_KEY) {
            counts.dropped += parse_u64_prefix(&frame[at + DROPPED_KEY.len()..]).unwrap_or(0);
        }
    } else if frame.starts_with(b"event: ready\n") || frame == b": hi" {
        counts.ready = true;
    } else if frame.starts_with(b"event: shutdown") {
        counts.shutdown = true;
    }
    // `retry:`, `: keepalive` and anything else: ignored.
}

/// The send time in a latency-phase event: the digits after
/// `"message":"t=`. `Some(None)` if the marker is there but the number is not.
/// Looks for the rare `=` first, so events without a marker cost one fast scan.
fn sent_at(frame: &[u8]) -> Option<Option<u64>> {
    let mut from = 0;
    while let Some(p) = memchr(b'=', &frame[from..]) {
        let eq = from + p;
        if frame[..eq].ends_with(SENT_AT_MARK) {
            return Some(parse_u64_prefix(&frame[eq + 1..]));
        }
        from = eq + 1;
    }
    None
}

/// The decimal number at the start of `s`, if there is one that fits.
fn parse_u64_prefix(s: &[u8]) -> Option<u64> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    Some(
        s[..digits]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_times_and_nchan_frames() {
        assert_eq!(
            sent_at(b"{\"a\":\"x=1\",\"message\":\"t=42\"}"),
            Some(Some(42))
        );
        assert_eq!(sent_at(b"{\"message\":\"t=\"}"), Some(None));
        assert_eq!(sent_at(b"{\"message\":\"xt=5\"}"), None);
        let mut hist = crate::stats::new_histogram();
        let mut counts = FrameCounts::default();
        let nchan = b": hi\n\nid: 1733:0\nevent: log\ndata: {\"message\":\"t=7 xx\"}\n\n";
        let mut scan_from = 0;
        let used = parse_frames(nchan, &mut scan_from, 9000, &mut hist, &mut counts);
        assert_eq!(used, nchan.len());
        assert!(counts.ready);
        assert_eq!(counts.logs, 1);
        assert_eq!(hist.len(), 1);
        assert_eq!(parse_u64_prefix(b"12ab"), Some(12));
        assert_eq!(parse_u64_prefix(b"99999999999999999999"), None);
    }
}
