//! Getting in: tokens (JWT, static, expired), a path prefix, the page's
//! files and headers, and the admin's gateway panel.

use loggate::config::Secret;
use reqwest::StatusCode;
use serde_json::json;
use testkit::browser::Browser;
use testkit::proxy::PrefixProxy;
use testkit::viewer::{self};
use testkit::*;

use super::*;

#[tokio::test]
async fn a_protected_gateway_asks_for_a_token_and_keeps_it_out_of_the_address() {
    let gw = gateway(|c| c.auth.jwt_secret = Some(Secret::new(SECRET)));
    publish_one(&gw, event("etl", Some("ws1"), None, "for ws1")).await;
    let token = |ws: &str| {
        jwt::hs256(
            SECRET,
            &json!({"sub": "viewer", "exp": jwt::now() + 600, "workspaces": [ws]}),
        )
    };
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:*:ws1")).await;
    viewer::wait_status(&b, "error").await;
    assert!(viewer::is_shown(&b, "token-form").await);
    let why = viewer::text_of(&b, "token-why").await;
    assert!(why.contains("token"), "the 401's message is shown: {why:?}");
    b.screenshot(&artifact("token-form.png")).await;

    // A token that does not cover the view: its 403 is shown the same way.
    b.type_into("#token-input", &token("ws2")).await;
    b.click("#token-entry button[type=submit]").await;
    b.wait_for(
        "the 403's message",
        "return document.getElementById('token-why').textContent.includes('not granted') && !document.getElementById('token-form').hidden;",
    )
    .await;
    let why = viewer::text_of(&b, "token-why").await;
    assert!(why.contains("logs:*:ws1"), "{why}");

    b.type_into("#token-input", &token("ws1")).await;
    b.click("#token-entry button[type=submit]").await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["for ws1"]);
    assert!(!viewer::is_shown(&b, "token-form").await);
    publish_one(&gw, event("etl", Some("ws1"), None, "live for ws1")).await;
    viewer::wait_last_line(&b, "live for ws1").await;
    assert_no_script_errors(&mut b).await;
    b.close().await;

    // `&token=` is taken once and leaves the address bar.
    let mut b = Browser::launch().await;
    let jwt = token("ws1");
    b.open(&gw.url(&format!("/ui/?channels=logs:*:ws1&token={jwt}&level=info")))
        .await;
    viewer::wait_status(&b, "live").await;
    let url = b.url().await;
    assert!(!url.contains("token="), "{url}");
    assert!(url.contains("level=info"), "{url}");
    let kept = b
        .eval("return sessionStorage.getItem('loggate_token');")
        .await;
    assert_eq!(kept, jwt.as_str());
    assert_eq!(viewer::wait_lines(&b, 2).await.len(), 2);
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_static_auth_token_works_and_an_expired_jwt_asks_again() {
    let gw = gateway(|c| {
        c.auth.auth_token = Some(Secret::new("a-static-token-for-viewers"));
        c.auth.jwt_secret = Some(Secret::new(SECRET));
    });
    publish_one(&gw, event("etl", None, None, "hello")).await;
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl&token=a-static-token-for-viewers"))
        .await;
    viewer::wait_status(&b, "live").await;
    viewer::wait_lines(&b, 1).await;
    assert_clean_console(&mut b).await;

    // A JWT that expires while the stream is open.
    let short = jwt::hs256(
        SECRET,
        &json!({"exp": jwt::now() + 2, "channels": ["logs:etl"]}),
    );
    b.open(&gw.url(&format!("/ui/?channels=logs:etl&token={short}")))
        .await;
    viewer::wait_status(&b, "live").await;
    viewer::wait_status(&b, "error").await;
    let why = viewer::text_of(&b, "token-why").await;
    assert!(why.contains("expired"), "{why}");
    assert_no_script_errors(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn it_works_behind_a_path_prefix() {
    let gw = gateway(|_| {});
    publish_one(&gw, event("etl", None, None, "through the proxy")).await;
    let proxy = PrefixProxy::start(gw.running.addr, "/logs").await;
    let mut b = Browser::launch().await;
    b.open(&proxy.url("/logs/")).await;
    b.wait_for("the viewer", "return location.pathname === '/logs/ui/';")
        .await;
    viewer::wait_status(&b, "live").await;
    assert_eq!(viewer::wait_lines(&b, 1).await, ["through the proxy"]);
    publish_one(&gw, event("etl", None, None, "live through the proxy")).await;
    viewer::wait_last_line(&b, "live through the proxy").await;
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_headers() {
    let gw = gateway(|_| {});
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/ui"] {
        let res = client.get(gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{path}");
        assert_eq!(
            res.headers()["location"],
            "ui/",
            "relative, for path prefixes"
        );
    }
    let page = client.get(gw.url("/ui/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-cache");
    let tag = h["etag"].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-testid="log-list""#));
    let again = client
        .get(gw.url("/ui/"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    for (file, kind) in [
        ("main.js", "text/javascript; charset=utf-8"),
        ("list.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let res = client
            .get(gw.url(&format!("/ui/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{file}");
        assert_eq!(res.headers()["content-type"], kind, "{file}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }
    let (status, body) = gw.get_json("/ui/../Cargo.toml").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = gw.get_json("/ui/secrets.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let res = client.post(gw.url("/ui/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_gateway_panel_shows_connections_channels_and_services() {
    let gw = gateway(|c| c.auth.admin_token = Some(Secret::new(ADMIN)));
    let mut b = Browser::launch().await;
    b.open(&gw.url("/ui/?channels=logs:etl:ws1")).await;
    viewer::wait_status(&b, "live").await;
    publish(
        &gw,
        (0..5)
            .map(|i| event("etl", Some("ws1"), None, &format!("e{i}")))
            .collect(),
    )
    .await;
    viewer::wait_lines(&b, 5).await;

    b.click("#admin-open").await;
    b.wait_for(
        "the admin token form",
        "return !document.getElementById('admin-entry').hidden;",
    )
    .await;
    b.type_into("#admin-input", "not the admin token").await;
    b.click("#admin-entry button[type=submit]").await;
    b.wait_for(
        "the 401's message",
        "return document.getElementById('admin-why').textContent.includes('ADMIN_TOKEN');",
    )
    .await;
    b.type_into("#admin-input", ADMIN).await;
    b.click("#admin-entry button[type=submit]").await;
    b.wait_for(
        "the tables",
        "return !!document.querySelector('[data-testid=admin-services]');",
    )
    .await;
    let rows = |table: &str| {
        format!(
            "return [...document.querySelectorAll('[data-testid={table}] tr')].slice(1).map(r => [...r.children].map(c => c.textContent));"
        )
    };
    let connections = b.eval(&rows("admin-connections")).await;
    assert_eq!(connections[0], json!(["SSE", "1"]), "{connections}");
    let channels = b.eval(&rows("admin-channels")).await;
    assert_eq!(channels[0], json!(["logs:etl:ws1", "1"]), "{channels}");
    let services = b.eval(&rows("admin-services")).await;
    let etl = services
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "etl")
        .unwrap_or_else(|| panic!("{services}"));
    assert_eq!(
        (&etl[1], &etl[3], &etl[5]),
        (&json!("5"), &json!("5"), &json!("0"))
    );
    // It follows the gateway: a rate appears on the next poll.
    publish(
        &gw,
        (0..4)
            .map(|i| event("etl", Some("ws1"), None, &format!("f{i}")))
            .collect(),
    )
    .await;
    b.wait_for(
        "the new count",
        &format!(
            "{} return r.find(x => x[0] === 'etl')[1] === '9';",
            rows("admin-services").replace("return ", "const r = ")
        ),
    )
    .await;
    b.screenshot(&artifact("gateway-panel.png")).await;
    assert_no_script_errors(&mut b).await;
    b.close().await;
}
