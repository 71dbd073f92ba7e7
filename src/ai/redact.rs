//! Redaction: secrets and personal data out of every string a chat sends
//! to an outside model, replaced by typed placeholders
//! (`[REDACTED:email]`), so the model can still say "an e-mail address"
//! or "a GitHub token" without ever seeing one.
//!
//! Publishers write the log lines, so the input is hostile. All the rules
//! are one `regex::Regex` (no look-around, no backtracking engine), run in
//! a single left-to-right pass: time is linear in the input, and the
//! output is at most five times the input (the shortest match, `pwd=x`
//! or `a://:@`, becomes at most 27 bytes).
//! One pass also means a placeholder is never matched again by a later
//! rule; where a rule's pattern could still see one (a `token=` whose
//! value is already `[REDACTED:secret]`), the match is kept as it is, so
//! redacting twice changes nothing and counts nothing.
//!
//! Choices that trade a little ordinary text for safety, all deliberate:
//! `token: 512` and `pwd=/home/x` are redacted (the key says secret; a
//! plural `tokens: 512` is not, nor `max_tokens=512`); a quoted value is
//! redacted up to its closing quote, spaces and all; an unterminated
//! private key block is redacted to the end of the text. `Bearer` and
//! `Basic` followed by a plain word ("Bearer authentication") are left,
//! since a credential is never a dictionary word; the bearer alphabet has
//! `_` (base64url), which RFC 6750 left out.

use std::borrow::Cow;

use regex::{Captures, Regex};
use serde_json::Value;

/// The rules, compiled once into one regex; cheap to share between
/// threads (`Send + Sync`), so hold one and pass references around.
pub struct Redactor {
    re: Regex,
}

/// The same as [`Redactor::new`].
impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

/// Each rule is one alternative, with named groups that say which one
/// matched. At the same starting point the first listed wins, so the
/// rules that swallow the most come first: a key block, then `Bearer`,
/// then a keyed value (`password://u:p@h` is a value, all of it).
///
/// No rule looks at what comes before it (no `\b`): after a replacement
/// the text before a match is a placeholder's `]`, not what it was, and a
/// rule that cared could match on the second pass where it did not on the
/// first. Nor can a rule start inside a placeholder, or run on into one
/// except a keyed value (whose placeholder it then keeps): that is what
/// makes redacting twice change nothing.
const RULES: &[&str] = &[
    "(?P<pk>PEM)",
    r"(?P<jwt>eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)",
    // `Bearer` and `Basic` credentials: see `credential()`.
    r"(?P<bearer>(?i:bearer)\s+)CREDENTIAL",
    r"(?P<basic>(?i:basic)\s+)CREDENTIAL",
    // key = value, key: "value", "key":"value", \"key\":\"value\" (JSON
    // inside a string), ?key=value&. The key may have a prefix
    // (db_password, X-Api-Key, access_token) but must end at the keyword,
    // so `tokens: 512` and `token_count=3` are not keys. A value is a
    // quoted string to its closing quote, or else runs to whitespace,
    // `&`, `,` or `;`; a key block or a `Bearer x` as a value is taken
    // whole, lest the rest of it be left behind.
    concat!(
        r#"(?P<kv>(?i:[a-z0-9_-]*?(?P<kv_word>password|passwd|pwd|aws_?secret(?:_?access)?_?key|secret|token|api[_-]?key))\\?["']?[ \t]*[:=][ \t]*)"#,
        r#"(?:\\"(?P<kv_v1>(?:[^"\\\n]|\\[^"\n])*)"#,
        r#"|"(?P<kv_v2>(?:[^"\\\n]|\\[^\n])*)"#,
        r#"|'(?P<kv_v3>[^'\n]*)"#,
        r#"|(?P<kv_v4>(?:PEM|(?i:bearer|basic)[ \t]+VALUE_CHAR|VALUE_CHAR)VALUE_CHAR*))"#,
    ),
    // scheme://user:password@host; the user may hold an `@` (an e-mail),
    // and the password runs to the authority's last `@`. Neither may hold
    // `[` or `]` (RFC 3986 has them percent-encoded there), so a
    // placeholder is never taken for a user.
    r#"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://)[^\s:/?#\[\]"'<>\\]*:[^\s/?#\[\]"'<>\\]*@"#,
    // Wherever it is, even inside a longer run of capitals: a few false
    // positives in base64 blobs, and no context to depend on.
    r"(?P<aws_key>(?:AKIA|ASIA)[A-Z0-9]{16})",
    r"(?P<github>gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
    r"(?P<gitlab>glpat-[A-Za-z0-9_-]{20,})",
    r"(?P<slack>(?:xox[abprs]|xapp)-[A-Za-z0-9-]{10,})",
    // Letters and digits of any script: `josé@exämple.com` is an address.
    r"(?P<email>[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,})",
];

