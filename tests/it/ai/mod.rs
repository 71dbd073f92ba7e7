//! AI log analysis (`POST /api/logs/chat`) against a scripted
//! OpenAI-compatible model server (`testkit::model`): the agent loop and
//! its bounds, the tools and their truncation, tenancy inside every tool,
//! redaction, the streamed answer, limits and errors, metrics.

use std::time::Duration;

use loggate::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::model::{COMPLETION_TOKENS, Dialect, ModelServer, PROMPT_TOKENS, Reply};
use testkit::*;

const SECRET: &str = "a-test-jwt-secret-that-is-long-enough-for-hs256";

fn ai_gateway(model: &ModelServer, adjust: impl FnOnce(&mut loggate::Config)) -> TestGateway {
    let base = model.base_url();
    start_with(move |c| {
        c.ai.api_key = Some(Secret::new("test-key"));
        c.ai.base_url = base;
        c.ai.model = "test/model".into();
        adjust(c)
    })
}

fn leveled(service: &str, ws: &str, res: &str, level: &str, message: &str) -> Value {
    json!({"service": service, "workspace_id": ws, "resource_id": res,
        "logData": {"level": level, "message": message}})
}

async fn publish_as(gw: &TestGateway, token: &str, events: Vec<Value>) -> Vec<String> {
    let (s, v) = gw
        .publish_raw(
            token,
            "application/json",
            Value::Array(events).to_string().into_bytes(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect()
}

/// Posts a chat; status and JSON answer.
async fn chat(
    gw: &TestGateway,
    path: &str,
    body: Value,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = gw.client.post(gw.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("answered in time")
        .expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Posts a streaming chat; status and its (event, data) frames.
async fn chat_stream(
    gw: &TestGateway,
    body: Value,
    token: Option<&str>,
) -> (StatusCode, Vec<(String, Value)>) {
    let mut req = gw
        .client
        .post(gw.url("/api/logs/chat"))
        .header("Accept", "text/event-stream")
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("answered in time")
        .expect("request");
    let status = res.status();
    let bytes = tokio::time::timeout(WAIT, res.bytes())
        .await
        .expect("the stream ends in time")
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if status != StatusCode::OK {
        return (
            status,
            vec![(
                "body".into(),
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )],
        );
    }
    let frames = text
        .split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let mut event = String::new();
            let mut data = String::new();
            for line in f.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            (event, serde_json::from_str(&data).expect("data is JSON"))
        })
        .collect();
    (status, frames)
}

/// The contents of the tool messages loggate sent in one request.
fn tool_results(request: &Value) -> Vec<Value> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            serde_json::from_str(m["content"].as_str().unwrap()).expect("tool results are JSON")
        })
        .collect()
}

fn tool_names(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn metric(gw: &TestGateway, series: &str) -> f64 {
    metric_value(&gw.metrics().await, series).unwrap_or_else(|| panic!("no series {series}"))
}

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

#[tokio::test]
async fn the_streamed_answer_is_tool_then_token_then_done() {
    let model = ModelServer::start(vec![
        Reply::Tools(vec![
            ("count_by".into(), json!({"field": "level"})),
            ("list_channels".into(), json!({})),
        ]),
        Reply::text("All quiet: 2 info lines, no errors."),
    ])
    .await;
    let gw = ai_gateway(&model, |_| {});
    publish_as(
        &gw,
        ETL_TOKEN,
        vec![
            leveled("etl", "ws1", "a", "info", "one"),
            leveled("etl", "ws1", "b", "info", "two"),
        ],
    )
    .await;
    let (s, frames) = chat_stream(&gw, json!({"message": "anything wrong?"}), None).await;
    assert_eq!(s, StatusCode::OK, "{frames:?}");
    let events: Vec<&str> = frames.iter().map(|(e, _)| e.as_str()).collect();
    let tools: Vec<&Value> = frames
        .iter()
        .filter(|(e, _)| e == "tool")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(tools.len(), 2, "{events:?}");
    assert_eq!(tools[0]["name"], "count_by");
    assert_eq!(tools[0]["arguments"], json!({"field": "level"}));
    assert_eq!(tools[1]["name"], "list_channels");
    assert_eq!(tools[1]["returned"], 2, "{}", tools[1]);
    let text: String = frames
        .iter()
        .filter(|(e, _)| e == "token")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "All quiet: 2 info lines, no errors.");
    let (last, done) = frames.last().unwrap();
    assert_eq!(last, "done");
    assert_eq!(done["response"], text);
    assert_eq!(done["tools_called"], json!(["count_by", "list_channels"]));
    assert_eq!(
        done["usage"]["total_tokens"],
        2 * (PROMPT_TOKENS + COMPLETION_TOKENS)
    );
    // Tools first, then tokens, then done.
    let first_token = events.iter().position(|e| *e == "token").unwrap();
    assert!(
        events[..first_token].iter().all(|e| *e == "tool"),
        "{events:?}"
    );
    // loggate streamed from the model server too, and asked for usage.
    let requests = model.requests();
    assert_eq!(requests[0]["stream"], true);
    assert_eq!(requests[0]["stream_options"]["include_usage"], true);
    // The counts reached the model: two tool results in the second request.
    let results = tool_results(&requests[1]);
    assert_eq!(results[0]["counts"], json!([{"value": "info", "count": 2}]));
}

