//! The agent's bounds: loops and invented tools stopped, model server
//! failures, bad requests, rate limits, trimmed tool results, chats at once.

use super::*;

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
