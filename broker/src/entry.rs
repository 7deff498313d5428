//! The broker's command-line entry point, in the library so that the `broker` binary and the
//! one-command stack (which runs the broker as a child process of its own binary) share it.

use std::process::ExitCode;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;

use crate::cli::{self, Command};
use crate::logging::Logging;
use crate::reload::Reloader;
use crate::server::{BROKER_VERSION, COMPATIBLE_VERSION};
use crate::signals::Signals;
use crate::{Options, Server};

/// Runs the broker as its binary does: parses `args` (without the program name), serves until
/// SIGINT or SIGTERM, and returns the exit code (2 for a bad command line).
pub fn main<I: IntoIterator<Item = String>>(args: I) -> ExitCode {
    let args: Vec<String> = args.into_iter().collect();
    let (command, warnings) = match cli::parse_args(args.clone()) {
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
    let logging = match crate::logging::init(&opts) {
        Ok(logging) => logging,
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
    match runtime.block_on(run(opts, logging, args)) {
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

/// The pid and ports files of the running server, removed at exit; a reload may move them.
struct Files {
    pid: Option<PathBuf>,
    ports: Option<PathBuf>,
    client: SocketAddr,
    monitor: Option<SocketAddr>,
}

impl Files {
    fn write_pid(&mut self, path: Option<PathBuf>) -> anyhow::Result<()> {
        if let Some(path) = &path {
            write_whole(path, std::process::id().to_string().as_bytes())
                .with_context(|| format!("cannot write pid file {}", path.display()))?;
        }
        self.pid = path;
        Ok(())
    }

    fn write_ports(&mut self, dir: Option<&Path>) -> anyhow::Result<()> {
        if let Some(old) = self.ports.take() {
            let _ = std::fs::remove_file(old);
        }
        if let Some(dir) = dir {
            self.ports = Some(write_ports_file(dir, self.client, self.monitor)?);
        }
        Ok(())
    }

    fn remove(&self) {
        for path in self.pid.iter().chain(self.ports.iter()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn run(opts: Options, logging: Logging, args: Vec<String>) -> anyhow::Result<()> {
    let (shutdown, lame_duck, reloads) = Signals::install()?.split(logging.target.clone());
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
    let mut files = Files {
        pid: None,
        ports: None,
        client: server.client_addr(),
        monitor: server.monitor_addr(),
    };
    files.write_pid(pid_file)?;
    files.write_ports(ports_dir.as_deref())?;
    let files = Arc::new(Mutex::new(files));
    let reloading = tokio::spawn(answer_reloads(
        reloads,
        Reload {
            args,
            reloader: server.reloader(),
            logging,
            files: files.clone(),
        },
    ));
    tracing::info!("Server is ready");
    let result = server
        .run(shutdown, lame_duck)
        .await
        .context("server stopped");
    reloading.abort();
    files.lock().remove();
    result
}

/// What a reload needs besides the server.
struct Reload {
    /// The command line, read again with the config file (flags still win over it).
    args: Vec<String>,
    reloader: Reloader,
    logging: Logging,
    files: Arc<Mutex<Files>>,
}

async fn answer_reloads(mut requests: tokio::sync::mpsc::Receiver<()>, reload: Reload) {
    while requests.recv().await.is_some() {
        match reload_once(&reload) {
            Ok(()) => tracing::info!("Reloaded server configuration"),
            Err(e) => tracing::error!("Failed to reload server configuration: {e}"),
        }
    }
}

/// Reads the configuration again and puts it in force; `Err` leaves the running one.
fn reload_once(reload: &Reload) -> Result<(), String> {
    let (command, warnings) =
        cli::parse_args_for_reload(reload.args.clone()).map_err(|e| e.to_string())?;
    let opts = match command {
        Command::Run(opts) if opts.config_file.is_some() => *opts,
        _ => {
            return Err(
                "can only reload config when a file is provided using -c or --config".into(),
            )
        }
    };
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let reloaded = reload.reloader.reload(opts)?;
    for line in &reloaded.lines {
        tracing::info!("Reloaded: {line}");
    }
    let new = &reloaded.opts;
    if reloaded.logging {
        // The settings are in force already; a log file that cannot be opened is reported and
        // the lines keep going where they went.
        if let Err(e) = reload.logging.apply(new) {
            tracing::error!("{e:#}");
        }
    }
    let mut files = reload.files.lock();
    if reloaded.pid_file {
        if let Err(e) = files.write_pid(new.pid_file.clone()) {
            tracing::error!("{e:#}");
        }
    }
    if reloaded.ports_file_dir {
        if let Err(e) = files.write_ports(new.ports_file_dir.as_deref()) {
            tracing::error!("{e:#}");
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file renamed over it, so a reader (`--signal
/// ldm=<pid file>`, a harness) never sees the file empty or half written.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// Writes `<exe>_<pid>.ports` as nats-server does, so harnesses can find a random port.
fn write_ports_file(
    dir: &Path,
    client: SocketAddr,
    monitor: Option<SocketAddr>,
) -> anyhow::Result<PathBuf> {
    let mut ports = serde_json::json!({ "nats": [format!("nats://{client}")] });
    if let Some(monitor) = monitor {
        ports["monitoring"] = serde_json::json!([format!("http://{monitor}")]);
    }
    let path = dir.join(format!("broker_{}.ports", std::process::id()));
    write_whole(&path, ports.to_string().as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.pid");
        std::fs::write(&path, "an older, longer content").unwrap();
        write_whole(&path, b"4242").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let missing = dir.path().join("no-such-dir").join("broker.pid");
        assert!(write_whole(&missing, b"1").is_err());
    }
}
