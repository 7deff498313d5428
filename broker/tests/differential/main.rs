//! Differential tests: every scenario is written once and run against the bundled broker and
//! against the reference `nats-server` 2.10, each started on free ports by
//! [`broker::harness`].
//!
//! Run with `cargo test -p broker --test differential`. `DIFF_TARGETS=reference|bundled|both`
//! (default `both`) picks the servers. Trials are named `<server>::<scenario>`, so
//! `cargo test -p broker --test differential -- nats-server::` runs one side only.
//!
//! The JetStream table ([`jetstream`]) runs against both servers like every other scenario.
//!
//! Layout: [`raw`] is a bare-socket NATS client for protocol edges, [`http`] a tiny HTTP GET for
//! the monitoring port, and each other module holds the scenarios of one topic.

mod accounts;
mod auth;
mod bcrypt;
mod corpus;
mod creds;
mod edges;
mod http;
mod jetstream;
mod jsz;
mod legacy_jwt;
mod limits;
mod links;
mod liveness;
mod monitor;
mod operator;
mod protocol;
mod pubsub;
mod queue;
mod raw;
mod reload;
mod reload_auth;
mod request;
mod shutdown;
mod signal;
mod tls;
mod tls_certs;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use broker::harness::{ServerKind, ServerProcess};
use libtest_mimic::{Arguments, Trial};

