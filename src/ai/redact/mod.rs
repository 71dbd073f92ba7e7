//! Redaction: secrets and personal data out of every string a chat sends
//! to an outside model (log lines, `meta`, and the question itself),
//! replaced by typed placeholders (`[REDACTED:email]`), so the model can
//! still say "an e-mail address" or "a Stripe key" without ever seeing
//! one.
//!
//! Publishers write the log lines, so the input is hostile. Two passes,
//! each linear in the input:
//!
//! 1. **Rules with a shape**, run left to right as one `regex::Regex`
//!    (no look-around, no backtracking engine): private key blocks,
//!    JWTs, `Bearer`/`Basic` credentials, keyed values (`key=value`,
//!    `key: value`, `"key":"value"`, and JSON inside a string), URL and
//!    DSN credentials, webhook URLs, the prefixed key formats of
//!    gitleaks' default rule set that start with a prefix of their own
//!    (AWS, GitHub, GitLab, Slack, Google, SendGrid, PyPI, Vault,
//!    Grafana, Sentry, DigitalOcean, Shopify, Fly.io and more), and
//!    e-mail addresses. That regex only finds where a match is (its lazy
//!    DFA is fast); a `RegexSet` of the same rules, each anchored to the
//!    whole match, says which rule it is, and the few bytes the rule's
//!    shape fixes say where its parts are. No capture groups: their
//!    engines cost a hundred times more than the search on this many
//!    rules.
//! 2. **Rules without one** (`heuristics`), token by token: card
//!    numbers that pass the Luhn check, a bare 40-character AWS secret
//!    key, a random token next to a secret-ish word, an AWS key id in two
//!    parts, and the key formats whose prefix could end another word
//!    (Stripe, OpenAI, Anthropic, OpenRouter, Twilio, npm, Hugging Face,
//!    …), matched only where a word starts.
//!
//! The files: `rules` holds the first pass's table (and `prefixed` the
//! gitleaks key formats it takes in), this module compiles and applies
//! it; `heuristics` is the second pass, with `cards` for card numbers;
//! `value` walks JSON values. Which key names a secret is `keys`'
//! judgement, the same for text and for `meta` objects: `db_pass`, `passphrase`, `client_secret`,
//! `X-Api-Key`, `session`, `signing_key` are; `bypass`, `cache_key`,
//! `max_tokens` are not.
//!
//! No rule of the first pass looks behind its match (no `\b`): after a
//! replacement the text before the next match is a placeholder's `]`,
//! not what it was, and a rule that cared could match on a second pass
//! where it did not on the first. A keyed value whose key names no secret
//! is looked at again for the secrets it may hold, inside that span only
//! and at most [`MAX_DEPTH`] levels deep (deeper, it is redacted whole):
//! each byte is scanned at most three times, and no match makes the scan
//! start over. Redacting twice changes nothing and counts nothing. The
//! output is at most five times the input (the shortest match, `pwd=x`,
//! becomes 23 bytes).
//!
//! Choices that trade a little ordinary text for safety, all deliberate:
//! `token: 512` and `pwd=/home/x` are redacted (the key says secret; a
//! plural `tokens: 512` is not, nor `max_tokens=512`); a quoted value is
//! redacted up to its closing quote, spaces and all; an unquoted
//! passphrase to the end of its line; an unterminated private key block
//! to the end of the text. A 13 to 19 digit number with a card network's
//! prefix and a valid Luhn digit is a card, whatever it counts. A 40
//! character base64 token with the entropy of random data is an AWS
//! secret, whatever it encodes. `Bearer` and `Basic` followed by a plain
//! word ("Bearer authentication") are left, since a credential is never a
//! dictionary word; the bearer alphabet has `_` (base64url), which RFC
//! 6750 left out. IP addresses are left: they say where, not who, and the
//! model needs them to tell one client from another.

mod cards;
mod heuristics;
mod keys;
mod prefixed;
mod rules;
mod value;

use std::borrow::Cow;

use regex::{Regex, RegexSet};
#[cfg(test)]
use serde_json::Value;

use keys::KeyKind;
use rules::Rule;

/// How many levels deep a kept span is looked at again.
pub const MAX_DEPTH: u8 = 2;

/// The rules, compiled once; cheap to share between threads
/// (`Send + Sync`), so hold one and pass references around.
pub struct Redactor {
    /// Every rule in one, without groups: where the next match is. A lazy
    /// DFA finds it, forward and back, in one pass.
    find: Regex,
    /// The same rules one by one, each anchored to a whole match: which
    /// rule a match is (the first that matches it all, as in `find`).
    which: RegexSet,
    /// What each rule's match becomes.
    rules: Vec<Rule>,
    /// The second pass.
    heuristics: heuristics::Heuristics,
}

/// The same as [`Redactor::new`].
impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

impl Redactor {
    /// Compiles the rules (some milliseconds): do it once, at start.
    pub fn new() -> Redactor {
        let rules = rules::expanded();
        // The patterns are literals, compiled by every test: they cannot
        // fail at run time. The size limits are raised for patterns this
        // size with the Unicode classes of the e-mail rule; the lazy DFA's
        // cache too, lest it give up and leave the search to the (much
        // slower) PikeVM.
        let all = rules
            .iter()
            .map(|(_, p)| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        let find = regex::RegexBuilder::new(&all)
            .size_limit(64 << 20)
            .dfa_size_limit(8 << 20)
            .build()
            .expect("the built-in redaction pattern compiles");
        let which = regex::RegexSetBuilder::new(rules.iter().map(|(_, p)| format!("^(?:{p})$")))
            .size_limit(64 << 20)
            .dfa_size_limit(8 << 20)
            .build()
            .expect("the built-in redaction patterns compile");
        let rules = rules.into_iter().map(|(rule, _)| rule).collect();
        Redactor {
            find,
            which,
            rules,
            heuristics: heuristics::Heuristics::new(),
        }
    }

    /// Replaces every secret or personal datum in `text` by a typed
    /// placeholder; returns the new text (borrowed when nothing was
    /// replaced) and how many were replaced.
    pub fn text<'a>(&self, text: &'a str) -> (Cow<'a, str>, usize) {
        let (first, n) = self.rules(text, 0);
        let spans = self.heuristics.find(&first);
        if spans.is_empty() {
            return (first, n);
        }
        let mut out = String::with_capacity(first.len());
        let mut at = 0;
        for (range, placeholder) in &spans {
            out.push_str(&first[at..range.start]);
            out.push_str(placeholder);
            at = range.end;
        }
        out.push_str(&first[at..]);
        (Cow::Owned(out), n + spans.len())
    }

