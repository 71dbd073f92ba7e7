//! The second pass: secrets that have no fixed shape a regex could name,
//! found by looking at whole tokens and what stands next to them.
//!
//! - **Card numbers** ([`cards`]): 13 to 19 digits, whole or in the groups cards are
//!   printed in (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4, one separator), with a
//!   card network's prefix and a valid Luhn check digit; not when joined
//!   by a `-` to more digits (a dashed id) or right after a key that
//!   names an id (`span_id=`, `"requestId":`).
//! - **A bare AWS secret access key**: a token of exactly 40 characters of
//!   base64 (`A-Z a-z 0-9 + /`), with capitals, small letters and digits,
//!   at most four `/` and four `+`, and the entropy of random data (at
//!   least 4.3 bits a character: 99.7 % of real keys; a git SHA has no
//!   capitals, a path too many `/`, a CamelCase name too little entropy).
//! - **A random token next to a secret-ish word**: 16 or more characters,
//!   letters and digits, at least 3 bits of entropy a character, right after
//!   a key that names a secret or hints at one (`secret`, `api key`,
//!   `key=`, `auth`), separated by spaces, `:`, `=`, quotes or `is`.
//! - **An AWS key id in two parts**: `AKIA` (or its start) as a token, and
//!   within 48 bytes a token of capitals and digits that completes it.
//! - **Key formats whose prefix can end a longer word** ([`BOUNDED`]:
//!   `sk_live_` is not in `task_live_…`, nor `hf_` in `pdf_…`): matched
//!   only where a word starts inside a token, so no rule of the first
//!   pass has to look behind its match. Also Mailchimp keys, Azure AD
//!   client secrets and Telegram bot tokens, whose shapes start with
//!   digits or any letter and would cost the first pass's automaton
//!   dearly.
//!
//! It runs on the first pass's output, whose placeholders are never a
//! token (`[`, `:` and `]` are no token characters), and it looks at most
//! 64 bytes back or 48 ahead of a token: time is linear in the text.

use std::ops::Range;

use regex::Regex;

use super::cards;
#[cfg(test)]
use super::cards::{CARD, is_card_number};

/// Key formats (placeholder, literal prefixes, pattern from the prefix
/// on), from gitleaks' default rules, matched only at a word's start.
const BOUNDED: &[(&str, &[&str], &str)] = &[
    (
        "stripe_key",
        &["sk_", "rk_", "whsec_"],
        r"(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,99}|whsec_[A-Za-z0-9]{24,}",
    ),
    (
        "anthropic_key",
        &["sk-ant-"],
        r"sk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_-]{20,}",
    ),
    ("openrouter_key", &["sk-or-v1-"], r"sk-or-v1-[a-f0-9]{64}"),
    (
        "openai_key",
        &["sk-"],
        r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
    ),
    ("npm_token", &["npm_"], r"npm_[A-Za-z0-9]{36}"),
    ("huggingface_token", &["hf_"], r"hf_[A-Za-z]{34}"),
    ("twilio_key", &["SK"], r"SK[0-9a-fA-F]{32}"),
    (
        "databricks_token",
        &["dapi"],
        r"dapi[a-f0-9]{32}(?:-[0-9])?",
    ),
    ("pulumi_token", &["pul-"], r"pul-[a-f0-9]{40}"),
    ("groq_key", &["gsk_"], r"gsk_[A-Za-z0-9]{48,}"),
    ("perplexity_key", &["pplx-"], r"pplx-[A-Za-z0-9]{48}"),
    ("xai_key", &["xai-"], r"xai-[A-Za-z0-9]{80}"),
    ("replicate_token", &["r8_"], r"r8_[A-Za-z0-9]{37}"),
];

/// The second pass, with [`BOUNDED`]'s patterns compiled once.
pub struct Heuristics {
    /// (placeholder, prefixes, the pattern anchored at its start).
    bounded: Vec<(String, &'static [&'static str], Regex)>,
    /// Whole tokens: Mailchimp, Azure AD client secret.
    mailchimp: Regex,
    azure: Regex,
}

