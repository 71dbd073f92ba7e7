//! The two servers of a side-by-side run and how the bench talks to each:
//! starting a fresh one (loggate through [`Server::start`]; nginx with
//! Nchan from the template in `scripts/nchan/`, in a directory of its own),
//! the stream a subscriber opens, where publishes go, which processes to
//! weigh and time (nginx's master and its workers), and the versions.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};

use crate::args::{Args, Peer};
use crate::procfs::{children, pss_kib};
use crate::publish::{Endpoint, channel_name, stream_path};
use crate::server::{Server, resolve_binary};

/// The channel the idle connections of the memory step subscribe to, apart
/// from the measured ones.
const IDLE_CHANNEL: &str = "idle";

/// loggate, or the peer it is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Loggate,
    Nchan,
}

impl Target {
    pub fn peer(peer: Peer) -> Target {
        match peer {
            Peer::Nchan => Target::Nchan,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Loggate => "loggate",
            Target::Nchan => "Nchan",
        }
    }

    /// The request target of a stream on measured channel `c`.
    pub fn stream(self, c: usize) -> String {
        match self {
            Target::Loggate => stream_path(&channel_name(c)),
            Target::Nchan => format!("/sub/c{c}"),
        }
    }

    /// The request target of an idle stream, on a channel nobody publishes to.
    pub fn idle_stream(self) -> String {
        match self {
            Target::Loggate => stream_path(&format!("logs:etl:bench:{IDLE_CHANNEL}")),
            Target::Nchan => format!("/sub/{IDLE_CHANNEL}"),
        }
    }

    /// Starts a fresh server for run `run`, on a free port, and waits until
    /// it answers `/healthz`.
    pub async fn start(
        self,
        args: &Args,
        client: &reqwest::Client,
        run: usize,
        port: u16,
    ) -> anyhow::Result<Running> {
        let mut server = match self {
            Target::Loggate => Server::start(args, "gateway", port, &args.server_log, &[])?,
            Target::Nchan => start_nginx(args, run, port)?,
        };
        server.wait_healthy(client, args.setup_timeout()).await?;
        Ok(Running {
            target: self,
            server,
        })
    }
}

/// A started server.
pub struct Running {
    pub target: Target,
    pub server: Server,
}

impl Running {
    pub fn endpoint(&self) -> Endpoint {
        let addr = self.server.addr;
        match self.target {
            Target::Loggate => Endpoint::Loggate(format!("http://{addr}/api/logs/publish")),
            Target::Nchan => Endpoint::Nchan(format!("http://{addr}")),
        }
    }

    /// Its processes: the gateway; nginx's master and its workers.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.server.pid];
        pids.extend(children(self.server.pid));
        pids
    }

    /// The Pss of all its processes together, in KiB.
    pub fn pss_kib(&self) -> anyhow::Result<u64> {
        self.pids()
            .into_iter()
            .map(|pid| {
                pss_kib(pid).with_context(|| format!("cannot read /proc/{pid}/smaps_rollup"))
            })
            .sum()
    }

    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.server.exited() {
            anyhow::bail!(
                "{} exited ({status})\n{}",
                self.server.name,
                self.server.log_tail()
            );
        }
        Ok(())
    }
}

/// nginx for run `run`: the template with its port and a fresh directory
/// `target/bench-nchan/run-<run>` filled in, in the foreground.
fn start_nginx(args: &Args, run: usize, port: u16) -> anyhow::Result<Server> {
    let template = std::fs::read_to_string(&args.nchan_config).with_context(|| {
        format!(
            "cannot read the Nchan configuration {}",
            args.nchan_config.display()
        )
    })?;
    let base = std::env::current_dir()?.join("target/bench-nchan");
    let prefix = base.join(format!("run-{run}"));
    if prefix.exists() {
        std::fs::remove_dir_all(&prefix)
            .with_context(|| format!("cannot clear {}", prefix.display()))?;
    }
    std::fs::create_dir_all(&prefix)
        .with_context(|| format!("cannot create {}", prefix.display()))?;
    let prefix_text = prefix.to_str().context("non-UTF-8 path")?;
    let config = template
        .replace("@PORT@", &port.to_string())
        .replace("@PREFIX@", prefix_text);
    ensure!(
        !config.contains('@'),
        "{} has a placeholder other than @PORT@ and @PREFIX@",
        args.nchan_config.display()
    );
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, config).with_context(|| format!("cannot write {}", conf.display()))?;
    let binary = nginx_binary(args);
    let mut command = Command::new(&binary);
    command
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(prefix.join("error.log"));
    Server::spawn("nginx", command, port, &prefix.join("stderr.log")).with_context(|| {
        format!(
            "cannot start {} (install Debian's nginx and libnginx-mod-nchan: \
             scripts/bench.sh --peer nchan does)",
            binary.display()
        )
    })
}

/// `--nginx`, or /usr/sbin/nginx when that is not on PATH.
fn nginx_binary(args: &Args) -> PathBuf {
    resolve_binary(&args.nginx, Path::new("/usr/sbin/nginx"))
}

/// What ran, for the table and the raw results: loggate's `--version`,
/// nginx's `-v` and the Nchan package's version.
pub fn versions(args: &Args, peer: Target) -> Vec<(String, String)> {
    let output = |mut c: Command| {
        c.output().ok().map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_owned()
        })
    };
    let mut out = Vec::new();
    let mut loggate = Command::new(&args.binary);
    loggate.arg("--version");
    out.push((
        "loggate".to_owned(),
        output(loggate).unwrap_or_else(|| "unknown".into()),
    ));
    if peer == Target::Nchan {
        let mut nginx = Command::new(nginx_binary(args));
        nginx.arg("-v");
        out.push((
            "nginx".to_owned(),
            output(nginx).unwrap_or_else(|| "unknown".into()),
        ));
        let mut dpkg = Command::new("dpkg-query");
        dpkg.args(["-W", "-f=${Version}", "libnginx-mod-nchan"]);
        out.push((
            "Nchan (libnginx-mod-nchan)".to_owned(),
            output(dpkg)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "unknown".into()),
        ));
    }
    out
}
