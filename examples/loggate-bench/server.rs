//! One child process under test, a gateway or nats-server: starting it with
//! the bench's clean environment, waiting until it serves, reading its log
//! and memory, and stopping it (SIGTERM, then SIGKILL). Dropping a
//! [`Server`] stops it, so an early error never leaves a process behind.
//! Which processes a run needs is `nodes.rs`'s business, not this file's.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use tokio::net::TcpStream;
use tokio::time::sleep;

use crate::args::Args;
use crate::procfs::ProcStatus;

/// How often a start-up wait asks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long one start-up probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// A child process: a gateway or nats-server. Dropping it stops the
/// process: SIGTERM, then SIGKILL if it has not exited in time.
pub struct Server {
    /// "gateway", "gateway A", "gateway B" or "nats-server".
    pub name: &'static str,
    child: Child,
    pub pid: u32,
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// Where its stderr goes; read for error messages and log counts.
    pub log: PathBuf,
    /// How it stopped, once it has: `stop` is then a no-op.
    stopped: Option<String>,
}

impl Server {
    /// Starts a gateway on `port`, logging to `log_path`, with `extra_env`
    /// on top of the bench's clean environment (and `--server-env` on top
    /// of that).
    pub fn start(
        args: &Args,
        name: &'static str,
        port: u16,
        log_path: &Path,
        extra_env: &[(&str, String)],
    ) -> anyhow::Result<Server> {
        ensure!(
            args.binary.is_file(),
            "gateway binary {} not found (run `cargo build --release` or pass --binary)",
            args.binary.display()
        );
        let mut command = gateway_command(args, port, true);
        fresh_data_dir(&mut command, log_path);
        command
            .envs(extra_env.iter().map(|(k, v)| (k, v)))
            .envs(args.server_env.iter().filter_map(|kv| kv.split_once('=')));
        let child = spawn_child(&mut command, log_path)
            .with_context(|| format!("cannot start {}", args.binary.display()))?;
        Ok(Server::new(name, child, port, log_path))
    }

    /// Starts a gateway on `port` with its per-service rate limits as
    /// configured (the built-in defaults, or `--server-env`), for a run
    /// that measures what the limits do.
    pub fn start_limited(
        args: &Args,
        name: &'static str,
        port: u16,
        log_path: &Path,
    ) -> anyhow::Result<Server> {
        ensure!(
            args.binary.is_file(),
            "gateway binary {} not found (run `cargo build --release` or pass --binary)",
            args.binary.display()
        );
        let mut command = gateway_command(args, port, false);
        fresh_data_dir(&mut command, log_path);
        command.envs(args.server_env.iter().filter_map(|kv| kv.split_once('=')));
        let child = spawn_child(&mut command, log_path)
            .with_context(|| format!("cannot start {}", args.binary.display()))?;
        Ok(Server::new(name, child, port, log_path))
    }

    /// Starts `nats-server -a 127.0.0.1 -p <port>`, logging to `log_path`.
    pub fn start_nats(args: &Args, port: u16, log_path: &Path) -> anyhow::Result<Server> {
        let binary = resolve_binary(&args.nats_server, Path::new("/usr/sbin/nats-server"));
        let mut command = Command::new(&binary);
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if args.jetstream {
            // Beside the log, emptied first: each run starts with no stream.
            let store = log_path.with_extension("js-store");
            let _ = std::fs::remove_dir_all(&store);
            command.arg("-js").arg("-sd").arg(&store);
        }
        let child = spawn_child(&mut command, log_path).with_context(|| {
            format!(
                "cannot start {} (install nats-server, e.g. `apt-get install nats-server`, \
                 or pass --nats-server)",
                binary.display()
            )
        })?;
        Ok(Server::new("nats-server", child, port, log_path))
    }

    /// Starts `command` (the peer server, say), its stderr to `log_path`;
    /// it is to listen on loopback `port`.
    pub fn spawn(
        name: &'static str,
        mut command: Command,
        port: u16,
        log_path: &Path,
    ) -> anyhow::Result<Server> {
        let child = spawn_child(&mut command, log_path)
            .with_context(|| format!("cannot start {:?}", command.get_program()))?;
        Ok(Server::new(name, child, port, log_path))
    }

    fn new(name: &'static str, child: Child, port: u16, log: &Path) -> Server {
        Server {
            name,
            pid: child.id(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: log.to_owned(),
            stopped: None,
        }
    }

    /// Waits until the process accepts TCP connections (for nats-server).
    pub async fn wait_listening(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let addr = self.addr;
        let probe =
            async || match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(()),
                _ => Err(String::new()),
            };
        self.poll_until(timeout, probe, |_| {
            format!("did not listen on {addr} within {timeout:?}")
        })
        .await
    }

    /// Polls `/healthz` until it answers `200 ok`.
    pub async fn wait_healthy(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let url = format!("http://{}/healthz", self.addr);
        let probe = async || {
            let resp = client.get(&url).timeout(PROBE_TIMEOUT).send().await;
            match resp {
                Ok(resp) if resp.status() == reqwest::StatusCode::OK => {
                    let body = resp.bytes().await;
                    body.is_ok_and(|b| b.trim_ascii() == b"ok")
                        .then_some(())
                        .ok_or_else(String::new)
                }
                _ => Err(String::new()),
            }
        };
        self.poll_until(timeout, probe, |_| {
            format!("did not answer /healthz within {timeout:?}")
        })
        .await
    }