impl Heuristics {
    pub fn new() -> Heuristics {
        // Literal patterns, compiled by every test.
        let compile = |p: &str| Regex::new(p).expect("a built-in redaction pattern compiles");
        Heuristics {
            bounded: BOUNDED
                .iter()
                .map(|(kind, prefixes, pattern)| {
                    (
                        format!("[REDACTED:{kind}]"),
                        *prefixes,
                        compile(&format!("^(?:{pattern})")),
                    )
                })
                .collect(),
            mailchimp: compile(r"^[0-9a-f]{32}-us[0-9]{1,2}$"),
            azure: compile(r"^[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}$"),
        }
    }

    /// The placeholder of `value` when it is one key of a known format,
    /// all of it.
    pub fn whole(&self, value: &str) -> Option<&str> {
        match self.find(value).as_slice() {
            [(r, placeholder)] if r.start == 0 && r.end == value.len() => Some(placeholder),
            _ => None,
        }
    }

    /// The spans to replace and their placeholders, in order, not
    /// overlapping.
    pub fn find(&self, text: &str) -> Vec<(Range<usize>, &str)> {
        let mut spans = Vec::new();
        cards::find(text.as_bytes(), &mut spans);
        self.tokens(text, &mut spans);
        spans.sort_by_key(|(r, _)| r.start);
        let mut end = 0;
        spans.retain(|(r, _)| {
            let keep = r.start >= end;
            if keep {
                end = r.end;
            }
            keep
        });
        spans
    }
}

/// Bytes of a token: base64 and base64url, and what API keys use.
fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

const TOKEN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'_' | b'.' | b'~' | b'-');
        i += 1;
    }
    t
};

/// The shortest key [`BOUNDED`] matches (`sk_live_` and ten more).
const SHORTEST_BOUNDED: usize = 18;

const AWS_SECRET: &str = "[REDACTED:aws_secret]";
const AWS_KEY: &str = "[REDACTED:aws_key]";
const SECRET: &str = "[REDACTED:secret]";
const AWS_PREFIXES: [&[u8]; 4] = [b"AKIA", b"ASIA", b"ABIA", b"ACCA"];

impl Heuristics {
    /// Bare AWS secrets, random tokens after secret-ish words, AWS key ids
    /// in two parts, and the key formats matched at a word's start; see
    /// the module doc.
    fn tokens<'s>(&'s self, text: &str, spans: &mut Vec<(Range<usize>, &'s str)>) {
        let b = text.as_bytes();
        // An AWS key id's start, waiting for the token that completes it:
        // (its span, how many characters are missing).
        let mut pending: Option<(Range<usize>, usize)> = None;
        let mut i = 0;
        while i < b.len() {
            if !is_token_byte(b[i]) {
                i += 1;
                continue;
            }
            let mut start = i;
            while i < b.len() && is_token_byte(b[i]) {
                i += 1;
            }
            if let Some((found, placeholder)) = self.bounded(text, start, i) {
                let end = found.end;
                spans.push((found, placeholder));
                // The rest of the token is looked at on its own.
                i = end;
                continue;
            }
            if let Some(found) = telegram(b, start, i) {
                let end = found.end;
                spans.push((found, "[REDACTED:telegram_token]"));
                i = end;
                continue;
            }
            // Dots around a token are a sentence's ("… with <key>.");
            // base64 padding after one belongs to it.
            while start < i && b[start] == b'.' {
                start += 1;
            }
            let mut end = i;
            while end > start && b[end - 1] == b'.' {
                end -= 1;
            }
            if end == i {
                while end < b.len() && end < i + 2 && b[end] == b'=' {
                    end += 1;
                }
            }
            if start == end {
                continue;
            }
            let token = &b[start..end];
            if let Some((first, missing)) = pending.take()
                && start - first.end <= 48
            {
                if token.len() == missing
                    && token
                        .iter()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                {
                    spans.push((first, AWS_KEY));
                    spans.push((start..end, AWS_KEY));
                    i = i.max(end);
                    continue;
                }
                pending = Some((first, missing));
            }
            let as_text = &text[start..end];
            if is_bare_aws_secret(token) {
                spans.push((start..end, AWS_SECRET));
            } else if token.len() >= 36 && token[32] == b'-' && self.mailchimp.is_match(as_text) {
                spans.push((start..end, "[REDACTED:mailchimp_key]"));
            } else if token.len() >= 38 && &token[4..6] == b"Q~" && self.azure.is_match(as_text) {
                spans.push((start..end, "[REDACTED:azure_secret]"));
            } else if token.len() >= 16 && after_secret_word(b, start) && is_random(token) {
                spans.push((start..end, SECRET));
            } else if let Some(missing) = aws_id_start(token) {
                pending = Some((start..end, missing));
            }
            i = i.max(end);
        }
    }

