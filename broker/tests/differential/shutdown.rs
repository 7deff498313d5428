//! Graceful shutdown on SIGTERM, lame duck mode on SIGUSR2, and the signals that must not end
//! the server (SIGHUP, SIGUSR1 for log rotation).

use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use tokio::time::Instant;

use crate::raw::{RawClient, ServerOp};
use crate::{block_on, scenarios, with_log, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        sigterm_stops_the_server_after_delivering_what_was_published_before_it,
        lame_duck_signal_announces_ldm_then_closes_clients_after_the_grace_period_and_exits,
        sigterm_during_lame_duck_mode_does_not_cut_it_short,
        sigusr1_reopens_a_rotated_log_file_and_sighup_leaves_the_server_running,
    ]
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

/// nats-server refuses a lame duck duration under 30 s; the grace period is what a test waits.
const LAME_DUCK_CONFIG: &str = "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"500ms\"\n";

fn lame_duck_signal_announces_ldm_then_closes_clients_after_the_grace_period_and_exits(
    t: &Target,
) -> anyhow::Result<()> {
    let mut server = t.start_with_config(LAME_DUCK_CONFIG, &[])?;
    let port = server.port();
    let result = block_on(async {
        let modern = r#"{"verbose":false,"pedantic":false,"protocol":1}"#;
        let mut told = RawClient::connect_with(port, modern).await?;
        let mut old =
            RawClient::connect_with(port, r#"{"verbose":false,"pedantic":false}"#).await?;
        server.signal(libc::SIGUSR2)?;
        let signalled = Instant::now();
        match told.expect().await.context("the lame duck INFO")? {
            ServerOp::Info(info) => {
                ensure!(info["ldm"] == true, "INFO without ldm: {info}");
                ensure!(
                    info["client_id"] == told.info["client_id"],
                    "client_id: {info}"
                );
                ensure!(info["client_ip"] == "127.0.0.1", "client_ip: {info}");
            }
            other => bail!("expected an INFO with ldm, got {other:?}"),
        }
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        ensure!(
            refused.is_err(),
            "a new connection was accepted in lame duck mode"
        );
        let rest = told
            .until_closed()
            .await
            .context("closing the told client")?;
        ensure!(
            signalled.elapsed() >= Duration::from_millis(400),
            "closed after {:?}, before the 500 ms grace period",
            signalled.elapsed()
        );
        ensure!(
            rest.iter().all(|op| matches!(op, ServerOp::Err(_))),
            "then got {rest:?}"
        );
        let old_ops = old
            .until_closed()
            .await
            .context("closing the protocol 0 client")?;
        let told_old = old_ops.iter().any(|op| matches!(op, ServerOp::Info(_)));
        ensure!(!told_old, "a protocol 0 client was sent {old_ops:?}");
        let status = server.wait_exit(EXIT_BOUND)?;
        ensure!(
            status.code().is_some(),
            "the server died of a signal: {status}"
        );
        Ok(())
    });
    with_log(&server, result)
}

/// What a Kubernetes pod's stop does: the preStop hook enters lame duck mode and SIGTERM follows
/// at once. The clients still get the whole grace period, and the server then exits by itself.
fn sigterm_during_lame_duck_mode_does_not_cut_it_short(t: &Target) -> anyhow::Result<()> {
    let mut server = t.start_with_config(LAME_DUCK_CONFIG, &[])?;
    let port = server.port();
    let result = block_on(async {
        let modern = r#"{"verbose":false,"pedantic":false,"protocol":1}"#;
        let mut told = RawClient::connect_with(port, modern).await?;
        server.signal(libc::SIGUSR2)?;
        let signalled = Instant::now();
        match told.expect().await.context("the lame duck INFO")? {
            ServerOp::Info(info) => ensure!(info["ldm"] == true, "INFO without ldm: {info}"),
            other => bail!("expected an INFO with ldm, got {other:?}"),
        }
        server.signal(libc::SIGTERM)?;
        told.until_closed().await.context("closing the client")?;
        ensure!(
            signalled.elapsed() >= Duration::from_millis(400),
            "SIGTERM cut lame duck mode short: the client was closed {:?} after SIGUSR2, before \
             the 500 ms grace period",
            signalled.elapsed()
        );
        server.wait_exit(EXIT_BOUND)?;
        Ok(())
    });
    with_log(&server, result)
}

fn sigusr1_reopens_a_rotated_log_file_and_sighup_leaves_the_server_running(
    t: &Target,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a directory for the log")?;
    let log = dir.path().join("server.log");
    let log_arg = log.to_str().context("log path is not UTF-8")?;
    let mut server = t.start(&["-l", log_arg])?;
    let port = server.port();
    let result = block_on(async {
        let mut c = RawClient::connect_with(port, r#"{"verbose":false,"pedantic":false}"#).await?;
        std::fs::rename(&log, dir.path().join("server.log.1")).context("rotating the log")?;
        server.signal(libc::SIGUSR1)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log.exists() {
            ensure!(
                Instant::now() < deadline,
                "no new log file 5 s after SIGUSR1"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.signal(libc::SIGHUP)?;
        c.expect_still_open()
            .await
            .context("after SIGUSR1 and SIGHUP")?;
        let mut fresh = RawClient::connect_with(port, r#"{"verbose":false}"#).await?;
        fresh
            .expect_still_open()
            .await
            .context("a new connection after SIGHUP")
    });
    with_log(&server, result)
}
