//! Message templates: the variable parts of a log message (numbers, ids,
//! hex, times, addresses) replaced by placeholders, so lines that differ
//! only in them group together (`top_patterns`).
//!
//! One pass over whitespace-separated words, each looked at once, over at
//! most [`MAX_TEMPLATE_INPUT`] bytes: linear, and bounded whatever a
//! publisher writes. Words without digits stay as they are.

/// Most bytes of a message looked at; the rest is dropped (and the
/// template ends with "…").
pub const MAX_TEMPLATE_INPUT: usize = 512;

/// The message's template.
pub fn template(message: &str) -> String {
    let mut end = message.len().min(MAX_TEMPLATE_INPUT);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cut = end < message.len();
    let mut out = String::with_capacity(end + 8);
    for word in message[..end].split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        word_template(word, &mut out);
    }
    if cut {
        out.push('…');
    }
    out
}

/// One word: a whole-word shape (uuid, time, address) first, else its
/// runs of hex or digits.
fn word_template(word: &str, out: &mut String) {
    // Punctuation around a value stays: "(id=5f3a…)," keeps its brackets.
    let core_start = word
        .find(|c: char| c.is_ascii_alphanumeric())
        .unwrap_or(word.len());
    let core_end = word
        .rfind(|c: char| c.is_ascii_alphanumeric())
        .map_or(core_start, |i| i + 1);
    let (head, core, tail) = (
        &word[..core_start],
        &word[core_start..core_end.max(core_start)],
        &word[core_end.max(core_start)..],
    );
    if !core.bytes().any(|b| b.is_ascii_digit()) || is_placeholder(word) {
        out.push_str(word);
        return;
    }
    out.push_str(head);
    if is_uuid(core) {
        out.push_str("<uuid>");
    } else if is_time(core) {
        out.push_str("<time>");
    } else if let Some(port) = ipv4(core) {
        out.push_str("<ip>");
        if port {
            out.push_str(":<num>");
        }
    } else {
        runs(core, out);
    }
    out.push_str(tail);
}

fn is_placeholder(word: &str) -> bool {
    word.starts_with("[REDACTED:") || (word.starts_with('<') && word.ends_with('>'))
}

/// Replaces hex runs (≥ 8, with a digit) by `<hex>` and digit runs by
/// `<num>`, keeping everything else.
fn runs(core: &str, out: &mut String) {
    let bytes = core.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        if c.is_ascii_hexdigit() {
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_hexdigit() {
                j += 1;
            }
            let run = &core[start..j];
            match run.bytes().position(|b| b.is_ascii_digit()) {
                Some(_) if run.len() >= 8 => {
                    out.push_str("<hex>");
                    i = j;
                    continue;
                }
                // Letters a-f only: a word, kept (and not looked at again,
                // so a long run costs one scan).
                None => {
                    out.push_str(run);
                    i = j;
                    continue;
                }
                // Letters before a number: keep them, the number follows.
                Some(first) if first > 0 => {
                    out.push_str(&run[..first]);
                    i = start + first;
                    continue;
                }
                Some(_) => {}
            }
        }
        if c.is_ascii_digit() {
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            // A decimal part belongs to the number: 3.5s is <num>s.
            if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
                j += 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
            }
            out.push_str("<num>");
            i = j;
            continue;
        }
        // Non-ASCII is copied whole, char by char.
        let ch = core[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `2025-09-25T10:30:00Z`, `2025-09-25 10:30` (the date alone), `10:30:00.123`.
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    let date = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    let clock = b.len() >= 8
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2] == b':'
        && b[3..5].iter().all(u8::is_ascii_digit)
        && b[5] == b':';
    date || clock
}

/// An IPv4 address, maybe with a port: `Some(has_port)`.
fn ipv4(s: &str) -> Option<bool> {
    let (addr, port) = match s.split_once(':') {
        Some((a, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (a, true),
        Some(_) => return None,
        None => (s, false),
    };
    let octets: Vec<&str> = addr.split('.').collect();
    (octets.len() == 4
        && octets
            .iter()
            .all(|o| !o.is_empty() && o.len() <= 3 && o.bytes().all(|b| b.is_ascii_digit())))
    .then_some(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn variable_parts_become_placeholders() {
        let cases = [
            ("took 12ms", "took <num>ms"),
            ("job-123 done", "job-<num> done"),
            ("user=alice took=3.5s", "user=alice took=<num>s"),
            (
                "request 550e8400-e29b-41d4-a716-446655440000 failed",
                "request <uuid> failed",
            ),
            ("from 10.0.0.1:8080 ok", "from <ip>:<num> ok"),
            ("at 2025-09-25T10:30:00Z", "at <time>"),
            ("commit 5f3a9c2e1b7d pushed", "commit <hex> pushed"),
            ("trace=0x1f2e3d4c5b6a", "trace=<num>x<hex>"),
            ("(id=5f3a9c2e),", "(id=<hex>),"),
            ("connection   refused", "connection refused"),
            ("mail [REDACTED:email] now", "mail [REDACTED:email] now"),
        ];
        for (input, expected) in cases {
            assert_eq!(template(input), expected, "{input}");
        }
    }

    #[test]
    fn lines_that_differ_in_numbers_share_a_template() {
        assert_eq!(
            template("request 17 failed after 3 retries"),
            template("request 92 failed after 5 retries")
        );
        assert_ne!(template("request 17 failed"), template("request 17 passed"));
    }

    #[test]
    fn long_messages_are_cut_on_a_character() {
        let long = "é".repeat(400);
        let t = template(&long);
        assert!(
            t.ends_with('…') && t.len() <= MAX_TEMPLATE_INPUT + 3,
            "{}",
            t.len()
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded_and_stable(s in "\\PC{0,700}") {
            let t = template(&s);
            prop_assert!(t.len() <= 2 * MAX_TEMPLATE_INPUT + 8);
            // A template longer than the input bound would be cut again.
            if !t.ends_with('…') && t.len() <= MAX_TEMPLATE_INPUT {
                prop_assert_eq!(template(&t), t.clone());
            }
        }
    }
}
