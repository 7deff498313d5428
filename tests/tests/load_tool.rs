//! The load tool against a real stack started in this process (SQLite, each broker): `load
//! --rate … --json --check` and `load --concurrency … --json`, run as the binary a user runs,
//! their JSON output parsed and checked against the schedule and the invariants.

use std::time::Duration;

use anyhow::Context;
use e2e_tests::stack::Stack;
use serde_json::Value;
use test_support::matrix::{self, Axes};
use test_support::{scenario, Target};

/// How long one `load` run may take, start to exit.
const RUN_BOUND: Duration = Duration::from_secs(180);

fn main() {
    matrix::run(
        &[
            scenario!(an_open_loop_run_reports_its_schedule_and_the_invariants_as_json),
            scenario!(a_closed_loop_run_reports_its_maximum_as_json),
        ],
        Axes::Brokers,
    );
}

async fn an_open_loop_run_reports_its_schedule_and_the_invariants_as_json(
    t: Target,
) -> anyhow::Result<()> {
    let stack = Stack::start(&t, 2).await?;
    let flags = [
        "--rate",
        "50",
        "--duration",
        "2s",
        "--warmup",
        "1s",
        "--check",
    ];
    let out = run_load(&stack, &flags).await?;
    assert_eq!(out["mode"], "open");
    let (settings, figures) = (&out["settings"], &out["figures"]);
    assert_eq!(settings["rate"], 50);
    assert_eq!(settings["duration_s"], 2.0);
    assert_eq!(settings["warmup_s"], 1.0);
    assert_eq!(settings["concurrency"], Value::Null);
    // 50/s for 2 s after the warm-up, whatever the stack does.
    assert_eq!(figures["scheduled"], 100, "{figures}");
    let count = |name: &str| figures[name].as_u64().unwrap_or(u64::MAX);
    assert_eq!(count("sent") + count("dropped"), 100, "{figures}");
    assert_eq!(count("applied") + count("rejected"), count("sent"));
    assert_eq!(count("failed"), 0);
    assert_eq!(figures["offered_per_s"], 50.0);
    assert_eq!(figures["overloaded"], count("dropped") > 0);
    let latency = &figures["request_to_applied"];
    assert_eq!(latency["samples"].as_u64(), Some(count("sent")));
    in_order(latency)?;
    in_order(&figures["http_post"])?;
    // Five accounts, each with its opening deposit and its share of 150 transactions.
    assert_eq!(out["invariants"]["held"], true, "{}", out["invariants"]);
    assert_eq!(out["invariants"]["accounts"], 5);
    let entries = out["invariants"]["ledger_entries"].as_u64().unwrap_or(0);
    assert!(entries >= 5 + count("sent"), "{entries} ledger entries");
    Ok(())
}

async fn a_closed_loop_run_reports_its_maximum_as_json(t: Target) -> anyhow::Result<()> {
    let stack = Stack::start(&t, 1).await?;
    let out = run_load(&stack, &["--concurrency", "4", "--transactions", "40"]).await?;
    assert_eq!(out["mode"], "closed");
    assert_eq!(out["settings"]["concurrency"], 4);
    assert_eq!(out["settings"]["rate"], Value::Null);
    let figures = &out["figures"];
    assert_eq!(figures["transactions"], 40);
    assert!(figures["max_per_s"].as_f64().is_some_and(|r| r > 0.0));
    assert_eq!(figures["request_to_applied"]["samples"], 40);
    in_order(&figures["request_to_applied"])?;
    assert_eq!(out["invariants"], Value::Null);
    Ok(())
}

/// Runs the `load` binary on `stack`'s services over 5 accounts with `flags` and `--json`, and
/// parses its output.
async fn run_load(stack: &Stack, flags: &[&str]) -> anyhow::Result<Value> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_load"));
    command
        .args(["--account-url", &stack.replicas[0].url])
        .args(["--transaction-url", &stack.transaction.url])
        .args(["--nats-url", &stack.broker.url()])
        .args(["--accounts", "5", "--json"])
        .args(flags)
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_BOUND, command.output())
        .await
        .with_context(|| format!("load {flags:?} still running after {RUN_BOUND:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        output.status.success(),
        "load {flags:?}: {}\n{stderr}",
        output.status
    );
    serde_json::from_str(&stdout)
        .with_context(|| format!("load {flags:?} printed no JSON object: {stdout}\n{stderr}"))
}

/// Checks that a latency's p50 ≤ p99 ≤ p99.9 ≤ max and that it has samples.
fn in_order(latency: &Value) -> anyhow::Result<()> {
    let at = |name: &str| {
        latency[name]
            .as_f64()
            .context(format!("no {name} in {latency}"))
    };
    let figures = [at("p50_ms")?, at("p99_ms")?, at("p999_ms")?, at("max_ms")?];
    anyhow::ensure!(
        figures.windows(2).all(|w| w[0] <= w[1]) && figures[0] >= 0.0,
        "latency figures out of order: {latency}"
    );
    anyhow::ensure!(
        latency["samples"].as_u64() > Some(0),
        "no samples: {latency}"
    );
    Ok(())
}
