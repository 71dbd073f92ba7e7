//! Message templates: the variable parts of a log message (numbers, ids,
//! hex, times, addresses) replaced by placeholders, so that lines which
//! differ only in them group together and the most common patterns can
//! be counted.
//!
//! Publishers write the messages, so the work is bounded whatever they
//! hold: at most [`MAX_TEMPLATE_INPUT`] bytes are looked at, in one
//! left-to-right pass in which each shape (uuid, time, address, hex) is
//! tried only where a run of letters and digits starts, and looks ahead a
//! bounded way. The template is at most `MAX_TEMPLATE_INPUT` bytes too.
//!
//! Every ASCII digit of the input is replaced with a placeholder, and every
//! shape needs a digit to match, so a template holds nothing to replace:
//! templating a template gives it back unchanged. That is also why
//! placeholders already in the text (`<num>`, `[REDACTED:email]`) stay as
//! they are, and words without digits ("connection refused",
//! "user=alice") are kept verbatim.

use std::net::Ipv6Addr;

/// Most bytes of a message looked at; the rest is dropped (and the
/// template ends with "…").
pub const MAX_TEMPLATE_INPUT: usize = 512;

/// Marks a template that was cut, whether its message was too long or
/// its placeholders made it so.
const ELLIPSIS: &str = "…";

/// The longest text form of an IPv6 address (`ffff:…:255.255.255.255`).
const MAX_IPV6: usize = 45;

