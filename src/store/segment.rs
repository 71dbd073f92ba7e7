//! One segment file of the log: its header, reading its records in order
//! (stopping at the first torn or corrupt one), and appending to it.
//!
//! ```text
//! segment := "LGHIST01" | epoch u64 | first_seq u64 | record*
//! ```
//!
//! A segment is named by the sequence of its first event,
//! `{first_seq:020}.seg`, so the directory lists in id order. Every event
//! of a segment has the segment's epoch. Once the writer moves on to a new
//! segment the old one is sealed: its summary ([`Summary`]) is written
//! beside it (`.sum`), so a start reads summaries instead of every record.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::record::{self, RawRecord, Read};
use crate::event::Event;

const MAGIC: &[u8; 8] = b"LGHIST01";

/// The magic, the epoch and the first sequence.
pub const FILE_HEADER_LEN: u64 = 24;

/// How much of a segment is read at a time.
const CHUNK: usize = 1 << 20;

/// The file name of the segment whose first event is `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The first sequence a segment file name stands for, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a segment holds, kept in memory for every segment (so the in-memory
/// part of the store is a few dozen bytes per segment, however much is on
/// disk) and written beside a sealed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub epoch: u64,
    pub first_seq: u64,
    /// The last event's sequence; `first_seq - 1` while empty.
    pub last_seq: u64,
    pub events: u64,
    /// When the first and last events were received (Unix ms; 0 if empty).
    pub first_ms: i64,
    pub last_ms: i64,
    /// The file's length: header and whole records.
    pub bytes: u64,
}

impl Summary {
    fn empty(epoch: u64, first_seq: u64) -> Self {
        Summary {
            epoch,
            first_seq,
            last_seq: first_seq.saturating_sub(1),
            events: 0,
            first_ms: 0,
            last_ms: 0,
            bytes: FILE_HEADER_LEN,
        }
    }

    fn add(&mut self, seq: u64, received_ms: i64, len: u64) {
        if self.events == 0 {
            self.first_ms = received_ms;
        }
        self.events += 1;
        self.last_seq = seq;
        self.last_ms = received_ms;
        self.bytes += len;
    }
}

/// Why reading a segment stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside a record: a write cut short.
    Torn,
    /// Bytes that are no record (bad length, checksum or contents).
    Corrupt,
}

/// What reading a whole segment found.
#[derive(Debug)]
pub struct Scan {
    /// Everything up to the first damage.
    pub summary: Summary,
    /// What ended the valid part early, if anything.
    pub damage: Option<Damage>,
}

/// The path of a segment's summary.
pub fn summary_path(segment: &Path) -> PathBuf {
    segment.with_extension("sum")
}

/// Reads the segment header: its epoch and first sequence.
fn read_header(file: &mut File) -> io::Result<(u64, u64)> {
    let mut header = [0u8; FILE_HEADER_LEN as usize];
    file.read_exact(&mut header)?;
    if &header[..8] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a loggate history segment (bad magic)",
        ));
    }
    let word = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap_or_default());
    Ok((word(8), word(16)))
}

