//! The brokers the tests run against, from one table.

use std::fmt;

use anyhow::Context;
use broker::harness::{reference_server_path, ServerKind, ServerProcess};
use tempfile::TempDir;

/// A broker the suites run against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerTarget {
    kind: ServerKind,
}

/// Every broker target. The bundled broker joins this table once it speaks JetStream:
/// `BrokerTarget::bundled(path_of_the_broker_binary),`.
pub fn broker_targets() -> Vec<BrokerTarget> {
    vec![BrokerTarget::reference()]
}

impl BrokerTarget {
    /// The reference nats-server 2.10 (found or installed by the broker's harness).
    pub fn reference() -> Self {
        Self {
            kind: ServerKind::Reference,
        }
    }

    /// The bundled broker binary at `path`.
    pub fn bundled(path: std::path::PathBuf) -> Self {
        Self {
            kind: ServerKind::Bundled(path),
        }
    }

    /// `nats-server` or `broker`.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Why this target cannot run here, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        match &self.kind {
            ServerKind::Reference => reference_server_path().err().map(|err| format!("{err:#}")),
            ServerKind::Bundled(path) => {
                (!path.is_file()).then(|| format!("no broker binary at {}", path.display()))
            }
        }
    }

    /// Starts the broker with JetStream on free ports and a fresh store directory.
    pub fn start(&self) -> anyhow::Result<StartedBroker> {
        let store = tempfile::Builder::new()
            .prefix("js-store-")
            .tempdir()
            .context("creating a JetStream store directory")?;
        let dir = store.path().to_str().context("store path is not UTF-8")?;
        let process = ServerProcess::start(&self.kind, &["-js", "-sd", dir])
            .with_context(|| format!("starting {} with JetStream", self.name()))?;
        Ok(StartedBroker {
            process,
            _store: store,
        })
    }
}

impl fmt::Display for BrokerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A running broker with its store; both go away on drop.
pub struct StartedBroker {
    process: ServerProcess,
    _store: TempDir,
}

impl StartedBroker {
    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.process.client_url()
    }

    /// The process, to kill or signal it.
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
