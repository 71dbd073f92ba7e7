//! Redaction of JSON values (`meta`): every string through the text
//! rules, whole values under keys that name a secret, card numbers as
//! numbers, and AWS key ids split over two strings.

use std::borrow::Cow;

use serde_json::Value;

use super::keys::{self, KeyKind};
use super::{Redactor, cards, heuristics, is_placeholder};

impl Redactor {
    /// Redacts every string inside a JSON value in place (object values,
    /// array items, nested), and replaces the whole value of any object
    /// key that names a secret (see `keys`: `db_pass`, `X-Api-Key`,
    /// `access_token`) by `[REDACTED:secret]`, or `[REDACTED:password]`
    /// for password-ish keys. Under a key that only hints at a secret
    /// (`key`, `auth`) a random-looking string is replaced. A number that
    /// is a card number becomes `[REDACTED:card]`, and an AWS key id split
    /// over two strings of one object or array goes in both. Object keys
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
                Value::Number(n) => {
                    if n.as_u64()
                        .is_some_and(|n| cards::is_card_number(&n.to_string()))
                    {
                        *v = Value::String("[REDACTED:card]".into());
                        count += 1;
                    }
                }
                Value::Array(items) => {
                    count += split_aws_ids(items.iter_mut());
                    stack.extend(items.iter_mut());
                }
                Value::Object(map) => {
                    count += split_aws_ids(map.values_mut());
                    for (key, item) in map.iter_mut() {
                        // A number under an id's key is an id, whatever
                        // its digits (`"span_id": 5161988305477887`).
                        if item.is_number() && cards::names_an_id(key.as_bytes()) {
                            continue;
                        }
                        match keys::kind(key) {
                            KeyKind::Secret(placeholder) if hides_something(key, item) => {
                                *item = Value::String(placeholder.to_owned());
                                count += 1;
                            }
                            KeyKind::Secret(_) => {}
                            KeyKind::Hint if random_string(item) => {
                                *item = Value::String("[REDACTED:secret]".into());
                                count += 1;
                            }
                            KeyKind::Hint | KeyKind::Plain => stack.push(item),
                        }
                    }
                }
                Value::Null | Value::Bool(_) => {}
            }
        }
        count
    }
}

/// Whether the value under a secret key may hold a secret (see
/// [`Redactor::value`] for what is kept).
fn hides_something(key: &str, value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) => false,
        Value::String(s) => !is_placeholder(s),
        Value::Number(_) => !key.to_ascii_lowercase().contains("tokens"),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A string that is one random-looking token (under a key that hints at
/// a secret).
fn random_string(value: &Value) -> bool {
    let Value::String(s) = value else {
        return false;
    };
    !is_placeholder(s) && heuristics::is_random_token(s)
}

/// AWS key ids split over two strings of one object or array
/// (`{"id_start": "AKIA", "id_rest": "IOSFODNN7EXAMPLE"}`): both go.
/// Linear: the lengths of the capitals-and-digits strings are noted
/// first, then each start is matched against them.
fn split_aws_ids<'a>(items: impl Iterator<Item = &'a mut Value>) -> usize {
    let mut items: Vec<&mut Value> = items.collect();
    let caps = |s: &str| {
        !s.is_empty()
            && s.len() < 20
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    let start = |s: &str| {
        caps(s)
            && ["AKIA", "ASIA", "ABIA", "ACCA"]
                .iter()
                .any(|p| s.starts_with(p))
    };
    let mut lengths = [false; 20];
    let mut wanted = [false; 20];
    for item in items.iter() {
        if let Value::String(s) = &**item
            && caps(s)
        {
            lengths[s.len()] = true;
            if start(s) {
                wanted[20 - s.len()] = true;
            }
        }
    }
    let mut count = 0;
    for item in items.iter_mut() {
        let hit = match &**item {
            Value::String(s) if caps(s) => (start(s) && lengths[20 - s.len()]) || wanted[s.len()],
            _ => false,
        };
        if hit {
            **item = Value::String("[REDACTED:aws_key]".into());
            count += 1;
        }
    }
    count
}
