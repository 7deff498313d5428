//! The servers under test: started here or given by URL, in one [`Group`] per [`Suite`]. Core
//! NATS runs on the broker and nats-server as they start by default; JetStream on the broker
//! in its default (fsync before every PubAck), the broker with nats-server's sync policy, and
//! nats-server, each with JetStream on and its own temporary store directory.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use tempfile::TempDir;

use crate::args::Settings;
use crate::bench::Suite;
use crate::raw::RawConn;
use crate::system::version_of;
use broker::harness::{ServerKind, ServerProcess};

/// nats-server's file store fsyncs every 2 minutes (`defaultSyncInterval` in
/// server/filestore.go); the broker's `--sync interval=` with the same period behaves alike.
const NATS_SERVER_SYNC_INTERVAL: &str = "interval=2m";

/// The cluster ID the STAN server of the `Stan` suite serves.
pub(crate) const STAN_CLUSTER: &str = "bench";

/// One server to measure.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Target {
    /// `broker`, `nats-server`, `broker --sync interval`, or the address given with `--url`.
    pub name: String,
    /// Which benchmarks it serves.
    pub suite: Suite,
    /// The arguments it was started with, after the harness's address and ports.
    pub args: String,
    /// Where clients connect.
    pub url: String,
    /// The process id when we started it, so its CPU use can be read.
    pub pid: Option<u32>,
    /// What `--version` says, or what the server's INFO says when we did not start it.
    pub version: String,
    /// `version` and `go` from the server's INFO.
    pub info: String,
    /// Whether it serves NATS Streaming clients (the `Stan` suite's broker with `-cid`).
    pub stan: bool,
}

/// The servers of one suite, in table order; the last is the baseline that ratios divide by.
pub(crate) struct Group {
    /// The suite they serve.
    pub suite: Suite,
    /// The servers.
    pub list: Vec<Target>,
    /// How each was started; `None` for a `--url` server.
    launches: Vec<Option<Launch>>,
    /// The processes we started, in the same order.
    running: Vec<Option<Server>>,
}

/// The groups of servers under test, kept running until this is dropped.
pub(crate) struct Targets {
    /// One per suite that a selected benchmark needs.
    pub groups: Vec<Group>,
    /// With `--tls`, the servers' certificate (its files live as long as the servers).
    _cert: Option<crate::tls::ServerCert>,
}

/// How to start one server.
#[derive(Clone)]
struct Launch {
    name: &'static str,
    kind: ServerKind,
    args: Vec<String>,
    /// Whether it gets a fresh `--store_dir`.
    store: bool,
}

/// A running server and its store directory (removed when dropped).
struct Server {
    process: ServerProcess,
    _store: Option<TempDir>,
}

impl Targets {
    /// Connects to the `--url` servers, or starts the servers of each of `suites`.
    pub(crate) fn prepare(settings: &Settings, suites: &[Suite]) -> anyhow::Result<Targets> {
        let cert = match (settings.tls, settings.urls.is_empty()) {
            (true, true) => Some(crate::tls::ServerCert::generate()?),
            _ => None,
        };
        if !settings.urls.is_empty() {
            crate::tls::trust(settings.tls_ca.clone())?;
        }
        let tls_args = match &cert {
            Some(cert) => vec![
                "--tls".to_owned(),
                "--tlscert".to_owned(),
                path_text(&cert.cert())?,
                "--tlskey".to_owned(),
                path_text(&cert.key())?,
            ],
            None => Vec::new(),
        };
        let mut groups = Vec::new();
        for &suite in suites {
            let group = if settings.urls.is_empty() {
                Group::start(suite, broker_path(settings)?, &tls_args)?
            } else {
                Group::given(suite, &settings.urls)?
            };
            groups.push(group);
        }
        Ok(Targets {
            groups,
            _cert: cert,
        })
    }

    /// Every server of every group.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Target> {
        self.groups.iter().flat_map(|g| &g.list)
    }
}

fn path_text(path: &std::path::Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .context("the certificate path is not UTF-8")
}

