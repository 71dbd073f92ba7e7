//! The one writer of every JSON a client reads from loggate (see the
//! parent module's docs): serde_json's compact text, then the characters a
//! terminal or a line reader would act on written as `\uXXXX`.

use std::borrow::Cow;

use serde::Serialize;

/// The next character at or after byte `from` of `text` (UTF-8) that
/// loggate's JSON writes escaped: its offset, its length in UTF-8 and its
/// code point. Those are the C1 controls U+0080–U+009F, which a terminal
/// obeys as it does ESC sequences (U+009B alone is CSI, U+009D OSC: a
/// stream printed by `curl -N` could clear the screen or write the
/// clipboard of whoever reads it); DEL, the one control JSON leaves raw
/// besides them; and U+2028 and U+2029, line ends to JavaScript before
/// ES2019 and to Python's `splitlines`. Their UTF-8 starts with 0x7F, 0xC2
/// or 0xE2, never a continuation byte, so each is found whole.
fn next_unsafe(text: &[u8], from: usize) -> Option<(usize, usize, u16)> {
    let mut from = from;
    while let Some(i) = memchr::memchr3(0x7f, 0xc2, 0xe2, text.get(from..)?) {
        let at = from + i;
        match (text[at], text.get(at + 1), text.get(at + 2)) {
            (0x7f, _, _) => return Some((at, 1, 0x7f)),
            (0xc2, Some(&b @ 0x80..=0x9f), _) => return Some((at, 2, u16::from(b))),
            (0xe2, Some(0x80), Some(&b @ (0xa8 | 0xa9))) => {
                return Some((at, 3, 0x2000 | u16::from(b - 0x80)));
            }
            _ => from = at + 1,
        }
    }
    None
}

/// Whether `text` may hold something [`next_unsafe`] finds: a byte of
/// 0x7F or more. Written as a fold, not `any`, so that it vectorises: for
/// the JSON of nearly every event (ASCII) this one pass is all the cost.
fn maybe_unsafe(text: &[u8]) -> bool {
    text.iter().fold(false, |found, &b| found | (b >= 0x7f))
}

/// `\uXXXX` for `code`, lower-case as serde_json writes C0 controls.
fn unicode_escape(code: u16) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digit = |shift: u16| HEX[usize::from((code >> shift) & 0xf)];
    [b'\\', b'u', digit(12), digit(8), digit(4), digit(0)]
}

/// Appends `value` to `out` as loggate writes every JSON its clients read:
/// compact (serde_json), then DEL, U+0080–U+009F, U+2028 and U+2029 as
/// `\uXXXX` (see `next_unsafe`), in strings and in raw `meta` alike.
/// Outside its strings a JSON text is ASCII, and inside them these
/// characters are never part of an escape, so the escaped text reads back
/// as the same value. Escaping after writing, rather than in a serde_json
/// `Formatter`, costs one pass over the whole text instead of a scan of
/// each string: an event's two dozen short strings made that scan cost as
/// much as the encoding itself, and the one pass a few per cent.
pub fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let start = out.len();
    serde_json::to_writer(&mut *out, value)?;
    if !maybe_unsafe(&out[start..]) {
        return Ok(());
    }
    if let Some((at, _, _)) = next_unsafe(&out[start..], 0) {
        let rest = out.split_off(start + at);
        let mut done = 0;
        while let Some((at, len, code)) = next_unsafe(&rest, done) {
            out.extend_from_slice(&rest[done..at]);
            out.extend_from_slice(&unicode_escape(code));
            done = at + len;
        }
        out.extend_from_slice(&rest[done..]);
    }
    Ok(())
}

/// [`write_json`] as a `String`, for values whose serialisation cannot
/// fail (strings, numbers, `serde_json::Value`, structs of those).
pub fn json_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(128);
    write_json(&mut out, value).expect("a value of strings and numbers serialises");
    String::from_utf8(out).expect("serde_json writes UTF-8, escapes are ASCII")
}

/// A JSON text written elsewhere, with the characters [`write_json`]
/// escapes written as `\uXXXX`: the same JSON value, safe for a terminal.
/// Borrows when there is none.
pub fn escape_json_text(json: &str) -> Cow<'_, str> {
    let bytes = json.as_bytes();
    if !maybe_unsafe(bytes) || next_unsafe(bytes, 0).is_none() {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    let mut done = 0;
    // Each character found starts and ends on a character boundary.
    while let Some((at, len, code)) = next_unsafe(bytes, done) {
        out.push_str(&json[done..at]);
        out.extend(unicode_escape(code).map(char::from));
        done = at + len;
    }
    out.push_str(&json[done..]);
    Cow::Owned(out)
}
