//! The store over a real directory: what a start recovers after a clean
//! stop, a crash and damage, retention, and the lock.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::event::testing::event;
use crate::event::{EventId, Level};

fn settings(dir: &Path) -> StoreSettings {
    StoreSettings {
        dir: dir.to_path_buf(),
        fsync: Fsync::Interval,
        fsync_interval: Duration::from_millis(10),
        max_disk_bytes: 1 << 30,
        max_age_ms: i64::MAX / 2,
        memory_bytes: 1 << 20,
        key_window_ms: 300_000,
    }
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(["etl"], &[]))
}

/// An event of `epoch` received now.
fn ev(epoch: u64, seq: u64) -> Arc<Event> {
    let e = event(
        seq,
        "logs:etl:ws1",
        Level::Info,
        &format!("line {seq}"),
        crate::event::now_ms(),
    );
    // The test helper's epoch is fixed; give it ours.
    let mut raw = Vec::new();
    record::encode(&e, &mut raw);
    match record::read(&raw) {
        record::Read::Record(r, _) => r.event(epoch).expect("an event"),
        _ => unreachable!(),
    }
}

fn write(dir: &Path, epoch: u64, seqs: std::ops::RangeInclusive<u64>, close: bool) -> Recovered {
    let m = metrics();
    let (opened, recovered) = open(settings(dir), &m).unwrap();
    let (appender, handle) = opened.start_writer(epoch, Arc::clone(&m)).unwrap();
    appender.append(seqs.map(|s| ev(epoch, s)).collect());
    if close {
        handle.close().unwrap();
    } else {
        handle.abandon();
    }
    recovered
}

fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
    events.iter().map(|e| e.id.seq).collect()
}

#[test]
fn a_clean_stop_is_recovered_whole_and_clean() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), 9, 1..=100, true);
    assert_eq!((first.epoch, first.last_seq, first.clean), (None, 0, true));
    let m = metrics();
    let (_, r) = open(settings(dir.path()), &m).unwrap();
    assert_eq!((r.epoch, r.last_seq, r.clean), (Some(9), 100, true));
    assert_eq!(seqs(&r.recent), (1..=100).collect::<Vec<_>>());
    assert_eq!(r.recent[41].id, EventId { epoch: 9, seq: 42 });
    assert_eq!(&*r.recent[41].message, "line 42");
}

#[test]
fn a_stop_without_the_mark_is_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 9, 1..=10, false);
    let (_, r) = open(settings(dir.path()), &metrics()).unwrap();
    assert_eq!((r.last_seq, r.clean), (10, false));
}

#[test]
fn a_torn_tail_is_cut_counted_and_appended_after() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 9, 1..=50, true);
    let seg = dir.path().join("history").join(segment::file_name(1));
    let len = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let m = metrics();
    let (opened, r) = open(settings(dir.path()), &m).unwrap();
    assert_eq!((r.last_seq, r.clean), (49, false));
    assert_eq!(
        m.history_recovered.with_label_values(&["torn_tail"]).get(),
        1
    );
    let (appender, handle) = opened.start_writer(9, Arc::clone(&m)).unwrap();
    appender.append((50..=60).map(|s| ev(9, s)).collect());
    handle.close().unwrap();
    let (_, r) = open(settings(dir.path()), &metrics()).unwrap();
    assert_eq!(seqs(&r.recent), (1..=60).collect::<Vec<_>>());
}

#[test]
fn a_damaged_older_segment_is_set_aside_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.max_disk_bytes = 16 * (64 << 10); // 64 KiB segments
    let m = metrics();
    let (opened, _) = open(s.clone(), &m).unwrap();
    let (appender, handle) = opened.start_writer(9, Arc::clone(&m)).unwrap();
    appender.append((1..=2000).map(|n| ev(9, n)).collect());
    handle.close().unwrap();
    let hist = dir.path().join("history");
    let mut segs: Vec<_> = std::fs::read_dir(&hist)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    // Flip a byte in the middle of the first segment, and take its
    // summary away so the start reads it.
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&segs[0], bytes).unwrap();
    std::fs::remove_file(segment::summary_path(&segs[0])).unwrap();
    let m = metrics();
    let (_, r) = open(s, &m).unwrap();
    assert_eq!(
        m.history_recovered
            .with_label_values(&["corrupt_segment"])
            .get(),
        1
    );
    assert!(segs[0].with_extension("seg.corrupt").exists());
    assert_eq!(r.last_seq, 2000);
    assert!(r.first_seq.unwrap() > 1);
}

#[test]
fn retention_deletes_whole_old_segments_past_the_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.max_disk_bytes = 16 * (64 << 10);
    let m = metrics();
    let (opened, _) = open(s.clone(), &m).unwrap();
    let (appender, handle) = opened.start_writer(9, Arc::clone(&m)).unwrap();
    for chunk in 0..20u64 {
        appender.append(
            (chunk * 1000 + 1..=(chunk + 1) * 1000)
                .map(|n| ev(9, n))
                .collect(),
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Retention runs once a second: wait for it (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while appender.pending_bytes() > 0 {
        assert!(std::time::Instant::now() < deadline, "never written");
        std::thread::sleep(Duration::from_millis(10));
    }
    let first = dir.path().join("history").join(segment::file_name(1));
    while first.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the oldest segment is still there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.close().unwrap();
    let (_, r) = open(s.clone(), &metrics()).unwrap();
    assert_eq!(r.last_seq, 20_000);
    assert!(r.first_seq.unwrap() > 1, "the oldest went");
    let on_disk: u64 = std::fs::read_dir(dir.path().join("history"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= s.max_disk_bytes + s.segment_bytes(), "{on_disk}");
}

#[test]
fn a_second_opener_is_refused_by_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, _) = open(settings(dir.path()), &metrics()).unwrap();
    let err = open(settings(dir.path()), &metrics()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("LOCK"), "{err}");
}

#[test]
fn retention_deletes_segments_past_the_age_limit_even_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.max_disk_bytes = 16 * (64 << 10);
    s.max_age_ms = 300;
    let m = metrics();
    let (opened, _) = open(s.clone(), &m).unwrap();
    let (appender, handle) = opened.start_writer(9, Arc::clone(&m)).unwrap();
    appender.append((1..=1500).map(|n| ev(9, n)).collect());
    // Taken by the writer (its segments made) before the wait below.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while appender.pending_bytes() > 0 {
        assert!(std::time::Instant::now() < deadline, "never written");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every event ages out, the last segment too: the store empties
    // itself with nothing more published (bounded wait).
    loop {
        let segments = std::fs::read_dir(dir.path().join("history"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
            .count();
        if segments == 0 && m.history_disk_events.get() == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{segments} segments left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.close().unwrap();
    let (_, r) = open(s, &metrics()).unwrap();
    assert_eq!((r.first_seq, r.recent.len()), (None, 0));
}
