//! Runs a NATS server process (the bundled broker or the reference `nats-server`) for tests
//! and benchmarks.
//!
//! [`ServerProcess::start`] picks free client and monitoring ports, launches the server with
//! `-a 127.0.0.1 -p <port> -m <http_port>` plus the caller's arguments, and waits (bounded)
//! until both ports accept. The process is killed when the handle drops. Its stdout and stderr
//! go to a log file in a temporary directory, readable with [`ServerProcess::log`], and every
//! start-up failure quotes that log.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use broker::harness::{ServerKind, ServerProcess};
//! let server = ServerProcess::start(&ServerKind::Reference, &["--auth", "s3cret"])?;
//! println!("nats-server listens on {}", server.client_url());
//! # Ok(())
//! # }
//! ```

pub mod node;
mod reference;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;

pub use reference::reference_server_path;

/// How long [`ServerProcess::start`] waits for the ports to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of the config file in the server's temporary directory.
const CONFIG_FILE: &str = "server.conf";

/// How many times a start is retried when the server dies early (say, another process took the
/// port that was free a moment before).
const START_ATTEMPTS: usize = 3;

/// Which server binary to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// The bundled broker at this path (in tests: `env!("CARGO_BIN_EXE_broker")`).
    Bundled(PathBuf),
    /// The reference `nats-server` 2.10, found or installed by [`reference_server_path`].
    Reference,
}

