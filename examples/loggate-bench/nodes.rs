//! The processes a run measures: one gateway, or (`--cluster`) one
//! nats-server and gateways A (publish) and B (subscribe) joined through it.
//! Owns their ports, their log file names, their start-up order and their
//! stop order (gateways before nats-server). Each process itself is a
//! [`Server`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::args::Args;
use crate::procfs::CpuUse;
use crate::report::{pct, progress};
use crate::server::Server;

/// How long a gateway or nats-server gets to exit after SIGTERM at the end.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// The processes under test: one gateway; or nats-server, node A (publish)
/// and node B (subscribe).
pub struct Nodes {
    /// One gateway, or A then B. Declared before `nats`, so they are
    /// dropped (stopped) before it.
    gateways: Vec<Server>,
    pub nats: Option<Server>,
    /// `nats-server --version`, of the binary that runs.
    pub nats_version: Option<String>,
}

impl Nodes {
    pub async fn start(args: &Args, client: &reqwest::Client) -> anyhow::Result<Nodes> {
        if args.cluster {
            Nodes::start_cluster(args, client).await
        } else {
            Nodes::start_single(args, client).await
        }
    }

    async fn start_single(args: &Args, client: &reqwest::Client) -> anyhow::Result<Nodes> {
        let port = free_ports(1)?[0];
        let mut server = Server::start(args, "gateway", port, &args.server_log, &[])?;
        announce(&server, "http");
        server.wait_healthy(client, args.setup_timeout()).await?;
        Ok(Nodes {
            gateways: vec![server],
            nats: None,
            nats_version: None,
        })
    }

    async fn start_cluster(args: &Args, client: &reqwest::Client) -> anyhow::Result<Nodes> {
        let timeout = args.setup_timeout();
        let ports = free_ports(3)?;
        // Locals drop in reverse order: on an early return the gateways
        // stop before nats-server.
        let mut nats = Server::start_nats(args, ports[0], &sibling_log(&args.server_log, "nats"))?;
        announce(&nats, "nats");
        nats.wait_listening(timeout).await?;
        let nats_version = version_of(nats.pid);
        let mut env = vec![("NATS_URL", format!("nats://{}", nats.addr))];
        if args.jetstream {
            env.push(("NATS_JETSTREAM", "true".to_owned()));
        }
        let log = |node| sibling_log(&args.server_log, node);
        let mut a = Server::start(args, "gateway A", ports[1], &log("a"), &env)?;
        let mut b = Server::start(args, "gateway B", ports[2], &log("b"), &env)?;
        for node in [&a, &b] {
            announce(node, "http");
        }
        a.wait_healthy(client, timeout).await?;
        b.wait_healthy(client, timeout).await?;
        let began = Instant::now();
        a.wait_ready(client, timeout).await?;
        b.wait_ready(client, timeout).await?;
        progress(format!(
            "both nodes /ready (NATS connected) after {:.0?}",
            began.elapsed()
        ));
        Ok(Nodes {
            gateways: vec![a, b],
            nats: Some(nats),
            nats_version,
        })
    }

    pub fn cluster(&self) -> bool {
        self.nats.is_some()
    }

    /// Where events are published: the gateway, or node A.
    pub fn publisher(&self) -> &Server {
        &self.gateways[0]
    }

    /// Where the subscribers are: the gateway, or node B.
    pub fn subscriber(&self) -> &Server {
        &self.gateways[self.gateways.len() - 1]
    }

    /// The gateways' pids, then nats-server's.
    pub fn pids(&self) -> Vec<u32> {
        self.gateways
            .iter()
            .chain(&self.nats)
            .map(|s| s.pid)
            .collect()
    }

    /// Fails if a process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for s in self.gateways.iter_mut().chain(&mut self.nats) {
            if let Some(status) = s.exited() {
                bail!("{} exited ({status})\n{}", s.name, s.log_tail());
            }
        }
        Ok(())
    }

    /// The CPU row's label suffix and value.
    pub fn cpu_row(&self, (procs, bench): CpuUse) -> (&'static str, String) {
        let all: Vec<String> = procs.into_iter().chain([bench]).map(pct).collect();
        let label = if self.cluster() {
            "CPU A / B / nats-server / bench"
        } else {
            "CPU server / bench"
        };
        (label, all.join(" / "))
    }

    /// Stops the gateways (SIGTERM, then SIGKILL after 15 s), then
    /// nats-server; one description for each.
    pub fn stop(&mut self) -> (String, Option<String>) {
        let cluster = self.cluster();
        let gateways: Vec<String> = self
            .gateways
            .iter_mut()
            .map(|s| {
                let what = s.stop(STOP_GRACE);
                progress(format!("{} {what}", s.name));
                if cluster {
                    format!("{}: {what}", s.name.trim_start_matches("gateway "))
                } else {
                    what
                }
            })
            .collect();
        let nats = self.nats.as_mut().map(|s| {
            let what = s.stop(STOP_GRACE);
            progress(format!("{} {what}", s.name));
            what
        });
        (gateways.join("; "), nats)
    }
}

/// "gateway pid 123 on http://127.0.0.1:4000 (log: …)".
fn announce(server: &Server, scheme: &str) {
    progress(format!(
        "{} pid {} on {scheme}://{} (log: {})",
        server.name,
        server.pid,
        server.addr,
        server.log.display()
    ));
}

/// `<binary of pid> --version`, trimmed; None if it cannot be had.
fn version_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|exe| Command::new(exe).arg("--version").output().ok())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `dir/stem.ext` → `dir/stem-suffix.ext`.
fn sibling_log(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "loggate-bench".into());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{suffix}"),
    };
    path.with_file_name(name)
}

/// `n` distinct free loopback ports (held open together while choosing, so
/// they differ; the tiny race with another process is acceptable).
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find a free loopback port")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<std::io::Result<Vec<u16>>>()
        .context("cannot find a free loopback port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_log_names() {
        assert_eq!(
            sibling_log(Path::new("target/loggate-bench-server.log"), "a"),
            PathBuf::from("target/loggate-bench-server-a.log")
        );
        assert_eq!(
            sibling_log(Path::new("server"), "nats"),
            PathBuf::from("server-nats")
        );
    }
}