    /// A [`BOUNDED`] key starting where a word starts in the token
    /// `start..end` (the token's start, or after a byte that is no letter
    /// or digit).
    fn bounded(&self, text: &str, start: usize, end: usize) -> Option<(Range<usize>, &str)> {
        if end - start < SHORTEST_BOUNDED {
            return None;
        }
        let b = text.as_bytes();
        for at in start..end - SHORTEST_BOUNDED + 1 {
            if at > start && b[at - 1].is_ascii_alphanumeric() {
                continue;
            }
            if !matches!(
                b[at],
                b's' | b'r' | b'w' | b'n' | b'h' | b'S' | b'd' | b'p' | b'g' | b'x'
            ) {
                continue;
            }
            let rest = &b[at..end];
            for (placeholder, prefixes, re) in &self.bounded {
                if prefixes.iter().any(|p| rest.starts_with(p.as_bytes()))
                    && let Some(m) = re.find(&text[at..end])
                {
                    return Some((at..at + m.end(), placeholder.as_str()));
                }
            }
        }
        None
    }
}

/// A Telegram bot token, `123456789:AA…` (in an API URL `bot123456789:…`):
/// its digits end the token `start..end`, and `:AA` and 33 more follow.
fn telegram(b: &[u8], start: usize, end: usize) -> Option<Range<usize>> {
    if b.get(end) != Some(&b':') || b.get(end + 1..end + 3) != Some(b"AA".as_slice()) {
        return None;
    }
    let digits = b[start..end]
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let first = end - digits;
    let word_start = first == start
        || !b[first - 1].is_ascii_alphanumeric()
        || b[start..first].ends_with(b"bot");
    let tail = b[end + 1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
        .count();
    ((8..=10).contains(&digits) && word_start && tail >= 35).then(|| first..end + 1 + tail)
}

/// Whether `s` is one token, long and random enough to be a secret on
/// its own (the value of a key that hints at one).
pub fn is_random_token(s: &str) -> bool {
    let b = s.trim_end_matches('=').as_bytes();
    b.len() >= 16
        && s.len() - b.len() <= 2
        && b.iter().all(|&c| is_token_byte(c))
        && (is_random(b) || is_bare_aws_secret(b))
}

/// `AKIA` or the start of a key id after it: how many characters are
/// missing to make 20.
fn aws_id_start(token: &[u8]) -> Option<usize> {
    (token.len() < 20
        && AWS_PREFIXES.iter().any(|p| token.starts_with(p))
        && token
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
    .then(|| 20 - token.len())
}

fn is_bare_aws_secret(token: &[u8]) -> bool {
    token.len() == 40
        && token
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/'))
        && token.iter().any(u8::is_ascii_uppercase)
        && token.iter().any(u8::is_ascii_lowercase)
        && token.iter().any(u8::is_ascii_digit)
        && token.iter().filter(|&&c| c == b'/').count() <= 4
        && token.iter().filter(|&&c| c == b'+').count() <= 4
        && entropy(token) >= 4.3
}

/// Letters and digits, mixed as random data mixes them; not a path.
fn is_random(token: &[u8]) -> bool {
    token.iter().any(u8::is_ascii_alphabetic)
        && token.iter().any(u8::is_ascii_digit)
        && !matches!(token.first(), Some(b'/' | b'.' | b'~'))
        && entropy(token) >= 3.0
}

/// Shannon entropy in bits per byte.
fn entropy(token: &[u8]) -> f64 {
    let mut counts = [0u32; 128];
    for &c in token {
        counts[usize::from(c & 0x7f)] += 1;
    }
    let n = token.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether the token at `start` follows a key that names or hints at a
/// secret: `secret <t>`, `api key: <t>`, `key=<t>`, `"token": "<t>"`,
/// `password is <t>`.
fn after_secret_word(b: &[u8], start: usize) -> bool {
    let mut j = start;
    let floor = start.saturating_sub(64);
    let skip = |j: &mut usize| {
        while *j > floor && matches!(b[*j - 1], b' ' | b'\t' | b':' | b'=' | b'"' | b'\'') {
            *j -= 1;
        }
    };
    skip(&mut j);
    // `… is <t>`
    if j >= floor + 3 && b[j - 3] == b' ' && b[j - 2..j].eq_ignore_ascii_case(b"is") {
        j -= 3;
        skip(&mut j);
    }
    let end = j;
    while j > floor && (b[j - 1].is_ascii_alphanumeric() || matches!(b[j - 1], b'_' | b'-' | b'.'))
    {
        j -= 1;
    }
    if j == end {
        return false;
    }
    // Most words before a long token name nothing secret: a cheap look
    // at the word's end before the key judgement.
    let mut tail = [0u8; 16];
    let n = (end - j).min(16);
    for (t, c) in tail.iter_mut().zip(&b[end - n..end]) {
        *t = c.to_ascii_lowercase();
    }
    let tail = &tail[..n];
    const HINTS: [&[u8]; 11] = [
        b"pass", b"pwd", b"secret", b"token", b"key", b"auth", b"cred", b"session", b"cookie",
        b"sig", b"phrase",
    ];
    if !HINTS.iter().any(|h| tail.windows(h.len()).any(|w| w == *h)) {
        return false;
    }
    // The key, as far as 64 bytes back shows it; ASCII by construction.
    let key = std::str::from_utf8(&b[j..end]).unwrap_or_default();
    super::keys::kind(key) != super::keys::KeyKind::Plain
}

#[cfg(test)]
mod tests {
    use super::*;

    static H: std::sync::LazyLock<Heuristics> = std::sync::LazyLock::new(Heuristics::new);

    fn find(text: &str) -> Vec<(Range<usize>, &'static str)> {
        H.find(text)
    }

    fn apply(text: &str) -> String {
        let mut out = String::new();
        let mut at = 0;
        for (r, placeholder) in find(text) {
            out.push_str(&text[at..r.start]);
            out.push_str(placeholder);
            at = r.end;
        }
        out.push_str(&text[at..]);
        out
    }

    #[test]
    fn cards_by_network_luhn_and_grouping() {
        for (text, expected) in [
            ("4111111111111111", CARD),
            ("card 4111 1111 1111 1111 exp", "card [REDACTED:card] exp"),
            ("4111-1111-1111-1111", CARD),
            ("5555555555554444", CARD),
            ("2223003122003222", CARD),
            ("378282246310005", CARD),
            ("3782 822463 10005", CARD),
            ("6011111111111117", CARD),
            ("3530111333300000", CARD),
            ("36227206271667", CARD),
            ("4222222222222", CARD),
            (
                "paid 12 4111 1111 1111 1111 ok",
                "paid 12 [REDACTED:card] ok",
            ),
            // The Luhn digit is wrong, the network unknown, the length or
            // the grouping is not a card's, or it is glued to a word.
            ("4111111111111112", "4111111111111112"),
            ("1700000000000", "1700000000000"),
            ("9111111111111111", "9111111111111111"),
            ("411111111111111", "411111111111111"),
            ("4111 1111-1111 1111", "4111 1111-1111 1111"),
            ("41 11 11 11 11 11 11 11", "41 11 11 11 11 11 11 11"),
            ("id4111111111111111", "id4111111111111111"),
            ("3.4111111111111111", "3.4111111111111111"),
            ("+4111111111111", "+4111111111111"),
            ("2024-01-15 10:00:00", "2024-01-15 10:00:00"),
            (
                "00-9a6483d1c467266d065db3fc3c29d361-5161988305477887-01",
                "00-9a6483d1c467266d065db3fc3c29d361-5161988305477887-01",
            ),
            ("span_id=5161988305477887", "span_id=5161988305477887"),
            (
                "\"spanId\": \"5161988305477887\"",
                "\"spanId\": \"5161988305477887\"",
            ),
            ("card=5161988305477887", "card=[REDACTED:card]"),
            ("paid 4111 1111 1111 1111", "paid [REDACTED:card]"),
            ("PAID=4111111111111111", "PAID=[REDACTED:card]"),
            ("userID: 4111111111111111", "userID: 4111111111111111"),
        ] {
            assert_eq!(apply(text), expected, "{text}");
        }
        assert!(is_card_number("4111111111111111"));
        assert!(!is_card_number("1712345678901"));
        assert!(!is_card_number(""));
    }

    #[test]
    fn bare_aws_secrets() {
        let key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(apply(key), AWS_SECRET);
        assert_eq!(
            apply(&format!("with {key}.")),
            format!("with {AWS_SECRET}.")
        );
        assert_eq!(apply(&format!("\"{key}\",")), format!("\"{AWS_SECRET}\","));
        for text in [
            "4bf92f3577b34da6a3ce929d0e0e47364bf92f35",
            "AbstractSingletonProxyFactoryBean2Helper",
            "/api/v1/Users/12345/Orders/67890/ItemsAB",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYx",
        ] {
            assert_eq!(apply(text), text);
        }
    }

    #[test]
    fn random_tokens_after_secret_words() {
        for (text, expected) in [
            ("secret 9f8Kq2LmZ7xR4vT1", "secret [REDACTED:secret]"),
            (
                "the api key is 9f8Kq2LmZ7xR4vT1wE",
                "the api key is [REDACTED:secret]",
            ),
            ("key=9f8Kq2LmZ7xR4vT1wE", "key=[REDACTED:secret]"),
            (
                "\"auth\": \"9f8Kq2LmZ7xR4vT1wE\"",
                "\"auth\": \"[REDACTED:secret]\"",
            ),
            // Not random, not long, or after no such word.
            (
                "secret sauce-recipe-number-one",
                "secret sauce-recipe-number-one",
            ),
            ("key=user:42:profile", "key=user:42:profile"),
            (
                "cache_key=9f8Kq2LmZ7xR4vT1wE",
                "cache_key=9f8Kq2LmZ7xR4vT1wE",
            ),
            ("request 9f8Kq2LmZ7xR4vT1wE", "request 9f8Kq2LmZ7xR4vT1wE"),
            (
                "key /etc/ssl/private/server2024.key",
                "key /etc/ssl/private/server2024.key",
            ),
            (
                "[REDACTED:secret] 9f8Kq2LmZ7xR4vT1wE",
                "[REDACTED:secret] 9f8Kq2LmZ7xR4vT1wE",
            ),
        ] {
            assert_eq!(apply(text), expected, "{text}");
        }
    }

    #[test]
    fn aws_key_ids_in_two_parts() {
        for (text, expected) in [
            (
                "key_prefix=AKIA key_rest=IOSFODNN7EXAMPLE",
                "key_prefix=[REDACTED:aws_key] key_rest=[REDACTED:aws_key]",
            ),
            (
                "AKIAIOSF ODNN7EXAMPLE",
                "[REDACTED:aws_key] [REDACTED:aws_key]",
            ),
            (
                "AKIA and then lowercase words",
                "AKIA and then lowercase words",
            ),
            ("ASIA EUROPE AMERICA", "ASIA EUROPE AMERICA"),
        ] {
            assert_eq!(apply(text), expected, "{text}");
        }
    }

    #[test]
    fn long_inputs_stay_linear() {
        const MB: usize = 1 << 20;
        for text in [
            "4111 ".repeat(MB / 5),
            "1".repeat(MB),
            "a".repeat(MB),
            "key ".repeat(MB / 4),
            "AKIA ".repeat(MB / 5),
            "secret=".repeat(MB / 7),
            "-sk_live_".repeat(MB / 9),
            "-whsec_abc".repeat(MB / 10),
            "x-sk-ant-api03-".repeat(MB / 15),
            "1234567890:".repeat(MB / 11),
        ] {
            let _ = find(&text);
        }
    }
}
