//! Running the stack: start the broker, then the services and the console, wait until each is
//! ready, print the table, restart whatever dies, and on Ctrl-C or SIGTERM stop the services
//! (they drain) and then the broker, within [`STOP_BOUND`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::child::{Child, Exit, LogSink};
use crate::config::StackConfig;
use crate::plan::{self, Planned, Stage};
use crate::{lock, ports, table};

/// How long the whole stop may take: services drain, then the broker stops.
pub const STOP_BOUND: Duration = Duration::from_secs(5);
/// Of [`STOP_BOUND`], the part the services get before they are killed.
const SERVICE_STOP: Duration = Duration::from_millis(3300);
/// How long start-up may take before the stack gives up.
const START_BOUND: Duration = Duration::from_secs(60);
/// How often readiness is polled during start-up.
const READY_POLL: Duration = Duration::from_millis(100);
/// The first delay before restarting a component that died; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest delay between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A component that ran this long before dying is restarted after [`FIRST_BACKOFF`] again.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// Parses the stack's command line, runs it, and returns the exit code.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let config = match StackConfig::try_parse_from(args) {
        Ok(config) => config,
        Err(err) => err.exit(),
    };
    // One thread: every child is forked from it, so each child's parent-death signal (tied to
    // the forking thread) fires only when the stack itself is gone.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bank: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bank: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// What a component's keeper reports.
#[derive(Debug)]
enum Report {
    /// It exited on its own (crashed or failed); it will be restarted.
    Exited { name: String, exit: Exit },
}

/// Runs the stack until SIGINT or SIGTERM.
pub async fn run(config: StackConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let data_dir = config
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", config.data_dir.display()))?;
    let _lock = lock::DataLock::acquire(&data_dir)?;
    let ports = ports::assign(&config)?;
    let plan = plan::plan(&config, &ports, &data_dir);
    std::fs::create_dir_all(&plan.log_dir)
        .with_context(|| format!("creating {}", plan.log_dir.display()))?;
    let exe = std::env::current_exe().context("finding this program's path")?;
    let sink = LogSink::new(config.logs, &plan.log_dir);
    let (reports, mut reported) = mpsc::unbounded_channel();
    let mut stack = Stack::new(exe, sink, reports);

    eprintln!("bank: starting the stack in {}", data_dir.display());
    let start = async {
        for stage in [Stage::Broker, Stage::Service] {
            let members: Vec<&Planned> = plan
                .components
                .iter()
                .filter(|c| c.stage == stage)
                .collect();
            for planned in &members {
                stack.start(planned)?;
            }
            wait_ready(&members, &mut reported).await?;
        }
        anyhow::Ok(())
    };
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(START_BOUND, start) => match outcome {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!(
                "the stack was not ready within {START_BOUND:?}; see the logs in {}",
                plan.log_dir.display()
            )),
        },
        _ = interrupt.recv() => Err(anyhow::anyhow!("interrupted during start-up")),
        _ = terminate.recv() => Err(anyhow::anyhow!("terminated during start-up")),
    };
    if let Err(err) = outcome {
        stack.stop().await;
        return Err(err);
    }
    print!("{}", table::render(&plan, config.logs, started.elapsed()));
    loop {
        tokio::select! {
            _ = interrupt.recv() => { eprintln!("bank: SIGINT received; stopping"); break; }
            _ = terminate.recv() => { eprintln!("bank: SIGTERM received; stopping"); break; }
            Some(Report::Exited { name, exit }) = reported.recv() => {
                eprintln!("bank: {name} {exit}; restarting it");
            }
        }
    }
    let stopping = Instant::now();
    tokio::select! {
        _ = stack.stop() => {}
        _ = interrupt.recv() => {
            eprintln!("bank: second SIGINT; killing everything");
            stack.kill().await;
        }
    }
    eprintln!("bank: stopped in {:.1} s", stopping.elapsed().as_secs_f64());
    Ok(())
}

