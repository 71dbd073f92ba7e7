//! The `loggate` binary: parses the command line, loads the configuration,
//! sets up logging and runs the gateway. Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loggate::config::{Config, LogFormat};

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
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config),
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
    init_tracing(&config);
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
        Err(e) => {
            eprintln!("loggate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
