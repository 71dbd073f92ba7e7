//! The side-by-side table: for each figure, loggate's and the peer's median
//! over the runs with their range, the median of the per-run ratios (run
//! `i` of loggate against run `i` of the peer, measured one after the
//! other, so that the box's drift cancels), and the target it is held to.

use super::run::{FixedRate, RunResult};
use super::target::Target;
use crate::args::Args;
use crate::report::{cell, thousands};

/// What a figure is held to.
#[derive(Clone, Copy)]
enum Goal {
    /// The median ratio loggate / peer at most this.
    RatioAtMost(f64),
    /// The median ratio at least this.
    RatioAtLeast(f64),
    /// loggate's median below this.
    Below(f64),
    /// loggate's median at least this.
    AtLeast(f64),
    /// loggate's value 0 in every run.
    ZeroInEveryRun,
}

impl Goal {
    fn text(self) -> String {
        match self {
            Goal::RatioAtMost(x) => format!("ratio ≤ {x}"),
            Goal::RatioAtLeast(x) => format!("ratio ≥ {x}"),
            Goal::Below(x) => format!("loggate < {x}"),
            Goal::AtLeast(x) => format!("loggate ≥ {}", thousands(x as u64)),
            Goal::ZeroInEveryRun => "loggate 0 in every run".into(),
        }
    }

    fn met(self, loggate: &[f64], ratios: &[f64]) -> Option<bool> {
        let m = |v: &[f64]| median(v);
        Some(match self {
            Goal::RatioAtMost(x) => m(ratios)? <= x,
            Goal::RatioAtLeast(x) => m(ratios)? >= x,
            Goal::Below(x) => m(loggate)? < x,
            Goal::AtLeast(x) => m(loggate)? >= x,
            Goal::ZeroInEveryRun => !loggate.is_empty() && loggate.iter().all(|v| *v == 0.0),
        })
    }
}

/// A fixed-rate row: its name, how to read it off the rate's figures, how
/// to show it, and its goal.
type RateRow = (
    String,
    fn(&FixedRate) -> f64,
    fn(f64) -> String,
    Option<Goal>,
);

/// Reads one figure off a run; None if the run has no such figure.
type Read = Box<dyn Fn(&RunResult) -> Option<f64>>;

/// One row: a label, how to read the figure off a run, how to show it.
struct Figure {
    label: String,
    value: Read,
    show: fn(f64) -> String,
    goal: Option<Goal>,
}

fn figure(
    label: impl Into<String>,
    value: impl Fn(&RunResult) -> Option<f64> + 'static,
    show: fn(f64) -> String,
    goal: Option<Goal>,
) -> Figure {
    Figure {
        label: label.into(),
        value: Box::new(value),
        show,
        goal,
    }
}

fn whole(v: f64) -> String {
    thousands(v.round().max(0.0) as u64)
}

fn two(v: f64) -> String {
    format!("{v:.2}")
}

