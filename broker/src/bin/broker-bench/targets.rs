//! The servers under test: started here (the bundled broker and nats-server) or given by URL.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::args::Settings;
use crate::raw::RawConn;
use crate::system::version_of;
use broker::harness::{ServerKind, ServerProcess};

/// One server to measure.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Target {
    /// `broker`, `nats-server`, or the address given with `--url`.
    pub name: String,
    /// Where clients connect.
    pub url: String,
    /// The process id when we started it, so its CPU use can be read.
    pub pid: Option<u32>,
    /// What `--version` says, or what the server's INFO says when we did not start it.
    pub version: String,
    /// `version` and `go` from the server's INFO.
    pub info: String,
}

/// The servers under test, kept running until this is dropped.
pub(crate) struct Targets {
    /// In table order; the last one is the baseline that ratios divide by.
    pub list: Vec<Target>,
    _processes: Vec<ServerProcess>,
}

impl Targets {
    /// Connects to the `--url` servers, or starts the broker and nats-server.
    pub(crate) fn prepare(settings: &Settings) -> anyhow::Result<Targets> {
        if !settings.urls.is_empty() {
            let list = settings
                .urls
                .iter()
                .map(|url| describe(url, None, None))
                .collect::<anyhow::Result<_>>()?;
            return Ok(Targets {
                list,
                _processes: Vec::new(),
            });
        }
        let broker = ServerKind::Bundled(broker_path(settings)?);
        let mut list = Vec::new();
        let mut processes = Vec::new();
        for kind in [broker, ServerKind::Reference] {
            let program = kind.program()?;
            let version = version_of(&program).unwrap_or_else(|| match kind {
                ServerKind::Bundled(_) => format!(
                    "broker {} (crate version; this broker build has no --version)",
                    env!("CARGO_PKG_VERSION")
                ),
                ServerKind::Reference => "unknown (--version failed)".into(),
            });
            let server = ServerProcess::start(&kind, &[])
                .with_context(|| format!("starting {}", kind.name()))?;
            let url = server.client_url();
            list.push(describe(&url, Some(kind.name()), Some((&server, version)))?);
            processes.push(server);
        }
        Ok(Targets {
            list,
            _processes: processes,
        })
    }
}

/// The broker executable: `--broker-bin`, else `broker` beside this executable.
fn broker_path(settings: &Settings) -> anyhow::Result<PathBuf> {
    let path = match &settings.broker_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name("broker"),
    };
    if !path.is_file() {
        anyhow::bail!(
            "no broker executable at {}: build it (cargo build --release -p broker) \
             or pass --broker-bin",
            path.display()
        );
    }
    Ok(path)
}

/// A [`Target`] for the server at `url`, reading its INFO.
fn describe(
    url: &str,
    name: Option<&str>,
    started: Option<(&ServerProcess, String)>,
) -> anyhow::Result<Target> {
    let conn = RawConn::connect(url).with_context(|| format!("connecting to {url}"))?;
    let info: serde_json::Value = serde_json::from_str(conn.info()).unwrap_or_default();
    let field = |k: &str| {
        info.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string()
    };
    let info = format!("INFO version {}, go {:?}", field("version"), field("go"));
    let (pid, version) = match started {
        Some((server, version)) => (Some(server.pid()), version),
        None => (None, info.clone()),
    };
    Ok(Target {
        name: name.map_or_else(|| crate::raw::socket_addr(url), String::from),
        url: url.to_string(),
        pid,
        version,
        info,
    })
}
