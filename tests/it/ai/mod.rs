//! AI log analysis (`POST /api/logs/chat`) against a scripted
//! OpenAI-compatible model server (`testkit::model`): the agent loop and
//! its bounds, the tools and their truncation, tenancy inside every tool,
//! redaction, the streamed answer, limits and errors, metrics.
//!
//! By theme: [`agent`], [`tenancy`], [`bounds`], [`streaming`]; the helpers
//! they share are here.

use std::time::Duration;

use loggate::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::model::{COMPLETION_TOKENS, Dialect, ModelServer, PROMPT_TOKENS, Reply};
use testkit::*;

mod agent;
mod bounds;
mod streaming;
mod tenancy;

const SECRET: &str = "a-test-jwt-secret-that-is-long-enough-for-hs256";

fn ai_gateway(model: &ModelServer, adjust: impl FnOnce(&mut loggate::Config)) -> InProcessGateway {
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

async fn publish_as(gw: &InProcessGateway, token: &str, events: Vec<Value>) -> Vec<String> {
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
    gw: &InProcessGateway,
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
    gw: &InProcessGateway,
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

async fn metric(gw: &InProcessGateway, series: &str) -> f64 {
    metric_value(&gw.metrics().await, series).unwrap_or_else(|| panic!("no series {series}"))
}

/// The answer of a chat, JSON or streamed: the `done` frame's summary.
async fn answer(gw: &InProcessGateway, streaming: bool, body: Value) -> Value {
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
