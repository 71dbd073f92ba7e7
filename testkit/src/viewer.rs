//! The web viewer (`/ui/`) as a test reads it: its lines, notices, status
//! and address, through the stable hooks of the contract
//! (`data-testid="log-list"`, `"log-line"` with `data-id`, `data-level`,
//! `data-channel`, `"status"`, and the channel box's `"channel-options"`
//! with each `"channel-option"` and its `data-channel`) and a few of the
//! page's own ids. Every wait is bounded by [`crate::DEADLINE`] (through
//! [`Browser::wait_for`]).

use serde_json::Value;

use crate::browser::Browser;

/// One line of the list, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub id: String,
    pub level: String,
    pub channel: String,
    pub message: String,
}

/// One entry of the list in order: a line, or a notice between lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Line(Line),
    /// `kind` ("warn" or "info") and text.
    Notice(String, String),
}

/// Every entry of the list, top to bottom, as a JSON array.
const ENTRIES: &str = r#"
  const list = document.querySelector('[data-testid=log-list]');
  return [...list.querySelectorAll('[data-testid=log-line], [data-testid=notice]')].map(e =>
    e.dataset.testid === 'notice'
      ? { notice: e.textContent, kind: e.dataset.kind }
      : { id: e.dataset.id, level: e.dataset.level, channel: e.dataset.channel,
          message: e.querySelector('.message').textContent });
"#;

fn entries_of(v: &Value) -> Vec<Entry> {
    let s = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
    v.as_array()
        .into_iter()
        .flatten()
        .map(|e| match e.get("notice") {
            Some(text) => Entry::Notice(s(e, "kind"), text.as_str().unwrap_or_default().into()),
            None => Entry::Line(Line {
                id: s(e, "id"),
                level: s(e, "level"),
                channel: s(e, "channel"),
                message: s(e, "message"),
            }),
        })
        .collect()
}

/// The list, top to bottom.
pub async fn entries(b: &Browser) -> Vec<Entry> {
    entries_of(&b.eval(ENTRIES).await)
}

/// The lines of the list, top to bottom.
pub async fn lines(b: &Browser) -> Vec<Line> {
    entries(b)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Entry::Line(l) => Some(l),
            Entry::Notice(..) => None,
        })
        .collect()
}

/// The messages of the list's lines, top to bottom.
pub async fn messages(b: &Browser) -> Vec<String> {
    lines(b).await.into_iter().map(|l| l.message).collect()
}

/// The notices' texts, top to bottom.
pub async fn notices(b: &Browser) -> Vec<String> {
    entries(b)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Entry::Notice(_, text) => Some(text),
            Entry::Line(_) => None,
        })
        .collect()
}

/// Waits until the list holds exactly `n` lines; returns their messages.
pub async fn wait_lines(b: &Browser, n: usize) -> Vec<String> {
    b.wait_for(
        &format!("{n} lines in the list"),
        &format!("return document.querySelectorAll('[data-testid=log-line]').length === {n};"),
    )
    .await;
    messages(b).await
}

/// Waits until the last line's message is `message`.
pub async fn wait_last_line(b: &Browser, message: &str) {
    let script = format!(
        "const l = document.querySelectorAll('[data-testid=log-line]');
         return l.length > 0 && l[l.length - 1].querySelector('.message').textContent === {};",
        Value::from(message)
    );
    b.wait_for(&format!("the last line to be {message:?}"), &script)
        .await;
}

/// Waits until the status starts with `word` (live, paused, reconnecting,
/// error); returns its whole text.
pub async fn wait_status(b: &Browser, word: &str) -> String {
    let script = format!(
        "const s = document.querySelector('[data-testid=status]').textContent;
         return s.startsWith({}) ? s : '';",
        Value::from(word)
    );
    b.wait_for(&format!("status {word:?}"), &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until a notice contains `text`; returns the notice's text.
pub async fn wait_notice(b: &Browser, text: &str) -> String {
    let script = format!(
        "const n = [...document.querySelectorAll('[data-testid=notice]')]
           .find(e => e.textContent.includes({}));
         return n ? n.textContent : '';",
        Value::from(text)
    );
    b.wait_for(&format!("a notice with {text:?}"), &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The text of the element with `id`, or "" when there is none.
pub async fn text_of(b: &Browser, id: &str) -> String {
    b.eval_with(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
        vec![Value::from(id)],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Whether the element with `id` is shown (exists and is not `hidden`).
pub async fn is_shown(b: &Browser, id: &str) -> bool {
    b.eval_with(
        "const e = document.getElementById(arguments[0]); return !!e && !e.hidden && e.offsetParent !== null;",
        vec![Value::from(id)],
    )
    .await
    .as_bool()
    .unwrap_or(false)
}

/// The address's query parameter `name`, if present.
pub async fn param(b: &Browser, name: &str) -> Option<String> {
    b.eval_with(
        "return new URLSearchParams(location.search).get(arguments[0]);",
        vec![Value::from(name)],
    )
    .await
    .as_str()
    .map(str::to_owned)
}

/// Clicks the line with event id `id`.
pub async fn click_line(b: &Browser, id: &str) {
    b.click(&format!("[data-testid=log-line][data-id=\"{id}\"]"))
        .await;
}

/// The channels the channel box offers now, top to bottom (none while its
/// list is closed).
pub async fn channel_options(b: &Browser) -> Vec<String> {
    let v = b
        .eval(
            "const box = document.querySelector('[data-testid=channel-options]');
             if (!box || box.hidden) return [];
             return [...box.querySelectorAll('[data-testid=channel-option]')].map(o => o.dataset.channel);",
        )
        .await;
    v.as_array()
        .into_iter()
        .flatten()
        .map(|c| c.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until the channel box offers exactly `want`, in that order.
pub async fn wait_channel_options(b: &Browser, want: &[&str]) {
    let script = format!(
        "const box = document.querySelector('[data-testid=channel-options]');
         const got = box && !box.hidden
           ? [...box.querySelectorAll('[data-testid=channel-option]')].map(o => o.dataset.channel)
           : [];
         return JSON.stringify(got) === JSON.stringify({});",
        Value::from(want.to_vec())
    );
    b.wait_for(&format!("the channel box to offer {want:?}"), &script)
        .await;
}

/// The text of the offered channel `channel` (its name and what it holds).
pub async fn channel_option_text(b: &Browser, channel: &str) -> String {
    b.eval_with(
        "const o = [...document.querySelectorAll('[data-testid=channel-option]')]
           .find(o => o.dataset.channel === arguments[0]);
         return o ? o.textContent : '';",
        vec![Value::from(channel)],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Types `keys` into the element `css` where its text is now (WebDriver
/// key codes such as `"\u{E015}"`, arrow down, included).
pub async fn press(b: &Browser, css: &str, keys: &str) {
    b.client
        .find(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .send_keys(keys)
        .await
        .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
}