/// A PEM private key, to its END line, or to the end of the text when it
/// has none (a key cut by a line limit is still a key).
const PEM: &str = r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-----(?s:.)*?(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-----|\z)";

/// What may follow `Bearer` or `Basic`: eight or more characters of
/// RFC 6750's b64token alphabet (and `_`, base64url's, that the RFC left
/// out), but not a plain word ("Bearer authentication", "Basic Auth"):
/// a word is letters whose second and later ones are all lower case.
///
/// Why in the pattern and not a check after the match: a match that is
/// then kept would still have been consumed, hiding from the other rules
/// any secret that starts inside it (`Bearer password: hunter2`). So the
/// pattern spells out "not a word, length ≥ 8" by where the first
/// non-lower-case character after the first one sits.
fn credential() -> String {
    const ANY: &str = "[A-Za-z0-9._~+/=_-]";
    const NOT_LOWER: &str = "[A-Z0-9._~+/=_-]";
    // Starts with a digit or a symbol: never a word.
    let mut alternatives = vec![format!("[0-9._~+/=_-]{ANY}{{7,}}")];
    // Starts with a letter: the first non-lower-case one at position p.
    alternatives.push(format!("[A-Za-z][a-z]{{6,}}{NOT_LOWER}{ANY}*"));
    for p in 1..=6 {
        alternatives.push(format!(
            "[A-Za-z][a-z]{{{}}}{NOT_LOWER}{ANY}{{{},}}",
            p - 1,
            7 - p
        ));
    }
    format!("(?:{})", alternatives.join("|"))
}

/// Object keys whose values are secrets, once lower-cased and stripped of
/// `-` and `_` (`X-Api-Key` → `xapikey`). A key containing any of them
/// loses its whole value. The `pass…` ones and `pwd` give
/// `[REDACTED:password]`, the others `[REDACTED:secret]`.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "privatekey",
    "credentials",
];

impl Redactor {
    /// Compiles the rules (a few milliseconds): do it once, at start.
    pub fn new() -> Redactor {
        // The pattern is a literal, compiled by every test: it cannot
        // fail at run time.
        let pattern = RULES
            .join("|")
            .replace("PEM", PEM)
            .replace("VALUE_CHAR", r#"(?:[^\s&,;"'\\]|\\[^\s"'])"#)
            .replace("CREDENTIAL", &credential());
        let re = Regex::new(&pattern).expect("the built-in redaction pattern compiles");
        Redactor { re }
    }

    /// Replaces every secret or personal datum in `text` by a typed
    /// placeholder; returns the new text (borrowed when nothing was
    /// replaced) and how many were replaced.
    pub fn text<'a>(&self, text: &'a str) -> (Cow<'a, str>, usize) {
        let mut count = 0;
        let out = self.re.replace_all(text, |caps: &Captures<'_>| {
            match replacement(self, text, caps) {
                Some((r, n)) => {
                    count += n;
                    Cow::Owned(r)
                }
                // Kept as it was: `text` outlives the captures, so this
                // costs no copy of the match.
                None => Cow::Borrowed(caps.get(0).map_or("", |m| &text[m.range()])),
            }
        });
        if count == 0 {
            // replace_all copies when it matched, even if every match was
            // kept; the caller gets the original back instead.
            (Cow::Borrowed(text), 0)
        } else {
            (out, count)
        }
    }

    /// Redacts every string inside a JSON value in place (object values,
    /// array items, nested), and replaces the whole value of any object
    /// key that names a secret (see `SECRET_KEYS`: `db_password`,
    /// `X-Api-Key`, `access_token`) by `[REDACTED:secret]`, or
    /// `[REDACTED:password]` for password-ish keys. Object keys
    /// themselves are left alone. Returns how many values or matches were
    /// replaced.
    ///
    /// Under a secret key, `null` and booleans are kept (they hold no
    /// secret, and `"password_set": true` is useful), and so is a number
    /// under a plural `tokens` key (`"max_tokens": 512` is a count).
    pub fn value(&self, value: &mut Value) -> usize {
        let mut count = 0;
        // A loop, not recursion: a value built by hand (not parsed, so not
        // depth-limited by serde_json) cannot overflow the stack.
        let mut stack: Vec<&mut Value> = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => {
                    let (new, n) = self.text(s);
                    if let Cow::Owned(new) = new {
                        *s = new;
                    }
                    count += n;
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    for (key, item) in map.iter_mut() {
                        match secret_key(key) {
                            Some(placeholder) if hides_something(key, item) => {
                                *item = Value::String(placeholder.to_owned());
                                count += 1;
                            }
                            Some(_) => {}
                            None => stack.push(item),
                        }
                    }
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
        count
    }
}

