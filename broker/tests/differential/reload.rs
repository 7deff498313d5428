//! Configuration reload, on SIGHUP and `--signal reload`: limits change for new and existing
//! clients, refused settings and broken files keep the running configuration, flags still win
//! over the file, and the log moves. Users, permissions and accounts are in `reload_auth`.
//!
//! A reload is not acknowledged to clients, so each scenario waits for something it causes (a
//! client disconnected, an INFO that changed) or for the outcome line both servers log
//! (`Reloaded server configuration`, `Failed to reload server configuration: <why>`).

use std::time::Duration;

use anyhow::{ensure, Context};
use broker::harness::ServerProcess;
use tokio::time::Instant;

use crate::raw::{RawClient, ServerOp};
use crate::{block_on, scenarios, with_log, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    let mut table = scenarios![
        reload_puts_a_new_max_payload_in_the_info_and_for_existing_clients,
        reload_refuses_settings_nats_server_cannot_change_and_keeps_the_running_ones,
        reload_of_a_broken_config_file_keeps_the_running_configuration,
        reload_keeps_command_line_flags_over_the_file,
        reload_lowering_max_connections_closes_the_excess_clients,
        reload_moves_the_log_to_a_new_file,
        reload_turns_debug_logging_on_and_off,
    ];
    table.extend(crate::reload_auth::scenarios());
    table
}

/// How long a scenario waits for a reload's outcome.
pub(crate) const RELOAD_BOUND: Duration = Duration::from_secs(10);

pub(crate) const VIOLATION: &str = "Authorization Violation";

