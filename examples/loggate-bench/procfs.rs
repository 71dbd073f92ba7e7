//! What the benchmark reads from `/proc`: a process's resident memory, the
//! CPU time of the processes under test and of the bench itself, and the
//! open-file limit. Linux only; a figure that cannot be read is `None`,
//! never a guess.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, anyhow};

/// Memory figures from `/proc/<pid>/status`, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct ProcStatus {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak of `VmRSS` so far.
    pub hwm_kib: u64,
}

impl ProcStatus {
    pub fn read(pid: u32) -> anyhow::Result<ProcStatus> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| anyhow!("no {name} in {path}"))
        };
        Ok(ProcStatus {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }
}

/// `Pss` from `/proc/<pid>/smaps_rollup`, in KiB: the process's resident
/// memory with each shared page split among the processes that map it, so
/// that the figures of nginx's master and workers add up to what they cost
/// together.
pub fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The pids of `pid`'s children (nginx's workers), from the `ppid` field of
/// every `/proc/<n>/stat`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&n| {
            std::fs::read_to_string(format!("/proc/{n}/stat"))
                .ok()
                .and_then(|t| {
                    let rest = &t[t.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// utime + stime, in clock ticks, from a `/proc/.../stat` file.
fn cpu_ticks(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`, which may itself contain spaces; the first
    // of them is field 3 (state), so utime (14) and stime (15) are 11 and 12.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn pid_cpu_ticks(pid: u32) -> Option<u64> {
    cpu_ticks(&format!("/proc/{pid}/stat"))
}

/// The soft open-file limit of this process (which the gateway inherits).
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 if it cannot be asked.
pub fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

/// CPU use of the child processes and of this process over a stretch of time.
pub struct CpuMeter {
    pids: Vec<u32>,
    /// Each child's ticks at the start, in the order of `pids`.
    procs: Vec<Option<u64>>,
    /// This process's ticks at the start.
    bench: Option<u64>,
    at: Instant,
}

/// % of one core of each child (in the order given to [`CpuMeter::start`]),
/// then the bench's own %.
pub type CpuUse = (Vec<Option<f64>>, Option<f64>);

impl CpuMeter {
    pub fn start(pids: &[u32]) -> CpuMeter {
        CpuMeter {
            pids: pids.to_vec(),
            procs: pids.iter().map(|&p| pid_cpu_ticks(p)).collect(),
            bench: cpu_ticks("/proc/self/stat"),
            at: Instant::now(),
        }
    }

    /// CPU seconds all the children used together since
    /// [`CpuMeter::start`]; None if one of them could not be read.
    pub fn children_seconds(&self, tck: f64) -> Option<f64> {
        let mut ticks = 0;
        for (&pid, &before) in self.pids.iter().zip(&self.procs) {
            ticks += pid_cpu_ticks(pid)?.saturating_sub(before?);
        }
        Some(ticks as f64 / tck)
    }

    /// The use since [`CpuMeter::start`]; `tck` is [`clock_ticks_per_sec`].
    pub fn finish(&self, tck: f64) -> CpuUse {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let pct = |before: Option<u64>, after: Option<u64>| {
            Some(after?.saturating_sub(before?) as f64 / tck / wall * 100.0)
        };
        (
            self.pids
                .iter()
                .zip(&self.procs)
                .map(|(&pid, &before)| pct(before, pid_cpu_ticks(pid)))
                .collect(),
            pct(self.bench, cpu_ticks("/proc/self/stat")),
        )
    }
}
