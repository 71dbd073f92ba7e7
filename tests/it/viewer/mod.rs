//! The web viewer (`/ui/`) in real headless Chromium, against a real
//! gateway over real sockets: history then live with no seam, the view in
//! the address, filters, pausing, a line's JSON, tokens, reconnects after a
//! restart, refusals, the ring bound under a fast stream, paging back and
//! downloading, the gateway panel, a path prefix, the channel box's offers
//! (within the token's grants), the Ask panel, and a clean console.
//!
//! Screenshots of the main views are saved under the target directory
//! (`target/tmp/viewer/`) as test artifacts.

mod access;
mod ask;
mod channels;
mod lines;
mod live;

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::Value;
use testkit::browser::Browser;
use testkit::viewer::{self};
use testkit::*;

pub(super) const SECRET: &str = "viewer-test-secret-viewer-test-secret";
pub(super) const ADMIN: &str = "viewer-admin-token-for-the-tests";

pub(super) fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("viewer")
        .join(name)
}

/// A gateway with no publish or connect rate limits (the tests publish
/// fast and reconnect often).
pub(super) fn gateway(adjust: impl FnOnce(&mut loggate::Config)) -> InProcessGateway {
    start_with(|c| {
        c.limits.publish_rate_per_sec = 0;
        c.limits.connect_rate_per_ip = 0;
        c.limits.history_rate_per_ip = 0;
        adjust(c);
    })
}

pub(super) fn at_level(mut e: Value, level: &str) -> Value {
    e["logData"]["level"] = level.into();
    e
}

/// Publishes `events` as one batch; returns their ids.
pub(super) async fn publish(gw: &InProcessGateway, events: Vec<Value>) -> Vec<String> {
    let (status, answer) = gw.publish(&Value::Array(events)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|i| i.as_str().expect("id").to_owned())
        .collect()
}

pub(super) async fn publish_one(gw: &InProcessGateway, e: Value) -> String {
    publish(gw, vec![e]).await.remove(0)
}

/// No console error of any kind: no exception, no CSP violation, no
/// failed request.
pub(super) async fn assert_clean_console(b: &mut Browser) {
    let errors: Vec<_> = b
        .console()
        .await
        .iter()
        .filter(|e| e.is_error())
        .cloned()
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// No script error (refused requests are logged by the browser itself and
/// are expected where a test provokes them).
pub(super) async fn assert_no_script_errors(b: &mut Browser) {
    let errors = b.script_errors().await;
    assert!(errors.is_empty(), "script errors: {errors:#?}");
}

pub(super) fn ids_of(lines: &[viewer::Line]) -> Vec<String> {
    lines.iter().map(|l| l.id.clone()).collect()
}