pub(crate) fn login(user: &str, pass: &str) -> String {
    format!(r#"{{"verbose":false,"pedantic":false,"user":"{user}","pass":"{pass}"}}"#)
}

/// `--signal reload=<pid>`, which must succeed.
pub(crate) fn signal_reload(server: &ServerProcess) -> anyhow::Result<()> {
    let program = server.kind().program()?;
    let out = std::process::Command::new(&program)
        .args(["--signal", &format!("reload={}", server.pid())])
        .output()
        .context("running --signal reload")?;
    ensure!(
        out.status.success(),
        "--signal reload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Waits until the log holds `count` lines containing `needle`.
pub(crate) async fn logged(
    server: &ServerProcess,
    needle: &str,
    count: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + RELOAD_BOUND;
    loop {
        let seen = server.log().matches(needle).count();
        if seen >= count {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the log shows {needle:?} {seen} times, not {count}, after {RELOAD_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The outcome lines both servers log after a reload.
pub(crate) const RELOADED: &str = "Reloaded server configuration";
pub(crate) const FAILED: &str = "Failed to reload server configuration: ";

pub(crate) const USERS_BEFORE: &str = "authorization { users: [\n  {user: a, password: pa}\n  \
                            {user: b, password: pb}\n  {user: d, password: pd}\n] }\n";
fn reload_puts_a_new_max_payload_in_the_info_and_for_existing_clients(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config("max_payload: 1000\n", &[])?;
    let port = server.port();
    let result = block_on(async {
        let mut existing = RawClient::quiet(port).await?;
        ensure!(existing.info["max_payload"] == 1000, "{}", existing.info);
        let varz = crate::http::get_json(server.http_port(), "/varz").await?;
        let loaded = varz["config_load_time"].clone();
        ensure!(loaded.is_string(), "/varz has no config_load_time: {varz}");
        server.rewrite_config("max_payload: 2000\n")?;
        signal_reload(&server)?;
        logged(&server, RELOADED, 1).await?;
        let varz = crate::http::get_json(server.http_port(), "/varz").await?;
        ensure!(
            varz["max_payload"] == 2000,
            "/varz after the reload: {varz}"
        );
        ensure!(
            varz["config_load_time"] != loaded,
            "config_load_time stayed {loaded} after the reload"
        );
        let fresh = RawClient::connect(port).await?;
        ensure!(
            fresh.info["max_payload"] == 2000,
            "INFO after the reload: {}",
            fresh.info
        );
        existing.send("SUB big 1\r\n").await?;
        let payload = "x".repeat(1500);
        existing
            .send(format!("PUB big 1500\r\n{payload}\r\n"))
            .await?;
        let ops = existing.ping_until_pong().await?;
        ensure!(
            ops == [ServerOp::msg("big", "1", payload.as_bytes())],
            "a 1500-byte message after the reload got {ops:?}"
        );
        Ok(())
    });
    with_log(&server, result)
}

fn reload_refuses_settings_nats_server_cannot_change_and_keeps_the_running_ones(
    t: &Target,
) -> anyhow::Result<()> {
    let base = "server_name: first\nmax_payload: 1000\n";
    let server = t.start_with_config(base, &[])?;
    let port = server.port();
    let result = block_on(async {
        let refusals = [
            (
                "server_name: second\nmax_payload: 2000\n",
                "config reload not supported for ServerName: old=first, new=second",
            ),
            (
                "server_name: first\nmax_payload: 2000\nmax_pending: 1000\n",
                "config reload not supported for MaxPending: old=67108864, new=1000",
            ),
            (
                "server_name: first\nmax_payload: 2000\nmax_subscriptions: 10\n",
                "config reload not supported for MaxSubs: old=0, new=10",
            ),
            (
                "server_name: first\nmax_payload: 2000\nlame_duck_duration: \"30s\"\n",
                "config reload not supported for LameDuckDuration: old=2m0s, new=30s",
            ),
            (
                "server_name: first\nmax_payload: 100MB\n",
                "max_payload (104857600) cannot be higher than max_pending (67108864)",
            ),
        ];
        for (n, (config, why)) in refusals.iter().enumerate() {
            server.rewrite_config(config)?;
            signal_reload(&server)?;
            logged(&server, FAILED, n + 1).await?;
            ensure!(
                server.log().contains(&format!("{FAILED}{why}")),
                "the log does not give the reason {why:?}"
            );
            let fresh = RawClient::connect(port).await?;
            ensure!(
                fresh.info["max_payload"] == 1000 && fresh.info["server_name"] == "first",
                "a refused reload changed the INFO: {}",
                fresh.info
            );
        }
        Ok(())
    });
    with_log(&server, result)
}

fn reload_of_a_broken_config_file_keeps_the_running_configuration(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config(USERS_BEFORE, &[])?;
    let port = server.port();
    let result = block_on(async {
        let mut client = RawClient::connect_with(port, &login("a", "pa")).await?;
        server.rewrite_config("authorization { users: [ {user: a, password: \n")?;
        signal_reload(&server)?;
        logged(&server, FAILED, 1).await?;
        client
            .expect_still_open()
            .await
            .context("a client after the broken reload")?;
        RawClient::connect_with(port, &login("b", "pb"))
            .await
            .context("a user of the running configuration")?;
        ensure!(
            !server.log().contains(RELOADED),
            "a broken file was reloaded"
        );
        Ok(())
    });
    with_log(&server, result)
}

fn reload_keeps_command_line_flags_over_the_file(t: &Target) -> anyhow::Result<()> {
    // The harness gives the port with -p, so the port the reloaded file asks for loses.
    let server = t.start_with_config("max_payload: 1000\n", &[])?;
    let port = server.port();
    let result = block_on(async {
        server.rewrite_config("port: 1\nmax_payload: 3000\n")?;
        signal_reload(&server)?;
        logged(&server, RELOADED, 1).await?;
        let fresh = RawClient::connect(port)
            .await
            .context("the port of the command line after the reload")?;
        ensure!(fresh.info["max_payload"] == 3000, "{}", fresh.info);
        Ok(())
    });
    with_log(&server, result)
}

fn reload_lowering_max_connections_closes_the_excess_clients(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config("max_connections: 10\n", &[])?;
    let port = server.port();
    let result = block_on(async {
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(RawClient::quiet(port).await?);
        }
        server.rewrite_config("max_connections: 1\n")?;
        signal_reload(&server)?;
        logged(&server, RELOADED, 1).await?;
        let mut closed = 0;
        for client in &mut clients {
            let ops = client.ping_until_pong().await;
            if ops.is_err() {
                closed += 1;
            }
        }
        ensure!(closed == 2, "{closed} of 3 clients were closed, not 2");
        let mut extra = RawClient::connect(port).await?;
        extra.send("CONNECT {}\r\nPING\r\n").await?;
        extra
            .expect_err_and_close("maximum connections exceeded")
            .await
            .context("a new client over the lowered limit")
    });
    with_log(&server, result)
}

fn reload_moves_the_log_to_a_new_file(t: &Target) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a directory for the log")?;
    let log = dir.path().join("moved.log");
    let server = t.start_with_config("max_payload: 1000\n", &[])?;
    let result = block_on(async {
        server.rewrite_config(&format!("log_file: \"{}\"\n", log.display()))?;
        signal_reload(&server)?;
        let deadline = Instant::now() + RELOAD_BOUND;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(RELOADED) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{} does not say {RELOADED:?} after {RELOAD_BOUND:?}: {text:?}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    with_log(&server, result)
}

/// How each server marks a debug line.
fn debug_marker(server: &ServerProcess) -> &'static str {
    match server.kind().name() {
        "nats-server" => "[DBG]",
        _ => " DEBUG ",
    }
}

fn reload_turns_debug_logging_on_and_off(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config("max_payload: 1000\n", &[])?;
    let port = server.port();
    let marker = debug_marker(&server);
    let result = block_on(async {
        // A client coming and going is logged at debug level by both servers.
        let churn = || async {
            let mut c = RawClient::quiet(port).await?;
            c.send("UNKNOWN\r\n").await?;
            c.until_closed().await
        };
        churn().await?;
        ensure!(
            !server.log().contains(marker),
            "debug lines before debug was on"
        );
        server.rewrite_config("max_payload: 1000\ndebug: true\n")?;
        signal_reload(&server)?;
        logged(&server, RELOADED, 1).await?;
        churn().await?;
        logged(&server, marker, 1)
            .await
            .context("debug lines once on")?;
        server.rewrite_config("max_payload: 1000\n")?;
        signal_reload(&server)?;
        logged(&server, RELOADED, 2).await?;
        let lines = server.log().matches(marker).count();
        churn().await?;
        // A server logs a close right after it; another reload's outcome line, which takes a
        // process start to come, is the barrier after which those lines would be there.
        signal_reload(&server)?;
        logged(&server, RELOADED, 3).await?;
        ensure!(
            server.log().matches(marker).count() == lines,
            "debug lines after debug was off again"
        );
        Ok(())
    });
    with_log(&server, result)
}
