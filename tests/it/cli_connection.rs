//! How the CLI finds its gateway, run as the real binary: named profiles
//! from `cli.toml` (and what beats them), `--token-file`, and https through
//! a real TLS front with a CA of the test's own, trusted with `--ca-file`
//! and refused without it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use testkit::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(60);
const ADMIN: &str = "connection-test-admin-token-0123456789";

struct Ran {
    code: Option<i32>,
    out: String,
    err: String,
}

/// Runs `loggate ARGS` with `cli.toml` at `config` and none of the
/// developer's own LOGGATE_* settings.
async fn loggate<A: AsRef<std::ffi::OsStr>>(
    config: &Path,
    args: &[A],
    env: &[(&str, &str)],
) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loggate"));
    cmd.args(args)
        .env("LOGGATE_CLI_CONFIG", config)
        .env_remove("LOGGATE_URL")
        .env_remove("LOGGATE_TOKEN")
        .env_remove("LOGGATE_PROFILE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .expect("ends in time")
        .expect("runs");
    Ran {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A directory of the test's own, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("loggate-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Dir(dir)
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gateway() -> InProcessGateway {
    start_with(|c| {
        c.auth.auth_token = Some(loggate::config::Secret::new(ADMIN));
        c.limits.connect_rate_per_ip = 0;
        c.limits.history_rate_per_ip = 0;
    })
}

#[tokio::test]
async fn profiles_give_url_and_token_and_flags_and_env_beat_them() {
    let gw = gateway();
    let (status, v) = gw
        .publish(&event("etl", Some("ws1"), None, "from history"))
        .await;
    assert_eq!(status, 202, "{v}");
    let dir = Dir::new("profiles");
    dir.write("admin.token", &format!("{ADMIN}\n"), 0o600);
    let closed = format!("http://127.0.0.1:{}", process::free_port());
    let config = dir.write(
        "cli.toml",
        &format!(
            r#"
default = "local"

[profiles.local]
url = "{url}"
token_file = "admin.token"

[profiles.elsewhere]
url = "{closed}"
token = "{ADMIN}"

[profiles.svc]
url = "{url}"
token = "{ETL_TOKEN}"
"#,
            url = gw.url("")
        ),
        0o600,
    );
    let tail = ["tail", "logs:etl:ws1", "--no-follow", "-o", "raw"];
    let with = |extra: &[&str]| -> Vec<String> {
        tail.iter().chain(extra).map(|s| s.to_string()).collect()
    };

    // The default profile: its URL, and its token from a file beside it.
    let r = loggate(&config, &tail, &[]).await;
    assert_eq!(
        (r.code, r.out.as_str()),
        (Some(0), "from history\n"),
        "{}",
        r.err
    );
    assert_eq!(r.err, "", "a 0600 file draws no warning");

    // A named one, by flag and by LOGGATE_PROFILE.
    let r = loggate(
        &config,
        &with(&["--profile", "elsewhere", "--retry-for", "1s"]),
        &[],
    )
    .await;
    assert_eq!(r.code, Some(4), "{}", r.err);
    assert!(r.err.contains(&closed), "{}", r.err);
    let r = loggate(
        &config,
        &with(&["--retry-for", "1s"]),
        &[("LOGGATE_PROFILE", "elsewhere")],
    )
    .await;
    assert_eq!(r.code, Some(4), "{}", r.err);

    // --url and LOGGATE_URL beat the profile's URL; its token still counts.
    let url = gw.url("");
    let r = loggate(
        &config,
        &with(&["--profile", "elsewhere", "--url", &url]),
        &[],
    )
    .await;
    assert_eq!(
        (r.code, r.out.as_str()),
        (Some(0), "from history\n"),
        "{}",
        r.err
    );
    let r = loggate(
        &config,
        &with(&["--profile", "elsewhere"]),
        &[("LOGGATE_URL", url.as_str())],
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.err);

    // --token and LOGGATE_TOKEN beat the profile's token.
    let r = loggate(&config, &with(&["--token", "wrong"]), &[]).await;
    assert_eq!(r.code, Some(3), "{}", r.err);
    let r = loggate(&config, &tail, &[("LOGGATE_TOKEN", "wrong")]).await;
    assert_eq!(r.code, Some(3), "{}", r.err);

    // --token-file on the command line.
    let file = dir.0.join("admin.token");
    let no_profile = dir.0.join("none.toml");
    let r = loggate(
        &no_profile,
        &with(&["--url", &url, "--token-file", file.to_str().expect("utf-8")]),
        &[],
    )
    .await;
    assert_eq!(
        (r.code, r.out.as_str()),
        (Some(0), "from history\n"),
        "{}",
        r.err
    );
    let r = loggate(
        &no_profile,
        &with(&["--url", url.as_str(), "--token-file", "/nonexistent/token"]),
        &[],
    )
    .await;
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("/nonexistent/token"), "{}", r.err);

    // publish takes a profile too; a token in a file others can read is
    // published, with a warning.
    let publish = |message: &'static str| {
        let config = config.clone();
        async move {
            let args = ["publish", "--profile", "svc", "--service", "etl"];
            let more = ["--workspace", "ws1", "--message", message];
            loggate(&config, &[&args[..], &more[..]].concat(), &[]).await
        }
    };
    let r = publish("via profile").await;
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert_eq!(r.err, "");
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let r = publish("readable").await;
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(r.err.contains("chmod 600"), "{}", r.err);
    let r = loggate(&config, &tail, &[]).await;
    assert_eq!(r.out, "from history\nvia profile\nreadable\n", "{}", r.err);
}

