//! Redaction: secrets and personal data out of every string a chat sends
//! to the model, replaced by typed placeholders (`[REDACTED:email]`), so
//! the model can still say "an e-mail address" without seeing one.
//!
//! Log lines are written by publishers, so the input is hostile: the
//! `regex` crate matches in time linear in the input, whatever it holds.
//! Placeholders never match a rule again, so redacting twice changes
//! nothing. Object keys that name a secret (`db_password`, `X-Api-Key`)
//! lose their whole value, whatever it looks like.

use std::borrow::Cow;

use regex::{Captures, Regex};
use serde_json::Value;

/// One kind of secret: its pattern and how a match is replaced.
struct Rule {
    re: Regex,
    /// Keeps group 1 (a key and its separator) before the placeholder.
    keep_prefix: bool,
    placeholder: &'static str,
}

/// The compiled rules; built once and shared.
pub struct Redactor {
    rules: Vec<Rule>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

/// Key words whose values are secrets, once lower-cased and stripped of
/// `-` and `_`.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "privatekey",
    "credentials",
];

impl Redactor {
    pub fn new() -> Redactor {
        // Literal patterns, checked by the unit tests: compiling them
        // cannot fail at run time.
        let rule = |re: &str, keep_prefix: bool, placeholder: &'static str| Rule {
            re: Regex::new(re).expect("a valid built-in pattern"),
            keep_prefix,
            placeholder,
        };
        Redactor {
            rules: vec![
                rule(
                    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
                    false,
                    "[REDACTED:private_key]",
                ),
                rule(
                    r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
                    false,
                    "[REDACTED:jwt]",
                ),
                rule(
                    r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}",
                    true,
                    "[REDACTED:bearer]",
                ),
                rule(
                    r"(?i)(aws_secret_access_key[\x22']?\s*[:=]\s*[\x22']?)[A-Za-z0-9/+=]{30,}",
                    true,
                    "[REDACTED:aws_secret]",
                ),
                rule(
                    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
                    false,
                    "[REDACTED:aws_key]",
                ),
                rule(
                    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
                    false,
                    "[REDACTED:github_token]",
                ),
                rule(
                    r"\bglpat-[A-Za-z0-9_-]{20,}",
                    false,
                    "[REDACTED:gitlab_token]",
                ),
                rule(
                    r"\b(?:xox[abposr]|xapp)-[A-Za-z0-9-]{10,}",
                    false,
                    "[REDACTED:slack_token]",
                ),
                rule(
                    r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s:/@\x22']+:[^\s@/\x22']+@",
                    true,
                    "[REDACTED:credentials]@",
                ),
                rule(
                    r"(?i)(\b(?:password|passwd|pwd)[\x22']?\s*[:=]\s*[\x22']?)[^\s&,;\x22'\[]+",
                    true,
                    "[REDACTED:password]",
                ),
                rule(
                    r"(?i)(\b(?:secret|client_secret|token|access_token|refresh_token|api_key|apikey)[\x22']?\s*[:=]\s*[\x22']?)[^\s&,;\x22'\[]+",
                    true,
                    "[REDACTED:secret]",
                ),
                rule(
                    r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
                    false,
                    "[REDACTED:email]",
                ),
            ],
        }
    }

    /// `text` with every secret replaced, and how many were.
    pub fn text<'a>(&self, text: &'a str) -> (Cow<'a, str>, usize) {
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        let mut count = 0;
        for rule in &self.rules {
            if !rule.re.is_match(&out) {
                continue;
            }
            let mut n = 0;
            let replaced = rule
                .re
                .replace_all(&out, |c: &Captures<'_>| {
                    n += 1;
                    let prefix = if rule.keep_prefix {
                        c.get(1).map_or("", |m| m.as_str())
                    } else {
                        ""
                    };
                    format!("{prefix}{}", rule.placeholder)
                })
                .into_owned();
            count += n;
            out = Cow::Owned(replaced);
        }
        (out, count)
    }

    /// Redacts every string in `value` in place; a value under a key that
    /// names a secret is replaced whole. Returns how many were.
    pub fn value(&self, value: &mut Value) -> usize {
        match value {
            Value::String(s) => {
                let (new, n) = self.text(s);
                if n > 0 {
                    *s = new.into_owned();
                }
                n
            }
            Value::Array(items) => items.iter_mut().map(|v| self.value(v)).sum(),
            Value::Object(map) => map
                .iter_mut()
                .map(|(key, v)| match secret_key(key) {
                    Some(placeholder) if !v.is_null() => {
                        if v.as_str() == Some(placeholder) {
                            return 0;
                        }
                        *v = Value::String(placeholder.into());
                        1
                    }
                    _ => self.value(v),
                })
                .sum(),
            _ => 0,
        }
    }
}

