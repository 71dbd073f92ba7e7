//! The answer as it streams: SSE frames to the client, a client that
//! leaves, the chunk shapes other model servers send, finish reasons and
//! control characters.

use super::*;

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
