//! The `broker` binary: parses the command line and runs the server until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use broker::options::{Auth, UserPass};
use broker::{Options, Server};

fn main() -> ExitCode {
    let opts = match parse_command_line(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("broker: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&opts);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("broker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(opts: Options) -> anyhow::Result<()> {
    let server = Server::bind(opts).await?;
    tracing::info!(
        "Starting broker, compatible with nats-server {}",
        broker::server::COMPATIBLE_VERSION
    );
    tracing::info!("Server ID: {}", server.server_id());
    if let Some(addr) = server.monitor_addr() {
        tracing::info!("Starting http monitor on {addr}");
    }
    tracing::info!(
        "Listening for client connections on {}",
        server.client_addr()
    );
    tracing::info!("Server is ready");
    server
        .run(shutdown_signal())
        .await
        .context("server stopped")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Trapped \"interrupt\" signal"),
        _ = term.recv() => tracing::info!("Trapped \"terminated\" signal"),
    }
}

fn init_logging(opts: &Options) {
    let level = if opts.trace {
        "trace"
    } else if opts.debug {
        "debug"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("broker={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Interim command line until the full nats-server-compatible parser lands.
fn parse_command_line(args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut opts = Options::default();
    let mut args = args.peekable();
    let mut user = None;
    let mut pass = None;
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("flag needs an argument: {flag}"))
        };
        match flag.as_str() {
            "-a" | "--addr" => opts.host = value()?,
            "-p" | "--port" => opts.port = port(&value()?)?,
            "-m" | "--http_port" => opts.http_port = Some(port(&value()?)?),
            "-n" | "--name" => opts.server_name = Some(value()?),
            "--user" => user = Some(value()?),
            "--pass" => pass = Some(value()?),
            "--auth" => opts.auth = Auth::Token(value()?),
            "-D" => opts.debug = true,
            "-V" => opts.trace = true,
            "-DV" => (opts.debug, opts.trace) = (true, true),
            other => anyhow::bail!("flag provided but not defined: {other}"),
        }
    }
    if let (Some(user), Some(pass)) = (user, pass) {
        opts.auth = Auth::Users(vec![UserPass { user, pass }]);
    }
    Ok(opts)
}

fn port(v: &str) -> anyhow::Result<u16> {
    if v == "-1" {
        return Ok(0);
    }
    v.parse().with_context(|| format!("invalid port {v:?}"))
}