#[tokio::test]
async fn no_tool_reaches_past_the_callers_grants_whatever_the_model_asks() {
    let other_id = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let id_for_model = other_id.clone();
    let model = ModelServer::start(vec![
        Reply::Tools(vec![
            ("search_logs".into(), json!({"channels": ["logs:*"]})),
            ("search_logs".into(), json!({"channels": ["logs:faas:ws2"]})),
            ("search_logs".into(), json!({"channels": ["logs:etl"]})),
            ("count_by".into(), json!({"field": "channel"})),
            ("list_channels".into(), json!({})),
            ("top_patterns".into(), json!({})),
        ]),
        Reply::With(Box::new(move |_| {
            Reply::tool(
                "get_context",
                json!({"id": id_for_model.lock().unwrap().clone(), "before": 5, "after": 5}),
            )
        })),
        Reply::text("Only ws1 is yours."),
    ])
    .await;
    let gw = ai_gateway(&model, |c| c.auth.jwt_secret = Some(Secret::new(SECRET)));
    publish_as(
        &gw,
        ETL_TOKEN,
        vec![leveled("etl", "ws1", "job7", "error", "mine: disk full")],
    )
    .await;
    publish_as(
        &gw,
        ETL_TOKEN,
        vec![leveled(
            "etl",
            "ws2",
            "job9",
            "error",
            "THEIRS-etl-ws2 secret plan",
        )],
    )
    .await;
    let theirs = publish_as(
        &gw,
        "faas-token",
        vec![leveled(
            "faas",
            "ws2",
            "fn1",
            "error",
            "THEIRS-faas-ws2 payroll",
        )],
    )
    .await;
    *other_id.lock().unwrap() = theirs[0].clone();
    let ws1 = jwt::hs256(
        SECRET,
        &json!({"exp": jwt::now() + 600, "workspaces": ["ws1"]}),
    );

    // Asking for another tenant's channel is refused before any model call.
    let (s, v) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "q", "channels": ["logs:faas:ws2"]}),
        Some(&ws1),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden_channel")),
        "{v}"
    );
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "q"}), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let forged = jwt::hs256(
        "another-secret-another-secret-another",
        &json!({"exp": jwt::now() + 600, "workspaces": ["ws2"]}),
    );
    let (s, _) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "q"}),
        Some(&forged),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(model.requests().is_empty());

    // Without channels: everything the token grants (logs:*:ws1), no more.
    let (s, v) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "what happened everywhere?"}),
        Some(&ws1),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let requests = model.requests();
    assert!(
        requests[0]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("logs:*:ws1")
    );
    let sent: String = requests.iter().map(|r| r.to_string()).collect();
    assert!(
        !sent.contains("THEIRS"),
        "another tenant's line reached the model"
    );
    let first = tool_results(&requests[1]);
    for refused in &first[..3] {
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("outside the channels of this chat"),
            "{refused}"
        );
    }
    assert_eq!(
        first[3]["counts"],
        json!([{"value": "logs:etl:ws1:job7", "count": 1}])
    );
    assert_eq!(first[4]["channels"].as_array().unwrap().len(), 1);
    assert_eq!(first[5]["patterns"].as_array().unwrap().len(), 1);
    // An id of another tenant is the same as an id that does not exist.
    let context = &tool_results(&requests[2])[6];
    assert!(
        context["error"].as_str().unwrap().starts_with("no event"),
        "{context}"
    );
}

