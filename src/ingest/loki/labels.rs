//! A Loki stream's labels, as a push carries them (protobuf: Prometheus
//! selector text; JSON: an object) and as Loki limits them: names, count,
//! sizes.

use std::borrow::Cow;

/// Most labels one stream may carry. Loki's own default is 15; a stream
/// over this is refused rather than turned into a huge `meta`.
pub const MAX_LABELS: usize = 64;
/// Longest label name and value, as Loki's defaults have them.
pub const MAX_LABEL_NAME: usize = 1024;
pub const MAX_LABEL_VALUE: usize = 2048;

/// A stream's labels (or an entry's structured metadata): names and
/// values, in the order given.
pub(super) type Labels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

pub(super) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Loki's limits on a stream's labels.
pub(super) fn check_labels(labels: &[(Cow<'_, str>, Cow<'_, str>)]) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "a stream has {} labels; the limit is {MAX_LABELS}",
            labels.len()
        ));
    }
    for (name, value) in labels {
        if name.len() > MAX_LABEL_NAME || !is_label_name(name) {
            let shown: String = name.chars().take(64).collect();
            return Err(format!(
                "invalid label name {shown:?}: use [a-zA-Z_][a-zA-Z0-9_]*, at most {MAX_LABEL_NAME} bytes"
            ));
        }
        if value.len() > MAX_LABEL_VALUE {
            return Err(format!(
                "label {name} is {} bytes long; the limit is {MAX_LABEL_VALUE}",
                value.len()
            ));
        }
    }
    Ok(())
}

/// Parses `{name="value", …}`, the label syntax of Prometheus that
/// Loki's protobuf streams carry, with Go's string escapes.
pub fn parse_labels(text: &str) -> Result<Labels<'static>, String> {
    let err = |what: &str| {
        format!(
            "stream labels {:?}: {what}",
            text.chars().take(80).collect::<String>()
        )
    };
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| err("expected {name=\"value\", …}"))?;
    let mut labels = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        if labels.len() == MAX_LABELS {
            return Err(format!("a stream has more than {MAX_LABELS} labels"));
        }
        let eq = rest.find('=').ok_or_else(|| err("a label without ="))?;
        let name = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        let mut chars = rest.char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(err("a label value must be quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    _ => return Err(err("an unknown escape in a label value")),
                },
                c => value.push(c),
            }
            if value.len() > MAX_LABEL_VALUE {
                return Err(format!(
                    "label {name} is longer than {MAX_LABEL_VALUE} bytes"
                ));
            }
        }
        let end = end.ok_or_else(|| err("an unterminated label value"))?;
        labels.push((Cow::Owned(name.to_owned()), Cow::Owned(value)));
        rest = rest[end..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(err("labels must be separated by commas"));
        }
    }
    check_labels(&labels)?;
    Ok(labels)
}
