//! Durable history: the real binary with `HISTORY_STORE=disk` on a
//! directory of the test's own, stopped (SIGTERM), killed (SIGKILL),
//! damaged on disk and started again.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use testkit::node::GatewayProcess;
use testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_loggate");

fn on_disk(dir: &Path, name: &str) -> GatewayProcess {
    let dir = dir.to_str().expect("a UTF-8 temporary path");
    GatewayProcess::spawn(BIN, name, &[("HISTORY_STORE", "disk"), ("DATA_DIR", dir)])
}

fn batch(ws: &str, from: usize, to: usize) -> Vec<Value> {
    (from..to)
        .map(|i| event("etl", Some(ws), Some("job"), &format!("m{i}")))
        .collect()
}

async fn history(gw: &GatewayProcess, channel: &str) -> Vec<Value> {
    let (status, body) = gw
        .get(&format!("/api/logs/history?channels={channel}&limit=1000"))
        .await
        .expect("history answers");
    assert_eq!(status, StatusCode::OK, "{body}");
    let page: Value = serde_json::from_str(&body).expect("JSON");
    page["logs"].as_array().expect("logs").clone()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// A deploy: SIGTERM, start again on the same directory. History is all
/// there under the same ids, a `Last-Event-ID` from before resumes exactly,
/// and new ids continue after the old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_history_ids_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = on_disk(dir.path(), "first");
    let mut before = Vec::new();
    for chunk in 0..5 {
        before.extend(
            gw.publish(&batch("ws1", chunk * 100, (chunk + 1) * 100))
                .await,
        );
    }
    assert!(gw.terminate().success());
    let gw = on_disk(dir.path(), "second");
    let kept = history(&gw, "logs:etl:ws1").await;
    assert_eq!(
        ids(&kept),
        before,
        "every accepted event, same ids, in order"
    );
    assert_eq!(messages(&kept)[499], "m499");
    // Resume from the middle of the old run: the rest of it, then live.
    let mut resumed = gw.resume("logs:etl:ws1", &before[249]).await;
    let replay = resumed.logs(250).await;
    assert_eq!(ids(&replay), before[250..].to_vec());
    let after = gw.publish(&batch("ws1", 500, 510)).await;
    let live = resumed.logs(10).await;
    assert_eq!(ids(&live), after);
    resumed.expect_silence(Duration::from_millis(200)).await;
    // Ids continue the old sequence: same epoch, larger.
    let (epoch, _) = before[0].split_once('-').unwrap();
    assert!(after[0].starts_with(epoch), "{} vs {}", after[0], before[0]);
    assert!(after[0] > before[499], "{} after {}", after[0], before[499]);
}

/// A crash (SIGKILL): what reached the store is served after the restart,
/// ids never repeat, and a subscriber that had been sent ids past what was
/// stored is told `restart_loss` instead of silently missing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_keeps_what_was_written_and_tells_of_what_may_be_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = on_disk(dir.path(), "first");
    let before = gw.publish(&batch("ws2", 0, 200)).await;
    // The writer hands each batch to the OS within moments; wait for the
    // store to report it (bounded) before the kill.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, m) = gw.get("/metrics").await.expect("metrics");
        if metric_value(&m, "loggate_history_disk_events").unwrap_or(0.0) >= 200.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never had 200 events"
        );
        tokio::time::sleep(POLL).await;
    }
    gw.kill();
    let gw = on_disk(dir.path(), "after the crash");
    assert_eq!(ids(&history(&gw, "logs:etl:ws2").await), before);
    let after = gw.publish(&batch("ws2", 200, 201)).await;
    assert!(after[0] > before[199], "no id is given twice");
    // An id the crashed run may have sent after the last one it stored.
    let (epoch, seq) = before[199].split_once('-').unwrap();
    let sent_but_lost = format!("{epoch}-{:012}", seq.parse::<u64>().unwrap() + 3);
    let mut resumed = gw.resume("logs:etl:ws2", &sent_but_lost).await;
    let gap = resumed.next_event().await.expect("a gap notice");
    assert_eq!(gap.event, "gap", "{gap:?}");
    assert_eq!(gap.json()["reason"], "restart_loss", "{gap:?}");
    assert_eq!(ids(&resumed.logs(1).await), after);
    // A resume from what was stored is exact, with no notice.
    let mut exact = gw.resume("logs:etl:ws2", &before[150]).await;
    assert_eq!(ids(&exact.logs(49).await), before[151..].to_vec());
    assert_eq!(ids(&exact.logs(1).await), after);
}

