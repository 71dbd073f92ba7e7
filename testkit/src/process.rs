//! The real `loggate` binary as a child process: started with only the
//! environment a test gives it, its "listening on" line awaited with a
//! bounded wait, its stderr lines kept (and the last of them printed when
//! the test fails), its RSS readable, and killed by pid when the guard
//! drops. The binary's path is a parameter: pass
//! `env!("CARGO_BIN_EXE_loggate")` from the test.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::WAIT;

/// Any child process, killed by pid when dropped (for tests that handle
/// its output themselves).
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child gateway, killed by pid when dropped.
pub struct Proc {
    /// Names the gateway in the stderr printed when a test fails.
    pub name: String,
    pub child: Child,
    /// `host:port` it listens on (empty until the "listening" line).
    pub addr: String,
    /// Its stderr lines as they come; those up to the "listening" line are
    /// consumed by [`Proc::wait_listening`].
    pub lines: mpsc::Receiver<String>,
    /// Every stderr line so far, whoever read `lines`.
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let lines = self.log_lines();
            let from = lines.len().saturating_sub(80);
            eprintln!(
                "---- gateway {} ({}) stderr, last lines:",
                self.name, self.addr
            );
            for l in &lines[from..] {
                eprintln!("{l}");
            }
        }
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

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Reads stderr lines until "listening on http://ADDR" (at most
    /// `limit`) and sets `addr`.
    pub fn wait_listening(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.addr.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "gateway {}: no 'listening on http://' line within {limit:?}",
                    self.name
                )
            });
            if let Some(rest) = line.split("listening on http://").nth(1) {
                self.addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        }
    }
}

/// The binary at `bin` with a cleared environment, listening on an
/// ephemeral port of 127.0.0.1, stderr piped.
pub fn base_command(bin: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(bin);
    // Only the names these tests set reach the child.
    cmd.env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        // History in memory unless a test gives a DATA_DIR of its own
        // (and HISTORY_STORE=disk): two gateways never share a directory.
        .env("HISTORY_STORE", "memory")
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
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line.clone());
            // The test may have stopped listening; the log still keeps it.
            let _ = tx.send(line);
        }
    });
    Proc {
        name: "loggate".into(),
        child,
        addr: String::new(),
        lines: rx,
        log,
    }
}

/// Starts the binary and waits (at most [`WAIT`]) for its "listening on"
/// line.
pub fn spawn(cmd: Command) -> Proc {
    let mut proc = start(cmd);
    proc.wait_listening(WAIT);
    proc
}

/// Waits (at most `limit`, polling) for `child` to exit; `None` if it is
/// still running then.
pub fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to `pid` with kill(1); whether that succeeded.
pub fn sigterm(pid: u32) -> bool {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs")
        .success()
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

/// `N` different ports that were free a moment ago (bound on 127.0.0.1:0,
/// then released).
pub fn free_ports<const N: usize>() -> [u16; N] {
    // Hold every listener until all are bound, so the ports differ.
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// One port that was free a moment ago.
pub fn free_port() -> u16 {
    let [port] = free_ports::<1>();
    port
}

/// Sends `signal` (`STOP`, `CONT`, …) to `pid` with kill(1); whether that
/// succeeded.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs")
        .success()
}