    /// The first pass over `text`, `depth` levels inside a kept span.
    fn rules<'a>(&self, text: &'a str, depth: u8) -> (Cow<'a, str>, usize) {
        let mut count = 0;
        let mut out = String::new();
        let mut at = 0;
        for m in self.find.find_iter(text) {
            if let Some((replaced, n)) = self.replacement(m.as_str(), depth) {
                out.push_str(&text[at..m.start()]);
                out.push_str(&replaced);
                at = m.end();
                count += n;
            }
        }
        if count == 0 {
            return (Cow::Borrowed(text), 0);
        }
        out.push_str(&text[at..]);
        (Cow::Owned(out), count)
    }

    /// A kept span, looked at again one level deeper; at the deepest
    /// level it is redacted whole instead (`placeholder`), so the work
    /// stays bounded.
    fn inner(&self, span: &str, depth: u8, placeholder: &str) -> (String, usize) {
        if depth >= MAX_DEPTH {
            return (placeholder.to_owned(), 1);
        }
        let (out, n) = self.rules(span, depth + 1);
        (out.into_owned(), n)
    }

    /// What a match becomes and how many secrets that hides, or `None` to
    /// keep it as it is. Which rule matched comes from the set; where its
    /// parts are, from the few bytes each rule's shape fixes, without
    /// capture groups (whose engines cost far more than finding the match).
    fn replacement(&self, span: &str, depth: u8) -> Option<(String, usize)> {
        let i = self.which.matches(span).into_iter().next()?;
        let one = |placeholder: String| Some((placeholder, 1));
        match self.rules[i] {
            Rule::PrivateKey => one("[REDACTED:private_key]".into()),
            Rule::Jwt => one("[REDACTED:jwt]".into()),
            Rule::Scheme(kind) => {
                // The word, then its blanks.
                let word = span.find(char::is_whitespace)?;
                let end = span[word..]
                    .find(|c: char| !c.is_whitespace())
                    .map_or(span.len(), |at| word + at);
                one(format!("{}[REDACTED:{kind}]", &span[..end]))
            }
            Rule::Url => {
                let end = span.find("://")? + 3;
                one(format!("{}[REDACTED:credentials]@", &span[..end]))
            }
            Rule::Dsn => one(format!(
                "[REDACTED:credentials]{}",
                &span[span.rfind('@')?..]
            )),
            Rule::Whole(kind) => one(format!("[REDACTED:{kind}]")),
            Rule::Keyed => {
                let (key, value) = split_keyed(span)?;
                self.keyed(span, key, value, depth)
            }
            Rule::Prefixed => None,
        }
    }

    /// A keyed value: its key (`name`), separator and opening quote stay
    /// (the closing quote is not in the match). The value goes when the
    /// key names a secret; otherwise it is looked at again. The key's
    /// prefix can be anything of `[A-Za-z0-9_.-]`, a token too
    /// (`ghp_…_token=x`): it is redacted as well. It holds one `:` or `=`,
    /// at its end, so it cannot match a keyed value again.
    fn keyed(&self, span: &str, name: &str, value: usize, depth: u8) -> Option<(String, usize)> {
        let v = &span[value..];
        // Trailing blanks of an unquoted passphrase stay, so that a
        // second pass sees the same value.
        let trimmed = v.trim_end_matches([' ', '\t']);
        // `Authorization: Bearer x`: the scheme stays, as the bearer rule
        // would leave it.
        let scheme_len = scheme(trimmed);
        let (scheme, secret) = trimmed.split_at(scheme_len);
        if secret.is_empty() || is_placeholder(secret) {
            return None;
        }
        let key_part = &span[..value];
        let (key, n) = self.rules(key_part, depth.saturating_add(1).min(MAX_DEPTH));
        match keys::kind(name) {
            KeyKind::Secret(placeholder) => {
                // A value that is one known key format says which
                // (`api_key=AIza…` is a Google key); anything else is what
                // the key says.
                let (inner, m) = self.inner(secret, depth, placeholder);
                let placeholder = if scheme.to_ascii_lowercase().starts_with("bearer") {
                    "[REDACTED:bearer]"
                } else if !scheme.is_empty() {
                    "[REDACTED:credentials]"
                } else if m == 1 && is_placeholder(&inner) {
                    &inner
                } else {
                    self.heuristics.whole(secret).unwrap_or(placeholder)
                };
                Some((
                    format!("{key}{scheme}{placeholder}{}", &v[trimmed.len()..]),
                    n + 1,
                ))
            }
            KeyKind::Hint | KeyKind::Plain => {
                let (inner, m) = self.inner(v, depth, "[REDACTED:secret]");
                if n + m == 0 {
                    return None;
                }
                Some((format!("{key}{inner}"), n + m))
            }
        }
    }
}

/// The length of a leading `Bearer ` or `Basic ` (with its blanks), or 0.
fn scheme(value: &str) -> usize {
    let b = value.as_bytes();
    let word = ["bearer", "basic"]
        .iter()
        .find(|w| b.len() > w.len() && b[..w.len()].eq_ignore_ascii_case(w.as_bytes()))
        .map_or(0, |w| w.len());
    if word == 0 || !matches!(b[word], b' ' | b'\t') {
        return 0;
    }
    word + b[word..]
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count()
}

/// A keyed value's key name and where its value starts. The rule has
/// fixed the shape: a key without `:` or `=`, then `\\?["']?[ \t]*`, the
/// separator, blanks, and an opening `\\"`, `"` or `'` or none.
fn split_keyed(span: &str) -> Option<(&str, usize)> {
    let sep = span.find([':', '='])?;
    let key = span[..sep].trim_end_matches([' ', '\t', '"', '\'', '\\']);
    let rest = &span[sep + 1..];
    let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let value = &rest[blanks..];
    let quote = if value.starts_with("\\\"") {
        2
    } else if value.starts_with(['"', '\'']) {
        1
    } else {
        0
    };
    Some((key, sep + 1 + blanks + quote))
}