/// A torn tail (the newest segment cut mid-record): the gateway starts,
/// serves what is whole, and counts the repair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_off_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = on_disk(dir.path(), "first");
    let before = gw.publish(&batch("ws3", 0, 100)).await;
    assert!(gw.terminate().success());
    let segment = std::fs::read_dir(dir.path().join("history"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment file");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let gw = on_disk(dir.path(), "second");
    assert_eq!(
        ids(&history(&gw, "logs:etl:ws3").await),
        before[..99].to_vec()
    );
    let (_, m) = gw.get("/metrics").await.expect("metrics");
    assert_eq!(
        metric_value(&m, "loggate_history_recovered_total{what=\"torn_tail\"}"),
        Some(1.0)
    );
    // And it goes on storing after the cut.
    gw.publish(&batch("ws3", 100, 101)).await;
    assert_eq!(history(&gw, "logs:etl:ws3").await.len(), 100);
}

/// Two gateways on one directory would corrupt it: the second is refused
/// at start, exit 2, naming the lock.
#[test]
fn a_second_gateway_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = on_disk(dir.path(), "first");
    let mut cmd = testkit::process::base_command(BIN);
    cmd.env("HISTORY_STORE", "disk").env("DATA_DIR", dir.path());
    let out = cmd.output().expect("the binary runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("LOCK") && stderr.contains("another loggate"),
        "{stderr}"
    );
}

/// An `Idempotency-Key` answered before a restart is still known after it:
/// the retry gets the same ids and nothing is published again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let body = Value::Array(batch("ws4", 0, 3)).to_string();
    let send = |gw: &GatewayProcess| {
        gw.client
            .post(gw.url("/api/logs/publish"))
            .header("x-service-token", ETL_TOKEN)
            .header("content-type", "application/json")
            .header("idempotency-key", "deploy-retry-1")
            .body(body.clone())
            .send()
    };
    let mut gw = on_disk(dir.path(), "first");
    let first = send(&gw).await.expect("publish");
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    assert!(gw.terminate().success());
    let gw = on_disk(dir.path(), "second");
    let again = send(&gw).await.expect("publish again");
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["ids"], first["ids"], "the first answer's ids");
    assert_eq!(
        history(&gw, "logs:etl:ws4").await.len(),
        3,
        "published once"
    );
}

/// A tmpfs mounted for one test (needs root, as the test machines run),
/// unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn metric(gw: &GatewayProcess, series: &str) -> f64 {
    let (_, m) = gw.get("/metrics").await.expect("metrics");
    metric_value(&m, series).unwrap_or(0.0)
}

/// A full disk: publishes are still accepted and delivered live, what
/// could not be stored is counted, and once space is freed the store goes
/// on by itself: what is published then is kept across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_counted_and_the_store_recovers_when_space_is_freed() {
    let disk = SmallDisk::mount(4 << 20);
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 3 << 20]).unwrap();
    let data = disk.dir.path().join("data");
    let data_str = data.to_str().unwrap();
    let vars = [
        ("HISTORY_STORE", "disk"),
        ("DATA_DIR", data_str),
        ("HISTORY_MAX_DISK_BYTES", "1048576"),
    ];
    let mut gw = GatewayProcess::spawn(BIN, "full disk", &vars);
    let mut live = gw.subscribe("logs:etl:ws5").await;
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while metric(&gw, "loggate_history_write_errors_total").await == 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the disk never filled ({n} events)"
        );
        gw.publish(&batch("ws5", n, n + 100)).await;
        assert_eq!(messages(&live.logs(100).await)[99], format!("m{}", n + 99));
        n += 100;
    }
    assert_eq!(gw.health().await["history"]["state"], "degraded");
    std::fs::remove_file(&filler).unwrap();
    // Published after the space came back: stored again.
    let errors = metric(&gw, "loggate_history_write_errors_total").await;
    let after = gw.publish(&batch("ws6", 0, 10)).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while metric(&gw, "loggate_history_disk_events").await < 1.0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(
        metric(&gw, "loggate_history_write_errors_total").await,
        errors
    );
    assert!(gw.terminate().success());
    let gw = GatewayProcess::spawn(BIN, "after the full disk", &vars);
    assert_eq!(
        ids(&history(&gw, "logs:etl:ws6").await),
        after,
        "what came after the space was freed is kept"
    );
}

/// Every id in history on `channel`, oldest first, page by page.
async fn all_history_ids(gw: &GatewayProcess, channel: &str) -> Vec<String> {
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/logs/history?channels={channel}&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = gw.get(&path).await.expect("history answers");
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        got.extend(ids(page["logs"].as_array().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return got,
        }
    }
}

/// Reads `log` ids until the stream ends (the gateway stopping) or
/// `want` of them came; anything else but comments fails.
async fn read_ids(client: &mut SseClient, want: usize, seen: &mut Vec<String>) {
    while seen.len() < want {
        match client
            .next_frame_until(tokio::time::Instant::now() + DEADLINE)
            .await
        {
            testkit::Next::Frame(f) if f.event == "log" => {
                seen.push(f.json()["id"].as_str().unwrap().to_owned())
            }
            testkit::Next::Frame(f) if f.event == "comment" || f.event == "shutdown" => {}
            testkit::Next::Ended => return,
            other => panic!("after {} events: {other:?}", seen.len()),
        }
    }
}

