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