/// One scenario: its name (a sentence) and its body.
pub type Scenario = (&'static str, fn(&Target) -> anyhow::Result<()>);

/// Builds a scenario table from function names; each function's name is its scenario's name.
#[macro_export]
macro_rules! scenarios {
    ($($f:path),* $(,)?) => {
        vec![$((
            stringify!($f).rsplit("::").next().unwrap_or(stringify!($f)),
            $f as fn(&$crate::Target) -> anyhow::Result<()>,
        )),*]
    };
}

/// The bound on one whole trial, on top of the bound on each wait inside it.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(60);

/// Every scenario that both servers must pass.
fn all_scenarios() -> Vec<Scenario> {
    [
        protocol::scenarios(),
        pubsub::scenarios(),
        queue::scenarios(),
        request::scenarios(),
        edges::scenarios(),
        limits::scenarios(),
        liveness::scenarios(),
        auth::scenarios(),
        bcrypt::scenarios(),
        accounts::scenarios(),
        links::scenarios(),
        operator::scenarios(),
        legacy_jwt::scenarios(),
        corpus::scenarios(),
        monitor::scenarios(),
        jsz::scenarios(),
        shutdown::scenarios(),
        tls::scenarios(),
        signal::scenarios(),
        reload::scenarios(),
    ]
    .concat()
}

/// Deliberate differences of the bundled broker, run against it alone.
fn broker_extensions() -> Vec<Scenario> {
    [
        shutdown::broker_extensions(),
        monitor::broker_extensions(),
        jsz::broker_extensions(),
    ]
    .concat()
}

/// The JetStream scenarios, run against both servers.
fn jetstream_scenarios() -> Vec<Scenario> {
    jetstream::scenarios()
}

/// One server under test, shared by all of its trials.
pub struct Target {
    kind: ServerKind,
    /// A server with default settings, started by the first trial that asks for it.
    shared: OnceLock<Result<ServerProcess, String>>,
    /// A JetStream server (`-js -sd <temporary directory>`) shared by the JetStream trials of
    /// this target, started by the first that asks for it.
    jetstream: OnceLock<Result<(ServerProcess, tempfile::TempDir), String>>,
    /// How many trials started against this server.
    ran: AtomicUsize,
}

impl Target {
    fn new(kind: ServerKind) -> Self {
        Target {
            kind,
            shared: OnceLock::new(),
            jetstream: OnceLock::new(),
            ran: AtomicUsize::new(0),
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> &ServerKind {
        &self.kind
    }

    /// A server with default settings shared by the trials of this target. Scenarios that use
    /// it must not depend on global counters or on other connections being absent.
    pub fn shared(&self) -> anyhow::Result<&ServerProcess> {
        self.shared
            .get_or_init(|| ServerProcess::start(&self.kind, &[]).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|err| anyhow::anyhow!("starting the shared {}: {err}", self.kind))
    }

    /// A JetStream server shared by the JetStream trials of this target. Scenarios that use it
    /// must use stream names of their own and not depend on account-wide counters.
    pub fn jetstream(&self) -> anyhow::Result<&ServerProcess> {
        self.jetstream
            .get_or_init(|| {
                let start = || {
                    let store = tempfile::Builder::new()
                        .prefix("js-shared-")
                        .tempdir()
                        .context("creating a store directory")?;
                    let args = jetstream::jetstream_args(store.path())?;
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let server = ServerProcess::start(&self.kind, &args)?;
                    anyhow::Ok((server, store))
                };
                start().map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map(|(server, _)| server)
            .map_err(|err| anyhow::anyhow!("starting the shared JetStream {}: {err}", self.kind))
    }

    /// A server of its own, with these extra command-line arguments.
    pub fn start(&self, args: &[&str]) -> anyhow::Result<ServerProcess> {
        ServerProcess::start(&self.kind, args)
    }

    /// A server of its own, with this config file (and extra arguments).
    pub fn start_with_config(&self, config: &str, args: &[&str]) -> anyhow::Result<ServerProcess> {
        ServerProcess::start_with_config(&self.kind, config, args)
    }
}

/// Runs one scenario body on a fresh single-threaded tokio runtime, bounded by
/// [`TRIAL_TIMEOUT`].
pub fn block_on<T, F: Future<Output = anyhow::Result<T>>>(future: F) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a tokio runtime")?;
    runtime.block_on(async {
        tokio::time::timeout(TRIAL_TIMEOUT, future)
            .await
            .with_context(|| format!("the scenario did not finish within {TRIAL_TIMEOUT:?}"))?
    })
}

/// Adds the last lines of the server's log to a failed scenario's error.
pub fn with_log(server: &ServerProcess, result: anyhow::Result<()>) -> anyhow::Result<()> {
    result.map_err(|err| {
        let log = server.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        anyhow::anyhow!(
            "{err:#}\n--- last lines of the {} log ---\n{tail}",
            server.kind()
        )
    })
}

/// Awaits `future` for at most `bound`; on timeout the error says what was being waited for.
pub async fn within<T>(
    bound: Duration,
    what: &str,
    future: impl Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(bound, future)
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {bound:?} waiting for {what}"))
}

fn selected_targets() -> anyhow::Result<Vec<Arc<Target>>> {
    let bundled = || ServerKind::Bundled(env!("CARGO_BIN_EXE_broker").into());
    let kinds = match std::env::var("DIFF_TARGETS").as_deref() {
        Err(_) | Ok("both") | Ok("") => vec![bundled(), ServerKind::Reference],
        Ok("bundled") => vec![bundled()],
        Ok("reference") => vec![ServerKind::Reference],
        Ok(other) => anyhow::bail!("DIFF_TARGETS={other}: use reference, bundled or both"),
    };
    Ok(kinds
        .into_iter()
        .map(|kind| Arc::new(Target::new(kind)))
        .collect())
}

fn trials(targets: &[Arc<Target>]) -> Vec<Trial> {
    let mut trials = Vec::new();
    for target in targets {
        let mut table = all_scenarios();
        if matches!(target.kind, ServerKind::Bundled(_)) {
            table.extend(broker_extensions());
        }
        table.extend(jetstream_scenarios());
        for (name, run) in table {
            let target = Arc::clone(target);
            let full_name = format!("{}::{name}", target.kind.name());
            trials.push(Trial::test(full_name, move || {
                target.ran.fetch_add(1, Ordering::SeqCst);
                run(&target).map_err(|err| format!("{err:#}").into())
            }));
        }
    }
    trials
}

fn main() {
    let args = Arguments::from_args();
    let targets = match selected_targets() {
        Ok(targets) => targets,
        Err(err) => {
            eprintln!("differential: {err:#}");
            std::process::exit(2);
        }
    };
    let conclusion = libtest_mimic::run(&args, trials(&targets));

    let ran = |name: &str| {
        targets
            .iter()
            .find(|t| t.kind.name() == name)
            .map_or(0, |t| t.ran.load(Ordering::SeqCst))
    };
    println!(
        "differential: {} scenarios ran against broker, {} against nats-server",
        ran("broker"),
        ran("nats-server")
    );
    let unfiltered = !args.list && args.filter.is_none() && args.skip.is_empty() && !args.ignored;
    let idle: Vec<_> = targets
        .iter()
        .filter(|t| t.ran.load(Ordering::SeqCst) == 0)
        .map(|t| t.kind.name())
        .collect();
    // Stop the shared servers before exiting (process::exit runs no destructors).
    drop(targets);
    if unfiltered && !idle.is_empty() {
        eprintln!("differential: no scenario ran against {}", idle.join(", "));
        std::process::exit(101);
    }
    conclusion.exit();
}