#[tokio::test]
async fn secrets_and_personal_data_are_redacted_before_the_model_sees_them() {
    let model = ModelServer::start(vec![
        Reply::tool("search_logs", json!({})),
        Reply::text("Found credentials in the logs (redacted)."),
    ])
    .await;
    let gw = ai_gateway(&model, |_| {});
    let secrets = [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "glpat-abcdefghij0123456789",
        "xoxb-123456789012-abcdefghijkl",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "hunter2-password",
        "alice@example.com",
        "s3cr3t-bearer-token-value",
        "meta-password-value",
    ];
    let mut e = leveled(
        "etl",
        "ws1",
        "job7",
        "error",
        &format!(
            "login key={} token {} gl {} slack {} jwt {} password={} user {} Authorization: Bearer {}",
            secrets[0],
            secrets[1],
            secrets[2],
            secrets[3],
            secrets[4],
            secrets[5],
            secrets[6],
            secrets[7]
        ),
    );
    e["logData"]["meta"] = json!({"db_password": secrets[8], "note": "mail alice@example.com"});
    publish_as(&gw, ETL_TOKEN, vec![e]).await;
    let (s, v) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "any leaked keys?"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sent = model.requests()[1].to_string();
    for secret in secrets {
        assert!(!sent.contains(secret), "{secret} reached the model: {sent}");
    }
    for placeholder in [
        "[REDACTED:aws_key]",
        "[REDACTED:github_token]",
        "[REDACTED:email]",
        "[REDACTED:jwt]",
    ] {
        assert!(sent.contains(placeholder), "{placeholder} missing: {sent}");
    }
    let redacted = v["redacted"].as_u64().unwrap();
    assert!(redacted >= 9, "{v}");
    assert_eq!(
        metric(&gw, "loggate_ai_redactions_total").await,
        redacted as f64
    );
}

#[tokio::test]
async fn with_lines_off_the_model_gets_counts_and_patterns_only() {
    let model = ModelServer::start(vec![
        Reply::Tools(vec![
            ("search_logs".into(), json!({"query": "order"})),
            ("get_context".into(), json!({"id": "x"})),
            ("top_patterns".into(), json!({})),
        ]),
        Reply::text("Payments fail."),
    ])
    .await;
    let gw = ai_gateway(&model, |c| c.ai.tools_return_lines = false);
    let ids = publish_as(
        &gw,
        ETL_TOKEN,
        (0..4)
            .map(|i| {
                leveled(
                    "etl",
                    "ws1",
                    "pay",
                    "error",
                    &format!("payment failed for order 9876{i}"),
                )
            })
            .collect(),
    )
    .await;
    let (s, v) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "why do payments fail?"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let requests = model.requests();
    assert_eq!(
        tool_names(&requests[0]),
        ["list_channels", "count_by", "top_patterns", "get_stats"]
    );
    let results = tool_results(&requests[1]);
    assert!(
        results[0]["error"].as_str().unwrap().contains("turned off"),
        "{}",
        results[0]
    );
    assert!(results[1]["error"].as_str().unwrap().contains("turned off"));
    assert_eq!(results[2]["patterns"][0]["count"], 4);
    assert!(results[2]["patterns"][0].get("example").is_none());
    let sent = requests[1].to_string();
    assert!(
        !sent.contains("98760") && !ids.iter().any(|id| sent.contains(id.as_str())),
        "a line left: {sent}"
    );
}

#[tokio::test]
async fn a_model_that_loops_or_invents_tools_is_stopped_with_a_partial_answer() {
    // Invented tool, then a loop of tool calls past the round limit.
    let model = ModelServer::start_repeating(
        vec![Reply::tool("rm_rf", json!({"path": "/"}))],
        Some(Reply::tool("get_stats", json!({}))),
    )
    .await;
    let gw = ai_gateway(&model, |c| c.ai.max_tool_rounds = 3);
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "loop"}), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stopped"], "max_tool_rounds");
    assert!(
        v["response"]
            .as_str()
            .unwrap()
            .contains("kept calling tools"),
        "{v}"
    );
    assert_eq!(
        v["tools_called"],
        json!(["unknown", "get_stats", "get_stats"])
    );
    let requests = model.requests();
    assert_eq!(
        requests.len(),
        4,
        "3 rounds with tools, one asked to answer"
    );
    assert_eq!(requests[3]["tool_choice"], "none");
    assert_eq!(requests[2]["tool_choice"], "auto");
    let invented = &tool_results(&requests[1])[0];
    assert!(
        invented["error"]
            .as_str()
            .unwrap()
            .starts_with("no tool named \"rm_rf\""),
        "{invented}"
    );
    assert_eq!(
        metric(&gw, "loggate_ai_tool_calls_total{tool=\"unknown\"}").await,
        1.0
    );
    assert_eq!(
        metric(&gw, "loggate_ai_chats_total{outcome=\"stopped\"}").await,
        1.0
    );

    // The token budget: 120 tokens a round against 1000.
    let model =
        ModelServer::start_repeating(vec![], Some(Reply::tool("get_stats", json!({})))).await;
    let gw = ai_gateway(&model, |c| {
        c.ai.max_tool_rounds = 50;
        c.ai.max_total_tokens = 1000;
    });
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "loop"}), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stopped"], "token_budget");
    assert_eq!(model.requests().len(), 9, "{v}");
    assert_eq!(v["usage"]["total_tokens"], 9 * 120);

    // The wall clock: a model that never answers.
    let model = ModelServer::start(vec![Reply::Hang]).await;
    let gw = ai_gateway(&model, |c| c.ai.timeout_secs = 1);
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "hello?"}), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stopped"], "timeout");
    assert!(
        v["response"].as_str().unwrap().contains("time allowed"),
        "{v}"
    );
}

