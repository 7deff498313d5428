//! Graceful shutdown on SIGTERM.

use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{ensure, Context};

use crate::raw::{RawClient, ServerOp};
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![sigterm_stops_the_server_after_delivering_what_was_published_before_it]
}

/// The bundled broker's deliberate differences from nats-server on shutdown.
pub fn broker_extensions() -> Vec<Scenario> {
    scenarios![broker_extension_sigterm_exit_status_is_zero]
}

/// How long a server may take to exit after SIGTERM.
const EXIT_BOUND: Duration = Duration::from_secs(10);

/// Starts a server, has a subscriber receive 200 messages published just before SIGTERM,
/// and returns the exit status.
fn publish_then_terminate(t: &Target) -> anyhow::Result<ExitStatus> {
    let mut server = t.start(&[])?;
    let port = server.port();
    let mut status = None;
    block_on(async {
        let mut sub = RawClient::quiet(port).await?;
        sub.send("SUB term.s 1\r\n").await?;
        sub.ping_until_pong().await?;
        let mut publisher = RawClient::quiet(port).await?;
        let batch: String = (0..200)
            .map(|i| format!("PUB term.s 3\r\n{i:03}\r\n"))
            .collect();
        publisher.send(batch).await?;
        publisher.ping_until_pong().await?;
        status = Some(server.terminate(EXIT_BOUND)?);
        let ops = sub.until_closed().await.context("after SIGTERM")?;
        let msgs: Vec<_> = ops
            .iter()
            .filter(|op| matches!(op, ServerOp::Msg(_)))
            .collect();
        let expected: Vec<_> = (0..200)
            .map(|i| ServerOp::msg("term.s", "1", format!("{i:03}").as_bytes()))
            .collect();
        ensure!(
            msgs.iter().copied().eq(expected.iter()),
            "subscriber got {ops:?}"
        );
        let others_are_errors = ops
            .iter()
            .all(|op| matches!(op, ServerOp::Msg(_) | ServerOp::Err(_)));
        ensure!(
            others_are_errors,
            "unexpected operations during shutdown: {ops:?}"
        );
        Ok(())
    })?;
    status.context("no exit status")
}

fn sigterm_stops_the_server_after_delivering_what_was_published_before_it(
    t: &Target,
) -> anyhow::Result<()> {
    let status = publish_then_terminate(t)?;
    // nats-server 2.10 exits with status 1 on SIGTERM (0 on SIGINT); either way the process
    // must exit by itself rather than die of the signal.
    ensure!(
        status.code().is_some(),
        "the server died of the signal: {status}"
    );
    Ok(())
}

/// Kubernetes treats a non-zero exit as a failure, so the broker exits 0 on SIGTERM where
/// nats-server exits 1.
fn broker_extension_sigterm_exit_status_is_zero(t: &Target) -> anyhow::Result<()> {
    let status = publish_then_terminate(t)?;
    ensure!(
        status.success(),
        "the broker exited with {status} on SIGTERM"
    );
    Ok(())
}
