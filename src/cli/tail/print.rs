//! How `loggate tail` writes events (text, raw, JSON; colours, times) and
//! notices, escaping what publishers wrote so it never drives the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use serde_json::Value;

use super::super::terminal::visible;
use super::{Color, Output, TailArgs, Timestamps};
use crate::event::escape_json_text;

/// How events and notices are written.
pub(super) struct Printer {
    output: Output,
    color: bool,
    timestamps: Timestamps,
    utc: bool,
    /// Control characters in events are shown as escapes: always for
    /// `-o text`, on a terminal for `-o raw` and `-o json`; never with
    /// `--raw-control`.
    escape: bool,
}

impl Printer {
    pub(super) fn new(args: &TailArgs) -> Printer {
        let color = match args.color {
            Color::Always => true,
            Color::Never => false,
            // anstream knows the conventions: a terminal, NO_COLOR,
            // CLICOLOR(_FORCE), TERM=dumb.
            Color::Auto => {
                anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
            }
        };
        let escape =
            !args.raw_control && (args.output == Output::Text || std::io::stdout().is_terminal());
        Printer {
            output: args.output,
            color,
            timestamps: args.timestamps,
            utc: args.utc,
            escape,
        }
    }

    /// Writes one event, given as the gateway wrote it and parsed
    /// (line-buffered: flushed at once). False when stdout is gone, which
    /// ends the command quietly.
    pub(super) fn event(&self, raw: &str, e: &Value) -> bool {
        let line = match self.output {
            Output::Json if self.escape => escape_json_text(raw),
            Output::Json => Cow::Borrowed(raw),
            Output::Raw => self.show(e["message"].as_str().unwrap_or_default()),
            Output::Text => Cow::Owned(self.text(e)),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
    }

    /// `text` as this printer shows publishers' text.
    fn show<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.escape {
            visible(text.as_bytes())
        } else {
            Cow::Borrowed(text)
        }
    }

    /// Appends a field, after a space unless it is the first.
    pub(super) fn put(&self, line: &mut String, text: &str) {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&self.show(text));
    }

    /// Every field goes through [`Printer::show`]: the gateway checks
    /// channels, levels and times, but a server posing as one need not.
    pub(super) fn text(&self, e: &Value) -> String {
        let mut line = String::with_capacity(160);
        let time = e["timestamp"].as_str().unwrap_or_default();
        match self.timestamps {
            Timestamps::None => {}
            Timestamps::Rfc3339 => self.put(&mut line, time),
            Timestamps::Short => self.put(&mut line, &short_time(time, self.utc)),
        }
        let level = e["level"].as_str().unwrap_or("info");
        let label = format!("{:<5}", level.to_uppercase());
        if self.color {
            let style = level_style(level);
            if !line.is_empty() {
                line.push(' ');
            }
            let _ = write!(line, "{style}{}{style:#}", self.show(&label));
        } else {
            self.put(&mut line, &label);
        }
        self.put(&mut line, e["channel"].as_str().unwrap_or_default());
        self.put(&mut line, e["message"].as_str().unwrap_or_default());
        if let Some(meta) = e["meta"].as_object() {
            for (k, v) in meta {
                let v = match v {
                    Value::String(s) if !s.contains(' ') && !s.is_empty() => {
                        Cow::Borrowed(s.as_str())
                    }
                    other => Cow::Owned(other.to_string()),
                };
                self.put(&mut line, k);
                line.push('=');
                line.push_str(&self.show(&v));
            }
        }
        line
    }

    /// Notices quote what the gateway said (a gap's origin, a refusal), so
    /// they are escaped whatever the flags.
    pub(super) fn notice(&self, text: &str) {
        eprintln!("loggate tail: {}", visible(text.as_bytes()));
    }
}

fn level_style(level: &str) -> anstyle::Style {
    use anstyle::{AnsiColor, Effects, Style};
    let color = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
    match level {
        "trace" | "debug" => Style::new().effects(Effects::DIMMED),
        "warn" => color(AnsiColor::Yellow),
        "error" => color(AnsiColor::Red),
        "fatal" => color(AnsiColor::Red).effects(Effects::BOLD),
        _ => color(AnsiColor::Green),
    }
}

/// `HH:MM:SS.mmm` in local time (or UTC); the text as given if unreadable.
fn short_time(rfc3339: &str, utc: bool) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) if utc => t.to_utc().format("%H:%M:%S%.3f").to_string(),
        Ok(t) => t
            .with_timezone(&chrono::Local)
            .format("%H:%M:%S%.3f")
            .to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}