/// The figures in table order; the targets are those of issue 14.
fn figures(args: &Args) -> Vec<Figure> {
    let mut f = vec![
        figure(
            format!(
                "Idle SSE connection: server memory, KiB (Pss, {} connections)",
                thousands(args.idle_connections as u64)
            ),
            |r| Some(r.idle.kib_per_connection),
            two,
            Some(Goal::RatioAtMost(1.1)),
        ),
        figure(
            "Full speed, 1 event per POST: deliveries/s",
            |r| Some(r.max_rate.deliveries_per_s),
            whole,
            Some(Goal::RatioAtLeast(1.3)),
        ),
        figure(
            "Full speed: events published/s",
            |r| Some(r.max_rate.events_per_s),
            whole,
            None,
        ),
        figure(
            "Full speed: server CPU µs per delivery",
            |r| Some(r.max_rate.cpu_us_per_delivery),
            two,
            None,
        ),
        figure(
            "Full speed: deliveries lost",
            |r| Some(r.max_rate.lost as f64),
            whole,
            None,
        ),
    ];
    let per_sub = args.subscribers / args.channels.max(1);
    for (i, &rate) in args.rates.iter().enumerate() {
        let at500 = (rate == 500.0).then_some(());
        let rows: [RateRow; 7] = [
            (
                "server CPU µs per delivery".into(),
                |x| x.cpu_us_per_delivery,
                two,
                at500.map(|_| Goal::RatioAtMost(0.7)),
            ),
            ("latency p50, ms".into(), |x| x.p50_ms, two, None),
            (
                "latency p99, ms".into(),
                |x| x.p99_ms,
                two,
                at500.map(|_| Goal::Below(3.0)),
            ),
            ("latency p99.9, ms".into(), |x| x.p999_ms, two, None),
            ("latency max, ms".into(), |x| x.max_ms, two, None),
            (
                "events achieved/s".into(),
                |x| x.achieved_per_s,
                whole,
                None,
            ),
            (
                format!("× {per_sub} subscribers per channel: deliveries lost"),
                |x| x.lost as f64,
                whole,
                (rate == 2000.0).then_some(Goal::ZeroInEveryRun),
            ),
        ];
        for (name, read, show, goal) in rows {
            let sep = if name.starts_with('×') { " " } else { ": " };
            f.push(figure(
                format!("{rate}/s{sep}{name}"),
                move |r| r.rates.get(i).map(read),
                show,
                goal,
            ));
        }
    }
    f.push(figure(
        format!(
            "Batched ingest ({} per POST, {}-byte messages), no subscribers: events/s",
            args.ingest_batch, args.message_bytes
        ),
        |r| r.ingest.as_ref().map(|i| i.events_per_s),
        whole,
        Some(Goal::AtLeast(500_000.0)),
    ));
    f
}

/// The median; None for no values.
fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// "median (min–max)", or "median" for one value, or "—".
fn spread(v: &[f64], show: fn(f64) -> String) -> String {
    let Some(m) = median(v) else {
        return "—".into();
    };
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.len() < 2 || lo == hi {
        show(m)
    } else {
        format!("{} ({}–{})", show(m), show(lo), show(hi))
    }
}

/// Prints the table for `results` (loggate's and `peer`'s runs, in any order).
pub fn print(results: &[RunResult], args: &Args, peer: Target) {
    let of = |t: Target| -> Vec<&RunResult> {
        results.iter().filter(|r| r.server == t.name()).collect()
    };
    let (ours, theirs) = (of(Target::Loggate), of(peer));
    println!(
        "| Figure | loggate | {} | ratio loggate / {} | target | met |",
        peer.name(),
        peer.name()
    );
    println!("|---|---|---|---|---|---|");
    for f in figures(args) {
        let lv: Vec<f64> = ours.iter().filter_map(|r| (f.value)(r)).collect();
        let pv: Vec<f64> = theirs.iter().filter_map(|r| (f.value)(r)).collect();
        // Run i of one against run i of the other.
        let ratios: Vec<f64> = ours
            .iter()
            .zip(&theirs)
            .filter_map(|(a, b)| Some((f.value)(a)? / (f.value)(b)?))
            .filter(|x| x.is_finite())
            .collect();
        let ratio = if ratios.is_empty() {
            "—".into()
        } else {
            spread(&ratios, |x| format!("{x:.2}×"))
        };
        let (goal, met) = match f.goal {
            Some(g) => (
                g.text(),
                match g.met(&lv, &ratios) {
                    Some(true) => "✓",
                    Some(false) => "✗",
                    None => "?",
                },
            ),
            None => (String::new(), ""),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            cell(&f.label),
            spread(&lv, f.show),
            spread(&pv, f.show),
            ratio,
            goal,
            met
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_spreads_and_goals() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(spread(&[2.0, 1.0, 3.0], two), "2.00 (1.00–3.00)");
        assert_eq!(spread(&[1500.0], whole), "1,500");
        assert_eq!(
            Goal::RatioAtMost(0.7).met(&[], &[0.6, 0.8, 0.65]),
            Some(true)
        );
        assert_eq!(Goal::RatioAtLeast(1.3).met(&[], &[1.2]), Some(false));
        assert_eq!(Goal::ZeroInEveryRun.met(&[0.0, 1.0], &[]), Some(false));
        assert_eq!(Goal::Below(3.0).met(&[], &[]), None);
    }
}
