//! The viewer's Ask panel in real headless Chromium, against a real
//! gateway whose model is the scripted server of `testkit::model`: tool
//! calls as they are made, the streamed answer and its summary, cited ids
//! that open their line, a gateway without a key, and model text that is
//! never parsed as HTML.

use serde_json::{Value, json};
use testkit::browser::Browser;
use testkit::model::{COMPLETION_TOKENS, ModelServer, PROMPT_TOKENS, Reply};
use testkit::viewer;
use testkit::*;

use super::{artifact, assert_clean_console, assert_no_script_errors, gateway, publish};

/// A gateway (no rate limits) with the model server as its AI.
fn ai_gateway(model: &ModelServer) -> InProcessGateway {
    let base = model.base_url();
    gateway(move |c| {
        c.ai.api_key = Some(loggate::config::Secret::new("test-key"));
        c.ai.base_url = base;
        c.ai.model = "test/model".into();
    })
}

/// The id of the first event of the last tool result loggate sent.
fn first_found_id(request: &Value) -> String {
    let last = request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["role"] == "tool")
        .expect("a tool result");
    let result: Value = serde_json::from_str(last["content"].as_str().unwrap()).unwrap();
    result["events"][0]["id"].as_str().unwrap().to_owned()
}

/// Opens the view of `logs:etl:ws1` with `n` lines, opens the panel and asks.
async fn open_and_ask(b: &Browser, gw: &InProcessGateway, n: usize, question: &str) {
    b.open(&gw.url("/ui/?channels=logs:etl:ws1")).await;
    viewer::wait_status(b, "live").await;
    viewer::wait_lines(b, n).await;
    b.click("[data-testid=ask-toggle]").await;
    b.wait_for(
        "the Ask panel to open with the focus in its box",
        "return document.activeElement === document.querySelector('[data-testid=ask-input]');",
    )
    .await;
    b.type_into("[data-testid=ask-input]", question).await;
    b.click("[data-testid=ask-submit]").await;
}

