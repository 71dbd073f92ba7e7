//! Idempotency keys on disk, so a retry after a restart (a crash too) is
//! still answered with the first request's ids.
//!
//! Each answered key is one record, `len u32 | crc u32 | JSON`, appended by
//! the writer thread to `DATA_DIR/keys/{bucket:020}.keys`, where `bucket` is
//! the answer's time divided by the key window: once two windows have
//! passed, every key of a file has expired and the file is deleted whole.
//! So at most three files are ever kept. A start reads them all, stopping
//! each at its first damaged record, and hands back the keys still inside
//! their window for [`crate::idempotency::Table::import`].

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::EventId;
use crate::idempotency::Entry;

/// The JSON of one kept key.
#[derive(Serialize, Deserialize)]
struct Kept {
    service: String,
    key: String,
    digest: String,
    ids: Vec<String>,
    at: i64,
}

fn to_kept(e: &Entry) -> Kept {
    Kept {
        service: e.service.clone(),
        key: e.key.clone(),
        digest: hex::encode(e.digest),
        ids: e.ids.iter().map(ToString::to_string).collect(),
        at: e.inserted_at_ms,
    }
}

fn from_kept(k: Kept) -> Option<Entry> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(&k.digest, &mut digest).ok()?;
    let ids = k
        .ids
        .iter()
        .map(|i| i.parse::<EventId>().ok())
        .collect::<Option<Vec<_>>>()?;
    Some(Entry {
        service: k.service,
        key: k.key,
        digest,
        ids,
        inserted_at_ms: k.at,
    })
}

/// The longest record a key can make (128-byte key, a 1000-event batch
/// of ids); anything longer is damage.
const MAX_RECORD: usize = 1 << 20;

fn file_name(bucket: i64) -> String {
    format!("{bucket:020}.keys")
}

fn bucket_of(name: &str) -> Option<i64> {
    name.strip_suffix(".keys")?.parse().ok()
}

/// The keys directory, appended to by the writer thread.
#[derive(Debug)]
pub struct KeyLog {
    dir: PathBuf,
    window_ms: i64,
    current: Option<(i64, File)>,
    buf: Vec<u8>,
    dirty: bool,
}

impl KeyLog {
    pub fn new(dir: PathBuf, window_ms: i64) -> Self {
        KeyLog {
            dir,
            window_ms: window_ms.max(1),
            current: None,
            buf: Vec::new(),
            dirty: false,
        }
    }

    /// Encodes `entry` (written by [`Self::flush`], into the file of its
    /// time).
    pub fn push(&mut self, entry: &Entry) -> io::Result<()> {
        let bucket = entry.inserted_at_ms / self.window_ms;
        if self.current.as_ref().is_none_or(|(b, _)| *b != bucket) {
            self.flush()?;
            let path = self.dir.join(file_name(bucket));
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            super::segment::sync_dir(&self.dir)?;
            self.current = Some((bucket, file));
        }
        let json = serde_json::to_vec(&to_kept(entry)).map_err(io::Error::other)?;
        self.buf
            .extend_from_slice(&(json.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        self.buf.extend_from_slice(&json);
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some((_, file)) = self.current.as_mut() else {
            self.buf.clear();
            return Ok(());
        };
        let written = file.write_all(&self.buf);
        self.buf.clear();
        self.dirty |= written.is_ok();
        written
    }

    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty
            && let Some((_, file)) = self.current.as_mut()
        {
            file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Deletes the files whose every key has expired.
    pub fn retain(&mut self, now_ms: i64) -> io::Result<()> {
        let oldest_live = now_ms.saturating_sub(self.window_ms) / self.window_ms;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(bucket) = entry.file_name().to_str().and_then(bucket_of)
                && bucket < oldest_live
            {
                if self.current.as_ref().is_some_and(|(b, _)| *b == bucket) {
                    self.current = None;
                }
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

/// Every key in `dir` still inside its window at `now_ms`, oldest first.
/// A file is read up to its first damaged record (a torn tail).
pub fn read(dir: &Path, window_ms: i64, now_ms: i64) -> io::Result<Vec<Entry>> {
    let mut files: Vec<(i64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(bucket) = entry.file_name().to_str().and_then(bucket_of) {
            files.push((bucket, entry.path()));
        }
    }
    files.sort();
    let mut keys = Vec::new();
    for (_, path) in files {
        let bytes = std::fs::read(&path)?;
        let mut at = 0;
        while let Some(header) = bytes.get(at..at + 8) {
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let Some(json) = bytes
                .get(at + 8..at + 8 + len)
                .filter(|_| len <= MAX_RECORD)
            else {
                break;
            };
            if crc32fast::hash(json) != crc {
                break;
            }
            if let Some(entry) = serde_json::from_slice::<Kept>(json)
                .ok()
                .and_then(from_kept)
                && now_ms.saturating_sub(entry.inserted_at_ms) < window_ms
            {
                keys.push(entry);
            }
            at += 8 + len;
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, at: i64) -> Entry {
        Entry {
            service: "etl".into(),
            key: key.into(),
            digest: [7; 32],
            ids: vec![EventId { epoch: 1, seq: 5 }, EventId { epoch: 1, seq: 6 }],
            inserted_at_ms: at,
        }
    }

    #[test]
    fn keys_read_back_within_their_window_and_old_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = KeyLog::new(dir.path().to_path_buf(), 1000);
        for (key, at) in [("a", 100), ("b", 1500), ("c", 2500)] {
            log.push(&entry(key, at)).unwrap();
        }
        log.flush().unwrap();
        let keys: Vec<String> = read(dir.path(), 1000, 2400)
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(read(dir.path(), 1000, 2400).unwrap()[0], entry("b", 1500));
        log.retain(2400).unwrap();
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "the first window's file is gone");
    }

    #[test]
    fn a_torn_record_ends_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = KeyLog::new(dir.path().to_path_buf(), 1_000_000);
        log.push(&entry("a", 10)).unwrap();
        log.push(&entry("b", 20)).unwrap();
        log.flush().unwrap();
        let path = dir.path().join(file_name(0));
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let keys = read(dir.path(), 1_000_000, 30).unwrap();
        assert_eq!(keys, vec![entry("a", 10)]);
    }
}