    /// Polls `/ready` until it answers 200 (a cluster node: its NATS link
    /// is connected).
    pub async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let url = format!("http://{}/ready", self.addr);
        let probe = async || match client.get(&url).timeout(PROBE_TIMEOUT).send().await {
            Ok(resp) if resp.status() == reqwest::StatusCode::OK => Ok(()),
            Ok(resp) => {
                let status = resp.status();
                Err(format!(
                    "{status} {}",
                    resp.text().await.unwrap_or_default()
                ))
            }
            Err(e) => Err(e.to_string()),
        };
        self.poll_until(timeout, probe, |last| {
            format!("did not answer /ready with 200 within {timeout:?} (last: {last})")
        })
        .await
    }

    /// Runs `probe` every [`POLL_INTERVAL`] until it succeeds; fails if the
    /// process exits, or with `failure(last probe error)` after `timeout`.
    async fn poll_until(
        &mut self,
        timeout: Duration,
        mut probe: impl AsyncFnMut() -> Result<(), String>,
        failure: impl Fn(&str) -> String,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited during start-up ({status})\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let last = match probe().await {
                Ok(()) => return Ok(()),
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                bail!("{} {}\n{}", self.name, failure(&last), self.log_tail());
            }
            sleep(POLL_INTERVAL).await;
        }
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last 15 lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }

    /// Lines of the log that contain `needle` (ASCII case-insensitive).
    pub fn log_lines_containing(&self, needle: &str) -> usize {
        let needle = needle.to_ascii_lowercase();
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains(&needle))
            .count()
    }

    pub fn status(&self) -> anyhow::Result<ProcStatus> {
        ProcStatus::read(self.pid)
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns a description.
    pub fn stop(&mut self, grace: Duration) -> String {
        if let Some(s) = &self.stopped {
            return s.clone();
        }
        let result = self.terminate(grace);
        self.stopped = Some(result.clone());
        result
    }

    fn terminate(&mut self, grace: Duration) -> String {
        if let Some(status) = self.exited() {
            return format!("had already exited ({status})");
        }
        let began = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if sent {
            while began.elapsed() < grace {
                if let Some(status) = self.exited() {
                    return format!("exited after SIGTERM in {:.0?} ({status})", began.elapsed());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let status = self.child.wait();
        format!(
            "did not exit {} within {grace:?}; killed ({})",
            if sent {
                "after SIGTERM"
            } else {
                "(SIGTERM failed)"
            },
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string())
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stopped.is_none() {
            let what = self.stop(Duration::from_secs(5));
            eprintln!("loggate-bench: {} (pid {}) {what}", self.name, self.pid);
        }
    }
}

/// The gateway with a clean environment, so that a stray LOGGATE_CONFIG,
/// SERVICE_TOKENS or the like cannot change what is measured; with
/// `limits_off`, without its per-service publish limits.
fn gateway_command(args: &Args, port: u16, limits_off: bool) -> Command {
    // Room for every stream the bench opens (with --peer, the idle ones may
    // not all be gone when the measured ones connect).
    let max_connections = (args.subscribers + args.idle_connections + 64).max(10_000);
    let mut command = Command::new(&args.binary);
    command.env_clear();
    for keep in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(keep) {
            command.env(keep, v);
        }
    }
    command
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        // Its log goes to a file: no colour escapes.
        .env("NO_COLOR", "1")
        .env("MAX_CONNECTIONS", max_connections.to_string())
        // The bench is one address and one service measuring capacity;
        // the per-address and per-service rate limits would measure
        // themselves instead. `--server-env` can set them back.
        .env("MAX_CONNECTIONS_PER_IP", "0")
        .env("CONNECT_RATE_PER_IP", "0");
    if limits_off {
        command
            .env("PUBLISH_RATE_PER_SEC", "0")
            .env("PUBLISH_BYTES_PER_SEC", "0");
    }
    command
}

/// Gives the gateway a data directory of its own beside its log, emptied
/// first: every run starts with no history on disk, and two gateways of
/// one run never share a directory. (`--server-env HISTORY_STORE=memory`
/// measures the in-memory store instead.)
fn fresh_data_dir(command: &mut Command, log_path: &Path) {
    let dir = log_path.with_extension("data");
    let _ = std::fs::remove_dir_all(&dir);
    command.env("DATA_DIR", dir);
}

/// Spawns `command` with no stdin or stdout and its stderr to a fresh
/// `log_path`: how every process under test starts.
fn spawn_child(command: &mut Command, log_path: &Path) -> anyhow::Result<Child> {
    let log = create_log(log_path)?;
    Ok(command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()?)
}

/// `program` as given if it names a file or is found on `PATH`, else
/// `fallback` if that exists (Debian puts nats-server and nginx in
/// /usr/sbin, which is not always on `PATH`), else `program` unchanged, so
/// that starting it fails with its own name.
pub fn resolve_binary(program: &Path, fallback: &Path) -> PathBuf {
    let found = if program.components().count() > 1 {
        program.is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
    };
    if !found && fallback.is_file() {
        fallback.to_owned()
    } else {
        program.to_owned()
    }
}

fn create_log(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).ok();
    }
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_resolve_on_path_then_fallback() {
        let sh = Path::new("/bin/sh");
        assert_eq!(
            resolve_binary(Path::new("sh"), Path::new("/nope")),
            Path::new("sh")
        );
        assert_eq!(resolve_binary(Path::new("no-such-bin-x"), sh), sh);
        assert_eq!(
            resolve_binary(Path::new("no-such-bin-x"), Path::new("/nope")),
            Path::new("no-such-bin-x")
        );
        assert_eq!(resolve_binary(Path::new("/nope/x"), sh), sh);
    }
}