/// Waits until every member answers its readiness URL with 200; fails when one exits first.
async fn wait_ready(
    members: &[&Planned],
    reported: &mut mpsc::UnboundedReceiver<Report>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .context("building the HTTP client")?;
    let mut waiting: Vec<&Planned> = members.to_vec();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for planned in waiting {
            let ready = http
                .get(&planned.ready_url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !ready {
                still.push(planned);
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        tokio::select! {
            Some(Report::Exited { name, exit }) = reported.recv() => {
                bail!("{name} {exit} during start-up; see its log for why");
            }
            _ = tokio::time::sleep(READY_POLL) => {}
        }
    }
    Ok(())
}

/// The running components, each kept alive by a task of its own.
struct Stack {
    exe: PathBuf,
    sink: LogSink,
    reports: mpsc::UnboundedSender<Report>,
    keepers: Vec<Keeper>,
}

/// One component's keeper task and the way to tell it to stop.
struct Keeper {
    stage: Stage,
    stop: tokio::sync::watch::Sender<Option<Instant>>,
    /// `None` once awaited (a second signal may interrupt a stop halfway through).
    task: Option<JoinHandle<()>>,
}

impl Stack {
    fn new(exe: PathBuf, sink: LogSink, reports: mpsc::UnboundedSender<Report>) -> Self {
        Self {
            exe,
            sink,
            reports,
            keepers: Vec::new(),
        }
    }

    /// Starts `planned` and keeps it running (restarting it when it exits) until stopped.
    fn start(&mut self, planned: &Planned) -> anyhow::Result<()> {
        let child = Child::spawn(&self.exe, planned, &self.sink)?;
        let (stop, stopped) = tokio::sync::watch::channel(None);
        let task = tokio::spawn(keep(
            child,
            KeepContext {
                exe: self.exe.clone(),
                planned: planned.clone(),
                sink: self.sink.clone(),
                reports: self.reports.clone(),
            },
            stopped,
        ));
        self.keepers.push(Keeper {
            stage: planned.stage,
            stop,
            task: Some(task),
        });
        Ok(())
    }

    /// Stops the services (until [`SERVICE_STOP`]), then the broker (until [`STOP_BOUND`]).
    async fn stop(&mut self) {
        let begun = Instant::now();
        for (stage, until) in [
            (Stage::Service, begun + SERVICE_STOP),
            (
                Stage::Broker,
                begun + STOP_BOUND - Duration::from_millis(200),
            ),
        ] {
            let members: Vec<&mut Keeper> = self
                .keepers
                .iter_mut()
                .filter(|k| k.stage == stage)
                .collect();
            for keeper in &members {
                let _ = keeper.stop.send(Some(until));
            }
            for keeper in members {
                if let Some(task) = keeper.task.as_mut() {
                    let _ = task.await;
                    keeper.task = None;
                }
            }
        }
    }

    /// Stops everything at once, services first, the broker last: each keeper is aborted,
    /// which drops its child, which is killed (SIGKILL) on drop.
    async fn kill(&mut self) {
        for stage in [Stage::Service, Stage::Broker] {
            for keeper in self.keepers.iter_mut().filter(|k| k.stage == stage) {
                if let Some(task) = keeper.task.take() {
                    task.abort();
                    let _ = task.await;
                }
            }
        }
    }
}

/// What a keeper needs to restart its component.
struct KeepContext {
    exe: PathBuf,
    planned: Planned,
    sink: LogSink,
    reports: mpsc::UnboundedSender<Report>,
}

/// Keeps one component running: restarts it with a growing delay when it exits by itself, and
/// stops it (SIGTERM, then SIGKILL at the deadline) when told to.
async fn keep(
    mut child: Child,
    context: KeepContext,
    mut stop: tokio::sync::watch::Receiver<Option<Instant>>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let running_since = Instant::now();
        tokio::select! {
            exit = child.wait() => {
                if stop.borrow().is_some() {
                    return;
                }
                let name = context.planned.name.clone();
                let _ = context.reports.send(Report::Exited { name, exit });
                if running_since.elapsed() >= HEALTHY_RUN {
                    backoff = FIRST_BACKOFF;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                match Child::spawn(&context.exe, &context.planned, &context.sink) {
                    Ok(next) => child = next,
                    Err(err) => {
                        eprintln!("bank: cannot restart {}: {err:#}", context.planned.name);
                        return;
                    }
                }
            }
            _ = stop.changed() => {
                let deadline = (*stop.borrow()).unwrap_or_else(Instant::now);
                child.stop(deadline).await;
                return;
            }
        }
    }
}
