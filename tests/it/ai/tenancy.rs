//! Tenancy and redaction: no tool reaches past the caller's grants, and
//! secrets and personal data are redacted before the model sees them.

use super::*;

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
