//! The process signals the broker answers, as nats-server does: SIGINT and SIGTERM shut down
//! (SIGTERM not during lame duck mode, which then runs to its end), SIGUSR2 enters lame duck mode, SIGUSR1 reopens the log file, and SIGHUP (a configuration
//! reload in nats-server) is answered with a warning. Every handler is installed before the
//! listeners are bound, so no signal can arrive while its default action would still kill the
//! process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::logging::LogFile;

/// The installed handlers, to be split into the futures the server waits on.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    lame_duck: Signal,
    reopen_log: Signal,
    hangup: Signal,
}

impl Signals {
    /// Installs every handler; call before binding any listener.
    pub fn install() -> anyhow::Result<Signals> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("cannot install a handler for {name}"))
        };
        Ok(Signals {
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
            lame_duck: install(SignalKind::user_defined2(), "SIGUSR2")?,
            reopen_log: install(SignalKind::user_defined1(), "SIGUSR1")?,
            hangup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// Splits into (shutdown, lame duck) futures and spawns the task that answers the rest.
    pub fn split(
        self,
        log_file: Option<LogFile>,
    ) -> (
        impl std::future::Future<Output = ()>,
        impl std::future::Future<Output = ()>,
    ) {
        let Signals {
            mut interrupt,
            mut terminate,
            mut lame_duck,
            reopen_log,
            hangup,
        } = self;
        tokio::spawn(answer_others(reopen_log, hangup, log_file));
        // As nats-server: once lame duck mode has begun, SIGTERM no longer cuts it short (an
        // orchestrator's preStop hook puts the broker in lame duck mode and SIGTERM follows at
        // once); SIGINT still stops at once.
        let in_lame_duck = Arc::new(AtomicBool::new(false));
        let entered = Arc::clone(&in_lame_duck);
        let shutdown = async move {
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {
                        tracing::info!("Trapped \"interrupt\" signal");
                        return;
                    }
                    _ = terminate.recv() => {
                        if !in_lame_duck.load(Ordering::SeqCst) {
                            tracing::info!("Trapped \"terminated\" signal");
                            return;
                        }
                        tracing::info!(
                            "Trapped \"terminated\" signal in lame duck mode: it goes on to its \
                             end (SIGINT stops at once)"
                        );
                    }
                }
            }
        };
        let lame_duck = async move {
            lame_duck.recv().await;
            entered.store(true, Ordering::SeqCst);
            tracing::info!("Trapped \"user defined signal 2\" signal");
        };
        (shutdown, lame_duck)
    }
}

async fn answer_others(mut reopen_log: Signal, mut hangup: Signal, log_file: Option<LogFile>) {
    loop {
        tokio::select! {
            _ = reopen_log.recv() => match &log_file {
                Some(file) => match file.reopen() {
                    Ok(()) => tracing::info!("Reopened log file"),
                    Err(e) => tracing::error!("{e:#}"),
                },
                None => tracing::info!("SIGUSR1: not logging to a file, nothing to reopen"),
            },
            _ = hangup.recv() => tracing::warn!(
                "SIGHUP: configuration reload is not supported; restart to apply changes"
            ),
        }
    }
}
