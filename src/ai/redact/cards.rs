//! Card numbers in text: 13 to 19 digits, whole or in the groups cards
//! are printed in, with a card network's prefix and a valid Luhn digit;
//! not a dashed id's digits, nor a number right after a key that names
//! an id. Part of the second pass (`heuristics`); `value` asks the same
//! of JSON numbers.

use std::ops::Range;

pub(super) const CARD: &str = "[REDACTED:card]";

/// Pushes the spans of the card numbers in `b`; see the module doc.
pub(super) fn find(b: &[u8], spans: &mut Vec<(Range<usize>, &str)>) {
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A run of digit groups with single separators between them.
        let start = i;
        groups.clear();
        loop {
            let g = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            groups.push(g..i);
            if i + 1 < b.len() && matches!(b[i], b' ' | b'-') && b[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        // Digits glued to a word, a decimal point or a `+` (a phone
        // number) are not a card; leave out the groups that touch them.
        let glued_left =
            start > 0 && matches!(b[start - 1], b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'.' | b'+');
        let after = b.get(i).copied();
        let glued_right = matches!(after, Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
            || (matches!(after, Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        let first = usize::from(glued_left);
        let last = groups.len() - usize::from(glued_right);
        let mut g = first;
        while g < last {
            // The longest window of at most five groups starting here.
            // One joined to more digits by a `-` is part of a dashed id
            // (a traceparent's all-digit span id), not a card.
            let dashed_before =
                (g > 0 && b[groups[g].start - 1] == b'-') || (g == 0 && after_id_key(b, start));
            let found = (g..last.min(g + 5)).rev().find(|&h| {
                let dashed_after = h + 1 < groups.len() && b[groups[h].end] == b'-';
                !dashed_before && !dashed_after && is_card(b, &groups[g..=h])
            });
            match found {
                Some(h) => {
                    spans.push((groups[g].start..groups[h].end, CARD));
                    g = h + 1;
                }
                None => g += 1,
            }
        }
        // `i` is past the run; a run never starts inside another.
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
}

/// Whether the text before `start` is a key that names an id
/// (`span_id=`, `"requestId": `): a number there is an id, whatever its
/// digits.
fn after_id_key(b: &[u8], start: usize) -> bool {
    let floor = start.saturating_sub(40);
    let mut j = start;
    while j > floor && matches!(b[j - 1], b' ' | b'\t' | b':' | b'=' | b'"' | b'\'') {
        j -= 1;
    }
    j < start && names_an_id(&b[floor..j])
}

/// Whether a key (or the text up to a key's end) names an id: `id`,
/// `_id`, `span-id`, `spanId`, `userID`; not `paid`.
pub fn names_an_id(key: &[u8]) -> bool {
    let n = key.len();
    if n < 2 {
        return false;
    }
    let before = if n > 2 { key[n - 3] } else { b' ' };
    match &key[n - 2..] {
        b"id" => !before.is_ascii_alphabetic(),
        b"Id" | b"ID" => !before.is_ascii_uppercase(),
        _ => false,
    }
}

/// Whether these groups (with the one separator between each) are a card.
fn is_card(b: &[u8], groups: &[Range<usize>]) -> bool {
    let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let total: usize = sizes.iter().sum();
    if !(13..=19).contains(&total) {
        return false;
    }
    let printed = match sizes.as_slice() {
        [_] => true,
        [4, 6, 4] | [4, 6, 5] => true,
        [rest @ .., last] => {
            rest.len() >= 2 && rest.iter().all(|&s| s == 4) && (1..=4).contains(last)
        }
        [] => false,
    };
    let one_separator = groups.windows(2).all(|w| b[w[0].end] == b[groups[0].end]);
    if !printed || !one_separator {
        return false;
    }
    let digits: Vec<u8> = groups
        .iter()
        .flat_map(|g| b[g.clone()].iter().map(|d| d - b'0'))
        .collect();
    network_prefix(&digits) && luhn(&digits)
}

/// Card digits (a number's decimal digits) that are a card number.
pub fn is_card_number(digits: &str) -> bool {
    let b = digits.as_bytes();
    !b.is_empty()
        && b.iter().all(u8::is_ascii_digit)
        && is_card(b, std::slice::from_ref(&(0..b.len())))
}

/// Visa, Mastercard, American Express, Diners, Discover, JCB, UnionPay,
/// Maestro: a prefix and a length each of them issues.
fn network_prefix(d: &[u8]) -> bool {
    let n = d.len();
    let two = d[0] * 10 + d[1];
    let four = u32::from(two) * 100 + u32::from(d[2]) * 10 + u32::from(d[3]);
    match d[0] {
        4 => matches!(n, 13 | 16 | 19),
        5 => n >= 16,
        2 => n == 16 && (2221..=2720).contains(&four),
        3 => match two {
            34 | 37 => n == 15,
            35 => n >= 16,
            30 | 36 | 38 | 39 => n >= 14,
            _ => false,
        },
        6 => n >= 16,
        _ => false,
    }
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}