/// The message's template: variable parts replaced by placeholders
/// (`<uuid>`, `<time>`, `<ip>`, `<hex>`, `<num>`) so that lines differing
/// only in ids, numbers, times and addresses group together. Whitespace
/// runs become one space, and the ends are trimmed. Never longer than
/// [`MAX_TEMPLATE_INPUT`] bytes; ends with "…" when something was cut.
pub fn template(message: &str) -> String {
    let end = floor_char_boundary(message, MAX_TEMPLATE_INPUT);
    let input = &message[..end];
    let b = input.as_bytes();
    let mut out = Out::default();
    let mut i = 0;
    // Once past the bound, the rest would be cut anyway.
    while i < b.len() && out.s.len() <= MAX_TEMPLATE_INPUT {
        let c = b[i];
        if !c.is_ascii() {
            let Some(ch) = input[i..].chars().next() else {
                break;
            };
            if ch.is_whitespace() {
                out.space();
            } else {
                out.push_char(ch);
            }
            i += ch.len_utf8();
            continue;
        }
        if char::from(c).is_whitespace() {
            out.space();
            i += 1;
            continue;
        }
        // Shapes only where a run starts, so the tail of `abc123` or of
        // `x550e8400-…` is not taken for one.
        if (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && let Some((len, placeholder)) = shape(&b[i..])
        {
            out.push(placeholder);
            i += len;
            continue;
        }
        if c.is_ascii_digit() {
            out.push("<num>");
            i += number(&b[i..]);
            continue;
        }
        out.push_char(char::from(c));
        i += 1;
    }
    let mut s = out.s;
    if end < message.len() || s.len() > MAX_TEMPLATE_INPUT {
        s.truncate(floor_char_boundary(&s, MAX_TEMPLATE_INPUT - ELLIPSIS.len()));
        s.truncate(s.trim_end().len());
        s.push_str(ELLIPSIS);
    }
    s
}

/// The template being written: one space between words, none at the
/// ends.
#[derive(Default)]
struct Out {
    s: String,
    space: bool,
}

impl Out {
    fn space(&mut self) {
        self.space = !self.s.is_empty();
    }

    fn push(&mut self, text: &str) {
        if std::mem::take(&mut self.space) {
            self.s.push(' ');
        }
        self.s.push_str(text);
    }

    fn push_char(&mut self, c: char) {
        self.push(c.encode_utf8(&mut [0; 4]));
    }
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut end = at.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// A whole shape starting at `b[0]`: its length and placeholder. Each one
/// has a digit in it (a uuid of letters only is left alone), which keeps
/// templates free of anything a second pass would replace.
fn shape(b: &[u8]) -> Option<(usize, &'static str)> {
    if let Some(len) = uuid(b) {
        return Some((len, "<uuid>"));
    }
    if let Some(len) = time(b) {
        return Some((len, "<time>"));
    }
    if let Some(len) = ipv4(b).or_else(|| ipv6(b)) {
        return Some((len, "<ip>"));
    }
    hex(b).map(|len| (len, "<hex>"))
}

/// Whether `b` ends at `at`, as far as a run of letters and digits goes.
fn ends_at(b: &[u8], at: usize) -> bool {
    b.get(at).is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// How many of `b`'s first bytes satisfy `f`.
fn run(b: &[u8], f: impl Fn(u8) -> bool) -> usize {
    b.iter().take_while(|&&c| f(c)).count()
}

/// `8-4-4-4-12` hex digits, with at least one digit.
fn uuid(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    for (n, width) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if n > 0 {
            (b.get(at) == Some(&b'-')).then_some(())?;
            at += 1;
        }
        let group = b.get(at..at + width)?;
        group.iter().all(u8::is_ascii_hexdigit).then_some(())?;
        at += width;
    }
    (ends_at(b, at) && b[..at].iter().any(u8::is_ascii_digit)).then_some(at)
}

/// `width` digits at `b[at..]`, not followed by another digit, as a
/// number no greater than `max`.
fn field(b: &[u8], at: usize, width: usize, max: u32) -> Option<()> {
    let digits = b.get(at..at + width)?;
    let mut value = 0u32;
    for &d in digits {
        d.is_ascii_digit().then_some(())?;
        value = value * 10 + u32::from(d - b'0');
    }
    let next_is_digit = b.get(at + width).is_some_and(u8::is_ascii_digit);
    (value <= max && !next_is_digit).then_some(())
}

/// RFC 3339 and its ISO cousins: `2025-09-25`, `2025-09-25T10:30:00Z`,
/// `2025-09-25 10:30:00.123+02:00`, and a clock alone with seconds
/// (`10:30:00`, `10:30:00.5`).
fn time(b: &[u8]) -> Option<usize> {
    let date = field(b, 0, 4, 9999).is_some()
        && b.get(4) == Some(&b'-')
        && field(b, 5, 2, 12).is_some()
        && b.get(7) == Some(&b'-')
        && field(b, 8, 2, 31).is_some();
    if date {
        let mut at = 10;
        if matches!(b.get(at), Some(b'T' | b't' | b' '))
            && let Some(len) = clock(&b[at + 1..], false)
        {
            at += 1 + len;
            at += zone(&b[at..]);
        }
        return Some(at);
    }
    let len = clock(b, true)?;
    Some(len + zone(&b[len..]))
}

/// `HH:MM`, `HH:MM:SS`, `HH:MM:SS.fff` (or `,fff`): its length.
fn clock(b: &[u8], need_seconds: bool) -> Option<usize> {
    field(b, 0, 2, 24)?;
    (b.get(2) == Some(&b':')).then_some(())?;
    field(b, 3, 2, 59)?;
    let seconds = b.get(5) == Some(&b':') && field(b, 6, 2, 60).is_some();
    if !seconds {
        return (!need_seconds).then_some(5);
    }
    let fraction = match b.get(8) {
        Some(b'.' | b',') => run(&b[9..], |c| c.is_ascii_digit()),
        _ => 0,
    };
    Some(if fraction > 0 { 9 + fraction } else { 8 })
}

/// `Z`, `+02:00`, `-0700`, `+02` after a clock: its length, or 0.
fn zone(b: &[u8]) -> usize {
    let two = |at: usize| {
        b.get(at..at + 2)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .is_some()
    };
    let digit_at = |at: usize| b.get(at).is_some_and(u8::is_ascii_digit);
    match b.first() {
        Some(b'Z' | b'z') => 1,
        Some(b'+' | b'-') if two(1) => {
            if b.get(3) == Some(&b':') && two(4) && !digit_at(6) {
                6
            } else if two(3) && !digit_at(5) {
                5
            } else if !digit_at(3) {
                3
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// Four octets (each at most 255) and nothing more of a number after
/// them; a `:port` after is left to become `:<num>`.
fn ipv4(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    for n in 0..4 {
        if n > 0 {
            (b.get(at) == Some(&b'.')).then_some(())?;
            at += 1;
        }
        let len = run(&b[at..], |c| c.is_ascii_digit());
        (1..=3).contains(&len).then_some(())?;
        let octet = b[at..at + len]
            .iter()
            .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        (octet <= 255).then_some(())?;
        at += len;
    }
    let more = b.get(at) == Some(&b'.') && b.get(at + 1).is_some_and(u8::is_ascii_digit);
    (ends_at(b, at) && !more).then_some(at)
}

/// An IPv6 address (`fe80::1`, `2001:db8::8a2e:370:7334`,
/// `::ffff:10.0.0.1`), as the standard library reads one: at least two
/// colons and a digit. A trailing `.` or `:` (end of a sentence, a
/// `key: value`) is not part of it.
fn ipv6(b: &[u8]) -> Option<usize> {
    let len = run(&b[..b.len().min(MAX_IPV6 + 1)], |c| {
        c.is_ascii_hexdigit() || c == b':' || c == b'.'
    });
    if len > MAX_IPV6 || !ends_at(b, len) {
        return None;
    }
    let candidate = &b[..len];
    let colons = candidate.iter().filter(|&&c| c == b':').count();
    if colons < 2 || !candidate.iter().any(u8::is_ascii_digit) {
        return None;
    }
    let parses = |s: &[u8]| {
        std::str::from_utf8(s)
            .ok()
            .is_some_and(|s| s.parse::<Ipv6Addr>().is_ok())
    };
    if parses(candidate) {
        return Some(len);
    }
    let trimmed = len
        - candidate
            .iter()
            .rev()
            .take_while(|&&c| c == b'.' || c == b':')
            .count();
    (trimmed < len && parses(&b[..trimmed])).then_some(trimmed)
}

/// `0x` and hex digits, or a whole run of 8 or more hex digits with both
/// a digit and a letter (a commit, a trace id). Digits alone are a
/// number, so `12345678ms` groups with `123ms`.
fn hex(b: &[u8]) -> Option<usize> {
    if b.first() == Some(&b'0') && matches!(b.get(1), Some(b'x' | b'X')) {
        let len = run(&b[2..], |c| c.is_ascii_hexdigit());
        if len > 0 && ends_at(b, 2 + len) {
            return Some(2 + len);
        }
    }
    let len = run(b, |c| c.is_ascii_hexdigit());
    let word = &b[..len];
    (len >= 8
        && ends_at(b, len)
        && word.iter().any(u8::is_ascii_digit)
        && word.iter().any(u8::is_ascii_alphabetic))
    .then_some(len)
}

/// Digits, with a decimal part if one follows (`3.5` is one number).
fn number(b: &[u8]) -> usize {
    let whole = run(b, |c| c.is_ascii_digit());
    let rest = &b[whole..];
    if rest.first() == Some(&b'.') && rest.get(1).is_some_and(u8::is_ascii_digit) {
        whole + 1 + run(&rest[1..], |c| c.is_ascii_digit())
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(cases: &[(&str, &str)]) {
        for &(input, expected) in cases {
            let t = template(input);
            assert_eq!(t, expected, "{input:?}");
            assert_eq!(template(&t), t, "second pass of {input:?}");
        }
    }

    #[test]
    fn numbers_keep_the_letters_around_them() {
        check(&[
            ("took 12ms", "took <num>ms"),
            ("job-123 done", "job-<num> done"),
            ("v1.2.3", "v<num>.<num>"),
            ("3.5s", "<num>s"),
            ("user=alice took=3.5s", "user=alice took=<num>s"),
            ("-5 and +7, 1,234", "-<num> and +<num>, <num>,<num>"),
            ("took 12345678ms", "took <num>ms"),
            ("abc123def", "<hex>"),
            ("user12345678", "user<num>"),
            ("sha256:", "sha<num>:"),
        ]);
    }

    #[test]
    fn ids_and_hex() {
        check(&[
            (
                "request 550e8400-e29b-41d4-a716-446655440000 failed",
                "request <uuid> failed",
            ),
            ("{550E8400-E29B-41D4-A716-446655440000}", "{<uuid>}"),
            ("req-550e8400-e29b-41d4-a716-446655440000", "req-<uuid>"),
            ("commit 5f3a9c2e1b7d pushed", "commit <hex> pushed"),
            ("trace=4bf92f3577b34da6a3ce929d0e0e4736", "trace=<hex>"),
            ("at 0x1f2e3d4c5b6a", "at <hex>"),
            ("flags 0x1F", "flags <hex>"),
            ("(id=5f3a9c2e),", "(id=<hex>),"),
            // No digit, or too short: a word, or hex digits as numbers.
            ("deadbeef cafebabe", "deadbeef cafebabe"),
            ("id ab12cd", "id ab<num>cd"),
            // A letters-only uuid has nothing variable-looking; kept.
            (
                "abcdefab-abcd-abcd-abcd-abcdefabcdef",
                "abcdefab-abcd-abcd-abcd-abcdefabcdef",
            ),
        ]);
    }

    #[test]
    fn addresses() {
        check(&[
            ("from 10.0.0.1:8080 ok", "from <ip>:<num> ok"),
            ("peer=192.168.1.20, retry", "peer=<ip>, retry"),
            ("net 10.0.0.0/8", "net <ip>/<num>"),
            ("not 999.1.1.1", "not <num>.<num>"),
            ("five 1.2.3.4.5", "five <num>.<num>.<num>"),
            (
                "v6 fe80::1 and 2001:db8::8a2e:370:7334.",
                "v<num> <ip> and <ip>.",
            ),
            ("[::1]:8080", "[<ip>]:<num>"),
            ("::ffff:10.0.0.1", "<ip>"),
            ("addr 2001:db8::1: refused", "addr <ip>: refused"),
            ("std::io::Error", "std::io::Error"),
        ]);
    }

    #[test]
    fn times() {
        check(&[
            ("at 2025-09-25T10:30:00Z", "at <time>"),
            ("at 2025-09-25 10:30:00.123 done", "at <time> done"),
            ("2025-09-25T10:30:00.123456+02:00 x", "<time> x"),
            ("2025-09-25T10:30:00-0700", "<time>"),
            ("on 2025-09-25, fine", "on <time>, fine"),
            ("clock 10:30:00.5", "clock <time>"),
            ("[2025-09-25 10:30]", "[<time>]"),
            ("ratio 10:30", "ratio <num>:<num>"),
            ("not 2025-13-45", "not <num>-<num>-<num>"),
        ]);
    }

    #[test]
    fn words_whitespace_and_placeholders_stay() {
        check(&[
            ("connection refused", "connection refused"),
            ("  connection \t\n refused  ", "connection refused"),
            ("a\u{3000}b\u{a0}c", "a b c"),
            ("user=alice", "user=alice"),
            (
                "mail [REDACTED:email] token=[REDACTED:secret] took <num>ms at <time>",
                "mail [REDACTED:email] token=[REDACTED:secret] took <num>ms at <time>",
            ),
            ("café 12 ✓ 日本語3", "café <num> ✓ 日本語<num>"),
            ("١٢٣ ５", "١٢٣ ５"),
            ("", ""),
            ("   ", ""),
        ]);
    }

    #[test]
    fn lines_that_differ_in_numbers_share_a_template() {
        assert_eq!(
            template("request 17 failed after 3 retries"),
            template("request 92 failed after 5 retries")
        );
        assert_eq!(
            template("GET /users/17 from 10.0.0.1:5000 in 3.2ms"),
            template("GET /users/123456 from 172.16.4.9:61000 in 120ms")
        );
        assert_ne!(template("request 17 failed"), template("request 17 passed"));
        assert_ne!(template("connection refused"), template("connection reset"));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(MAX_TEMPLATE_INPUT + 1);
        let t = template(&long);
        assert_eq!(t, format!("{}…", "x".repeat(MAX_TEMPLATE_INPUT - 3)));
        let exact = "x".repeat(MAX_TEMPLATE_INPUT);
        assert_eq!(template(&exact), exact);
        // A cut in the middle of a character backs off to its start.
        for pad in 0..4 {
            let long = format!("{}{}", "a".repeat(pad), "é日🎉".repeat(200));
            let t = template(&long);
            assert!(
                t.ends_with('…') && t.len() <= MAX_TEMPLATE_INPUT,
                "{}",
                t.len()
            );
            assert_eq!(template(&t), t);
        }
        // Short messages whose placeholders outgrow the bound are cut too.
        let t = template(&"1 ".repeat(200));
        assert!(
            t.ends_with("<num>…") && t.len() <= MAX_TEMPLATE_INPUT,
            "{t}"
        );
        assert_eq!(template(&t), t);
        // A megabyte is no slower than its first 512 bytes.
        let t = template(&"a1.".repeat(1 << 20));
        assert!(t.ends_with('…'));
    }

    proptest! {
        #[test]
        fn never_panics_bounded_and_idempotent(s in "\\PC{0,700}") {
            let t = template(&s);
            prop_assert!(t.len() <= MAX_TEMPLATE_INPUT, "{}", t.len());
            prop_assert_eq!(template(&t), t);
        }

        #[test]
        fn dense_shapes_are_idempotent(s in "[0-9a-fA-FxXtTzZ:.,+/ \\-\\[\\]é<>]{0,600}") {
            let t = template(&s);
            prop_assert!(t.len() <= MAX_TEMPLATE_INPUT);
            prop_assert!(!t.bytes().any(|b| b.is_ascii_digit()), "{}", t);
            prop_assert_eq!(template(&t), t);
        }

        #[test]
        fn any_bytes_as_text(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
            let s = String::from_utf8_lossy(&bytes);
            let t = template(&s);
            prop_assert!(t.len() <= MAX_TEMPLATE_INPUT);
            prop_assert_eq!(template(&t), t);
        }
    }
}