#[tokio::test]
async fn bad_profiles_are_usage_errors_that_say_what_is_wrong() {
    let dir = Dir::new("bad-profiles");
    let config = dir.write(
        "cli.toml",
        "[profiles.prod]\nurl = \"http://127.0.0.1:1\"\n[profiles.dev]\n",
        0o600,
    );
    let r = loggate(&config, &["tail", "logs:etl", "--profile", "staging"], &[]).await;
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(
        r.err.contains("\"staging\"") && r.err.contains("dev, prod"),
        "{}",
        r.err
    );

    let typo = dir.write("typo.toml", "[profiles.prod]\nurll = \"http://x\"\n", 0o600);
    let r = loggate(&typo, &["tail", "logs:etl", "--profile", "prod"], &[]).await;
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("urll"), "{}", r.err);

    let broken = dir.write("broken.toml", "[profiles.prod\n", 0o600);
    let r = loggate(&broken, &["tail", "logs:etl"], &[]).await;
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("broken.toml"), "{}", r.err);

    let r = loggate(
        &dir.0.join("missing.toml"),
        &["tail", "logs:etl", "--profile", "prod"],
        &[],
    )
    .await;
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("missing.toml"), "{}", r.err);

    let url = dir.write(
        "url.toml",
        "[profiles.p]\nurl = \"localhost:3002\"\n",
        0o600,
    );
    let r = loggate(&url, &["tail", "logs:etl", "--profile", "p"], &[]).await;
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("--url"), "{}", r.err);
}

/// Terminates TLS with `cert` and passes the bytes on to `upstream`, as a
/// load balancer in front of a gateway does.
async fn tls_front(upstream: SocketAddr, cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> SocketAddr {
    use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};
    let key = PrivateKeyDer::try_from(cert.signing_key.serialize_der()).expect("key");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut gateway) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut gateway).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_with_a_ca_file_and_an_untrusted_certificate_refused_at_once() {
    let gw = gateway();
    let upstream: SocketAddr = gw
        .url("")
        .trim_start_matches("http://")
        .parse()
        .expect("gateway address");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let front = tls_front(upstream, &cert).await;
    let dir = Dir::new("https");
    let ca = dir.write("ca.pem", &cert.cert.pem(), 0o644);
    let ca = ca.to_str().expect("utf-8");
    let url = format!("https://localhost:{}", front.port());
    let none = dir.0.join("none.toml");

    let r = loggate(
        &none,
        &[
            "publish",
            "--url",
            &url,
            "--ca-file",
            ca,
            "--token",
            ETL_TOKEN,
            "--service",
            "etl",
            "--workspace",
            "ws1",
            "--message",
            "over tls",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.err);
    let r = loggate(
        &none,
        &[
            "tail",
            "logs:etl:ws1",
            "--url",
            &url,
            "--ca-file",
            ca,
            "--token",
            ADMIN,
            "--no-follow",
            "-o",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.err);
    let events: Vec<Value> = r
        .out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(messages(&events), ["over tls"]);

    // The system's roots do not know this CA. Waiting will not change
    // that, so neither command retries (the window here is 10 minutes).
    for args in [
        &["tail", "logs:etl:ws1", "--token", ADMIN][..],
        &[
            "publish",
            "--token",
            ETL_TOKEN,
            "--service",
            "etl",
            "--message",
            "x",
        ][..],
    ] {
        let r = loggate(
            &none,
            &[args, &["--url", &url, "--retry-for", "10m"]].concat(),
            &[],
        )
        .await;
        assert_eq!(r.code, Some(4), "{args:?}: {}", r.err);
        assert!(r.err.contains("certificate"), "{args:?}: {}", r.err);
        assert!(
            !r.err.contains("retrying") && !r.err.contains("reconnecting"),
            "{}",
            r.err
        );
    }

    // A CA file that is not one is a usage error.
    let r = loggate(
        &none,
        &[
            "tail",
            "logs:etl",
            "--url",
            &url,
            "--ca-file",
            "/nonexistent.pem",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, Some(2), "{}", r.err);
    let junk = dir.write("junk.pem", "not a certificate\n", 0o644);
    let r = loggate(
        &none,
        &[
            "tail",
            "logs:etl",
            "--url",
            &url,
            "--ca-file",
            junk.to_str().expect("utf-8"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("junk.pem"), "{}", r.err);
}