/// The placeholder for a key that names a secret.
fn secret_key(key: &str) -> Option<&'static str> {
    let folded: String = key
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    let word = SECRET_KEYS.iter().find(|w| folded.contains(**w))?;
    Some(if matches!(*word, "password" | "passwd" | "pwd") {
        "[REDACTED:password]"
    } else {
        "[REDACTED:secret]"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn r(text: &str) -> (String, usize) {
        let (t, n) = Redactor::new().text(text);
        (t.into_owned(), n)
    }

    #[test]
    fn each_kind_becomes_its_placeholder() {
        let cases = [
            (
                "key AKIAIOSFODNN7EXAMPLE here",
                "key [REDACTED:aws_key] here",
            ),
            (
                "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key=[REDACTED:aws_secret]",
            ),
            (
                "t ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "t [REDACTED:github_token]",
            ),
            ("glpat-abcdefghij0123456789", "[REDACTED:gitlab_token]"),
            ("xoxb-123456789012-abcdefghijkl", "[REDACTED:slack_token]"),
            (
                "Authorization: Bearer abc.def-ghi_jkl",
                "Authorization: Bearer [REDACTED:bearer]",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                "jwt [REDACTED:jwt]",
            ),
            ("password=hunter2 ok", "password=[REDACTED:password] ok"),
            (
                "{\"password\":\"hunter2\",\"a\":1}",
                "{\"password\":\"[REDACTED:password]\",\"a\":1}",
            ),
            ("?token=abc&x=1", "?token=[REDACTED:secret]&x=1"),
            ("secret: s3cr3t", "secret: [REDACTED:secret]"),
            (
                "mail bob.smith+x@example.co.uk now",
                "mail [REDACTED:email] now",
            ),
            (
                "postgres://app:pa55@db:5432/x",
                "postgres://[REDACTED:credentials]@db:5432/x",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
                "[REDACTED:private_key]",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(r(input).0, expected, "{input}");
            assert!(r(input).1 >= 1, "{input}");
        }
    }

    #[test]
    fn ordinary_lines_are_untouched() {
        for line in [
            "GET /api/users 200 12ms",
            "user=alice took=12ms",
            "connection refused (os error 111)",
            "request 550e8400-e29b-41d4-a716-446655440000 from 10.0.0.1:8080",
            "commit 5f3a9c2e1b7d done, the password was accepted",
            "café ✓ 日本語",
        ] {
            assert_eq!(r(line), (line.to_owned(), 0), "{line}");
        }
    }

    #[test]
    fn redacting_twice_changes_nothing() {
        let once = r("a@b.io password=x AKIAIOSFODNN7EXAMPLE Bearer abcdefghijk token=zz").0;
        assert_eq!(r(&once), (once.clone(), 0));
        let mut v = json!({"db_password": "x"});
        let red = Redactor::new();
        assert_eq!(red.value(&mut v), 1);
        assert_eq!(red.value(&mut v), 0);
    }

    #[test]
    fn json_values_and_secret_keys() {
        let mut v = json!({
            "X-Api-Key": "k-123",
            "db_password": 1234,
            "nested": [{"note": "to carol@example.com"}, "AKIAIOSFODNN7EXAMPLE"],
            "rows": 12,
            "absent_token": null,
        });
        assert_eq!(Redactor::new().value(&mut v), 4);
        assert_eq!(
            v,
            json!({
                "X-Api-Key": "[REDACTED:secret]",
                "db_password": "[REDACTED:password]",
                "nested": [{"note": "to [REDACTED:email]"}, "[REDACTED:aws_key]"],
                "rows": 12,
                "absent_token": null,
            })
        );
    }

    #[test]
    fn a_long_line_finishes() {
        let line = format!("{}@{}", "a".repeat(500_000), "b.".repeat(250_000));
        let _ = r(&line);
        let line = "password=".repeat(100_000);
        assert!(r(&line).1 > 0);
    }

    proptest! {
        #[test]
        fn no_secret_survives(
            before in "[ -~]{0,40}",
            after in "[ -~]{0,40}",
            kind in 0usize..6,
            body in "[A-Za-z0-9]{36}",
        ) {
            let secret = match kind {
                0 => format!("AKIA{}", body[..16].to_ascii_uppercase()),
                1 => format!("ghp_{body}"),
                2 => format!("glpat-{}", &body[..20]),
                3 => format!("xoxb-{body}"),
                4 => format!("{}@example.com", &body[..10]),
                _ => format!("eyJ{}.eyJ{}.{}", &body[..10], &body[10..20], &body[20..]),
            };
            let text = format!("{before} {secret} {after}");
            let (out, n) = r(&text);
            prop_assert!(!out.contains(&secret), "{out}");
            prop_assert!(n >= 1);
        }
    }
}
