//! The channel box: offers of what exists, within the token's grants.

use loggate::config::Secret;
use reqwest::StatusCode;
use serde_json::json;
use testkit::browser::Browser;
use testkit::viewer::{self};
use testkit::*;

use super::*;

#[tokio::test]
async fn the_channel_box_offers_the_channels_that_exist_and_picking_one_switches() {
    let gw = gateway(|_| {});
    publish(
        &gw,
        vec![
            event("etl", Some("ws1"), None, "one"),
            event("etl", Some("ws2"), None, "two"),
            event("etl", Some("wx"), None, "x"),
        ],
    )
    .await;
    let (s, _) = gw
        .publish_raw(
            "faas-token",
            "application/json",
            event("faas", Some("ws1"), None, "three").to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // A channel someone watches by name, with no history.
    let _watching = gw.subscribe("channels=logs:etl:wz").await;

    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:*")).await;
    viewer::wait_status(&b, "live").await;
    viewer::wait_lines(&b, 4).await;

    b.type_into("#f-channels", "logs:etl:w").await;
    viewer::wait_channel_options(
        &b,
        &["logs:etl:ws1", "logs:etl:ws2", "logs:etl:wx", "logs:etl:wz"],
    )
    .await;
    let ws1 = viewer::channel_option_text(&b, "logs:etl:ws1").await;
    assert!(
        ws1.starts_with("logs:etl:ws1") && ws1.contains("1 event") && ws1.contains("newest"),
        "{ws1}"
    );
    let wz = viewer::channel_option_text(&b, "logs:etl:wz").await;
    assert!(
        wz.contains("0 events") && wz.contains("1 watching") && !wz.contains("newest"),
        "{wz}"
    );
    b.screenshot(&artifact("channel-box.png")).await;
    // Typing narrows what is offered.
    viewer::press(&b, "#f-channels", "s").await;
    viewer::wait_channel_options(&b, &["logs:etl:ws1", "logs:etl:ws2"]).await;

    // A click picks one, and the view switches to it.
    b.click("[data-testid=channel-option][data-channel=\"logs:etl:ws2\"]")
        .await;
    b.wait_for(
        "the view of logs:etl:ws2",
        "return new URLSearchParams(location.search).get('channels') === 'logs:etl:ws2';",
    )
    .await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["two"]);
    assert!(
        viewer::channel_options(&b).await.is_empty(),
        "the list closed"
    );
    publish_one(&gw, event("etl", Some("ws2"), None, "two, live")).await;
    viewer::wait_last_line(&b, "two, live").await;

    // So do the arrow keys and Enter; only the last of several channels
    // is completed.
    b.type_into("#f-channels", "logs:etl:wx,logs:fa").await;
    viewer::wait_channel_options(&b, &["logs:faas:ws1"]).await;
    viewer::press(&b, "#f-channels", "\u{E015}\u{E007}").await;
    b.wait_for(
        "the view of two channels",
        "return new URLSearchParams(location.search).get('channels') === 'logs:etl:wx,logs:faas:ws1';",
    )
    .await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 2).await, ["x", "three"]);

    // Escape closes the list; nothing matching, nothing offered.
    b.type_into("#f-channels", "logs:").await;
    viewer::wait_channel_options(
        &b,
        &[
            "logs:etl:ws1",
            "logs:etl:ws2",
            "logs:etl:wx",
            "logs:etl:wz",
            "logs:faas:ws1",
        ],
    )
    .await;
    viewer::press(&b, "#f-channels", "\u{E00C}").await;
    viewer::wait_channel_options(&b, &[]).await;
    b.type_into("#f-channels", "logs:nothing").await;
    b.wait_for(
        "the lookup of logs:nothing",
        "return document.querySelector('[data-testid=channel-options]').dataset.term === 'logs:nothing';",
    )
    .await;
    assert!(viewer::channel_options(&b).await.is_empty());
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn the_channel_box_offers_only_what_the_token_may_read() {
    let gw = gateway(|c| c.auth.jwt_secret = Some(Secret::new(SECRET)));
    publish(
        &gw,
        vec![
            event("etl", Some("wsA"), None, "mine"),
            event("etl", Some("wsA"), Some("job1"), "mine too"),
            event("etl", Some("wsB"), None, "theirs"),
        ],
    )
    .await;
    let jwt = jwt::hs256(
        SECRET,
        &json!({"exp": jwt::now() + 600, "workspaces": ["wsA"]}),
    );
    let mut b = Browser::launch().await;
    b.open(&gw.url(&format!("/ui/?channels=logs:*:wsA&token={jwt}")))
        .await;
    viewer::wait_status(&b, "live").await;
    b.type_into("#f-channels", "logs:").await;
    viewer::wait_channel_options(&b, &["logs:etl:wsA", "logs:etl:wsA:job1"]).await;
    b.type_into("#f-channels", "logs:etl:ws").await;
    viewer::wait_channel_options(&b, &["logs:etl:wsA", "logs:etl:wsA:job1"]).await;
    b.click("[data-testid=channel-option][data-channel=\"logs:etl:wsA:job1\"]")
        .await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["mine too"]);
    assert_clean_console(&mut b).await;
    b.close().await;
}
