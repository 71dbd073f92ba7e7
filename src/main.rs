//! The `loggate` binary: parses the command line, loads the configuration,
//! sets up logging and runs the gateway. Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loggate::config::Config;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "loggate",
    version,
    about = "Real-time log gateway: publish over HTTP, watch over SSE"
)]
struct Cli {
    /// A TOML file layered over the built-in defaults.
    #[arg(
        long,
        short,
        global = true,
        env = "LOGGATE_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Exit 0 if the gateway configured here answers `/healthz` (for
    /// container health checks; needs no curl in the image).
    Healthcheck,
    /// Mint a subscriber JWT (HS256, with the configured JWT_SECRET), or
    /// with --hash print a service token's digest for the config file.
    Token(TokenArgs),
    /// Publish stdin's lines (or --message) as events, in order, batched:
    /// `./job.sh 2>&1 | loggate publish --service etl --workspace ws1`.
    Publish(loggate::cli::publish::PublishArgs),
    /// Follow channels: history first, then live (`loggate tail logs:etl:ws1`).
    Tail(loggate::cli::tail::TailArgs),
    /// List the channels that hold history or have subscribers, within
    /// what the token may read (`loggate channels logs:*:ws1`).
    Channels(loggate::cli::channels::ChannelsArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Grant a workspace: `w` grants logs:*:w and everything below it.
    #[arg(long = "workspace", value_name = "W")]
    workspaces: Vec<String>,
    /// Grant a channel pattern, e.g. logs:etl:ws1 or logs:*:ws2.
    #[arg(long = "channel", value_name = "PATTERN")]
    channels: Vec<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// The token's subject (shows up nowhere but in your own logs).
    #[arg(long)]
    sub: Option<String>,
    /// Print `sha256:<hex>` of this service token instead, for
    /// `[service_tokens]` in a config file.
    #[arg(long, value_name = "SERVICE_TOKEN", conflicts_with_all = ["workspaces", "channels", "sub"])]
    hash: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config),
        Command::Healthcheck => healthcheck(cli.config),
        Command::Token(args) => token(cli.config, args),
        Command::Tail(args) => loggate::cli::run("tail", loggate::cli::tail::run(args)),
        Command::Publish(args) => loggate::cli::run("publish", loggate::cli::publish::run(args)),
        Command::Channels(args) => loggate::cli::run("channels", loggate::cli::channels::run(args)),
    }
}

fn token(config_file: Option<PathBuf>, args: TokenArgs) -> ExitCode {
    if let Some(service_token) = args.hash {
        println!("{}", loggate::digest::written_digest(&service_token));
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env(config_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loggate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(secret) = &config.auth.jwt_secret else {
        eprintln!("loggate: token: set JWT_SECRET (tokens are signed with it)");
        return ExitCode::from(2);
    };
    if args.workspaces.is_empty() && args.channels.is_empty() {
        eprintln!("loggate: token: grant something: --workspace W and/or --channel PATTERN");
        return ExitCode::from(2);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = loggate::auth::Claims {
        exp: Some(now.saturating_add(args.ttl)),
        iat: Some(now),
        sub: args.sub,
        channels: args.channels,
        workspaces: args.workspaces,
    };
    // Refuse to mint what the gateway would refuse to accept.
    let check = loggate::auth::SubscriberAuth::new(&config.auth)
        .map_err(|e| e.to_string())
        .and_then(|auth| {
            let minted =
                loggate::auth::mint_hs256(secret.expose(), &claims).map_err(|e| e.to_string())?;
            auth.authenticate(Some(&minted))
                .map_err(|e| e.to_string())?;
            Ok(minted)
        });
    match check {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loggate: token: {e}");
            ExitCode::from(2)
        }
    }
}

fn healthcheck(config_file: Option<PathBuf>) -> ExitCode {
    use std::io::{Read, Write};
    use std::time::Duration;
    let addr = match Config::from_env(config_file.as_deref()).and_then(|c| c.listen_addr()) {
        Ok(mut a) => {
            if a.ip().is_unspecified() {
                a.set_ip(match a.ip() {
                    std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            a
        }
        Err(e) => {
            eprintln!("loggate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let probe = || -> std::io::Result<bool> {
        let timeout = Duration::from_secs(3);
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut answer = Vec::new();
        s.take(4096).read_to_end(&mut answer)?;
        Ok(answer.starts_with(b"HTTP/1.1 200"))
    };
    match probe() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("loggate: {addr} answered /healthz with an error");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("loggate: cannot reach {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config_file: Option<PathBuf>) -> ExitCode {
    let config = match Config::from_env(config_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loggate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let logging = loggate::logging::init(&config);
    raise_open_file_limit(config.server.max_connections);
    let code = serve_logged(config);
    logging.finish();
    code
}

fn serve_logged(config: Config) -> ExitCode {
    let addr = match config.listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loggate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("loggate: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = actix_web::rt::System::new().block_on(loggate::serve(
        config,
        listener,
        loggate::server::shutdown_signal(),
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A setting only its consumer can check (a key file that does not
        // parse) is still a configuration error.
        // Another gateway holds DATA_DIR: as wrong a setting as a bad value.
        Err(e)
            if matches!(
                e.downcast_ref::<loggate::store::StoreError>(),
                Some(loggate::store::StoreError::Locked { .. })
            ) =>
        {
            eprintln!("loggate: {e}");
            ExitCode::from(2)
        }
        Err(e) if e.downcast_ref::<loggate::config::ConfigError>().is_some() => {
            eprintln!("loggate: configuration error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("loggate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Each subscriber holds two descriptors (its socket, and the session's
/// duplicate that can reset it), so `MAX_CONNECTIONS` needs more than the
/// 1024 a shell's soft limit often is. The soft limit is raised to the hard
/// one, as Go's runtime and nginx's `worker_rlimit_nofile` do, and a limit
/// still too low for the configured connections is said at start rather
/// than found as `accept` errors under load.
fn raise_open_file_limit(max_connections: usize) {
    #[cfg(target_os = "linux")]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write `limit`.
        let soft = unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
            limit.rlim_cur
        };
        // Two per subscriber, and room for publishers, NATS and logs.
        let needed = (max_connections as u64).saturating_mul(2) + 1024;
        if soft < needed {
            tracing::warn!(
                open_files = soft,
                needed,
                "the open-file limit is below what MAX_CONNECTIONS ({max_connections}) needs; raise it (ulimit -n, LimitNOFILE=) or lower MAX_CONNECTIONS"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = max_connections;
}
