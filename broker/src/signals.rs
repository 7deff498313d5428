//! The process signals the broker answers, as nats-server does: SIGINT and SIGTERM shut down
//! (SIGTERM not during lame duck mode, which then runs to its end), SIGUSR2 enters lame duck
//! mode, SIGUSR1 reopens the log file, and SIGHUP asks for a configuration reload (see
//! `reload`). Every handler is installed before the listeners are bound, so no signal can
//! arrive while its default action would still kill the process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

use tokio::sync::mpsc;

use crate::logging::LogTarget;

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

    /// Splits into (shutdown, lame duck) futures and the reload requests (one per SIGHUP; those
    /// that arrive while one waits are folded into it), and spawns the task that answers the
    /// rest.
    pub fn split(
        self,
        log: LogTarget,
    ) -> (
        impl std::future::Future<Output = ()>,
        impl std::future::Future<Output = ()>,
        mpsc::Receiver<()>,
    ) {
        let Signals {
            mut interrupt,
            mut terminate,
            mut lame_duck,
            reopen_log,
            hangup,
        } = self;
        let (reload_tx, reload_rx) = mpsc::channel(1);
        tokio::spawn(answer_others(reopen_log, hangup, log, reload_tx));
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
        (shutdown, lame_duck, reload_rx)
    }
}

async fn answer_others(
    mut reopen_log: Signal,
    mut hangup: Signal,
    log: LogTarget,
    reload: mpsc::Sender<()>,
) {
    loop {
        tokio::select! {
            _ = reopen_log.recv() => match log.reopen() {
                Ok(true) => tracing::info!("Reopened log file"),
                Ok(false) => tracing::info!("SIGUSR1: not logging to a file, nothing to reopen"),
                Err(e) => tracing::error!("{e:#}"),
            },
            _ = hangup.recv() => {
                tracing::debug!("Trapped \"hangup\" signal");
                // A full channel already holds a request, which reads the file afresh.
                let _ = reload.try_send(());
            }
        }
    }
}
