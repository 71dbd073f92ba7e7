//! How the tools read the model's arguments: the refusal it reads back
//! ([`ToolError`]), the parse of the argument text into a tool's own
//! `Args`, and the argument kinds every tool shares (a bounded count, a
//! time, a level). Pure: no history, no clock but `now_ms` for ages.

use chrono::DateTime;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::event::{Level, now_ms};

/// A refusal the model reads and can correct.
#[derive(Debug, PartialEq, Eq)]
pub struct ToolError(pub String);

impl<T: Into<String>> From<T> for ToolError {
    fn from(s: T) -> Self {
        ToolError(s.into())
    }
}

/// A tool's arguments from the model's text: empty text is no arguments.
pub fn parse<A: DeserializeOwned + Default>(arguments: &str) -> Result<A, ToolError> {
    if arguments.trim().is_empty() {
        return Ok(A::default());
    }
    serde_json::from_str(arguments)
        .map_err(|_| "the arguments are not a JSON object of the tool's parameters".into())
}

/// A whole-number argument with its default and bounds. Models send
/// numbers as strings and as floats; both are read, and a number out of
/// bounds is clamped rather than refused (the model meant "many").
#[derive(Debug, Clone, Copy)]
pub struct Count {
    pub name: &'static str,
    pub default: usize,
    pub min: usize,
    pub max: usize,
}

impl Count {
    pub fn read(&self, v: Option<&Value>) -> Result<usize, ToolError> {
        let Some(v) = v else {
            return Ok(self.default);
        };
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            Value::Null => return Ok(self.default),
            _ => None,
        }
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("{} must be a whole number", self.name))?;
        Ok((n.max(0.0) as usize).clamp(self.min, self.max))
    }
}

/// The spellings of an age's unit, and its length in milliseconds.
const AGE_UNITS: [(&[&str], i64); 4] = [
    (&["s", "sec", "secs", "seconds"], 1000),
    (&["m", "min", "mins", "minutes"], 60_000),
    (&["h", "hour", "hours"], 3_600_000),
    (&["d", "day", "days"], 86_400_000),
];

/// A time argument (`since`, `until`): RFC 3339, epoch milliseconds, or
/// an age such as `15m` (that long before now).
pub fn time(name: &str, v: &Value) -> Result<i64, ToolError> {
    let bad = || {
        ToolError(format!(
            "{name} must be RFC 3339, epoch milliseconds, or an age such as 15m, 2h, 1d"
        ))
    };
    let text = match v {
        Value::Number(n) => return n.as_i64().ok_or_else(bad),
        Value::String(s) => s.trim(),
        _ => return Err(bad()),
    };
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit = unit.trim().trim_end_matches(" ago");
    let unit_ms = AGE_UNITS
        .iter()
        .find(|(names, _)| names.contains(&unit))
        .map(|(_, ms)| *ms)
        .ok_or_else(bad)?;
    Ok(now_ms().saturating_sub(n.saturating_mul(unit_ms)))
}

/// A `level` argument: absent or blank is every level.
pub fn level(v: Option<&str>) -> Result<Option<Level>, ToolError> {
    let Some(l) = v.map(str::trim).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    Level::parse(l).map(Some).ok_or_else(|| {
        format!(
            "level {:?} is not one of trace, debug, info, warn, error, fatal",
            clip(l, 20)
        )
        .into()
    })
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    const LIMIT: Count = Count {
        name: "limit",
        default: 50,
        min: 1,
        max: 100,
    };

    #[test]
    fn a_count_reads_numbers_and_strings_and_clamps() {
        assert_eq!(LIMIT.read(None), Ok(50));
        assert_eq!(LIMIT.read(Some(&Value::Null)), Ok(50));
        assert_eq!(LIMIT.read(Some(&json!(7))), Ok(7));
        assert_eq!(LIMIT.read(Some(&json!(7.9))), Ok(7));
        assert_eq!(LIMIT.read(Some(&json!(" 12 "))), Ok(12));
        assert_eq!(LIMIT.read(Some(&json!(0))), Ok(1));
        assert_eq!(LIMIT.read(Some(&json!(-5))), Ok(1));
        assert_eq!(LIMIT.read(Some(&json!(1e9))), Ok(100));
        for bad in [json!("many"), json!(true), json!([1]), json!({"n": 1})] {
            assert_eq!(
                LIMIT.read(Some(&bad)),
                Err(ToolError("limit must be a whole number".into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_time_is_rfc3339_epoch_ms_or_an_age() {
        assert_eq!(
            time("since", &json!(1_700_000_000_000i64)),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            time("since", &json!("1700000000000")),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            time("since", &json!("2023-11-14T22:13:20Z")),
            Ok(1_700_000_000_000)
        );
        for (age, ms) in [
            ("30s", 30_000),
            ("15m", 900_000),
            ("15 minutes ago", 900_000),
            ("2h", 7_200_000),
            ("1 day", 86_400_000),
        ] {
            let before = now_ms();
            let t = time("since", &json!(age)).unwrap();
            let after = now_ms();
            assert!(before - ms <= t && t <= after - ms, "{age}");
        }
    }

    #[test]
    fn a_bad_time_names_its_argument() {
        for bad in [
            json!("yesterday"),
            json!("15y"),
            json!("m"),
            json!(1.5),
            json!(null),
        ] {
            let e = time("until", &bad).unwrap_err();
            assert!(e.0.starts_with("until must be RFC 3339"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn a_level_is_optional_and_its_spellings_are_read() {
        assert_eq!(level(None), Ok(None));
        assert_eq!(level(Some("  ")), Ok(None));
        assert_eq!(level(Some("WARNING")), Ok(Some(Level::Warn)));
        let e = level(Some("loud")).unwrap_err();
        assert!(e.0.starts_with("level \"loud\" is not one of"), "{e:?}");
    }

    #[test]
    fn clip_cuts_on_a_character_boundary() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdef", 3), "abc…");
        // "é" is two bytes: a cut inside it steps back before it.
        assert_eq!(clip("aé", 2), "a…");
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Args {
        query: Option<String>,
    }

    #[test]
    fn empty_arguments_are_the_defaults_and_garbage_is_refused() {
        assert_eq!(parse::<Args>(""), Ok(Args::default()));
        assert_eq!(parse::<Args>("  \n"), Ok(Args::default()));
        assert_eq!(
            parse::<Args>(r#"{"query": "x", "other": 1}"#),
            Ok(Args {
                query: Some("x".into())
            })
        );
        for bad in ["{", "null", "\"x\"", r#"{"query": 5}"#] {
            assert!(parse::<Args>(bad).is_err(), "{bad}");
        }
    }
}