#[tokio::test]
async fn model_server_failures_are_502_ai_upstream_without_its_body() {
    let model = ModelServer::start(vec![
        Reply::Status(
            500,
            "{\"error\":\"UPSTREAM-SECRET-BODY echoing the prompt\"}".into(),
        ),
        Reply::Raw("<html>not json</html>".into()),
        Reply::Endless,
        Reply::Status(429, "slow down".into()),
    ])
    .await;
    let gw = ai_gateway(&model, |_| {});
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "q"}), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("ai_upstream")),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("500") && !message.contains("UPSTREAM-SECRET"),
        "{message}"
    );
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "q"}), None).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not chat-completions JSON"),
        "{v}"
    );
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "q"}), None).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{v}"
    );
    // Streaming: a failure before anything was sent is still a plain 502.
    let (s, frames) = chat_stream(&gw, json!({"message": "q"}), None).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{frames:?}");
    assert_eq!(frames[0].1["error"]["code"], "ai_upstream");
    let m = gw.metrics().await;
    assert_eq!(
        metric_value(&m, "loggate_ai_upstream_errors_total{reason=\"status\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&m, "loggate_ai_upstream_errors_total{reason=\"garbage\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, "loggate_ai_upstream_errors_total{reason=\"too_large\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, "loggate_ai_chats_total{outcome=\"upstream_error\"}"),
        Some(4.0)
    );

    // Nobody listening at all.
    let port = process::free_port();
    let gw = start_with(|c| {
        c.ai.api_key = Some(Secret::new("k"));
        c.ai.base_url = format!("http://127.0.0.1:{port}/v1");
    });
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "q"}), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("ai_upstream")),
        "{v}"
    );
    assert_eq!(
        metric(
            &gw,
            "loggate_ai_upstream_errors_total{reason=\"transport\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn bad_requests_are_refused_with_json_errors_and_reach_no_model() {
    let model = ModelServer::start(vec![]).await;
    let gw = ai_gateway(&model, |c| c.ai.max_message_bytes = 100);
    let post = |body: Vec<u8>, content_type: &'static str| {
        let req = gw
            .client
            .post(gw.url("/api/logs/chat"))
            .header("Content-Type", content_type)
            .body(body);
        async move {
            let res = tokio::time::timeout(WAIT, req.send())
                .await
                .unwrap()
                .unwrap();
            let status = res.status();
            let v: Value = res.json().await.expect("a JSON error");
            (
                status,
                v["error"]["code"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    let cases: Vec<(Vec<u8>, &str, StatusCode, &str)> = vec![
        (
            b"{not json".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            b"{\"message\":\"\xff\xfe\"}".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            b"{}".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            b"{\"message\":\"   \"}".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            b"{\"message\":\"q\",\"chanels\":[]}".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            b"{\"message\":42}".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"message": "x".repeat(101)}).to_string().into_bytes(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![b' '; 1 << 20],
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            b"message=q".to_vec(),
            "application/x-www-form-urlencoded",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json!({"message": "q", "channels": ["logs:bad.name"]})
                .to_string()
                .into_bytes(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_channel",
        ),
        (
            json!({"message": "q", "channels": vec!["logs:a"; 500]})
                .to_string()
                .into_bytes(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "too_many_channels",
        ),
    ];
    for (body, content_type, status, code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        assert_eq!(
            post(body, content_type).await,
            (status, code.to_owned()),
            "{shown}"
        );
    }
    let res = gw
        .client
        .get(gw.url("/api/logs/chat"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        model.requests().is_empty(),
        "a refused request reached the model"
    );
}

#[tokio::test]
async fn chat_is_rate_limited_per_caller() {
    let model = ModelServer::start_repeating(vec![], Some(Reply::text("ok"))).await;
    let gw = ai_gateway(&model, |c| {
        c.ai.rate_per_minute = 2;
        c.auth.jwt_secret = Some(Secret::new(SECRET));
    });
    let alice = jwt::hs256(
        SECRET,
        &json!({"exp": jwt::now() + 600, "sub": "alice", "workspaces": ["ws1"]}),
    );
    let bob = jwt::hs256(
        SECRET,
        &json!({"exp": jwt::now() + 600, "sub": "bob", "workspaces": ["ws2"]}),
    );
    for _ in 0..2 {
        let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "q"}), Some(&alice)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let res = gw
        .client
        .post(gw.url("/api/logs/chat"))
        .bearer_auth(&alice)
        .json(&json!({"message": "q"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
    let (s, _) = chat(&gw, "/chat", json!({"message": "q"}), Some(&bob)).await;
    assert_eq!(s, StatusCode::OK, "another caller has its own allowance");
    assert_eq!(
        metric(&gw, "loggate_rate_limited_total{limit=\"chat\"}").await,
        1.0
    );
    assert_eq!(model.requests().len(), 3);
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

#[tokio::test]
async fn tool_results_are_trimmed_per_line_and_capped_as_a_whole() {
    let model = ModelServer::start(vec![
        Reply::tool("search_logs", json!({"limit": 100})),
        Reply::text("Long lines."),
    ])
    .await;
    let gw = ai_gateway(&model, |c| {
        c.ai.line_max_bytes = 512;
        c.ai.tool_result_max_bytes = 8192;
    });
    let long = "é".repeat(1500); // 3000 bytes, two per character
    publish_as(
        &gw,
        ETL_TOKEN,
        (0..100)
            .map(|i| leveled("etl", "ws1", "j", "info", &format!("{i} {long}")))
            .collect(),
    )
    .await;
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "q"}), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let request = &model.requests()[1];
    let content = request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.len() <= 8192, "{} bytes", content.len());
    let result: Value = serde_json::from_str(&content).unwrap();
    assert_eq!(result["truncated"], true);
    let returned = result["returned"].as_u64().unwrap() as usize;
    let events = result["events"].as_array().unwrap();
    assert!(
        returned > 0 && returned < 100 && events.len() == returned,
        "{returned}"
    );
    for e in events {
        let m = e["message"].as_str().unwrap();
        assert!(
            m.len() <= 512 + "…".len() && m.ends_with('…'),
            "{} bytes",
            m.len()
        );
    }
}

#[tokio::test]
async fn chats_at_once_are_bounded() {
    let model = ModelServer::start_repeating(vec![Reply::Hang], Some(Reply::text("ok"))).await;
    let gw = ai_gateway(&model, |c| {
        c.ai.max_concurrent = 1;
        c.ai.timeout_secs = 3;
    });
    let url = gw.url("/api/logs/chat");
    let hanging = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"message": "first"}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    // The first chat holds the only slot once its request reached the model.
    let deadline = tokio::time::Instant::now() + WAIT;
    while model.requests().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first chat never reached the model"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let res = gw
        .client
        .post(gw.url("/api/logs/chat"))
        .json(&json!({"message": "second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("retry-after").is_some());
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "ai_busy");
    // The first ends at its deadline, with a partial answer, and frees it.
    let first = tokio::time::timeout(WAIT, hanging).await.unwrap().unwrap();
    assert_eq!(first["stopped"], "timeout");
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "third"}), None).await;
    assert_eq!(
        (s, v["response"].as_str()),
        (StatusCode::OK, Some("ok")),
        "{v}"
    );
}

#[tokio::test]
async fn a_streaming_client_that_leaves_ends_its_chat() {
    // A slow model that would call tools for 50 rounds (10 s).
    let model = ModelServer::start_repeating(
        vec![],
        Some(Reply::Delayed(
            Duration::from_millis(200),
            Box::new(Reply::tool("get_stats", json!({}))),
        )),
    )
    .await;
    let gw = ai_gateway(&model, |c| c.ai.max_tool_rounds = 50);
    let res = gw
        .client
        .post(gw.url("/api/logs/chat"))
        .header("Accept", "text/event-stream")
        .json(&json!({"message": "loop slowly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.bytes_stream();
    let first = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut body))
        .await
        .expect("a first frame")
        .expect("a chunk")
        .expect("bytes");
    assert!(String::from_utf8_lossy(&first).starts_with("event: tool"));
    drop(body);
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(&gw, "loggate_ai_chats_total{outcome=\"cancelled\"}").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chat went on without its client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = model.requests().len();
    assert!(
        asked < 5,
        "{asked} rounds for a client that left after the first"
    );
}

#[tokio::test]
async fn patterns_never_carry_a_secret_in_pieces() {
    let model = ModelServer::start(vec![
        Reply::tool("top_patterns", json!({})),
        Reply::text("Keys in logs."),
    ])
    .await;
    let gw = ai_gateway(&model, |c| c.ai.tools_return_lines = false);
    publish_as(
        &gw,
        ETL_TOKEN,
        vec![leveled(
            "etl",
            "ws1",
            "j",
            "error",
            "key=AKIAIOSFODNN7EXAMPLE gl glpat-abcdefghij0123456789 Bearer s3cr3t-bearer-token-value",
        )],
    )
    .await;
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": "q"}), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sent = model.requests()[1].to_string();
    for piece in ["AKIAIOSFODNN", "abcdefghij", "cr<num>t", "s3cr3t"] {
        assert!(!sent.contains(piece), "{piece} reached the model: {sent}");
    }
    assert!(v["redacted"].as_u64().unwrap() >= 3, "{v}");
}

/// The answer of a chat, JSON or streamed: the `done` frame's summary.
async fn answer(gw: &TestGateway, streaming: bool, body: Value) -> Value {
    if streaming {
        let (s, frames) = chat_stream(gw, body, None).await;
        assert_eq!(s, StatusCode::OK, "{frames:?}");
        let (event, done) = frames.last().cloned().expect("frames");
        assert_eq!(event, "done", "{frames:?}");
        done
    } else {
        let (s, v) = chat(gw, "/api/logs/chat", body, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

#[tokio::test]
async fn answers_shaped_as_openrouter_ollama_vllm_and_llama_cpp_send_them_are_read() {
    const DIALECTS: [Dialect; 5] = [
        Dialect::OpenAi,
        Dialect::OpenRouter,
        Dialect::Ollama,
        Dialect::Vllm,
        Dialect::LlamaCpp,
    ];
    // Each chat: two tool calls in one round (Ollama streams them whole
    // and without index), then the answer.
    let mut script = Vec::new();
    for dialect in DIALECTS {
        for _streaming in [false, true] {
            script.push(
                Reply::Tools(vec![
                    ("count_by".into(), json!({"field": "level"})),
                    ("list_channels".into(), json!({})),
                ])
                .shaped(dialect),
            );
            script.push(Reply::text("All quiet on ws1.").shaped(dialect));
        }
    }
    let model = ModelServer::start(script).await;
    let gw = ai_gateway(&model, |c| c.ai.rate_per_minute = 0);
    publish_as(
        &gw,
        ETL_TOKEN,
        vec![leveled("etl", "ws1", "job7", "info", "rows loaded: 12")],
    )
    .await;
    let mut seen = 0;
    for dialect in DIALECTS {
        for streaming in [false, true] {
            let v = answer(
                &gw,
                streaming,
                json!({"message": "anything wrong?", "channels": ["logs:etl:ws1"]}),
            )
            .await;
            let what = format!("{dialect:?}, streamed: {streaming}: {v}");
            assert_eq!(v["response"], "All quiet on ws1.", "{what}");
            assert_eq!(
                v["tools_called"],
                json!(["count_by", "list_channels"]),
                "{what}"
            );
            assert_eq!(v["finish_reason"], "stop", "{what}");
            assert_eq!(v["stopped"], Value::Null, "{what}");
            if dialect == Dialect::LlamaCpp {
                // No usage from the server: loggate estimates.
                assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{what}");
                assert_ne!(v["usage"]["prompt_tokens"], 2 * PROMPT_TOKENS, "{what}");
            } else {
                assert_eq!(v["usage"]["prompt_tokens"], 2 * PROMPT_TOKENS, "{what}");
            }
            // Both calls were put together and answered, in order.
            let requests = model.requests();
            let results = tool_results(&requests[seen + 1]);
            assert_eq!(results.len(), 2, "{what}");
            assert_eq!(
                results[0]["counts"],
                json!([{"value": "info", "count": 1}]),
                "{what}"
            );
            assert_eq!(
                results[1]["channels"][0]["channel"], "logs:etl:ws1:job7",
                "{what}"
            );
            seen += 2;
        }
    }
    assert_eq!(model.requests().len(), seen);
}

#[tokio::test]
async fn a_finish_reason_outside_the_spec_ends_the_answer_and_is_passed_on() {
    let model = ModelServer::start(vec![
        // OpenRouter: the provider failed midway; what came is kept.
        Reply::Ending("Partial: 3 timeouts on job7".into(), "error".into())
            .shaped(Dialect::OpenRouter),
        Reply::Ending("Partial: 3 timeouts on job7".into(), "error".into())
            .shaped(Dialect::OpenRouter),
        // Any other reason a server makes up.
        Reply::Ending("Done.".into(), "end_turn".into()),
        Reply::Ending(String::new(), "error".into()).shaped(Dialect::OpenRouter),
    ])
    .await;
    let gw = ai_gateway(&model, |c| c.ai.rate_per_minute = 0);
    for (streaming, response, reason) in [
        (false, "Partial: 3 timeouts on job7", "error"),
        (true, "Partial: 3 timeouts on job7", "error"),
        (false, "Done.", "end_turn"),
    ] {
        let v = answer(&gw, streaming, json!({"message": "q"})).await;
        assert_eq!(
            (v["response"].as_str(), v["finish_reason"].as_str()),
            (Some(response), Some(reason)),
            "{v}"
        );
        assert_eq!(v["stopped"], Value::Null, "{v}");
    }
    // No text at all: the answer says why.
    let v = answer(&gw, false, json!({"message": "q"})).await;
    assert_eq!(v["finish_reason"], "error", "{v}");
    assert!(
        v["response"]
            .as_str()
            .unwrap()
            .contains("finish_reason \"error\""),
        "{v}"
    );
    assert_eq!(
        metric(&gw, "loggate_ai_chats_total{outcome=\"answered\"}").await,
        4.0
    );
}

/// Every number anywhere in `v`.
fn numbers(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::Array(items) => items.iter().for_each(|i| numbers(i, out)),
        Value::Object(map) => map.values().for_each(|i| numbers(i, out)),
        _ => {}
    }
}

#[tokio::test]
async fn get_stats_tells_a_tenant_its_own_figures_and_nothing_gateway_wide() {
    let model = ModelServer::start(vec![
        Reply::tool("get_stats", json!({})),
        Reply::text("Three events, all info."),
    ])
    .await;
    let gw = ai_gateway(&model, |c| c.auth.jwt_secret = Some(Secret::new(SECRET)));
    let token = |ws: &str| {
        jwt::hs256(
            SECRET,
            &json!({"exp": jwt::now() + 600, "workspaces": [ws]}),
        )
    };
    let (a, b) = (token("ws1"), token("ws2"));
    // A publishes 3 events; B publishes 40 and watches with two streams.
    publish_as(
        &gw,
        ETL_TOKEN,
        (0..3)
            .map(|i| leveled("etl", "ws1", "job7", "info", &format!("mine {i}")))
            .collect(),
    )
    .await;
    publish_as(
        &gw,
        "faas-token",
        (0..40)
            .map(|i| leveled("faas", "ws2", "fn1", "error", &format!("theirs {i}")))
            .collect(),
    )
    .await;
    let _watch1 = gw
        .subscribe(&format!("channels=logs:faas:ws2&token={b}"))
        .await;
    let _watch2 = gw
        .subscribe(&format!("channels=logs:*:ws2&token={b}"))
        .await;
    // The gateway-wide figures a leak would show really differ from A's.
    assert_eq!(
        metric(&gw, "loggate_connections{transport=\"sse\"}").await,
        2.0
    );

    let (s, v) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "how busy am I?"}),
        Some(&a),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let stats = &tool_results(&model.requests()[1])[0];
    assert_eq!(stats["channels"], json!(["logs:*:ws1"]), "{stats}");
    assert_eq!(stats["history_events"], 3, "{stats}");
    assert_eq!(stats["events_last_15m"], 3, "{stats}");
    assert_eq!(stats["by_level_last_15m"], json!({"info": 3}), "{stats}");
    assert_eq!(stats["complete"], true, "{stats}");
    let mut keys: Vec<&str> = stats
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "by_level_last_15m",
            "channels",
            "complete",
            "events_last_15m",
            "events_last_1m",
            "events_last_5m",
            "history_events",
            "history_newest",
            "history_oldest",
            "limit",
            "per_second_last_1m",
            "returned",
            "truncated",
            "uptime_seconds",
        ],
        "{stats}"
    );
    // No figure of B's traffic or of the whole gateway: B's 40 events,
    // the 43 accepted or held in all, B's 2 connections.
    let mut found = Vec::new();
    numbers(stats, &mut found);
    for theirs in [40.0, 43.0, 2.0] {
        assert!(!found.contains(&theirs), "{theirs} in {stats}");
    }
}

#[tokio::test]
async fn the_secrets_issue_27_found_passed_verbatim_reach_the_model_redacted() {
    let model = ModelServer::start(vec![
        Reply::Tools(vec![
            ("search_logs".into(), json!({"limit": 100})),
            ("top_patterns".into(), json!({})),
        ]),
        Reply::text("Credentials in the logs (redacted)."),
    ])
    .await;
    let gw = ai_gateway(&model, |_| {});
    // (the log line or meta, the part that must not reach the model)
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"meta": {"db_pass": "Tr0ub4dor3x-meta", "host": "db1"}}),
            "Tr0ub4dor3x",
        ),
        (
            json!(r#"payload {"user":"bob","pass":"hunter2-json"}"#),
            "hunter2-json",
        ),
        (
            json!("unlock with passphrase: correct horse battery staple"),
            "horse battery staple",
        ),
        (
            json!("uploading with wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY now"),
            "wJalrXUtnFEMI",
        ),
        (
            json!("charge with sk_live_deAOzLb8oYfZ3VoxLDOXLUPa failed"),
            "deAOzLb8oYfZ3V",
        ),
        (
            json!(
                "openai 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 rejected"
            ),
            "9JKzjiGQGVZxFE",
        ),
        (
            json!("maps AIzatZfMbv4tXc_gGKJ76PvlyP3PxVs3mOhhtUD quota"),
            "tZfMbv4tXc",
        ),
        (json!("charged card 4111 1111 1111 1111 ok"), "1111 1111"),
        (json!("key id AKIA IOSF ODNN 7EXA MPLE"), "IOSF ODNN"),
        (
            json!("key_prefix=AKIA key_rest=IOSFODNN7EXAMPLE"),
            "IOSFODNN7EXAMPLE",
        ),
        (
            json!({"meta": {"key_start": "AKIA", "key_rest": "IOSFODNN7EXAMPLE"}}),
            "IOSFODNN7EXAMPLE",
        ),
    ];
    let events: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (what, _))| {
            let mut e = leveled("etl", "ws1", "job7", "error", &format!("case {i}"));
            match what {
                Value::String(line) => e["logData"]["message"] = json!(line),
                other => e["logData"]["meta"] = other["meta"].clone(),
            }
            e
        })
        .collect();
    publish_as(&gw, ETL_TOKEN, events).await;
    let (s, v) = chat(
        &gw,
        "/api/logs/chat",
        json!({"message": "any leaked keys?"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let requests = model.requests();
    let sent = requests[1].to_string();
    for (_, secret) in &cases {
        assert!(!sent.contains(secret), "{secret} reached the model: {sent}");
    }
    for placeholder in [
        "[REDACTED:password]",
        "[REDACTED:aws_secret]",
        "[REDACTED:stripe_key]",
        "[REDACTED:openai_key]",
        "[REDACTED:google_key]",
        "[REDACTED:card]",
        "[REDACTED:aws_key]",
    ] {
        assert!(sent.contains(placeholder), "{placeholder} missing: {sent}");
    }
    // Every line was returned by search_logs, so each secret was counted.
    let search = &tool_results(&requests[1])[0];
    assert_eq!(search["returned"], cases.len(), "{search}");
    let redacted = v["redacted"].as_u64().unwrap();
    assert!(redacted >= cases.len() as u64, "{v}");
    assert_eq!(
        metric(&gw, "loggate_ai_redactions_total").await,
        redacted as f64
    );
}
#[tokio::test]
async fn the_question_itself_reaches_the_model_redacted() {
    let model = ModelServer::start(vec![
        Reply::text("I see a failed login."),
        Reply::text("I see a failed login."),
    ])
    .await;
    let gw = ai_gateway(&model, |_| {});
    let question = "why does login with password=hunter2 fail for bob@example.com \
        (key AKIAIOSFODNN7EXAMPLE, card 4111 1111 1111 1111)?";
    let (s, v) = chat(&gw, "/api/logs/chat", json!({"message": question}), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let done = answer(&gw, true, json!({"message": question})).await;
    for (request, summary) in model.requests().iter().zip([&v, &done]) {
        let sent = request["messages"][1]["content"].as_str().unwrap();
        for secret in [
            "hunter2",
            "bob@example.com",
            "AKIAIOSFODNN7EXAMPLE",
            "4111 1111",
        ] {
            assert!(!sent.contains(secret), "{secret} reached the model: {sent}");
        }
        assert_eq!(
            sent,
            "why does login with password=[REDACTED:password] fail for [REDACTED:email] \
             (key [REDACTED:aws_key], card [REDACTED:card])?"
        );
        assert_eq!(summary["redacted"], 4, "{summary}");
    }
    assert_eq!(metric(&gw, "loggate_ai_redactions_total").await, 8.0);
}

/// The model may quote a log line's control characters back: the answer,
/// whole or streamed, carries them as JSON escapes, never raw, so reading
/// it with `curl` in a terminal is as safe as reading a stream.
#[tokio::test]
async fn control_characters_in_an_answer_leave_as_json_escapes() {
    let quoted = "the line said \u{9b}2J\u{9d}52;c;aGk=\u{7}\u{2028}done";
    let model = ModelServer::start_repeating(vec![], Some(Reply::text(quoted))).await;
    let gw = ai_gateway(&model, |_| {});
    for stream in [false, true] {
        let mut req = gw
            .client
            .post(gw.url("/api/logs/chat"))
            .json(&json!({"message": "what did it say?"}));
        if stream {
            req = req.header("Accept", "text/event-stream");
        }
        let res = tokio::time::timeout(WAIT, req.send())
            .await
            .expect("answered in time")
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK);
        let body = tokio::time::timeout(WAIT, res.bytes())
            .await
            .expect("the body ends in time")
            .expect("body");
        let text = std::str::from_utf8(&body).expect("UTF-8");
        for raw in ['\u{9b}', '\u{9d}', '\u{2028}'] {
            assert!(
                !text.contains(raw),
                "stream={stream}: raw {raw:?} in {text:?}"
            );
        }
        assert!(text.contains(r"\u009b2J"), "stream={stream}: {text}");
        assert!(text.contains(r"\u2028"), "stream={stream}: {text}");
    }
    // And the JSON still reads back as what the model said.
    let (s, answer) = chat(&gw, "/api/logs/chat", json!({"message": "again?"}), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(answer["response"], quoted);
}