impl Group {
    fn given(suite: Suite, urls: &[String]) -> anyhow::Result<Group> {
        let list = urls
            .iter()
            .map(|url| describe(url, suite, None, None))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Group {
            suite,
            launches: list.iter().map(|_| None).collect(),
            running: list.iter().map(|_| None).collect(),
            list,
        })
    }

    /// Starts the suite's servers; `tls` is what each gets on top (`--tls` and its files).
    fn start(suite: Suite, broker: PathBuf, tls: &[String]) -> anyhow::Result<Group> {
        let broker = ServerKind::Bundled(broker);
        let launch = |name, kind: &ServerKind, args: &[&'static str]| Launch {
            name,
            kind: kind.clone(),
            args: args
                .iter()
                .map(|a| a.to_string())
                .chain(tls.iter().cloned())
                .collect(),
            store: suite != Suite::Core,
        };
        let launches = match suite {
            Suite::Core => vec![
                launch("broker", &broker, &[]),
                launch("nats-server", &ServerKind::Reference, &[]),
            ],
            Suite::JetStream => vec![
                launch("broker", &broker, &["-js"]),
                launch(
                    "broker --sync interval",
                    &broker,
                    &["-js", "--sync", NATS_SERVER_SYNC_INTERVAL],
                ),
                launch("nats-server", &ServerKind::Reference, &["-js"]),
            ],
            Suite::Stan => vec![
                launch("broker -cid (STAN)", &broker, &["-cid", STAN_CLUSTER]),
                launch("broker (JetStream)", &broker, &["-js"]),
                launch("nats-server (JetStream)", &ServerKind::Reference, &["-js"]),
            ],
        };
        let mut group = Group {
            suite,
            list: Vec::new(),
            launches: Vec::new(),
            running: Vec::new(),
        };
        for launch in launches {
            let server = launch.start()?;
            let version = launch.version();
            let target = describe(
                &server.process.client_url(),
                suite,
                Some(&launch),
                Some((&server.process, version)),
            )?;
            group.list.push(target);
            group.launches.push(Some(launch));
            group.running.push(Some(server));
        }
        Ok(group)
    }

    /// Stops server `i` and starts it again with an empty store.
    pub(crate) fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let Some(launch) = &self.launches[i] else {
            anyhow::bail!("a server given with --url cannot be restarted");
        };
        self.running[i] = None; // stops it and removes its store
        let server = launch.start()?;
        self.list[i].url = server.process.client_url();
        self.list[i].pid = Some(server.process.pid());
        self.running[i] = Some(server);
        Ok(())
    }
}

impl Launch {
    fn start(&self) -> anyhow::Result<Server> {
        let store = if self.store {
            Some(
                tempfile::Builder::new()
                    .prefix("broker-bench-store-")
                    .tempdir()
                    .context("creating a store directory")?,
            )
        } else {
            None
        };
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        if let Some(dir) = &store {
            args.push("--store_dir");
            args.push(dir.path().to_str().context("the store path is not UTF-8")?);
        }
        let process = ServerProcess::start(&self.kind, &args)
            .with_context(|| format!("starting {}", self.name))?;
        Ok(Server {
            process,
            _store: store,
        })
    }

    fn version(&self) -> String {
        let program = self.kind.program().ok();
        program
            .and_then(|p| version_of(&p))
            .unwrap_or_else(|| match self.kind {
                ServerKind::Bundled(_) => format!(
                    "broker {} (crate version; this broker build has no --version)",
                    env!("CARGO_PKG_VERSION")
                ),
                ServerKind::Reference => "unknown (--version failed)".into(),
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
    suite: Suite,
    launch: Option<&Launch>,
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
    let args = launch.map_or_else(String::new, |l| {
        let store = if l.store {
            " --store_dir <temporary>"
        } else {
            ""
        };
        format!("{}{store}", l.args.join(" "))
    });
    Ok(Target {
        name: launch.map_or_else(|| crate::raw::socket_addr(url), |l| l.name.to_string()),
        suite,
        args,
        url: url.to_string(),
        pid,
        version,
        info,
        stan: launch.is_some_and(|l| l.args.iter().any(|a| a == "-cid")),
    })
}
