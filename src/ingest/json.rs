//! `meta` as it is delivered: at most 32 levels deep, numbers a 64-bit
//! float can hold, and compact. loggate passes `meta` on without building a
//! tree of it, so these are byte scans that know JSON's string rules.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::PublishError;

/// Deepest nesting `meta` may have. loggate passes `meta` on without
/// building a tree of it, so without this a 10,000-deep value would reach
/// every subscriber's JSON parser.
pub const MAX_META_DEPTH: usize = 32;

/// Calls `f(index, byte)` for every byte of a JSON text that lies outside
/// its strings (the quotes themselves included). The one place that knows
/// JSON's string and escape rules for the byte scans below.
fn outside_strings(text: &str, mut f: impl FnMut(usize, u8)) {
    let (mut in_string, mut escaped) = (false, false);
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        f(i, b);
    }
}

/// Nesting depth of a JSON text already known to be valid.
pub(super) fn json_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    outside_strings(text, |_, b| match b {
        b'[' | b'{' => {
            depth += 1;
            max = max.max(depth);
        }
        b']' | b'}' => depth = depth.saturating_sub(1),
        _ => {}
    });
    max
}

/// Whether every number in a JSON text already known to be valid fits a
/// 64-bit float. JSON allows any number of digits; a parser that reads
/// numbers as f64 (serde_json, Go, a browser's) refuses `1e400` or makes it
/// Infinity, so such a number in `meta` would break the event for them.
fn numbers_are_finite(text: &str) -> bool {
    let mut ok = true;
    // Where the number being read started.
    let mut start: Option<usize> = None;
    let mut end_number = |start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            ok &= text[s..end].parse::<f64>().is_ok_and(f64::is_finite);
        }
    };
    outside_strings(text, |i, b| {
        let in_number = matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
        match (start.is_some(), in_number) {
            (false, true) if b == b'-' || b.is_ascii_digit() => start = Some(i),
            (true, false) => end_number(&mut start, i),
            _ => {}
        }
    });
    end_number(&mut start, text.len());
    ok
}

/// `text`, valid JSON, without the whitespace between its tokens. JSON
/// allows raw line breaks there, and one left in `meta` would end an SSE
/// `data:` line early or split an NDJSON record in two, the second of the
/// publisher's choosing. Strings cannot hold raw control characters, so
/// they are copied as they are; key order and number spelling are kept.
/// Borrows when there is nothing to remove. On text that is not valid JSON
/// the result is unspecified, but it never panics.
pub fn minify_json(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    // `text[..copied]` has been dealt with.
    let mut copied = 0;
    outside_strings(text, |i, b| {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            // An ASCII byte is always a char boundary.
            out.push_str(&text[copied..i]);
            copied = i + 1;
        }
    });
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// `meta` as it is delivered: `null` dropped, its depth checked, and
/// compact (see [`minify_json`]).
pub fn clean_meta(
    meta: Option<&RawValue>,
    index: Option<usize>,
) -> Result<Option<Cow<'_, RawValue>>, PublishError> {
    let Some(meta) = meta.filter(|m| m.get() != "null") else {
        return Ok(None);
    };
    let invalid = |message: String| PublishError::InvalidEvent { index, message };
    if json_depth(meta.get()) > MAX_META_DEPTH {
        return Err(invalid(format!(
            "meta nests deeper than {MAX_META_DEPTH} levels"
        )));
    }
    if !numbers_are_finite(meta.get()) {
        return Err(invalid(
            "meta holds a number too large for a 64-bit float, which JSON parsers refuse or turn into Infinity".into(),
        ));
    }
    match minify_json(meta.get()) {
        Cow::Borrowed(_) => Ok(Some(Cow::Borrowed(meta))),
        Cow::Owned(text) => RawValue::from_string(text)
            .map(|m| Some(Cow::Owned(m)))
            .map_err(|e| invalid(format!("meta: {e}"))),
    }
}
