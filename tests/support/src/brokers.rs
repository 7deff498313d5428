//! The brokers the tests run against, from one table.

use std::fmt;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use broker::harness::{reference_server_path, ServerKind, ServerProcess};
use tempfile::TempDir;

use crate::cluster::NatsCluster;

/// How long [`BrokerTarget::start_on`] waits for the port to accept.
const START_ON_TIMEOUT: Duration = Duration::from_secs(10);

/// A broker the suites run against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerTarget {
    kind: ServerKind,
    /// A three-node nats-server cluster (`nats-cluster`) rather than one process.
    cluster: bool,
}

/// Every broker target: the reference nats-server and the bundled broker. `TEST_BROKERS`
/// (`nats-server`, `broker`, `nats-cluster`, comma-separated) narrows the table for a local
/// run; the `nats-cluster` target ([`BrokerTarget::cluster`]) is added by the suites that
/// run on it.
pub fn broker_targets() -> Vec<BrokerTarget> {
    let all = [
        BrokerTarget::reference(),
        BrokerTarget::bundled(bundled_path()),
    ];
    all.into_iter().filter(wanted).collect()
}

/// Whether `TEST_BROKERS` (when set) names `target`.
pub fn wanted(target: &BrokerTarget) -> bool {
    match std::env::var("TEST_BROKERS") {
        Ok(wanted) if !wanted.trim().is_empty() => {
            wanted.split(',').any(|w| w.trim() == target.name())
        }
        _ => true,
    }
}

/// Where the bundled broker binary is: `$BROKER_BIN`, else `broker` in the directory Cargo
/// builds this profile's binaries in (the parent of the test executable's `deps/`).
pub fn bundled_path() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("BROKER_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .filter(|d| d.ends_with("deps"))
        .and_then(std::path::Path::parent)
        .or_else(|| exe.parent())
        .unwrap_or_else(|| std::path::Path::new("."));
    dir.join(format!("broker{}", std::env::consts::EXE_SUFFIX))
}

/// Builds the bundled broker once per process, so that a test of another crate never runs a
/// stale or missing binary (`cargo test --workspace` has built it already; then this is a
/// no-op). Skipped when `$BROKER_BIN` names a binary.
fn build_bundled() -> Result<(), String> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if std::env::var_os("BROKER_BIN").is_some() {
                return Ok(());
            }
            let path = bundled_path();
            let profile_dir = path.parent().and_then(|d| d.file_name());
            let mut cargo = std::process::Command::new(env!("CARGO"));
            cargo.args(["build", "--quiet", "-p", "broker", "--bin", "broker"]);
            if profile_dir.is_some_and(|d| d == "release") {
                cargo.arg("--release");
            }
            if let Some(target_dir) = path.parent().and_then(std::path::Path::parent) {
                cargo.arg("--target-dir").arg(target_dir);
            }
            match cargo.status() {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(format!("cargo build -p broker --bin broker: {status}")),
                Err(e) => Err(format!("running cargo to build the broker: {e}")),
            }
        })
        .clone()
}

impl BrokerTarget {
    /// The reference nats-server 2.10 (found or installed by the broker's harness).
    pub fn reference() -> Self {
        Self {
            kind: ServerKind::Reference,
            cluster: false,
        }
    }

    /// Three nats-server 2.10 processes with routes and JetStream on each (see
    /// [`crate::cluster`]); streams get 3 replicas. Not in [`broker_targets`]: suites add it
    /// where they want it (the end-to-end test).
    pub fn cluster() -> Self {
        Self {
            kind: ServerKind::Reference,
            cluster: true,
        }
    }

    /// How many replicas the services should give their streams on this target.
    pub fn stream_replicas(&self) -> usize {
        if self.cluster {
            crate::cluster::NODES
        } else {
            1
        }
    }

    /// The bundled broker binary at `path`.
    pub fn bundled(path: std::path::PathBuf) -> Self {
        Self {
            kind: ServerKind::Bundled(path),
            cluster: false,
        }
    }

