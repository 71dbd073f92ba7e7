//! Text from publishers made safe for a terminal: control characters shown,
//! not obeyed.
//!
//! A terminal acts on what it is sent: ESC sequences (set the window
//! title, clear the screen, write the clipboard with OSC 52, make links
//! with OSC 8, hide text), DCS strings, BEL, a backspace or a bare CR that
//! overwrites what is already on the line, a newline that starts what
//! looks like another event, and the C1 controls U+0080–U+009F (U+009B is
//! CSI, U+009D OSC, on their own). Anyone who can publish writes these
//! (CVE-2021-25743 is the same hole in kubectl), so [`visible`] shows each
//! as an escape: `\n`, `\r`, `\x1b`, `\x7f`, and `\u009b` for a C1 control
//! (`\x9b` would read as a byte). U+2028 and U+2029, line ends to some
//! readers, become `\u2028` and `\u2029`; a byte that is not UTF-8 becomes
//! `\xNN`. Tab and every other character are kept as they are. Backslashes
//! are not doubled: the result is for reading, not for parsing back
//! (`-o json` is).

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `text` may hold something [`visible`] escapes: a C0 control
/// but tab, or a byte of 0x7F or more (DEL, and every character past
/// ASCII, which is then looked at as characters). A fold, not `any`, so
/// that it vectorises: for nearly every line this one pass is all the cost.
fn maybe_escaped(text: &[u8]) -> bool {
    text.iter().fold(false, |found, &b| {
        found | ((b < 0x20) & (b != b'\t')) | (b >= 0x7f)
    })
}

/// `text` with every character a terminal would act on shown as an
/// escape (see the module's doc). Borrows when there is none, as in
/// nearly every log line: one pass over the bytes, and no allocation.
pub fn visible(text: &[u8]) -> Cow<'_, str> {
    let clean = !maybe_escaped(text);
    if let Ok(text) = std::str::from_utf8(text)
        && (clean || !text.chars().any(is_escaped))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_visible(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// Whether [`visible`] shows `c` as an escape.
fn is_escaped(c: char) -> bool {
    matches!(c, '\0'..='\x08' | '\n'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}')
}

fn push_visible(out: &mut String, c: char) {
    if !is_escaped(c) {
        out.push(c);
        return;
    }
    // `write!` to a String cannot fail.
    let _ = match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\0'..='\x7f' => write!(out, "\\x{:02x}", u32::from(c)),
        _ => write!(out, "\\u{:04x}", u32::from(c)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &[u8]) -> String {
        visible(text).into_owned()
    }

    #[test]
    fn plain_text_is_borrowed() {
        for text in [
            "",
            "plain ascii line",
            "tab\tkept",
            "café ✓ 日本 — ok €",
            "\u{a0}nbsp ©",
        ] {
            assert!(
                matches!(visible(text.as_bytes()), Cow::Borrowed(t) if t == text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn every_c0_control_but_tab_is_shown() {
        for b in 0u8..0x20 {
            let got = shown(&[b'a', b, b'z']);
            let want = match b {
                b'\t' => "a\tz".to_owned(),
                b'\n' => r"a\nz".to_owned(),
                b'\r' => r"a\rz".to_owned(),
                _ => format!("a\\x{b:02x}z"),
            };
            assert_eq!(got, want, "byte {b:#04x}");
            assert!(!got.bytes().any(|c| c < 0x20 && c != b'\t'), "{got:?}");
        }
        assert_eq!(shown(b"del\x7f"), r"del\x7f");
    }

    #[test]
    fn escape_sequences_are_shown_whole() {
        for (raw, want) in [
            ("\x1b]0;title\x07", r"\x1b]0;title\x07"),
            ("\x1b[2J\x1b[H", r"\x1b[2J\x1b[H"),
            ("\x1b]52;c;aGk=\x07", r"\x1b]52;c;aGk=\x07"),
            (
                "\x1b]8;;http://x/\x1b\\link\x1b]8;;\x1b\\",
                r"\x1b]8;;http://x/\x1b\link\x1b]8;;\x1b\",
            ),
            ("\x1bP+q544e\x1b\\", r"\x1bP+q544e\x1b\"),
            ("\x1b[8mhidden\x1b[0m", r"\x1b[8mhidden\x1b[0m"),
            ("abc\x08\x08\x08xyz", r"abc\x08\x08\x08xyz"),
            ("fake\rINFO ok", r"fake\rINFO ok"),
        ] {
            assert_eq!(shown(raw.as_bytes()), want);
        }
    }

    #[test]
    fn every_c1_control_is_shown_as_the_character_it_is() {
        for c in '\u{80}'..='\u{9f}' {
            let text = format!("a{c}z");
            let got = shown(text.as_bytes());
            assert_eq!(got, format!("a\\u{:04x}z", u32::from(c)));
            assert!(!got.chars().any(char::is_control), "{got:?}");
        }
        // Just past them, U+00A0 (no-break space) is text.
        assert_eq!(shown("\u{a0}".as_bytes()), "\u{a0}");
    }

    #[test]
    fn line_and_paragraph_separators_are_shown() {
        assert_eq!(shown("a\u{2028}b\u{2029}c".as_bytes()), r"a\u2028b\u2029c");
        // Other characters from the same block are kept.
        assert_eq!(shown("— … ‰ €".as_bytes()), "— … ‰ €");
    }

    #[test]
    fn multibyte_text_around_escapes_is_kept() {
        assert_eq!(
            shown("日本\x1b[31m語 ✓\u{9b}é".as_bytes()),
            r"日本\x1b[31m語 ✓\u009bé"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_bytes() {
        assert_eq!(shown(b"a\xffb"), r"a\xffb");
        // A C1 control spelled in too many bytes (overlong) is not
        // decoded into one: each byte is shown.
        assert_eq!(shown(b"\xc1\x9b2J"), r"\xc1\x9b2J");
        // A lone lead byte of C1, at the end.
        assert_eq!(shown(b"x\xc2"), r"x\xc2");
        // Half of a character, then an escape.
        assert_eq!(shown(b"\xe6\x97\x1b"), r"\xe6\x97\x1b");
    }
}
