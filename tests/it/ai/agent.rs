//! The agent loop end to end: a question answered from the caller's logs
//! with tools, chat switched off, and the real binary configured from its
//! environment.

use super::*;

#[tokio::test]
async fn without_a_key_or_switched_off_chat_is_503_ai_disabled() {
    let gw = start();
    let (s, v) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "any errors?"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"]["code"], "ai_disabled", "{v}");
    let model = ModelServer::start(vec![]).await;
    let gw = ai_gateway(&model, |c| c.ai.enabled = false);
    let (s, v) = chat(&gw, "/chat", json!({"message": "any errors?"}), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("ai_disabled"))
    );
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn a_question_is_answered_from_the_callers_logs_with_tools() {
    // The model looks at patterns, searches, then answers citing an id
    // that the search returned.
    let model = ModelServer::start(vec![
        Reply::tool("top_patterns", json!({"level": "error"})),
        Reply::tool("search_logs", json!({"query": "timeout", "limit": 5})),
        Reply::With(Box::new(|req: &Value| {
            let results = tool_results(req);
            let id = results.last().unwrap()["events"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            Reply::Text(format!(
                "Three timeouts to the database; the newest is `{id}`."
            ))
        })),
    ])
    .await;
    let gw = ai_gateway(&model, |_| {});
    assert_eq!(gw.get_json("/health").await.1["ai"]["enabled"], true);
    let mut events: Vec<Value> = (0..3)
        .map(|i| {
            leveled(
                "etl",
                "ws1",
                "job7",
                "error",
                &format!("db timeout after {} ms on shard {i}", 100 + i),
            )
        })
        .collect();
    events.push(leveled("etl", "ws1", "job7", "info", "rows loaded: 12"));
    let ids = publish_as(&gw, ETL_TOKEN, events).await;

    let (s, v) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "Any errors in the last hour?", "channels": ["logs:etl:ws1"]}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["tools_called"], json!(["top_patterns", "search_logs"]));
    assert_eq!(v["model"], "test/model");
    assert_eq!(v["usage"]["prompt_tokens"], 3 * PROMPT_TOKENS);
    assert_eq!(v["usage"]["completion_tokens"], 3 * COMPLETION_TOKENS);
    assert_eq!(
        v["usage"]["total_tokens"],
        3 * (PROMPT_TOKENS + COMPLETION_TOKENS)
    );
    assert!(v["processing_time_ms"].is_u64(), "{v}");
    assert_eq!(v["stopped"], Value::Null);
    // The newest timeout is the third event published.
    assert!(v["response"].as_str().unwrap().contains(&ids[2]), "{v}");
    assert_eq!(v["cited_ids"], json!([ids[2]]));

    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    let first = &requests[0];
    assert_eq!(first["model"], "test/model");
    assert_eq!(
        tool_names(first),
        [
            "list_channels",
            "search_logs",
            "count_by",
            "top_patterns",
            "get_stats",
            "get_context"
        ]
    );
    assert_eq!(first["messages"][0]["role"], "system");
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("logs:etl:ws1")
    );
    assert_eq!(
        first["messages"][1]["content"],
        "Any errors in the last hour?"
    );
    assert!(first["max_completion_tokens"].is_u64());
    // The patterns: one template for the three timeouts, with a count.
    let patterns = &tool_results(&requests[1])[0];
    assert_eq!(patterns["returned"], 1, "{patterns}");
    assert_eq!(patterns["patterns"][0]["count"], 3);
    assert_eq!(patterns["truncated"], false);
    let template = patterns["patterns"][0]["template"].as_str().unwrap();
    assert!(
        template.contains("db timeout after") && !template.contains("101"),
        "{template}"
    );
    // The search: newest first, with ids, within its limit.
    let search = &tool_results(&requests[2])[1];
    assert_eq!(
        (search["returned"].as_u64(), search["limit"].as_u64()),
        (Some(3), Some(5)),
        "{search}"
    );
    let found: Vec<&str> = search["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);

    let m = gw.metrics().await;
    assert_eq!(
        metric_value(&m, "loggate_ai_chats_total{outcome=\"answered\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, "loggate_ai_tool_calls_total{tool=\"top_patterns\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, "loggate_ai_tool_calls_total{tool=\"search_logs\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, "loggate_ai_tokens_total{kind=\"prompt\"}"),
        Some((3 * PROMPT_TOKENS) as f64)
    );
}

#[test]
fn the_binary_answers_from_its_environment_and_audits_without_content() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let model = rt.block_on(ModelServer::start(vec![
        Reply::tool("top_patterns", json!({})),
        Reply::text("ANSWER-WORDS nothing is wrong"),
    ]));
    let mut cmd = process::base_command(env!("CARGO_BIN_EXE_loggate"));
    cmd.env("OPENROUTER_API_KEY", "sk-test")
        .env("AI_BASE_URL", model.base_url())
        .env("OPENROUTER_MODEL", "vendor/model-x");
    let gw = process::spawn(cmd);
    rt.block_on(async {
        let client = reqwest::Client::new();
        let (s, v) = testkit::http::publish(
            &client,
            &gw.url(""),
            ETL_TOKEN,
            "application/json",
            leveled("etl", "ws1", "j", "warn", "LOGLINE-WORDS slow query").to_string(),
            WAIT,
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let res = client
            .post(gw.url("/api/logs/chat"))
            .json(&json!({"message": "QUESTION-WORDS is anything slow?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["model"], "vendor/model-x");
        assert_eq!(v["response"], "ANSWER-WORDS nothing is wrong");
    });
    assert_eq!(model.requests()[0]["model"], "vendor/model-x");
    // The audit line names the tools and tokens, never the content.
    let deadline = std::time::Instant::now() + WAIT;
    let audit = loop {
        if let Some(l) = gw
            .log_lines()
            .into_iter()
            .find(|l| l.contains("loggate::ai::audit"))
        {
            break l;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit line: {:?}",
            gw.log_lines()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        audit.contains("top_patterns") && audit.contains("prompt_tokens=200"),
        "{audit}"
    );
    let log = gw.log_lines().join("\n");
    for content in ["QUESTION-WORDS", "ANSWER-WORDS", "LOGLINE-WORDS"] {
        assert!(!log.contains(content), "{content} in the log: {log}");
    }
}