/// A deploy in the middle of a steady publish (2,000 events/s): every
/// event answered `202` is in history after the restart, in order, and
/// eight subscribers that resume with the last id they had see the rest,
/// nothing missing and nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_steady_publish_loses_nothing_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = on_disk(dir.path(), "first");
    let mut readers = Vec::new();
    for _ in 0..8 {
        readers.push(gw.subscribe("logs:etl:ws7").await);
    }
    let url = gw.url("/api/logs/publish");
    let client = gw.client.clone();
    // 20 events every 10 ms until the gateway stops answering 202.
    let publisher = tokio::spawn(async move {
        let mut accepted: Vec<String> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for round in 0.. {
            tick.tick().await;
            let body = Value::Array(batch("ws7", round * 20, round * 20 + 20)).to_string();
            let sent = client
                .post(&url)
                .header("x-service-token", ETL_TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .timeout(DEADLINE)
                .send()
                .await;
            let Ok(res) = sent else { break };
            if res.status() != StatusCode::ACCEPTED {
                break;
            }
            let answer: Value = res.json().await.unwrap();
            accepted.extend(
                answer["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_str().unwrap().to_owned()),
            );
        }
        accepted
    });
    // Let it run until a good part has been seen by every reader.
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); 8];
    for (reader, seen) in readers.iter_mut().zip(seen.iter_mut()) {
        read_ids(reader, 1000, seen).await;
    }
    assert!(gw.terminate().success());
    let accepted = publisher.await.unwrap();
    for (reader, seen) in readers.iter_mut().zip(seen.iter_mut()) {
        read_ids(reader, usize::MAX, seen).await;
    }
    let gw = on_disk(dir.path(), "second");
    assert_eq!(
        all_history_ids(&gw, "logs:etl:ws7").await,
        accepted,
        "every 202-answered event, in order"
    );
    let more = gw.publish(&batch("ws7", 1_000_000, 1_000_010)).await;
    for seen in &seen {
        let last = seen.last().expect("each reader saw events");
        let at = accepted
            .iter()
            .position(|id| id == last)
            .expect("a seen id was accepted");
        assert_eq!(
            &accepted[..=at],
            &seen[..],
            "live, before the stop: in order, once"
        );
        let mut resumed = gw.resume("logs:etl:ws7", last).await;
        let want: Vec<String> = accepted[at + 1..].iter().chain(&more).cloned().collect();
        let mut got = Vec::new();
        read_ids(&mut resumed, want.len(), &mut got).await;
        assert_eq!(got, want, "the rest after the restart, once each");
        resumed.expect_silence(Duration::from_millis(100)).await;
    }
}

/// `HISTORY_FSYNC=always`: a publish is answered `202` only once on disk;
/// one the disk cannot take is `503 storage_unavailable` with
/// `Retry-After` and is never delivered; freeing space brings `202` back,
/// and everything answered `202` is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_always_answers_503_for_what_the_disk_cannot_take_and_delivers_none_of_it() {
    let disk = SmallDisk::mount(4 << 20);
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 3 << 20]).unwrap();
    let data = disk.dir.path().join("data");
    let vars = [
        ("HISTORY_STORE", "disk"),
        ("HISTORY_FSYNC", "always"),
        ("DATA_DIR", data.to_str().unwrap()),
        ("HISTORY_MAX_DISK_BYTES", "1048576"),
    ];
    let mut gw = GatewayProcess::spawn(BIN, "always", &vars);
    let mut live = gw.subscribe("logs:etl:ws8").await;
    let mut accepted: Vec<String> = Vec::new();
    let mut n = 0;
    let refused = loop {
        assert!(n < 100_000, "the disk never filled");
        let res = gw
            .client
            .post(gw.url("/api/logs/publish"))
            .header("x-service-token", ETL_TOKEN)
            .header("content-type", "application/json")
            .body(Value::Array(batch("ws8", n, n + 100)).to_string())
            .send()
            .await
            .expect("publish");
        n += 100;
        if res.status() == StatusCode::ACCEPTED {
            let answer: Value = res.json().await.unwrap();
            accepted.extend(ids(&answer["ids"]
                .as_array()
                .unwrap()
                .clone()
                .into_iter()
                .map(|id| serde_json::json!({ "id": id }))
                .collect::<Vec<_>>()));
            continue;
        }
        break res;
    };
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    // Live subscribers got exactly what was answered 202, nothing of the
    // refused batch.
    let mut seen = Vec::new();
    read_ids(&mut live, accepted.len(), &mut seen).await;
    assert_eq!(seen, accepted);
    live.expect_silence(Duration::from_millis(300)).await;
    std::fs::remove_file(&filler).unwrap();
    let after = gw.publish(&batch("ws9", 0, 10)).await;
    assert!(gw.terminate().success());
    let gw = GatewayProcess::spawn(BIN, "always, again", &vars);
    assert_eq!(all_history_ids(&gw, "logs:etl:ws8").await, accepted);
    assert_eq!(all_history_ids(&gw, "logs:etl:ws9").await, after);
}