impl ServerKind {
    /// Short name used in test names and messages: `broker` or `nats-server`.
    pub fn name(&self) -> &'static str {
        match self {
            ServerKind::Bundled(_) => "broker",
            ServerKind::Reference => "nats-server",
        }
    }

    /// The executable to launch.
    pub fn program(&self) -> anyhow::Result<PathBuf> {
        match self {
            ServerKind::Bundled(path) => Ok(path.clone()),
            ServerKind::Reference => reference_server_path(),
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A running server process; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    kind: ServerKind,
    child: Child,
    port: u16,
    http_port: u16,
    /// Holds the log file and any config file; removed on drop. Shared only between the
    /// attempts of one start.
    dir: Arc<TempDir>,
}

impl ServerProcess {
    /// Starts `kind` on free ports with `-a 127.0.0.1 -p <port> -m <http_port>` followed by
    /// `extra_args`, and waits until both ports accept connections.
    pub fn start(kind: &ServerKind, extra_args: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("nats-harness-")
            .tempdir()
            .context("creating a temporary directory for the server log")?;
        Self::start_in(kind, extra_args, &[], dir)
    }

    /// Starts `kind` with `extra_args` and these environment variables set (a test seam such
    /// as the bundled broker's simulated full disk).
    pub fn start_with_env(
        kind: &ServerKind,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("nats-harness-")
            .tempdir()
            .context("creating a temporary directory for the server log")?;
        Self::start_in(kind, extra_args, env, dir)
    }

    /// Writes `config` to `server.conf` in the server's temporary directory and starts `kind`
    /// with `-c <that file>` followed by `extra_args`.
    pub fn start_with_config(
        kind: &ServerKind,
        config: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("nats-harness-")
            .tempdir()
            .context("creating a temporary directory for the server config")?;
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, config)
            .with_context(|| format!("writing the config file {}", path.display()))?;
        let path = path
            .to_str()
            .context("temporary directory path is not UTF-8")?;
        let mut args = vec!["-c", path];
        args.extend_from_slice(extra_args);
        Self::start_in(kind, &args, &[], dir)
    }

    fn start_in(
        kind: &ServerKind,
        extra_args: &[&str],
        env: &[(&str, &str)],
        dir: TempDir,
    ) -> anyhow::Result<Self> {
        let program = kind.program()?;
        let dir = Arc::new(dir);
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let ports = (free_port()?, free_port()?);
            let launched = launch(&program, ports, extra_args, env, dir.path());
            match launched {
                Ok(child) => {
                    let mut server = ServerProcess {
                        kind: kind.clone(),
                        child,
                        port: ports.0,
                        http_port: ports.1,
                        dir: Arc::clone(&dir),
                    };
                    match server.wait_until_ready() {
                        Ok(()) => return Ok(server),
                        Err(Retry::No(err)) => return Err(err),
                        Err(Retry::Yes(err)) => last_error = Some(err),
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("server never started")))
    }

    /// Which server this is.
    pub fn kind(&self) -> &ServerKind {
        &self.kind
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The monitoring (HTTP) port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// `nats://127.0.0.1:<port>`, for clients.
    pub fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's temporary directory (its log, its config file), removed on drop; a place
    /// for a scenario's pid or log files too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the config file of a server started with [`ServerProcess::start_with_config`],
    /// for a reload (`--signal reload`, SIGHUP) to read.
    pub fn rewrite_config(&self, config: &str) -> anyhow::Result<()> {
        let path = self.dir.path().join(CONFIG_FILE);
        anyhow::ensure!(
            path.exists(),
            "{} was not started with a config file",
            self.kind
        );
        std::fs::write(&path, config)
            .with_context(|| format!("rewriting the config file {}", path.display()))
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG_FILE)).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if self
            .child
            .try_wait()
            .context("polling the server process")?
            .is_none()
        {
            self.child.kill().context("killing the server process")?;
        }
        self.child.wait().context("reaping the server process")?;
        Ok(())
    }

    /// Sends SIGTERM and waits up to `bound` for the process to exit, returning its status.
    /// When it is still running after `bound` it is killed and an error is returned.
    pub fn terminate(&mut self, bound: Duration) -> anyhow::Result<ExitStatus> {
        self.signal(libc::SIGTERM).context("sending SIGTERM")?;
        self.wait_exit(bound)
    }

    /// Sends `signal` (a `libc::SIG*` number) to a server that is still running.
    pub fn signal(&mut self, signal: libc::c_int) -> anyhow::Result<()> {
        if let Some(status) = self
            .child
            .try_wait()
            .context("polling the server process")?
        {
            bail!(
                "{} had already exited ({status}) before signal {signal}",
                self.kind
            );
        }
        let pid = libc::pid_t::try_from(self.child.id()).context("process id out of range")?;
        // SAFETY: kill(2) with a pid we own (our unreaped child, so it cannot be reused).
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error()).context("kill(2)");
        }
        Ok(())
    }

    /// Waits up to `bound` for the process to exit by itself and returns its status; when it
    /// is still running after `bound` it is killed and an error is returned.
    pub fn wait_exit(&mut self, bound: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .try_wait()
                .context("polling the server process")?
            {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.kill();
        bail!(
            "{} did not exit within {bound:?}; log:\n{}",
            self.kind,
            self.log()
        )
    }

    fn wait_until_ready(&mut self) -> Result<(), Retry> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut ready = [false, false];
        loop {
            match self.child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    let log = self.log();
                    let err = anyhow::anyhow!(
                        "{} exited ({status}) before accepting connections; log:\n{log}",
                        self.kind
                    );
                    let in_use = log.to_ascii_lowercase().contains("address already in use");
                    return Err(if in_use {
                        Retry::Yes(err)
                    } else {
                        Retry::No(err)
                    });
                }
                Err(err) => return Err(Retry::No(err.into())),
            }
            for (done, port) in ready.iter_mut().zip([self.port, self.http_port]) {
                *done = *done || TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok();
            }
            if ready == [true, true] {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.kill();
                return Err(Retry::No(anyhow::anyhow!(
                    "{} did not accept on port {} and monitoring port {} within {:?}; log:\n{}",
                    self.kind,
                    self.port,
                    self.http_port,
                    START_TIMEOUT,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Whether a failed start is worth another try on other ports.
enum Retry {
    Yes(anyhow::Error),
    No(anyhow::Error),
}

const LOG_FILE: &str = "server.log";

fn launch(
    program: &Path,
    ports: (u16, u16),
    extra: &[&str],
    env: &[(&str, &str)],
    dir: &Path,
) -> anyhow::Result<Child> {
    let log_path = dir.join(LOG_FILE);
    let log = File::create(&log_path)
        .with_context(|| format!("creating the server log {}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .context("duplicating the server log handle")?;
    let https = extra.contains(&HTTPS_MONITOR);
    let extra = extra.iter().filter(|a| **a != HTTPS_MONITOR);
    let mut command = Command::new(program);
    command
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &ports.0.to_string(),
            if https { "-ms" } else { "-m" },
            &ports.1.to_string(),
        ])
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    command
        .spawn()
        .with_context(|| format!("launching {}", program.display()))
}

/// Among a start's arguments, serves the monitoring port over HTTPS (`-ms` instead of `-m`);
/// the server needs TLS configured for that.
pub const HTTPS_MONITOR: &str = "<https-monitor>";

/// The lowest port [`free_port`] hands out.
const FIRST_PICKED_PORT: u16 = 10_000;

/// A loopback port that was free a moment ago and that this process has not handed out before.
///
/// Two races are ruled out as far as a test can. A port the OS gives for `bind(0)` lies in the
/// ephemeral range, which the kernel also uses for the local end of every outgoing connection:
/// between picking such a port and the server binding it, any client in any test may take it (a
/// CI run once lost a nats-server cluster node that way). So ports come from below that range
/// (`net.ipv4.ip_local_port_range`), where only explicit binds land, starting at a random point.
/// And a port is never handed out twice within one process, so parallel tests do not pick the
/// same one. Another process may still bind it first; callers retry on "address already in use".
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let ephemeral_start = ephemeral_range_start().unwrap_or(32_768);
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if ephemeral_start > FIRST_PICKED_PORT + 1_000 {
        let span = ephemeral_start - FIRST_PICKED_PORT;
        for _ in 0..1_000 {
            let port = FIRST_PICKED_PORT + fastrand::u16(0..span);
            if !handed_out.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            {
                handed_out.insert(port);
                return Ok(port);
            }
        }
    }
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding port 0")?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
    bail!("the OS kept offering ports this process had already used")
}

/// The first port of the kernel's ephemeral range, when the system says.
fn ephemeral_range_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}