/// Calls `each` with every intact record of the segment at `path` from
/// the start, in order, and its offset, until it breaks or the first
/// damage. A header that cannot be read is an error.
pub fn read_records(
    path: &Path,
    mut each: impl FnMut(&RawRecord<'_>, u64) -> ControlFlow<()>,
) -> io::Result<Scan> {
    let mut file = File::open(path)?;
    let (epoch, first_seq) = read_header(&mut file)?;
    let mut summary = Summary::empty(epoch, first_seq);
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut at = 0usize;
    let mut eof = false;
    loop {
        match record::read(&buf[at..]) {
            Read::Record(raw, used) => {
                let offset = summary.bytes;
                // Sequences grow within a segment; one that does not is
                // no record of this log.
                if raw.seq < first_seq || (summary.events > 0 && raw.seq <= summary.last_seq) {
                    return Ok(Scan {
                        summary,
                        damage: Some(Damage::Corrupt),
                    });
                }
                summary.add(raw.seq, raw.times.received_ms, used as u64);
                at += used;
                if each(&raw, offset).is_break() {
                    return Ok(Scan {
                        summary,
                        damage: None,
                    });
                }
            }
            Read::Short if !eof => {
                buf.drain(..at);
                at = 0;
                let have = buf.len();
                let want = CHUNK.max(have + record::HEADER_LEN + record::MAX_BODY_LEN / 16);
                buf.resize(want, 0);
                let mut filled = have;
                while filled < buf.len() {
                    let n = file.read(&mut buf[filled..])?;
                    if n == 0 {
                        eof = true;
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
            }
            Read::Short => {
                let damage = (at < buf.len()).then_some(Damage::Torn);
                return Ok(Scan { summary, damage });
            }
            Read::Corrupt => {
                return Ok(Scan {
                    summary,
                    damage: Some(Damage::Corrupt),
                });
            }
        }
    }
}

/// Every intact event of the segment at `path`, oldest first, with ids
/// in `summary.epoch`.
pub fn read_events(path: &Path, mut each: impl FnMut(Arc<Event>)) -> io::Result<Scan> {
    let epoch = read_header(&mut File::open(path)?)?.0;
    read_records(path, |raw, _| {
        if let Some(event) = raw.event(epoch) {
            each(event);
        }
        ControlFlow::Continue(())
    })
}

/// The segment being appended to.
#[derive(Debug)]
pub struct SegmentWriter {
    path: PathBuf,
    file: File,
    /// Records encoded but not yet written.
    buf: Vec<u8>,
    /// What the file holds once `buf` is written.
    pub summary: Summary,
    /// Written since the last sync.
    dirty: bool,
}

impl SegmentWriter {
    /// Creates a new, empty segment in `dir` and syncs the directory, so
    /// the file is there after a crash.
    pub fn create(dir: &Path, epoch: u64, first_seq: u64) -> io::Result<Self> {
        let path = dir.join(file_name(first_seq));
        let mut file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)?;
        let mut header = Vec::with_capacity(FILE_HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&epoch.to_le_bytes());
        header.extend_from_slice(&first_seq.to_le_bytes());
        file.write_all(&header)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(SegmentWriter {
            path,
            file,
            buf: Vec::new(),
            summary: Summary::empty(epoch, first_seq),
            dirty: false,
        })
    }

    /// Opens an existing segment to append after its intact records
    /// (`summary`, from a scan); anything after them is cut off.
    pub fn reopen(path: &Path, summary: Summary) -> io::Result<Self> {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        if file.metadata()?.len() != summary.bytes {
            file.set_len(summary.bytes)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(summary.bytes))?;
        Ok(SegmentWriter {
            path: path.to_path_buf(),
            file,
            buf: Vec::new(),
            summary,
            dirty: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cuts the file back to `to` (an earlier summary of this segment):
    /// a round of `HISTORY_FSYNC=always` that failed leaves none of its
    /// records behind, so nothing answered `503` is read back later.
    pub fn rollback(&mut self, to: Summary) -> io::Result<()> {
        self.buf.clear();
        self.file.set_len(to.bytes)?;
        self.file.seek(SeekFrom::Start(to.bytes))?;
        self.summary = to;
        Ok(())
    }

    /// Whether records were pushed that [`Self::flush`] has not written.
    pub fn has_unwritten(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Encodes `event` after the others (written by [`Self::flush`]).
    pub fn push(&mut self, event: &Event) {
        let before = self.buf.len();
        record::encode(event, &mut self.buf);
        let len = (self.buf.len() - before) as u64;
        self.summary.add(event.id.seq, event.times.received_ms, len);
    }

    /// Hands what was pushed to the file (the OS's cache: it survives the
    /// process being killed, not a power loss).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self.file.write_all(&self.buf);
        self.buf.clear();
        if written.is_err() {
            // Whatever part was written is cut off again, so the file
            // never holds a torn record in its middle.
            self.summary = self.rescan_after_error()?;
        } else {
            self.dirty = true;
        }
        written
    }

    /// Puts what was written on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// After a failed write: the summary of what the file really holds,
    /// with the file cut back to it.
    fn rescan_after_error(&mut self) -> io::Result<Summary> {
        let scan = read_records(&self.path, |_, _| ControlFlow::Continue(()))?;
        self.file.set_len(scan.summary.bytes)?;
        self.file.seek(SeekFrom::Start(scan.summary.bytes))?;
        Ok(scan.summary)
    }

    /// Writes, syncs and writes the summary beside the segment: the writer
    /// moves on to a new segment.
    pub fn seal(mut self) -> io::Result<Summary> {
        self.flush()?;
        self.sync()?;
        write_summary(&self.path, &self.summary)?;
        Ok(self.summary)
    }
}

/// Writes `summary` beside `segment` (a new file, renamed into place).
pub fn write_summary(segment: &Path, summary: &Summary) -> io::Result<()> {
    let path = summary_path(segment);
    let tmp = path.with_extension("sum.tmp");
    let json = serde_json::to_vec(summary).map_err(io::Error::other)?;
    let mut file = File::create(&tmp)?;
    file.write_all(&json)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// A sealed segment's summary, if it is there and still describes the file
/// (same length); otherwise the segment must be scanned.
pub fn read_summary(segment: &Path) -> Option<Summary> {
    let json = std::fs::read(summary_path(segment)).ok()?;
    let summary: Summary = serde_json::from_slice(&json).ok()?;
    let len = std::fs::metadata(segment).ok()?.len();
    (len == summary.bytes).then_some(summary)
}

/// Makes a file created or renamed in `dir` survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;
    use crate::event::testing::event;

    fn written(dir: &Path, seqs: std::ops::RangeInclusive<u64>) -> PathBuf {
        let mut w = SegmentWriter::create(dir, 7, *seqs.start()).unwrap();
        for seq in seqs {
            w.push(&event(seq, "logs:etl:ws1", Level::Info, "line", seq as i64));
        }
        w.flush().unwrap();
        w.path().to_path_buf()
    }

    fn seqs(path: &Path) -> (Vec<u64>, Scan) {
        let mut got = Vec::new();
        let scan = read_events(path, |e| {
            assert_eq!(e.id.epoch, 7);
            got.push(e.id.seq)
        })
        .unwrap();
        (got, scan)
    }

    #[test]
    fn names_sort_in_sequence_order_and_parse_back() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("00000000000000000042.sum"), None);
    }

    #[test]
    fn a_torn_tail_is_found_and_cut_off_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), 1..=10);
        let full = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 3).unwrap();
        let (got, scan) = seqs(&path);
        assert_eq!(got, (1..=9).collect::<Vec<_>>());
        assert_eq!(scan.damage, Some(Damage::Torn));
        let mut w = SegmentWriter::reopen(&path, scan.summary).unwrap();
        w.push(&event(10, "logs:etl:ws1", Level::Info, "again", 10));
        w.flush().unwrap();
        let (got, scan) = seqs(&path);
        assert_eq!((got, scan.damage), ((1..=10).collect(), None));
    }

    #[test]
    fn a_flipped_byte_stops_the_read_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), 1..=10);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let (got, scan) = seqs(&path);
        assert!(got.len() < 10 && got.len() >= 3, "{got:?}");
        assert_eq!(scan.damage, Some(Damage::Corrupt));
    }

    #[test]
    fn a_sealed_summary_is_read_back_only_while_it_fits_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 7, 5).unwrap();
        for seq in 5..=8 {
            w.push(&event(seq, "logs:etl", Level::Info, "m", seq as i64 * 10));
        }
        let path = w.path().to_path_buf();
        let summary = w.seal().unwrap();
        assert_eq!(
            (summary.first_seq, summary.last_seq, summary.events),
            (5, 8, 4)
        );
        assert_eq!((summary.first_ms, summary.last_ms), (50, 80));
        assert_eq!(read_summary(&path), Some(summary));
        let (_, scan) = seqs(&path);
        assert_eq!(scan.summary, summary);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(read_summary(&path), None);
    }

    #[test]
    fn a_bad_header_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1));
        std::fs::write(&path, b"LGHIST0").unwrap();
        assert!(read_records(&path, |_, _| ControlFlow::Continue(())).is_err());
        std::fs::write(&path, [0u8; 64]).unwrap();
        assert!(read_records(&path, |_, _| ControlFlow::Continue(())).is_err());
    }
}