/// What a match becomes and how many secrets that hides, or `None` to
/// keep it: a keyed value that is empty or a placeholder already (spans
/// in which no other secret can start, so keeping them consumed hides
/// nothing).
fn replacement(redactor: &Redactor, text: &str, caps: &Captures<'_>) -> Option<(String, usize)> {
    let whole = caps.get(0)?;
    let group = |name: &str| caps.name(name);
    let one = |placeholder: &str| Some((placeholder.to_owned(), 1));
    if group("pk").is_some() {
        return one("[REDACTED:private_key]");
    }
    if let Some(scheme) = group("url") {
        return Some((format!("{}[REDACTED:credentials]@", scheme.as_str()), 1));
    }
    if group("jwt").is_some() {
        return one("[REDACTED:jwt]");
    }
    if let Some(word) = group("bearer") {
        return Some((format!("{}[REDACTED:bearer]", word.as_str()), 1));
    }
    if let Some(word) = group("basic") {
        return Some((format!("{}[REDACTED:credentials]", word.as_str()), 1));
    }
    if let Some(word) = group("kv_word") {
        let v = ["kv_v1", "kv_v2", "kv_v3", "kv_v4"]
            .into_iter()
            .find_map(&group)?;
        if v.as_str().is_empty() || is_placeholder(v.as_str()) {
            return None;
        }
        let word = word.as_str().to_ascii_lowercase();
        let placeholder = if word.starts_with("aws") {
            "[REDACTED:aws_secret]"
        } else if word.starts_with('p') {
            "[REDACTED:password]"
        } else {
            "[REDACTED:secret]"
        };
        // The key, separator and opening quote stay (the closing quote is
        // not in the match). The key's prefix can be anything of
        // [A-Za-z0-9_-], a token too (`ghp_…_token=x`): redact it as well.
        // It holds one `:` or `=`, at its end, so it cannot match a keyed
        // value again: one level deep.
        let (key, n) = redactor.text(&text[whole.start()..v.start()]);
        return Some((format!("{key}{placeholder}"), n + 1));
    }
    [
        ("aws_key", "[REDACTED:aws_key]"),
        ("github", "[REDACTED:github_token]"),
        ("gitlab", "[REDACTED:gitlab_token]"),
        ("slack", "[REDACTED:slack_token]"),
        ("email", "[REDACTED:email]"),
    ]
    .into_iter()
    .find_map(|(name, placeholder)| group(name).and_then(|_| one(placeholder)))
}

/// `[REDACTED:kind]`, as this module writes them.
fn is_placeholder(s: &str) -> bool {
    s.strip_prefix("[REDACTED:")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|kind| {
            !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
}

/// The placeholder for the value of a key that names a secret.
fn secret_key(key: &str) -> Option<&'static str> {
    let folded = fold_key(key);
    let word = SECRET_KEYS.iter().find(|w| folded.contains(**w))?;
    Some(if word.starts_with('p') && *word != "privatekey" {
        "[REDACTED:password]"
    } else {
        "[REDACTED:secret]"
    })
}

/// Lower-cased, without `-` and `_`: `X-Api-Key` → `xapikey`.
fn fold_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether the value under a secret key may hold a secret (see
/// [`Redactor::value`] for what is kept).
fn hides_something(key: &str, value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) => false,
        Value::String(s) => !is_placeholder(s),
        Value::Number(_) => !fold_key(key).contains("tokens"),
        Value::Array(_) | Value::Object(_) => true,
    }
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
                "?id_token=[REDACTED:secret]&x=1",
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
                "secret=[REDACTED:secret] ok",
                1,
            ),
            (
                "token: Bearer abc123def, next",
                "token: [REDACTED:secret], next",
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
        for key in [
            "password",
            "Passwd",
            "PWD",
            "user_password",
            "passphrase",
            "secret",
            "client_secret",
            "token",
            "access_token",
            "refresh-token",
            "api_key",
            "APIKEY",
            "x-api-key",
            "authorization",
            "Cookie",
            "set-cookie",
            "private_key",
            "credentials",
        ] {
            let mut v = json!({ key: "plain" });
            assert_eq!(R.value(&mut v), 1, "{key}");
            let expected = if fold_key(key).contains("pass") || fold_key(key) == "pwd" {
                "[REDACTED:password]"
            } else {
                "[REDACTED:secret]"
            };
            assert_eq!(v[key], expected, "{key}");
        }
        for key in ["user", "author", "tokens_note", "pw", "key"] {
            let mut v = json!({ key: "plain" });
            let n = R.value(&mut v);
            assert_eq!(n, usize::from(key == "tokens_note"), "{key}");
        }
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
            _ => format!("-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----"),
        }
    }

    /// The part of a secret that must never come out.
    fn core(kind: usize, secret: &str, body: &str) -> String {
        match kind {
            7..=12 => body[..10].to_owned(),
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
            kind in 0usize..13,
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