/// `[REDACTED:kind]`, as this module writes them.
fn is_placeholder(s: &str) -> bool {
    s.strip_prefix("[REDACTED:")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|kind| {
            !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::LazyLock;

    // One compile for the whole suite, as the gateway does.
    static R: LazyLock<Redactor> = LazyLock::new(Redactor::new);

    fn r(text: &str) -> (String, usize) {
        let (t, n) = R.text(text);
        (t.into_owned(), n)
    }

    /// Redacts, and checks that a second pass changes nothing.
    fn r_stable(text: &str) -> (String, usize) {
        let once = r(text);
        assert_eq!(r(&once.0), (once.0.clone(), 0), "second pass of {text:?}");
        once
    }

    fn assert_cases(cases: &[(&str, &str, usize)]) {
        for &(input, expected, n) in cases {
            assert_eq!(r_stable(input), (expected.to_owned(), n), "{input:?}");
        }
    }

    #[test]
    fn the_redactor_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Redactor>();
        let _ = Redactor::default();
    }

    #[test]
    fn aws_keys_and_secrets() {
        assert_cases(&[
            (
                "key AKIAIOSFODNN7EXAMPLE here",
                "key [REDACTED:aws_key] here",
                1,
            ),
            ("(ASIAY34FZKBOKMUTVV7A)", "([REDACTED:aws_key])", 1),
            (
                "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key=[REDACTED:aws_secret]",
                1,
            ),
            (
                "AWS_SECRET_ACCESS_KEY: \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
                "AWS_SECRET_ACCESS_KEY: \"[REDACTED:aws_secret]\"",
                1,
            ),
            // Too short, lower case, another prefix: not a key id.
            ("AKIAIOSFODNN7EXAMP", "AKIAIOSFODNN7EXAMP", 0),
            ("akiaiosfodnn7example", "akiaiosfodnn7example", 0),
            ("AKIBIOSFODNN7EXAMPLE", "AKIBIOSFODNN7EXAMPLE", 0),
            // In a longer run of capitals it is still taken, on purpose.
            ("XAKIAIOSFODNN7EXAMPLEX", "X[REDACTED:aws_key]X", 1),
        ]);
    }

    #[test]
    fn code_host_and_chat_tokens() {
        assert_cases(&[
            (
                "t ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "t [REDACTED:github_token]",
                1,
            ),
            ("gho_ABCDEFGHIJ0123456789", "[REDACTED:github_token]", 1),
            ("x_ghs_ABCDEFGHIJ0123456789", "x_[REDACTED:github_token]", 1),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
                "[REDACTED:github_token]",
                1,
            ),
            ("ghp_short", "ghp_short", 0),
            (
                "ghx_abcdefghijklmnopqrstuvwxyz",
                "ghx_abcdefghijklmnopqrstuvwxyz",
                0,
            ),
            ("glpat-abcdefghij0123456789", "[REDACTED:gitlab_token]", 1),
            (
                "glpat-x-y_z0123456789abcdefgh!",
                "[REDACTED:gitlab_token]!",
                1,
            ),
            ("glpat-short", "glpat-short", 0),
            (
                "xoxb-123456789012-abcdefghijkl",
                "[REDACTED:slack_token]",
                1,
            ),
            ("xoxp-1-2-3-abcdef", "[REDACTED:slack_token]", 1),
            ("xapp-1-A0123456-789", "[REDACTED:slack_token]", 1),
            ("xoxo-hugs", "xoxo-hugs", 0),
        ]);
    }

    #[test]
    fn bearer_basic_and_jwt() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_cases(&[
            (
                "Authorization: Bearer abc.def-ghi_jkl",
                "Authorization: Bearer [REDACTED:bearer]",
                1,
            ),
            ("bearer   0123456789abcdef", "bearer   [REDACTED:bearer]", 1),
            ("BEARER aB3dE5fG7h", "BEARER [REDACTED:bearer]", 1),
            ("Bearer short", "Bearer short", 0),
            (
                "Bearer authentication failed",
                "Bearer authentication failed",
                0,
            ),
            ("the bearer Authentication", "the bearer Authentication", 0),
            (
                "Authorization: Basic dXNlcjpwYXNzd29yZA==",
                "Authorization: Basic [REDACTED:credentials]",
                1,
            ),
            // What follows a plain word is still looked at.
            (
                "bearer password: hunter2",
                "bearer password: [REDACTED:password]",
                1,
            ),
            ("Bearer alice@example.com", "Bearer [REDACTED:email]", 1),
            (
                "basic configuration loaded",
                "basic configuration loaded",
                0,
            ),
            (&format!("jwt {jwt} ok"), "jwt [REDACTED:jwt] ok", 1),
            (
                &format!("?id_token={jwt}&x=1"),
                "?id_token=[REDACTED:jwt]&x=1",
                1,
            ),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJz.x",
                "eyJhbGciOiJIUzI1NiJ9.eyJz.x",
                0,
            ),
        ]);
        // Behind `Bearer` either placeholder will do; the token must go.
        let (out, n) = r_stable(&format!("Authorization: Bearer {jwt}"));
        assert!(!out.contains("eyJ") && n == 1, "{out}");
    }

    #[test]
    fn keyed_values_keep_the_key_and_separator() {
        assert_cases(&[
            ("password=hunter2 ok", "password=[REDACTED:password] ok", 1),
            ("PASSWD: hunter2", "PASSWD: [REDACTED:password]", 1),
            ("pwd = hunter2;", "pwd = [REDACTED:password];", 1),
            (
                "password: \"hunter two\"",
                "password: \"[REDACTED:password]\"",
                1,
            ),
            (
                "{\"password\":\"hunter2\",\"a\":1}",
                "{\"password\":\"[REDACTED:password]\",\"a\":1}",
                1,
            ),
            (
                r#"{\"password\":\"hun\\ter2\",\"user\":\"bob\"}"#,
                r#"{\"password\":\"[REDACTED:password]\",\"user\":\"bob\"}"#,
                1,
            ),
            ("password='a b'", "password='[REDACTED:password]'", 1),
            ("?token=abc&x=1", "?token=[REDACTED:secret]&x=1", 1),
            ("secret: s3cr3t, next", "secret: [REDACTED:secret], next", 1),
            ("client_secret=abc", "client_secret=[REDACTED:secret]", 1),
            (
                "access_token=a refresh_token=b",
                "access_token=[REDACTED:secret] refresh_token=[REDACTED:secret]",
                2,
            ),
            (
                "api_key=k1 apikey=k2",
                "api_key=[REDACTED:secret] apikey=[REDACTED:secret]",
                2,
            ),
            ("X-Api-Key: k-123", "X-Api-Key: [REDACTED:secret]", 1),
            ("db_password=x", "db_password=[REDACTED:password]", 1),
            (
                "spring.datasource.password=x",
                "spring.datasource.password=[REDACTED:password]",
                1,
            ),
            // A count is a key too when it is called `token`: the key says
            // secret, and the model loses only a number.
            ("token: 512", "token: [REDACTED:secret]", 1),
            // A key block or a scheme and credential as a value go whole.
            (
                "secret=-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- ok",
                "secret=[REDACTED:private_key] ok",
                1,
            ),
            (
                "token: Bearer abc123def, next",
                "token: Bearer [REDACTED:bearer], next",
                1,
            ),
            (
                "authorization=Basic dXNlcjpw",
                "authorization=Basic [REDACTED:credentials]",
                1,
            ),
            ("authorization=s3cr3t", "authorization=[REDACTED:secret]", 1),
            // A value that is a known key format says which.
            (
                "api_key=AIzatZfMbv4tXc_gGKJ76PvlyP3PxVs3mOhhtUD",
                "api_key=[REDACTED:google_key]",
                1,
            ),
            // A secret in the key's prefix goes too.
            (
                "ghp_abcdefghijklmnopqrstuvwxyz_token=abc",
                "[REDACTED:github_token]_token=[REDACTED:secret]",
                2,
            ),
            (
                "a@b.com_password=x",
                "[REDACTED:email]_password=[REDACTED:password]",
                2,
            ),
            ("xpassword=x", "xpassword=[REDACTED:password]", 1),
            // Empty values hide nothing.
            ("password=\"\" password= ", "password=\"\" password= ", 0),
            // The value stops at the line's end.
            ("password:\nnext", "password:\nnext", 0),
        ]);
    }

    #[test]
    fn emails_and_url_credentials() {
        assert_cases(&[
            (
                "mail bob.smith+x@example.co.uk now",
                "mail [REDACTED:email] now",
                1,
            ),
            ("<alice_b@mail.example.com>", "<[REDACTED:email]>", 1),
            ("josé@exämple.com", "[REDACTED:email]", 1),
            ("a@b.io, c@d.org", "[REDACTED:email], [REDACTED:email]", 2),
            ("user@localhost", "user@localhost", 0),
            ("pkg@1.2.3", "pkg@1.2.3", 0),
            (
                "postgres://app:pa55@db:5432/x",
                "postgres://[REDACTED:credentials]@db:5432/x",
                1,
            ),
            (
                "redis://:pa55@cache",
                "redis://[REDACTED:credentials]@cache",
                1,
            ),
            (
                "https://alice@example.com:p@ss@host/path?e=1",
                "https://[REDACTED:credentials]@host/path?e=1",
                1,
            ),
            (
                "https://example.com:8080/x",
                "https://example.com:8080/x",
                0,
            ),
            // A user with no password is left to the e-mail rule.
            ("ssh://git@github.com/org", "ssh://[REDACTED:email]/org", 1),
            (
                "https://github.com/org/repo",
                "https://github.com/org/repo",
                0,
            ),
        ]);
    }

    #[test]
    fn private_key_blocks() {
        assert_cases(&[
            (
                "key: -----BEGIN RSA PRIVATE KEY-----\nMIIB\nabc=\n-----END RSA PRIVATE KEY----- done",
                "key: [REDACTED:private_key] done",
                1,
            ),
            (
                "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----",
                "[REDACTED:private_key]",
                1,
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn cut off",
                "[REDACTED:private_key]",
                1,
            ),
            (
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
                0,
            ),
        ]);
    }

    #[test]
    fn ordinary_lines_are_untouched() {
        for line in [
            "GET /api/users 200 12ms",
            "user=alice took=12ms",
            "connection refused (os error 111)",
            "request 550e8400-e29b-41d4-a716-446655440000 from 10.0.0.1:8080",
            "fe80::1 and 2001:db8::1",
            "commit 5f3a9c2e1b7d done, the password was accepted",
            "tokens: 512 max_tokens=4096 token_count=3 prompt_tokens: 12",
            "secrets: 3 passwords=none",
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
            "café ✓ 日本語 — 🎉",
            "",
        ] {
            let (out, n) = R.text(line);
            assert!(matches!(out, Cow::Borrowed(_)), "{line}");
            assert_eq!((out.as_ref(), n), (line, 0), "{line}");
        }
    }

    #[test]
    fn multibyte_text_around_matches() {
        assert_cases(&[
            ("éAKIAIOSFODNN7EXAMPLEé", "é[REDACTED:aws_key]é", 1),
            (
                "日本語password=秘密 ok",
                "日本語password=[REDACTED:password] ok",
                1,
            ),
            (
                "→ghp_abcdefghijklmnopqrstuvwxyz←",
                "→[REDACTED:github_token]←",
                1,
            ),
            ("«bob@example.com»", "«[REDACTED:email]»", 1),
            ("🎉Bearer aB3dE5fG7h🎉", "🎉Bearer [REDACTED:bearer]🎉", 1),
        ]);
    }

    #[test]
    fn counts_add_up() {
        let line = "a@b.io password=x AKIAIOSFODNN7EXAMPLE Bearer abcdefghijk1 token=zz \
                    glpat-abcdefghij0123456789 https://u:p@h";
        assert_eq!(r_stable(line).1, 7);
    }

    #[test]
    fn placeholders_are_never_matched_again() {
        let placeholders = "[REDACTED:aws_key] aws_secret_access_key=[REDACTED:aws_secret] \
            [REDACTED:github_token] [REDACTED:gitlab_token] [REDACTED:slack_token] \
            Bearer [REDACTED:bearer] [REDACTED:jwt] password=[REDACTED:password] \
            \"secret\": \"[REDACTED:secret]\" [REDACTED:email] [REDACTED:private_key] \
            https://[REDACTED:credentials]@host Basic [REDACTED:credentials]";
        assert_eq!(r(placeholders), (placeholders.to_owned(), 0));
    }

    #[test]
    fn json_values_and_secret_keys() {
        let mut v = json!({
            "X-Api-Key": "k-123",
            "db_password": 1234,
            "Authorization": "Bearer abc",
            "credentials": {"user": "u", "pass": "p"},
            "nested": [{"note": "to carol@example.com"}, ["AKIAIOSFODNN7EXAMPLE", 5]],
            "rows": 12,
            "absent_token": null,
            "password_set": true,
            "max_tokens": 512,
            "carol@example.com": "the key stays",
        });
        assert_eq!(R.value(&mut v), 6);
        assert_eq!(
            v,
            json!({
                "X-Api-Key": "[REDACTED:secret]",
                "db_password": "[REDACTED:password]",
                "Authorization": "[REDACTED:secret]",
                "credentials": "[REDACTED:secret]",
                "nested": [{"note": "to [REDACTED:email]"}, ["[REDACTED:aws_key]", 5]],
                "rows": 12,
                "absent_token": null,
                "password_set": true,
                "max_tokens": 512,
                "carol@example.com": "the key stays",
            })
        );
        assert_eq!(R.value(&mut v), 0, "a second pass changes nothing");
    }

    #[test]
    fn every_secret_key_spelling() {
        for (key, expected) in [
            ("password", "[REDACTED:password]"),
            ("Passwd", "[REDACTED:password]"),
            ("PWD", "[REDACTED:password]"),
            ("user_password", "[REDACTED:password]"),
            ("passphrase", "[REDACTED:password]"),
            ("db_pass", "[REDACTED:password]"),
            ("dbPass", "[REDACTED:password]"),
            ("secret", "[REDACTED:secret]"),
            ("client_secret", "[REDACTED:secret]"),
            ("token", "[REDACTED:secret]"),
            ("access_token", "[REDACTED:secret]"),
            ("refresh-token", "[REDACTED:secret]"),
            ("api_key", "[REDACTED:secret]"),
            ("APIKEY", "[REDACTED:secret]"),
            ("x-api-key", "[REDACTED:secret]"),
            ("access_key", "[REDACTED:secret]"),
            ("stripe_key", "[REDACTED:secret]"),
            ("authorization", "[REDACTED:secret]"),
            ("Cookie", "[REDACTED:secret]"),
            ("set-cookie", "[REDACTED:secret]"),
            ("session", "[REDACTED:secret]"),
            ("sessionId", "[REDACTED:secret]"),
            ("private_key", "[REDACTED:secret]"),
            ("credentials", "[REDACTED:secret]"),
            ("credential", "[REDACTED:secret]"),
            ("aws_secret_access_key", "[REDACTED:aws_secret]"),
        ] {
            let mut v = json!({ key: "plain" });
            assert_eq!(R.value(&mut v), 1, "{key}");
            assert_eq!(v[key], expected, "{key}");
        }
        for key in [
            "user",
            "author",
            "tokens_note",
            "pw",
            "key",
            "cache_key",
            "bypass",
        ] {
            let mut v = json!({ key: "plain" });
            let n = R.value(&mut v);
            assert_eq!(n, usize::from(key == "tokens_note"), "{key}");
        }
        // Under a key that only hints, a random value goes, a word stays.
        let mut v = json!({"key": "9f8Kq2LmZ7xR4vT1wE", "auth": "basic"});
        assert_eq!(R.value(&mut v), 1);
        assert_eq!(v, json!({"key": "[REDACTED:secret]", "auth": "basic"}));
    }

    #[test]
    fn cards_and_split_aws_ids_in_json() {
        let mut v = json!({
            "card": 4111111111111111u64,
            "amount": 4111111111111112u64,
            "ts": 1714566896789u64,
            "span_id": 5161988305477887u64,
            "paid": 4111111111111111u64,
            "id_start": "AKIA",
            "id_rest": "IOSFODNN7EXAMPLE",
            "parts": ["AKIAIOSF", "ODNN7EXAMPLE", "OK"],
            "geo": {"region": "ASIA", "code": "ABCD"},
        });
        assert_eq!(R.value(&mut v), 6);
        assert_eq!(
            v,
            json!({
                "card": "[REDACTED:card]",
                "amount": 4111111111111112u64,
                "ts": 1714566896789u64,
                "span_id": 5161988305477887u64,
                "paid": "[REDACTED:card]",
                "id_start": "[REDACTED:aws_key]",
                "id_rest": "[REDACTED:aws_key]",
                "parts": ["[REDACTED:aws_key]", "[REDACTED:aws_key]", "OK"],
                "geo": {"region": "ASIA", "code": "ABCD"},
            })
        );
        assert_eq!(R.value(&mut v), 0, "a second pass changes nothing");
    }

    #[test]
    fn json_scalars_and_deep_nesting() {
        let mut v = json!("a@b.io");
        assert_eq!(R.value(&mut v), 1);
        assert_eq!(v, json!("[REDACTED:email]"));
        let mut v = json!(42);
        assert_eq!(R.value(&mut v), 0);
        // Deeper than any parser allows: no recursion, no overflow.
        let mut deep = json!("a@b.io");
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(R.value(&mut deep), 1);
        // Dropping so deep a value recurses in serde_json itself; unwind
        // it here instead.
        while let Value::Array(mut items) = deep {
            deep = items.pop().unwrap_or(Value::Null);
        }
        assert_eq!(deep, json!("[REDACTED:email]"));
    }

    #[test]
    fn one_megabyte_lines_finish() {
        const MB: usize = 1 << 20;
        let mixed = "password=x a@b.io Bearer abcdefgh1 ghp_abcdefghijklmnopqrstu ".repeat(MB / 60);
        for line in [
            "a".repeat(MB),
            "é".repeat(MB / 2),
            format!("{}@{}", "a".repeat(MB / 2), "b.".repeat(MB / 4)),
            "password=".repeat(MB / 9),
            "eyJ".repeat(MB / 3),
            "Bearer ".repeat(MB / 7),
            "http://a:".repeat(MB / 9),
            format!(
                "-----BEGIN PRIVATE KEY-----{}",
                "-----BEGIN ".repeat(MB / 11)
            ),
            mixed.clone(),
        ] {
            let (out, n) = R.text(&line);
            assert!(out.len() <= 5 * line.len() + 32);
            let _ = n;
        }
        assert_eq!(R.text(&mixed).1, 4 * (MB / 60));
    }

    /// Secrets that must not reach the model: (the placeholder's kind, a
    /// log line, the part of it that must not come out).
    const MUST_REDACT: &[(&str, &str, &str)] = &[
        (
            "password",
            "connect failed db_pass=Tr0ub4dor3x host=db1",
            "Tr0ub4dor3x",
        ),
        (
            "password",
            r#"payload {"user":"bob","pass":"hunter2-secret"}"#,
            "hunter2-secret",
        ),
        (
            "password",
            "passphrase: correct horse battery staple",
            "horse battery staple",
        ),
        ("password", "smtpPass: Xk2!mailer", "Xk2!mailer"),
        ("password", r#"password: "two words""#, "two words"),
        (
            "password",
            r#"body "{\"password\":\"s3cr3t!\"}""#,
            "s3cr3t!",
        ),
        (
            "aws_secret",
            "uploading with wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY now",
            "wJalrXUtnFEMI",
        ),
        (
            "aws_secret",
            "rotated, the new one is wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
            "wJalrXUtnFEMI",
        ),
        (
            "aws_secret",
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI",
        ),
        (
            "aws_key",
            "using key AKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLE",
        ),
        ("aws_key", "key id AKIA IOSF ODNN 7EXA MPLE", "IOSF ODNN"),
        (
            "aws_key",
            r#"id = "AKIA" + "IOSFODNN7EXAMPLE""#,
            "IOSFODNN7EXAMPLE",
        ),
        (
            "aws_key",
            "key_prefix=AKIA key_rest=IOSFODNN7EXAMPLE",
            "IOSFODNN7EXAMPLE",
        ),
        (
            "stripe_key",
            "charge with sk_live_deAOzLb8oYfZ3VoxLDOXLUPa failed",
            "deAOzLb8oYfZ3VoxLDOXLUPa",
        ),
        (
            "openai_key",
            "OPENAI 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",
            "9JKzjiGQGVZxFE",
        ),
        (
            "anthropic_key",
            "sk-ant-api03-g4gCJzm4UQAYyubSEzPW8RiFjgqg_l5nrN_QWRi-SU9M_yCECSnNLvZ_I1Hdxo7fh5EHmotFM3HJfwh6pkFRtocDdG-RaAA",
            "g4gCJzm4UQAY",
        ),
        (
            "openrouter_key",
            "router 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",
            "d20b93354509",
        ),
        (
            "google_key",
            "maps AIzatZfMbv4tXc_gGKJ76PvlyP3PxVs3mOhhtUD ok",
            "tZfMbv4tXc",
        ),
        (
            "google_token",
            "oauth ya29.7PHYaL2q5LbGF51v_JXCwnaNq9a-MySlsPoZikLUDbEPgO84xVMlkzGdRL1B",
            "7PHYaL2q5L",
        ),
        (
            "card",
            "charged card 4111 1111 1111 1111 ok",
            "4111 1111 1111 1111",
        ),
        ("card", "pan=5555555555554444", "5555555555554444"),
        ("card", "amex 3782-822463-10005", "822463"),
        (
            "github_token",
            "ghp_FLG2E7P8ahmIeMr5zFxHpWM7eeje3tZCOx4N",
            "FLG2E7P8ahmI",
        ),
        (
            "gitlab_token",
            "glpat-omt83_IkCI1ORy-lrbAg",
            "omt83_IkCI1ORy",
        ),
        (
            "slack_token",
            "slack xoxb-939538910737-2956106257897-RqSyQ0WShNIocasIzfAlwIUD",
            "RqSyQ0WShNIo",
        ),
        (
            "webhook",
            "notify https://hooks.slack.com/services/T00000000/B00000000/dmCiJwq2auA7kMedPZBHzQ9I",
            "dmCiJwq2auA7",
        ),
        (
            "webhook",
            "https://discord.com/api/webhooks/123456789012345678/imekpJNYwxXWvVh_3uHU4q75BF49z1uP1TIAZN-j7Nk8cjRSVDQEShi4fLsajbqAF1NV",
            "imekpJNYwxXW",
        ),
        (
            "sendgrid_key",
            "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",
            "Jyqq_yb-4_yk",
        ),
        (
            "twilio_key",
            "twilio SKe8df11f0f28558fefcd3e7f0d61ca289",
            "e8df11f0f285",
        ),
        (
            "npm_token",
            "//registry.npmjs.org/:_authToken=npm_MF886xp2AV4g2wn4nykeEdoZdVvFYddC69jh",
            "MF886xp2AV4g",
        ),
        (
            "pypi_token",
            "pypi-AgEIcHlwaS5vcmc_2eoF2SX84aYpLXb7KzDPo_nQjp176yvriCarCJtyRkmiGsjmxxAMgRjuncx",
            "2eoF2SX84aYp",
        ),
        (
            "secret",
            "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=HyXs2mT/Az73b4RkZwF0963ggOHzIDnfWLR2Sez2apPawwP4Kk3yjMP4jqDmrO0fBJ8xUAKYtfi9850Wf7+PPA==;EndpointSuffix=core.windows.net",
            "HyXs2mT",
        ),
        (
            "secret",
            "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=jrWuuVjJ0RY7Aai/9rLm8XqTH5Luzydb5nvt0xUypH0=",
            "jrWuuVjJ0RY7",
        ),
        (
            "azure_secret",
            "client secret 2AC8Q~6T3pm2Xbr0ahPJ7Q_CuNb-1DXLbAPjIZX~ rotated",
            "6T3pm2Xbr0ah",
        ),
        (
            "huggingface_token",
            "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",
            "ocsbhXduOsZy",
        ),
        (
            "vault_token",
            "vault hvs.qxo_xiTQb4Ji5A4ENF5FFrD7uqp3F3uV_sbbdNju_XyLyNMGoYOA76mvWE6afv9ZZcaet3AODCAvwmCieR9p97KEtt",
            "qxo_xiTQb4Ji",
        ),
        (
            "digitalocean_token",
            "dop_v1_1ddd6764f72b69d26f2cda3fd5c667a87bf51b5ad3e14e99dd029b371b490eff",
            "1ddd6764f72b",
        ),
        (
            "shopify_token",
            "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",
            "215d4e627110",
        ),
        (
            "grafana_token",
            "glsa_Zfw3YFPIUTOav7IaLpyWnxZVUMq9dYk7_b4692732",
            "Zfw3YFPIUTOa",
        ),
        (
            "sentry_token",
            "sntrys_5gniual9ostFYK6kOiXU0hgVzu9KRDJaZoRR59fv2xGINijcSZ0MVaF0p0We",
            "5gniual9ostF",
        ),
        (
            "telegram_token",
            "POST https://api.telegram.org/bot123456789:AA6X6yu4s5Ciw2-rIl6s6Lm5VRxj7g50uuR/sendMessage",
            "AA6X6yu4s5Ci",
        ),
        (
            "flyio_token",
            "FLY_API_TOKEN fo1_rXxxrEoSa7LZMmBqgs53BrogvUSSkzX8wL5s7ngTgE6",
            "rXxxrEoSa7LZ",
        ),
        (
            "age_key",
            "AGE-SECRET-KEY-1XNJQLF36U020VUUYMYR5P1U4AQJ0O9FLJZJPAPKI4N9B1UOUTMHRHDJZ6F",
            "XNJQLF36U020",
        ),
        (
            "doppler_token",
            "dp.pt.VoZMtH1k9V0yKhA2Nr4qMRxTIC1BKc2ExBWEpFCcguZ",
            "VoZMtH1k9V0y",
        ),
        (
            "linear_key",
            "lin_api_s97nIXEEBFRDkSNyw9voVm8gyjr6SOUzsxAKS9OJ",
            "s97nIXEEBFRD",
        ),
        (
            "groq_key",
            "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",
            "MJDo9UcbPpsc",
        ),
        (
            "jwt",
            "id_token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "dozjgNryP4J3",
        ),
        (
            "bearer",
            "Authorization: Bearer 9f8Kq2LmZ7xR4vT1wE.x",
            "9f8Kq2LmZ7xR",
        ),
        (
            "credentials",
            "Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "dXNlcjpwYXNz",
        ),
        (
            "credentials",
            "postgres://app:pa55w0rd@db:5432/app",
            "pa55w0rd",
        ),
        (
            "credentials",
            "dsn root:s3cr3tpw@tcp(db:3306)/app",
            "s3cr3tpw",
        ),
        (
            "private_key",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA7",
        ),
        ("email", "invite sent to bob@example.com", "bob@example.com"),
        ("secret", "client_secret=Vx7pQ2mZ9kL3", "Vx7pQ2mZ9kL3"),
        ("secret", "X-Api-Key: k-123-abc", "k-123-abc"),
        ("secret", "Cookie: session=abc123xyz", "abc123xyz"),
        ("secret", "session_id=9b2c4e6f8a", "9b2c4e6f8a"),
        ("secret", "signing_key=whk_3fa9", "whk_3fa9"),
        (
            "secret",
            r#"note {\"token\":\"t0k3n-v4lue\"}"#,
            "t0k3n-v4lue",
        ),
        (
            "secret",
            "shared secret UX5ocKdj6g9qKZhud2rp configured",
            "UX5ocKdj6g9qKZhud2rp",
        ),
        (
            "secret",
            "the api key is 9f8Kq2LmZ7xR4vT1wE",
            "9f8Kq2LmZ7xR4vT1wE",
        ),
        (
            "secret",
            "GET /f.png?X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=d2dc40f8a7084763e88847d325be2b1c3db406783ee21ead3e5c0a2ca2d4beb8",
            "d2dc40f8a708",
        ),
    ];

    /// Lines that must come out as they went in.
    const INNOCENT: &[&str] = &[
        "request 550e8400-e29b-41d4-a716-446655440000 done",
        "user_id=550e8400-e29b-41d4-a716-446655440000 tenant=acme",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "traceparent: 00-9a6483d1c467266d065db3fc3c29d361-5161988305477887-01",
        "span_id=5161988305477887 parent_id=00f067aa0ba902b7",
        "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
        "commit 5f3a9c2e1b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a by ci",
        "deployed 5f3a9c2 to production",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "pulled nginx@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "at 2024-05-01T12:34:56.789Z the job started",
        "Date: Wed, 01 May 2024 12:34:56 GMT",
        "ts=1714566896789 epoch=1714566896 ns=1714566896789123456",
        "version 1.2.3-beta.4+build.567",
        "rustc 1.79.0 (129f3b996 2024-06-10)",
        "client 10.0.12.34:51234 connected",
        "listening on [2001:db8::ff00:42:8329]:443",
        "processed 1234567 rows in 3.14159 s",
        "bytes=5368709120 free=1073741824 ratio=0.30000000000000004",
        "took 1h2m3.456s latency_ms=123.45 p99=250ms",
        "pod/api-7d9f8c6b5-x2x9k restarted 3 times",
        "kube-system/coredns-5d78c9869d-abcde Ready",
        "GET https://example.com/api/v1/users?page=2&limit=50 200",
        "probe http://localhost:8080/healthz ok",
        "GET /api/users/42 200 12ms",
        "max_tokens=4096 prompt_tokens: 12 tokens: 512 token_count=3",
        "cache_key=user:42:profile hit",
        "idempotency_key=550e8400-e29b-41d4-a716-446655440000 replayed",
        "primary_key=id partitionKey=tenant-7",
        "Bearer authentication failed",
        "password reset email sent, the secret sauce is love",
        "task_test_integration_suite passed",
        "disk-proj-alpha-backup-volume-01 mounted",
        "bypass=true compass=north monkey=banana",
        "at com.example.service.UserServiceImpl.findById(UserServiceImpl.java:42)",
        "AbstractSingletonProxyFactoryBean2Helper initialized",
        "sms to +14155552671 queued",
        "order 12345678 total 99.99 USD, ref 4111111111111112",
        "data=SGVsbG8= len=5",
        "mac 00:1A:2B:3C:4D:5E color #ff00aa",
        "key_id=abc123 key=user:42 auth=basic",
        "session_count=5 sessions=3 secrets: 3 passwords=none",
        "GC pause 12ms heap 512MiB -> 256MiB",
        "ASIA region ap-southeast-2 has 3 zones",
        "checksum=9f86d081884c7d659a2feaa0c55ad015 crc32=0x1c291ca3",
        "user alice logged in from 203.0.113.7",
        "SELECT * FROM users WHERE id = 42",
        "ip-10-0-1-23.eu-west-1.compute.internal joined",
        "s3://my-bucket/logs/2024/05/01/part-00001.gz uploaded",
        "retrying in 250ms (attempt 3/5)",
        "{\"level\":\"info\",\"msg\":\"ok\",\"status\":200}",
        "café ✓ 日本語 — 🎉",
    ];

    #[test]
    fn corpus_of_secrets_and_innocent_lines() {
        assert!(MUST_REDACT.len() >= 40 && INNOCENT.len() >= 40);
        let mut redacted = 0;
        let mut misses = Vec::new();
        for &(kind, line, secret) in MUST_REDACT {
            let (out, n) = r_stable(line);
            if !out.contains(secret) && n >= 1 && out.contains(&format!("[REDACTED:{kind}]")) {
                redacted += 1;
            } else {
                misses.push(format!("{kind}: {line:?} -> {out:?}"));
            }
        }
        let mut changed = Vec::new();
        for &line in INNOCENT {
            let (out, n) = R.text(line);
            if n != 0 || out != line {
                changed.push(format!("{line:?} -> {out:?}"));
            }
        }
        println!(
            "redaction corpus: {redacted}/{} secrets redacted ({:.0} %), {}/{} innocent lines changed ({:.0} %)",
            MUST_REDACT.len(),
            100.0 * redacted as f64 / MUST_REDACT.len() as f64,
            changed.len(),
            INNOCENT.len(),
            100.0 * changed.len() as f64 / INNOCENT.len() as f64,
        );
        assert!(
            misses.is_empty(),
            "secrets that got through:\n{}",
            misses.join("\n")
        );
        assert!(
            changed.is_empty(),
            "innocent lines changed:\n{}",
            changed.join("\n")
        );
    }

    /// One secret of each kind from random parts.
    fn secret(kind: usize, body: &str) -> String {
        match kind {
            0 => format!("AKIA{}", body[..16].to_ascii_uppercase()),
            1 => format!("ghp_{}", &body[..30]),
            2 => format!("github_pat_{}", &body[..40]),
            3 => format!("glpat-{}", &body[..20]),
            4 => format!("xoxb-{}-{}", &body[..12], &body[12..30]),
            5 => format!("{}.{}@example.com", &body[..6], &body[6..9]),
            6 => format!("eyJ{}.eyJ{}.{}", &body[..10], &body[10..20], &body[20..]),
            7 => format!("Bearer {}", &body[..24]),
            8 => format!("password={}", &body[..12]),
            9 => format!("\"api_key\": \"{}\"", &body[..12]),
            10 => format!("aws_secret_access_key={}", &body[..40]),
            11 => format!("https://u:{}@host", &body[..10]),
            12 => format!("sk_live_{}", &body[..24]),
            13 => format!("sk-proj-{}", &body[..40]),
            14 => format!("AIza{}", &body[..35]),
            15 => format!("db_pass={}", &body[..12]),
            16 => format!("\"pass\": \"{}\"", &body[..12]),
            17 => format!("npm_{}", &body[..36]),
            _ => format!("-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----"),
        }
    }

    /// The part of a secret that must never come out.
    fn core(kind: usize, secret: &str, body: &str) -> String {
        match kind {
            7..=11 | 15 | 16 | 18 => body[..10].to_owned(),
            _ => secret.to_owned(),
        }
    }

    proptest! {
        #[test]
        fn no_secret_survives(
            before in "\\PC{0,40}",
            after in "\\PC{0,40}",
            left in prop::sample::select(vec![" ", "\n", "\t", " (", "\"", "=", ", "]),
            right in prop::sample::select(vec![" ", "\n", "\t", ") ", "\"", ", ", ". "]),
            kind in 0usize..19,
            body in "[A-Za-z0-9]{48}",
        ) {
            let secret = secret(kind, &body);
            let core = core(kind, &secret, &body);
            let text = format!("{before}{left}{secret}{right}{after}");
            let (out, n) = r(&text);
            prop_assert!(!out.contains(&core), "{text:?} -> {out:?}");
            prop_assert!(n >= 1);
            prop_assert_eq!(r(&out), (out.clone(), 0));
        }

        #[test]
        fn redacting_is_idempotent_on_any_text(
            parts in prop::collection::vec(
                prop_oneof![
                    "\\PC{0,12}",
                    "[ :=\"'@./\\\\&,;\\[\\]_\n-]{1,3}",
                    prop::sample::select(vec![
                        "password", "token", "Bearer ", "Basic ", "AKIA", "ghp_", "glpat-",
                        "xoxb-", "eyJ", "@", "://", "-----BEGIN PRIVATE KEY-----",
                        "[REDACTED:secret]", "[REDACTED:email]", "[REDACTED:credentials]",
                        "[REDACTED:github_token]", "-----END PRIVATE KEY-----", "http",
                        "aws_secret_access_key", "x-api-key", "\\\"", "é", "日本",
                        "sk_live_", "sk-proj-", "AIza", "db_pass=", "pass: ", "passphrase: ",
                        "key=", "secret ", " is ", "4111 1111 1111 1111", "AKIA ", "IOSFODNN7EXAMPLE",
                        "cache_key=", "task", "[REDACTED:card]", "@tcp(", "hooks.slack.com/services/",
                    ]).prop_map(str::to_owned),
                    "[A-Za-z0-9]{8,24}",
                ],
                0..16,
            ),
        ) {
            let text = parts.concat();
            let (once, _) = r(&text);
            prop_assert_eq!(r(&once), (once.clone(), 0), "{:?}", text);
        }
    }
}