/// Waits for the answer's summary; returns its text.
async fn wait_meta(b: &Browser) -> String {
    b.wait_for(
        "the answer's summary",
        "const m = document.querySelector('[data-testid=ask-meta]'); return m && !m.hidden ? m.textContent : '';",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn answer_text(b: &Browser) -> String {
    b.eval("return document.querySelector('[data-testid=ask-answer]').textContent;")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn db_events() -> Vec<Value> {
    (0..3)
        .map(|i| {
            let mut e = event(
                "etl",
                Some("ws1"),
                Some("job7"),
                &format!("db timeout after {} ms", 100 + i),
            );
            e["logData"]["level"] = "error".into();
            e
        })
        .collect()
}

#[tokio::test]
async fn asking_shows_the_tool_calls_the_answer_and_its_summary() {
    let model = ModelServer::start(vec![
        Reply::tool("top_patterns", json!({"level": "error"})),
        Reply::tool("search_logs", json!({"query": "timeout", "limit": 5})),
        Reply::text("Three database timeouts on job7.\n\nNothing else is wrong."),
    ])
    .await;
    let gw = ai_gateway(&model);
    publish(&gw, db_events()).await;
    let mut b = Browser::launch().await;
    open_and_ask(&b, &gw, 3, "Any errors?").await;

    let meta = wait_meta(&b).await;
    let total = 3 * (PROMPT_TOKENS + COMPLETION_TOKENS);
    assert!(meta.contains("test/model"), "{meta}");
    assert!(meta.contains(&format!("{total} tokens")), "{meta}");
    let tools = b
        .eval("return [...document.querySelectorAll('[data-testid=ask-tool]')].map(t => t.textContent);")
        .await;
    let tools: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tools.len(), 2, "{tools:?}");
    assert!(tools[0].starts_with("top_patterns") && tools[0].contains("level=error"));
    assert!(tools[0].contains("→ 1"), "{tools:?}");
    assert!(tools[1].starts_with("search_logs") && tools[1].contains("query=timeout"));
    assert!(tools[1].contains("→ 3"), "{tools:?}");
    // Two paragraphs, as text.
    let paragraphs = b
        .eval("return [...document.querySelectorAll('[data-testid=ask-answer] p')].map(p => p.textContent);")
        .await;
    assert_eq!(
        paragraphs,
        json!(["Three database timeouts on job7.", "Nothing else is wrong."])
    );
    let request = &model.requests()[0];
    assert!(
        request["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("logs:etl:ws1"),
        "the chat has the view's channels"
    );
    assert_eq!(request["messages"][1]["content"], "Any errors?");
    assert!(viewer::text_of(&b, "ask-error").await.is_empty());
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_cited_id_opens_its_line() {
    let model = ModelServer::start(vec![
        Reply::tool("search_logs", json!({"query": "timeout"})),
        Reply::With(Box::new(|req: &Value| {
            let id = first_found_id(req);
            Reply::Text(format!("The newest timeout is `{id}`; see {id} too."))
        })),
    ])
    .await;
    let gw = ai_gateway(&model);
    let ids = publish(&gw, db_events()).await;
    let mut b = Browser::launch().await;
    open_and_ask(&b, &gw, 3, "Which timeout is newest?").await;
    wait_meta(&b).await;

    let cited = b
        .eval("return [...document.querySelectorAll('[data-testid=ask-cited]')].map(c => [c.tagName, c.dataset.id, c.textContent]);")
        .await;
    let newest = ids[2].as_str();
    assert_eq!(
        cited,
        json!([["BUTTON", newest, newest], ["BUTTON", newest, newest]])
    );
    assert_eq!(
        answer_text(&b).await,
        format!("The newest timeout is {newest}; see {newest} too.")
    );
    assert!(!viewer::is_shown(&b, "detail").await);
    b.click("[data-testid=ask-cited]").await;
    b.wait_for(
        "the cited line's detail panel",
        &format!(
            "const d = document.querySelector('[data-testid=detail]');
             const l = document.querySelector('[data-testid=log-line][data-id=\"{newest}\"]');
             return !d.hidden && l.classList.contains('selected')
               && document.querySelector('[data-testid=detail-json]').textContent.includes('{newest}');"
        ),
    )
    .await;
    assert_eq!(viewer::param(&b, "sel").await.as_deref(), Some(newest));
    b.screenshot(&artifact("ask-cited-line.png")).await;
    // By keyboard too: focus the second citation and press Enter.
    b.click("#detail-close").await;
    b.eval("document.querySelectorAll('[data-testid=ask-cited]')[1].focus();")
        .await;
    b.client
        .active_element()
        .await
        .expect("focused")
        .send_keys("\u{E007}")
        .await
        .expect("enter");
    b.wait_for(
        "the detail panel again",
        "return !document.querySelector('[data-testid=detail]').hidden;",
    )
    .await;
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn without_a_key_the_panel_says_ai_is_not_set_up() {
    let gw = gateway(|_| {});
    publish(&gw, db_events()).await;
    let mut b = Browser::launch().await;
    open_and_ask(&b, &gw, 3, "Any errors?").await;
    let error = b
        .wait_for(
            "the ai_disabled message",
            "const e = document.querySelector('[data-testid=ask-error]'); return e && !e.hidden ? e.textContent : '';",
        )
        .await;
    assert_eq!(
        error,
        "AI analysis is not set up on this gateway (set OPENROUTER_API_KEY)"
    );
    assert!(answer_text(&b).await.is_empty());
    assert!(!viewer::is_shown(&b, "ask-meta").await);
    // The list is untouched.
    assert_eq!(viewer::wait_lines(&b, 3).await.len(), 3);
    // The 503 itself is logged by the browser as a failed request.
    assert_no_script_errors(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn model_text_is_shown_as_text_never_as_html() {
    let model = ModelServer::start(vec![Reply::text(
        "Look: <img src=x onerror=alert(1)> and `<b>bold</b>`",
    )])
    .await;
    let gw = ai_gateway(&model);
    publish(&gw, db_events()).await;
    let mut b = Browser::launch().await;
    open_and_ask(&b, &gw, 3, "Say something odd").await;
    wait_meta(&b).await;
    assert_eq!(
        answer_text(&b).await,
        "Look: <img src=x onerror=alert(1)> and <b>bold</b>"
    );
    let found = b
        .eval("const a = document.querySelector('[data-testid=ask-answer]'); return [a.querySelectorAll('img').length, a.querySelectorAll('b').length, a.querySelectorAll('code').length];")
        .await;
    assert_eq!(found, json!([0, 0, 1]));
    assert_eq!(b.eval("return document.images.length;").await, json!(0));
    assert_clean_console(&mut b).await;
    b.close().await;
}

/// A model server that ends for a reason of its own (OpenRouter sends
/// `error`) has its answer shown, with the reason beside it.
#[tokio::test]
async fn a_finish_reason_of_the_model_servers_own_is_shown() {
    let model = ModelServer::start(vec![Reply::Ending(
        "Partial: the database timed out".into(),
        "error".into(),
    )])
    .await;
    let gw = ai_gateway(&model);
    publish(&gw, db_events()).await;
    let mut b = Browser::launch().await;
    open_and_ask(&b, &gw, 3, "What happened?").await;
    wait_meta(&b).await;
    assert_eq!(answer_text(&b).await, "Partial: the database timed out");
    let note = b
        .wait_for(
            "the finish reason note",
            "const n = document.querySelector('[data-testid=ask-meta] .note'); return n ? n.textContent : '';",
        )
        .await;
    assert_eq!(
        note,
        "The model server ended its answer with finish_reason \u{201c}error\u{201d}."
    );
    assert_clean_console(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_new_question_aborts_the_running_one() {
    // The first question's model never answers; the second's does.
    let model = ModelServer::start(vec![Reply::Hang, Reply::text("The second answer.")]).await;
    let gw = ai_gateway(&model);
    publish(&gw, db_events()).await;
    let mut b = Browser::launch().await;
    open_and_ask(&b, &gw, 3, "First?").await;
    b.wait_for(
        "the first question to be running",
        "return document.getElementById('ask-panel').getAttribute('aria-busy') === 'true';",
    )
    .await;
    b.type_into("[data-testid=ask-input]", "Second?\u{E007}")
        .await;
    wait_meta(&b).await;
    assert_eq!(answer_text(&b).await, "The second answer.");
    assert!(viewer::text_of(&b, "ask-error").await.is_empty());
    let asked: Vec<Value> = model
        .requests()
        .iter()
        .map(|r| r["messages"][1]["content"].clone())
        .collect();
    assert_eq!(asked, [json!("First?"), json!("Second?")]);
    assert_no_script_errors(&mut b).await;
    b.close().await;
}

#[tokio::test]
async fn a_question_with_secrets_in_it_reaches_the_model_redacted() {
    let model = ModelServer::start(vec![Reply::text("Only failed logins.")]).await;
    let gw = ai_gateway(&model);
    publish(&gw, db_events()).await;
    let mut b = Browser::launch().await;
    open_and_ask(
        &b,
        &gw,
        3,
        "why does password=hunter2 fail for bob@example.com?",
    )
    .await;
    let meta = wait_meta(&b).await;
    assert!(meta.contains("2 secrets redacted"), "{meta}");
    assert_eq!(
        model.requests()[0]["messages"][1]["content"],
        "why does password=[REDACTED:password] fail for [REDACTED:email]?"
    );
    assert_clean_console(&mut b).await;
    b.close().await;
}
