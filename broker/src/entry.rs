//! The broker's command-line entry point, in the library so that the `broker` binary and the
//! one-command stack (which runs the broker as a child process of its own binary) share it.

use std::process::ExitCode;

use crate::cli::{self, Command};
use crate::logging::LogFile;
use crate::server::{BROKER_VERSION, COMPATIBLE_VERSION};
use crate::signals::Signals;
use crate::{Options, Server};
use anyhow::Context;

/// Runs the broker as its binary does: parses `args` (without the program name), serves until
/// SIGINT or SIGTERM, and returns the exit code (2 for a bad command line).
pub fn main<I: IntoIterator<Item = String>>(args: I) -> ExitCode {
    let (command, warnings) = match cli::parse_args(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("broker: {e} (see 'broker --help')");
            return ExitCode::from(2);
        }
    };
    let opts = match command {
        Command::Version => {
            println!("broker: v{BROKER_VERSION} (nats-server v{COMPATIBLE_VERSION} protocol)");
            return ExitCode::SUCCESS;
        }
        Command::Help => {
            print!("{}", cli::usage());
            return ExitCode::SUCCESS;
        }
        Command::CheckConfig(_) => {
            println!("broker: configuration is valid");
            return ExitCode::SUCCESS;
        }
        Command::Signal(value) => return send_signal(&value),
        Command::Run(opts) => *opts,
    };
    let log_file = match crate::logging::init(&opts) {
        Ok(log_file) => log_file,
        Err(e) => {
            eprintln!("broker: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts, log_file)) {
        Ok(()) => {
            tracing::info!("Server Exiting..");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(opts: Options, log_file: Option<LogFile>) -> anyhow::Result<()> {
    let (shutdown, lame_duck) = Signals::install()?.split(log_file);
    let pid_file = opts.pid_file.clone();
    let ports_dir = opts.ports_file_dir.clone();
    let server = Server::bind(opts).await?;
    tracing::info!(
        "Starting broker v{BROKER_VERSION} (nats-server v{COMPATIBLE_VERSION} protocol)"
    );
    tracing::info!("Server ID: {}", server.server_id());
    if let Some(addr) = server.monitor_addr() {
        tracing::info!("Starting http monitor on {addr}");
    }
    tracing::info!(
        "Listening for client connections on {}",
        server.client_addr()
    );
    if let Some(path) = &pid_file {
        std::fs::write(path, std::process::id().to_string())
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
    }
    let ports_file = match &ports_dir {
        Some(dir) => Some(write_ports_file(dir, &server)?),
        None => None,
    };
    tracing::info!("Server is ready");
    let result = server
        .run(shutdown, lame_duck)
        .await
        .context("server stopped");
    for path in pid_file.iter().chain(ports_file.iter()) {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Writes `<exe>_<pid>.ports` as nats-server does, so harnesses can find a random port.
fn write_ports_file(dir: &std::path::Path, server: &Server) -> anyhow::Result<std::path::PathBuf> {
    let client = server.client_addr();
    let mut ports = serde_json::json!({ "nats": [format!("nats://{client}")] });
    if let Some(monitor) = server.monitor_addr() {
        ports["monitoring"] = serde_json::json!([format!("http://{monitor}")]);
    }
    let path = dir.join(format!("broker_{}.ports", std::process::id()));
    std::fs::write(&path, ports.to_string())
        .with_context(|| format!("cannot write ports file {}", path.display()))?;
    Ok(path)
}

/// `--signal`: sends the command's signal and exits 0, or prints why not and exits 1, as
/// nats-server.
fn send_signal(value: &str) -> ExitCode {
    let sent = crate::send_signal::parse(value).and_then(|request| {
        crate::send_signal::send(
            &request,
            crate::send_signal::running_brokers,
            crate::send_signal::kill,
        )
    });
    match sent {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("broker: {e}");
            ExitCode::FAILURE
        }
    }
}
