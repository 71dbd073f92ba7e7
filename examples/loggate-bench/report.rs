//! What the bench prints: the Markdown summary table on stdout (the
//! benchmark tables in README.md and docs/benchmarks.md are copied from it,
//! so a row's label and the form of its value are an interface), the
//! number formats used in it, and the progress lines on stderr.

/// The summary table, one row per measured figure, in the order added.
#[derive(Default)]
pub struct Report {
    rows: Vec<(String, String)>,
}

impl Report {
    pub fn row(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.rows.push((k.into(), v.into()));
    }

    pub fn print(&self) {
        println!("| Metric | Value |");
        println!("|---|---|");
        for (k, v) in &self.rows {
            println!("| {k} | {v} |");
        }
    }
}

/// A progress line on stderr.
pub fn progress(msg: impl AsRef<str>) {
    eprintln!("loggate-bench: {}", msg.as_ref());
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// KiB → "12.3 MiB".
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A CPU share → "42 %", or "n/a".
pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} %"))
        .unwrap_or_else(|| "n/a".into())
}

/// An error message made safe for a table cell.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// "N (first: error)", the value of a failure-count row.
pub fn failures(count: u64, first_error: Option<String>) -> String {
    format!(
        "{} (first: {})",
        thousands(count),
        cell(&first_error.unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(123), "123");
        assert_eq!(thousands(0), "0");
        assert_eq!(mib(1536), "1.5 MiB");
        assert_eq!(pct(Some(114.6)), "115 %");
        assert_eq!(pct(None), "n/a");
        assert_eq!(failures(2, Some("a|b".into())), "2 (first: a\\|b)");
    }
}
