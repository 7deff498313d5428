//! Keeps `broker-bench` working: a tiny run of every benchmark against the (debug) broker and
//! nats-server must succeed and report a figure for each. The figures themselves mean nothing
//! here; docs/benchmarks.md says how to measure.

use std::process::Command;

use anyhow::Context;

/// Runs broker-bench with `args` and the debug broker, and returns its JSON report's medians
/// after checking that it succeeded.
fn run_bench(args: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
    let out = Command::new(env!("CARGO_BIN_EXE_broker-bench"))
        .args(["--broker-bin", env!("CARGO_BIN_EXE_broker")])
        .args(["--runs", "1", "--json"])
        .args(args)
        .output()
        .context("running broker-bench")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "broker-bench failed:\n{stderr}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing the JSON report")?;
    let medians = doc["medians"].as_array().context("no medians")?;
    Ok(medians.clone())
}

/// Fails unless every case has a positive figure for every metric on every one of `servers`.
fn assert_figures_for(medians: &[serde_json::Value], servers: &[&str]) -> anyhow::Result<()> {
    for case in medians {
        for server in servers {
            let figures = case["median"][server]
                .as_object()
                .with_context(|| format!("no figures for {server} in {case}"))?;
            assert!(
                !figures.is_empty()
                    && figures
                        .values()
                        .all(|v| v.as_f64().is_some_and(|v| v > 0.0)),
                "a missing or zero figure for {server}: {case}"
            );
        }
    }
    Ok(())
}

#[test]
fn a_tiny_run_of_every_core_benchmark_reports_figures_for_both_servers() -> anyhow::Result<()> {
    let medians = run_bench(&[
        "--only",
        "pub,pubsub,pub-async,reqrep",
        "--messages",
        "2000",
        "--requests",
        "100",
        "--sizes",
        "16",
    ])?;
    assert_eq!(medians.len(), 4, "one entry per benchmark: {medians:?}");
    assert_figures_for(&medians, &["broker", "nats-server"])
}

#[test]
fn a_tiny_run_of_every_jetstream_benchmark_reports_figures_for_all_three_servers(
) -> anyhow::Result<()> {
    let medians = run_bench(&[
        "--only",
        "js-pub,js-pub-async,js-consume,js-rss",
        "--messages",
        "300",
        "--window",
        "32",
        "--batch",
        "50",
    ])?;
    assert_eq!(medians.len(), 4, "one entry per benchmark: {medians:?}");
    assert_figures_for(
        &medians,
        &["broker", "broker --sync interval", "nats-server"],
    )
}

#[test]
fn a_tiny_run_of_the_stan_benchmarks_reports_figures_for_stan_and_both_jetstreams(
) -> anyhow::Result<()> {
    let medians = run_bench(&[
        "--only",
        "stan-pub,stan-sub",
        "--messages",
        "300",
        "--window",
        "32",
        "--batch",
        "50",
    ])?;
    assert_eq!(medians.len(), 2, "one entry per benchmark: {medians:?}");
    assert_figures_for(
        &medians,
        &[
            "broker -cid (STAN)",
            "broker (JetStream)",
            "nats-server (JetStream)",
        ],
    )
}

#[test]
fn an_unknown_benchmark_is_refused_before_any_server_starts() {
    let out = Command::new(env!("CARGO_BIN_EXE_broker-bench"))
        .args(["--only", "jetstream-someday"])
        .output()
        .expect("broker-bench runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown benchmark"), "{stderr}");
}

#[test]
fn with_tls_every_core_benchmark_runs_over_tls_on_both_servers() -> anyhow::Result<()> {
    let medians = run_bench(&[
        "--tls",
        "--only",
        "pub,pubsub,reqrep",
        "--messages",
        "2000",
        "--requests",
        "100",
        "--sizes",
        "128",
    ])?;
    assert_eq!(medians.len(), 3, "one entry per benchmark: {medians:?}");
    assert_figures_for(&medians, &["broker", "nats-server"])
}