    /// `nats-server`, `nats-cluster` or `broker`.
    pub fn name(&self) -> &'static str {
        if self.cluster {
            "nats-cluster"
        } else {
            self.kind.name()
        }
    }

    /// Why this target cannot run here, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        match &self.kind {
            ServerKind::Reference => reference_server_path().err().map(|err| format!("{err:#}")),
            ServerKind::Bundled(path) => {
                if let Err(e) = build_bundled() {
                    return Some(e);
                }
                (!path.is_file()).then(|| format!("no broker binary at {}", path.display()))
            }
        }
    }

    /// Starts the broker with JetStream on free ports and a fresh store directory.
    pub fn start(&self) -> anyhow::Result<StartedBroker> {
        if self.cluster {
            let cluster =
                NatsCluster::start().context("starting a three-node nats-server cluster")?;
            return Ok(StartedBroker {
                inner: Started::Cluster(cluster),
            });
        }
        self.start_with(&[])
    }

    /// Starts one broker process (never a cluster) with JetStream on free ports, a fresh store
    /// directory, and `extra` flags (`-cid bank` for NATS Streaming, say).
    pub fn start_with(&self, extra: &[&str]) -> anyhow::Result<StartedBroker> {
        let store = tempfile::Builder::new()
            .prefix("js-store-")
            .tempdir()
            .context("creating a JetStream store directory")?;
        let dir = store.path().to_str().context("store path is not UTF-8")?;
        let mut args = vec!["-js", "-sd", dir];
        args.extend_from_slice(extra);
        let process = ServerProcess::start(&self.kind, &args)
            .with_context(|| format!("starting {} with JetStream", self.name()))?;
        Ok(StartedBroker {
            inner: Started::Single {
                process,
                _store: store,
            },
        })
    }
}

impl BrokerTarget {
    /// Starts one broker process (never a cluster) with JetStream, a fresh store and the
    /// configuration file `config` (authorization blocks and the like).
    pub fn start_with_config(&self, config: &str) -> anyhow::Result<StartedBroker> {
        let store = tempfile::Builder::new()
            .prefix("js-store-")
            .tempdir()
            .context("creating a JetStream store directory")?;
        let dir = store.path().to_str().context("store path is not UTF-8")?;
        let process = ServerProcess::start_with_config(&self.kind, config, &["-js", "-sd", dir])
            .with_context(|| format!("starting {} with a configuration file", self.name()))?;
        Ok(StartedBroker {
            inner: Started::Single {
                process,
                _store: store,
            },
        })
    }

    /// Starts the broker with JetStream on `127.0.0.1:port`, its store in `store` (pass the same
    /// directory again to restart it with its streams), and waits until the port accepts. For
    /// tests that start a service first and its broker later, on a port reserved with
    /// [`unused_port`].
    pub fn start_on(&self, port: u16, store: &Path) -> anyhow::Result<BrokerOnPort> {
        let program = self.kind.program()?;
        std::fs::create_dir_all(store)
            .with_context(|| format!("creating the store directory {}", store.display()))?;
        let log = store.join(format!("{}-{port}.log", self.name()));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("creating the broker log {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log handle")?;
        let store_arg = store.to_str().context("store path is not UTF-8")?;
        let port_arg = port.to_string();
        let child = Command::new(&program)
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd", store_arg])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("launching {}", program.display()))?;
        let mut broker = BrokerOnPort { child, port, log };
        let deadline = Instant::now() + START_ON_TIMEOUT;
        loop {
            if let Some(status) = broker.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before accepting on port {port}; log:\n{}",
                    self.name(),
                    broker.log()
                );
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(broker);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept on port {port} within {START_ON_TIMEOUT:?}; log:\n{}",
                    self.name(),
                    broker.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A port nothing listened on a moment ago, for a service to be pointed at before anything
/// listens there (see [`broker::harness::free_port`] for how it avoids races).
pub fn unused_port() -> anyhow::Result<u16> {
    broker::harness::free_port()
}

/// A broker started by [`BrokerTarget::start_on`]; killed (SIGKILL) on drop.
pub struct BrokerOnPort {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl BrokerOnPort {
    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it at once (SIGKILL), as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerOnPort {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Display for BrokerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A running broker with its store (or a cluster with its stores); all go away on drop.
pub struct StartedBroker {
    inner: Started,
}

enum Started {
    Single {
        process: ServerProcess,
        _store: TempDir,
    },
    Cluster(NatsCluster),
}

impl StartedBroker {
    /// `nats://127.0.0.1:<port>`; for a cluster, every node's URL, comma-separated.
    pub fn url(&self) -> String {
        match &self.inner {
            Started::Single { process, .. } => process.client_url(),
            Started::Cluster(cluster) => cluster.url(),
        }
    }

    /// The process, to kill or signal it.
    ///
    /// # Panics
    ///
    /// On a cluster, which has three: use [`StartedBroker::cluster`].
    pub fn process(&mut self) -> &mut ServerProcess {
        match &mut self.inner {
            Started::Single { process, .. } => process,
            Started::Cluster(_) => panic!("a cluster has three processes: use cluster()"),
        }
    }

    /// The cluster's handle, on the `nats-cluster` target.
    pub fn cluster(&self) -> Option<NatsCluster> {
        match &self.inner {
            Started::Cluster(cluster) => Some(cluster.clone()),
            Started::Single { .. } => None,
        }
    }
}
