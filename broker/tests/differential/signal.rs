//! `<server> --signal <command>[=<pid>]`: every command, every way of naming the process, and
//! nats-server's messages when the process cannot be found. Messages are compared without the
//! program name that starts them (`nats-server: ` or `broker: `).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use broker::harness::ServerProcess;
use tokio::time::Instant;

use crate::raw::{RawClient, ServerOp};
use crate::{block_on, scenarios, with_log, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        signal_ldm_by_pid_or_pid_file_puts_the_server_in_lame_duck_mode,
        signal_quit_and_term_shut_the_server_down_and_stop_kills_it,
        signal_reopen_reopens_a_rotated_log_file,
        signal_refuses_bad_commands_pids_and_pid_files_with_nats_server_words,
        signal_without_a_pid_refuses_to_choose_between_several_servers,
    ]
}

/// How long a server may take to exit after a signal.
const EXIT_BOUND: Duration = Duration::from_secs(10);

/// What `--signal <value>` printed and how it exited.
struct Outcome {
    code: Option<i32>,
    /// Standard error without the program name.
    message: String,
}

fn run_signal(server: &ServerProcess, value: &str) -> anyhow::Result<Outcome> {
    let program = server.kind().program()?;
    let out = std::process::Command::new(&program)
        .args(["--signal", value])
        .output()
        .with_context(|| format!("running --signal {value}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}: ", server.kind().name());
    Ok(Outcome {
        code: out.status.code(),
        message: stderr.strip_prefix(&prefix).unwrap_or(&stderr).to_string(),
    })
}

fn signal_ok(server: &ServerProcess, value: &str) -> anyhow::Result<()> {
    let out = run_signal(server, value)?;
    ensure!(
        out.code == Some(0),
        "--signal {value} exited {:?}: {}",
        out.code,
        out.message
    );
    Ok(())
}

/// Waits (bounded) until `path` exists and is not empty (nats-server creates its pid file
/// before it writes the pid).
async fn appears(path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        ensure!(
            Instant::now() < deadline,
            "{} did not appear within 5 s",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// nats-server refuses a lame duck duration under 30 s; the grace period is what a test waits.
const LAME_DUCK_CONFIG: &str = "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"200ms\"\n";

/// `ldm=<pid>` is how a Kubernetes `preStop` hook without a shell drains the server;
/// `ldm=<pid file>` reads the pid that `-P` wrote.
fn signal_ldm_by_pid_or_pid_file_puts_the_server_in_lame_duck_mode(
    t: &Target,
) -> anyhow::Result<()> {
    for through_file in [false, true] {
        let pid_dir = tempfile::tempdir().context("a directory for the pid file")?;
        let pid_file = pid_dir.path().join("server.pid");
        let pid_arg = pid_file.to_str().context("pid path is not UTF-8")?;
        let mut server = t.start_with_config(LAME_DUCK_CONFIG, &["-P", pid_arg])?;
        let port = server.port();
        let result = block_on(async {
            appears(&pid_file).await?;
            let written = std::fs::read_to_string(&pid_file).context("reading the pid file")?;
            ensure!(
                written == server.pid().to_string(),
                "the pid file holds {written:?}, the server is {}",
                server.pid()
            );
            let modern = r#"{"verbose":false,"pedantic":false,"protocol":1}"#;
            let mut told = RawClient::connect_with(port, modern).await?;
            let target = if through_file {
                pid_arg.to_string()
            } else {
                written
            };
            signal_ok(&server, &format!("ldm={target}"))?;
            match told.expect().await.context("the lame duck INFO")? {
                ServerOp::Info(info) => ensure!(info["ldm"] == true, "INFO without ldm: {info}"),
                other => bail!("expected an INFO with ldm, got {other:?}"),
            }
            told.until_closed().await.context("closing the client")?;
            server.wait_exit(EXIT_BOUND)?;
            Ok(())
        });
        with_log(&server, result)?;
    }
    Ok(())
}

fn signal_quit_and_term_shut_the_server_down_and_stop_kills_it(t: &Target) -> anyhow::Result<()> {
    use std::os::unix::process::ExitStatusExt;
    for command in ["quit", "term", "stop"] {
        let mut server = t.start(&[])?;
        let port = server.port();
        let result = block_on(async {
            let mut client = RawClient::quiet(port).await?;
            signal_ok(&server, &format!("{command}={}", server.pid()))?;
            client
                .until_closed()
                .await
                .with_context(|| format!("the client after --signal {command}"))?;
            let status = server.wait_exit(EXIT_BOUND)?;
            match command {
                // SIGINT: a clean exit, status 0, on both servers.
                "quit" => ensure!(status.code() == Some(0), "quit: {status}"),
                // SIGTERM: nats-server exits 1, the broker 0; neither dies of the signal.
                "term" => ensure!(status.code().is_some(), "term: {status}"),
                _ => ensure!(status.signal() == Some(libc::SIGKILL), "stop: {status}"),
            }
            Ok(())
        });
        with_log(&server, result)?;
    }
    Ok(())
}

fn signal_reopen_reopens_a_rotated_log_file(t: &Target) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a directory for the log")?;
    let log = dir.path().join("server.log");
    let log_arg = log.to_str().context("log path is not UTF-8")?;
    let server = t.start(&["-l", log_arg])?;
    let result = block_on(async {
        std::fs::rename(&log, dir.path().join("server.log.1")).context("rotating the log")?;
        signal_ok(&server, &format!("reopen={}", server.pid()))?;
        appears(&log).await.context("the reopened log file")?;
        let mut client = RawClient::quiet(server.port()).await?;
        client.expect_still_open().await
    });
    with_log(&server, result)
}

fn signal_refuses_bad_commands_pids_and_pid_files_with_nats_server_words(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start(&[])?;
    let pid = server.pid();
    let dir = tempfile::tempdir().context("a directory for pid files")?;
    let garbage = dir.path().join("garbage.pid");
    std::fs::write(&garbage, "garbage\n").context("writing a pid file")?;
    let garbage = garbage.to_str().context("path is not UTF-8")?.to_string();
    let missing = dir.path().join("missing.pid");
    let missing = missing.to_str().context("path is not UTF-8")?.to_string();
    let cases = [
        (
            format!("bogus={pid}"),
            "unknown signal \"bogus\"\n".to_string(),
        ),
        (
            "ldm=1=2=3".into(),
            "invalid signal parameters: [2 3]\n".into(),
        ),
        ("ldm=abc".into(), "invalid pid: abc\n".into()),
        (
            format!("ldm={missing}"),
            format!("invalid pid: {missing}\n"),
        ),
        (format!("ldm={garbage}"), "invalid pid: garbage\n\n".into()),
        (
            "ldm=999999999".into(),
            "\nsignal \"ldm\" 999999999: no such process\n".into(),
        ),
    ];
    for (value, want) in cases {
        let out = run_signal(&server, &value)?;
        ensure!(
            out.code == Some(1),
            "--signal {value} exited {:?}",
            out.code
        );
        ensure!(
            out.message == want,
            "--signal {value} said {:?}, not {want:?}",
            out.message
        );
    }
    // A pid not written in its plain decimal form matches nothing: success, nothing sent.
    let out = run_signal(&server, &format!("ldm=0{pid}"))?;
    ensure!(out.code == Some(0), "ldm=0{pid}: {:?}", out.message);
    block_on(async {
        let mut client = RawClient::quiet(server.port()).await?;
        client.expect_still_open().await
    })
}

/// With no pid, the one running server is meant; with two (or more: other tests' servers run
/// too) the command lists them and signals none.
fn signal_without_a_pid_refuses_to_choose_between_several_servers(
    t: &Target,
) -> anyhow::Result<()> {
    let first = t.start(&[])?;
    let second = t.start(&[])?;
    for value in ["ldm", "ldm="] {
        let out = run_signal(&first, value)?;
        ensure!(
            out.code == Some(1),
            "--signal {value} exited {:?}",
            out.code
        );
        let heading = format!("multiple {} processes running:\n", first.kind().name());
        ensure!(
            out.message.starts_with(&heading),
            "--signal {value} said {:?}",
            out.message
        );
        let listed: Vec<&str> = out.message.lines().skip(1).collect();
        for server in [&first, &second] {
            let pid = server.pid().to_string();
            ensure!(listed.contains(&pid.as_str()), "{pid} not in {listed:?}");
        }
    }
    block_on(async {
        for server in [&first, &second] {
            let mut client = RawClient::quiet(server.port()).await?;
            client.expect_still_open().await?;
        }
        Ok(())
    })
}
