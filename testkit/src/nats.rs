//! A real `nats-server` child on free loopback ports, stoppable and
//! restartable on the same ports, killed by pid when dropped; its
//! monitoring endpoint tells which subjects clients subscribed to. Waits
//! are bounded by [`DEADLINE`].

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{Guard, free_ports};
use crate::{DEADLINE, POLL};

/// `NATS_SERVER` if set, else `nats-server` on `PATH`, else the usual
/// install locations (the Debian package puts it in /usr/sbin, which a
/// non-root `PATH` may lack).
fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/bin", "/usr/bin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .expect("nats-server is installed (scripts/test.sh installs it)")
}

fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A `nats-server` child on 127.0.0.1, killed by pid when dropped.
pub struct NatsServer {
    /// `None` while stopped.
    child: Option<Guard>,
    pub port: u16,
    /// The HTTP monitoring port (`/connz`).
    pub monitor_port: u16,
    auth: Option<(String, String)>,
    /// JetStream's store, when started with [`NatsServer::start_jetstream`];
    /// kept across restarts, removed when dropped.
    store: Option<PathBuf>,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.child = None;
        if let Some(dir) = &self.store {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_inner(None, None)
    }

    /// A server with JetStream on (`-js`), storing in a temporary directory
    /// of its own that survives [`NatsServer::restart`].
    pub fn start_jetstream() -> NatsServer {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("loggate-js-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("JetStream store directory");
        Self::start_inner(None, Some(dir))
    }

    /// A server that only accepts `user`/`pass`.
    pub fn start_with_auth(user: &str, pass: &str) -> NatsServer {
        Self::start_inner(Some((user.to_owned(), pass.to_owned())), None)
    }

    fn start_inner(auth: Option<(String, String)>, store: Option<PathBuf>) -> NatsServer {
        let [port, monitor_port] = free_ports::<2>();
        let mut server = NatsServer {
            child: None,
            port,
            monitor_port,
            auth,
            store,
        };
        server.launch();
        server
    }

    /// `nats://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "nats-server is already running");
        let mut cmd = Command::new(nats_server_bin());
        cmd.args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((user, pass)) = &self.auth {
            cmd.args(["--user", user, "--pass", pass]);
        }
        if let Some(dir) = &self.store {
            cmd.arg("-js").arg("-sd").arg(dir);
        }
        self.child = Some(Guard(cmd.spawn().expect("nats-server starts")));
        let deadline = Instant::now() + DEADLINE;
        while !(port_open(self.port) && port_open(self.monitor_port)) {
            if let Some(status) = self.child.as_mut().unwrap().0.try_wait().unwrap() {
                self.child = None;
                panic!("nats-server on port {} exited: {status}", self.port);
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not accept connections on port {} within {DEADLINE:?}",
                self.port
            );
            std::thread::sleep(POLL);
        }
    }

    /// Kills the server (SIGKILL, by pid) and waits until its port refuses
    /// connections.
    pub fn stop(&mut self) {
        // The guard kills it.
        self.child = None;
        let deadline = Instant::now() + DEADLINE;
        while port_open(self.port) {
            assert!(
                Instant::now() < deadline,
                "port {} still open after nats-server was killed",
                self.port
            );
            std::thread::sleep(POLL);
        }
    }

    /// Starts the server again on the same ports with the same options.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// The subjects of every client subscription, from `/connz?subs=1`.
    pub async fn subscriptions(&self) -> Vec<String> {
        let url = format!("http://127.0.0.1:{}/connz?subs=1", self.monitor_port);
        let res = tokio::time::timeout(DEADLINE, reqwest::get(&url))
            .await
            .expect("connz answered in time")
            .expect("connz request");
        let json: Value = res.json().await.expect("connz JSON");
        json["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c["subscriptions_list"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until some client subscribed to exactly `subject`.
    pub async fn wait_for_subscription(&self, subject: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let subs = self.subscriptions().await;
            if subs.iter().any(|s| s == subject) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no subscription to {subject:?} within {DEADLINE:?}; subscriptions: {subs:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}
