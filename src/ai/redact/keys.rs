//! Which key names say that their value is a secret: the one judgement
//! behind `key=value`, `key: value` and `"key":"value"` in text and
//! behind object keys in `meta`.
//!
//! Long, unmistakable words count wherever they are in the key
//! (`db_password`, `X-Api-Key`, `refresh-token`, `JSESSIONID`). Short or
//! common ones count only as the key's last word, split at `_`, `-`, `.`
//! and camelCase: `db_pass` and `dbPass` are secrets, `bypass` and
//! `compass` are not; `signing_key` is, `cache_key` and `primary_key` are
//! not; a bare `key` or `auth` is only a hint (a long random value after it
//! is taken, `key=user:42` is not).

/// What a key says about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A secret, whatever it looks like: replaced by this placeholder.
    Secret(&'static str),
    /// Maybe a secret: only a long, random-looking value is taken.
    Hint,
    /// Nothing to say.
    Plain,
}

const PASSWORD: &str = "[REDACTED:password]";
const SECRET: &str = "[REDACTED:secret]";
const AWS_SECRET: &str = "[REDACTED:aws_secret]";

/// Found anywhere in the folded key (lower case, no `-`, `_`, `.`).
const PASSWORD_WORDS: [&str; 4] = ["password", "passwd", "passphrase", "pwd"];
const SECRET_WORDS: [&str; 9] = [
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "privatekey",
    "credential",
    "accesskey",
    "sessionid",
];

/// The word before `key` in keys that name no secret: database, cache,
/// queue and storage keys, and the public half of a key pair.
const PLAIN_KEYS: [&str; 40] = [
    "bucket",
    "cache",
    "cluster",
    "composite",
    "cursor",
    "dedup",
    "dedupe",
    "entity",
    "event",
    "foreign",
    "group",
    "hash",
    "hot",
    "i18n",
    "idempotency",
    "idx",
    "index",
    "item",
    "job",
    "join",
    "label",
    "lock",
    "lookup",
    "map",
    "message",
    "natural",
    "object",
    "partition",
    "primary",
    "pub",
    "public",
    "range",
    "redis",
    "routing",
    "row",
    "s3",
    "schema",
    "sequence",
    "shard",
    "sort",
];

/// What `key` says about its value.
pub fn kind(key: &str) -> KeyKind {
    let folded: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    if folded.contains("awssecret") {
        return KeyKind::Secret(AWS_SECRET);
    }
    if PASSWORD_WORDS.iter().any(|w| folded.contains(w)) {
        return KeyKind::Secret(PASSWORD);
    }
    if SECRET_WORDS.iter().any(|w| folded.contains(w)) {
        return KeyKind::Secret(SECRET);
    }
    let words = words(key);
    let last = words.last().map(String::as_str);
    let before = words.len().checked_sub(2).map(|i| words[i].as_str());
    match (before, last) {
        (_, Some("pass")) => KeyKind::Secret(PASSWORD),
        (_, Some("session" | "creds" | "sig" | "signature")) => KeyKind::Secret(SECRET),
        (Some("session"), Some("id")) => KeyKind::Secret(SECRET),
        (None, Some("key" | "auth")) => KeyKind::Hint,
        (Some(w), Some("key")) if PLAIN_KEYS.contains(&w) => KeyKind::Plain,
        (Some(_), Some("key")) => KeyKind::Secret(SECRET),
        (Some(_), Some("auth")) => KeyKind::Hint,
        _ => KeyKind::Plain,
    }
}

/// The key's words, lower case: split at anything not a letter or digit
/// and where a lower-case letter or digit meets a capital (`dbPass`).
fn words(key: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_by_word() {
        for (key, expected) in [
            ("db_pass", KeyKind::Secret(PASSWORD)),
            ("dbPass", KeyKind::Secret(PASSWORD)),
            ("SMTP-PASS", KeyKind::Secret(PASSWORD)),
            ("pass", KeyKind::Secret(PASSWORD)),
            ("user_password", KeyKind::Secret(PASSWORD)),
            ("passphrase", KeyKind::Secret(PASSWORD)),
            ("PWD", KeyKind::Secret(PASSWORD)),
            ("client_secret", KeyKind::Secret(SECRET)),
            ("access_token", KeyKind::Secret(SECRET)),
            ("X-Api-Key", KeyKind::Secret(SECRET)),
            ("AccountKey", KeyKind::Secret(SECRET)),
            ("SharedAccessKey", KeyKind::Secret(SECRET)),
            ("aws_access_key_id", KeyKind::Secret(SECRET)),
            ("signing_key", KeyKind::Secret(SECRET)),
            ("private_key", KeyKind::Secret(SECRET)),
            ("credentials", KeyKind::Secret(SECRET)),
            ("creds", KeyKind::Secret(SECRET)),
            ("session", KeyKind::Secret(SECRET)),
            ("session_id", KeyKind::Secret(SECRET)),
            ("JSESSIONID", KeyKind::Secret(SECRET)),
            ("set-cookie", KeyKind::Secret(SECRET)),
            ("Authorization", KeyKind::Secret(SECRET)),
            ("sig", KeyKind::Secret(SECRET)),
            ("X-Amz-Signature", KeyKind::Secret(SECRET)),
            ("aws_secret_access_key", KeyKind::Secret(AWS_SECRET)),
            ("key", KeyKind::Hint),
            ("auth", KeyKind::Hint),
            ("x_auth", KeyKind::Hint),
            ("cache_key", KeyKind::Plain),
            ("partitionKey", KeyKind::Plain),
            ("idempotency-key", KeyKind::Plain),
            ("public_key", KeyKind::Plain),
            ("bypass", KeyKind::Plain),
            ("compass", KeyKind::Plain),
            ("monkey", KeyKind::Plain),
            ("oauth", KeyKind::Plain),
            ("key_id", KeyKind::Plain),
            ("session_count", KeyKind::Plain),
            ("author", KeyKind::Plain),
            ("user", KeyKind::Plain),
            ("pw", KeyKind::Plain),
        ] {
            assert_eq!(kind(key), expected, "{key}");
        }
    }

    #[test]
    fn words_split_at_separators_and_camel_case() {
        assert_eq!(words("dbPass"), ["db", "pass"]);
        assert_eq!(words("X-Api-Key"), ["x", "api", "key"]);
        assert_eq!(
            words("spring.datasource.password"),
            ["spring", "datasource", "password"]
        );
        assert_eq!(words("HTTPServer2Key"), ["httpserver2", "key"]);
        assert_eq!(words("__"), Vec::<String>::new());
    }
}
