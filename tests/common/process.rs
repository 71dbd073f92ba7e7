//! The real `loggate` binary as a child process: started with only the
//! environment a test gives it, its "listening on" line awaited with a
//! bounded wait, its stderr lines kept, its RSS readable, and killed by pid
//! when the guard drops.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use super::WAIT;

pub const BIN: &str = env!("CARGO_BIN_EXE_loggate");

/// Any child process, killed by pid when dropped (for tests that handle
/// its output themselves).
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child gateway process, killed by pid when dropped.
pub struct Proc {
    pub child: Child,
    /// `host:port` it listens on (empty until the "listening" line).
    pub addr: String,
    /// stderr lines after the "listening" line.
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory now.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

/// The binary with a cleared environment listening on an ephemeral port.
pub fn base_command() -> Command {
    let mut cmd = Command::new(BIN);
    // Only the names these tests set reach the child.
    cmd.env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the child and forwards its stderr lines; the guard owns it from
/// the start, so a panic in the caller kills it.
pub fn start(mut cmd: Command) -> Proc {
    let mut child = cmd.spawn().expect("binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Proc {
        child,
        addr: String::new(),
        lines: rx,
    }
}

/// Starts the binary and waits (bounded) for its "listening on" line.
pub fn spawn(cmd: Command) -> Proc {
    let mut proc = start(cmd);
    let deadline = Instant::now() + WAIT;
    while proc.addr.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = proc
            .lines
            .recv_timeout(left)
            .expect("a 'listening on' line in time");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            proc.addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    }
    proc
}

/// Resident memory of process `pid`, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc status")
}
