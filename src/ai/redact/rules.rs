//! The first pass's rules: what each match becomes ([`Rule`]), the
//! table of patterns in the order they win, and their expansion into the
//! patterns `Redactor::new` compiles (the placeholders `PEM`,
//! `VALUE_CHAR` and `CREDENTIAL` filled in, the prefixed key formats
//! put in their place).

use super::prefixed::PREFIXED;

/// What a rule's match becomes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rule {
    PrivateKey,
    Jwt,
    /// `Bearer x`, `Basic x`: the scheme stays, the rest becomes
    /// `[REDACTED:kind]`.
    Scheme(&'static str),
    /// A key, its separator, and a value (see `split_keyed`).
    Keyed,
    /// `scheme://` stays, `user:password` goes.
    Url,
    /// `user:password` goes, `@tcp(` stays.
    Dsn,
    /// All of it becomes `[REDACTED:kind]`.
    Whole(&'static str),
    /// Where [`PREFIXED`] goes in the table.
    Prefixed,
}

/// The first pass's rules. At the same starting point the first listed
/// wins, so the rules that swallow the most come first: a key block,
/// then `Bearer`, then a keyed value (`password://u:p@h` is a value, all
/// of it).
const RULES: &[(Rule, &str)] = &[
    (Rule::PrivateKey, "PEM"),
    (
        Rule::Jwt,
        r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
    ),
    // `Bearer` and `Basic` credentials: see `credential()`.
    (Rule::Scheme("bearer"), r"(?:(?i:bearer)\s+)CREDENTIAL"),
    (Rule::Scheme("credentials"), r"(?:(?i:basic)\s+)CREDENTIAL"),
    // A passphrase is words: unquoted, it runs to the end of the line.
    (
        Rule::Keyed,
        concat!(
            r#"(?:(?i:[a-z0-9_.-]*?pass[ _-]?phrase))\\?["']?[ \t]*[:=][ \t]*"#,
            r#"(?:\\"(?:(?:[^"\\\n]|\\[^"\n])*)"#,
            r#"|"(?:(?:[^"\\\n]|\\[^\n])*)"#,
            r#"|'(?:[^'\n]*)"#,
            r#"|(?:[^\s"'\\][^\r\n"'\\]*))"#,
        ),
    ),
    // key = value, key: "value", "key":"value", \"key\":\"value\" (JSON
    // inside a string), ?key=value&. The key must end at one of these
    // words (so `tokens: 512` and `token_count=3` are no keys); whether
    // it names a secret is `keys::kind`'s to say. A value is a quoted
    // string to its closing quote, or else runs to whitespace, `&`, `,`
    // or `;`; a key block or a `Bearer x` as a value is taken whole, lest
    // the rest of it be left behind.
    (
        Rule::Keyed,
        concat!(
            r#"(?:(?i:[a-z0-9_.-]*?(?:pass(?:word|wd)?|pwd|secret|token|credentials?|creds|key|session(?:[_-]?id)?|cookie|authorization|auth|sig|signature)))\\?["']?[ \t]*[:=][ \t]*"#,
            r#"(?:\\"(?:(?:[^"\\\n]|\\[^"\n])*)"#,
            r#"|"(?:(?:[^"\\\n]|\\[^\n])*)"#,
            r#"|'(?:[^'\n]*)"#,
            r#"|(?:(?:PEM|(?i:bearer|basic)[ \t]+VALUE_CHAR|VALUE_CHAR)VALUE_CHAR*))"#,
        ),
    ),
    // scheme://user:password@host; the user may hold an `@` (an e-mail),
    // and the password runs to the authority's last `@`. Neither may hold
    // `[` or `]` (RFC 3986 has them percent-encoded there), so a
    // placeholder is never taken for a user.
    (
        Rule::Url,
        r#"(?:[A-Za-z][A-Za-z0-9+.-]*://)[^\s:/?#\[\]"'<>\\]*:[^\s/?#\[\]"'<>\\]*@"#,
    ),
    // Go's MySQL DSN: user:password@tcp(host:port)/db.
    (
        Rule::Dsn,
        r#"[A-Za-z0-9_.-]+:[^\s@/:\[\]"'<>\\]+(?:@(?:tcp|udp|unix)\()"#,
    ),
    // Webhook URLs whose path is the credential.
    (
        Rule::Whole("webhook"),
        r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,}|discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]{20,}|webhook\.office\.com/webhookb2/[A-Za-z0-9@/_-]{20,}",
    ),
    // Wherever it is, even inside a longer run of capitals: a few false
    // positives in base64 blobs, and no context to depend on.
    (
        Rule::Whole("aws_key"),
        r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
    ),
    // The same, cut in two: `AKIA IOSF ODNN 7EXA MPLE`, `"AKIA" + "…"`.
    (
        Rule::Whole("aws_key"),
        r#"(?:AKIA|ASIA|ABIA|ACCA)(?:[ _-][A-Z0-9]{4}){4}|(?:AKIA|ASIA|ABIA|ACCA)["']?[ \t]{0,3}[+,:./_-]?[ \t]{0,3}["']?[A-Z0-9]{16}"#,
    ),
    (Rule::Prefixed, ""),
    // Letters and digits of any script: `josé@exämple.com` is an address.
    (
        Rule::Whole("email"),
        r"[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}",
    ),
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

/// The rules with their patterns complete, in the order they win.
pub(super) fn expanded() -> Vec<(Rule, String)> {
    let mut rules: Vec<(Rule, String)> = Vec::new();
    for (rule, pattern) in RULES {
        match rule {
            Rule::Prefixed => rules.extend(
                PREFIXED
                    .iter()
                    .map(|(kind, pattern)| (Rule::Whole(kind), format!("(?:{pattern})"))),
            ),
            _ => rules.push((
                *rule,
                pattern
                    .replace("PEM", PEM)
                    .replace("VALUE_CHAR", r#"(?:[^\s&,;"'\\]|\\[^\s"'])"#)
                    .replace("CREDENTIAL", &credential()),
            )),
        }
    }
    rules
}
