//! Keeps `broker-bench` working: a tiny run of every benchmark against the (debug) broker and
//! nats-server must succeed and report a figure for each. The figures themselves mean nothing
//! here; docs/benchmarks.md says how to measure.

use std::process::Command;

use anyhow::Context;

#[test]
fn a_tiny_run_of_every_benchmark_reports_figures_for_both_servers() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_broker-bench"))
        .args(["--broker-bin", env!("CARGO_BIN_EXE_broker")])
        .args(["--messages", "2000", "--requests", "100", "--runs", "1"])
        .args(["--sizes", "16", "--json"])
        .output()
        .context("running broker-bench")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "broker-bench failed:\n{stderr}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing the JSON report")?;
    let medians = doc["medians"].as_array().context("no medians")?;
    assert_eq!(medians.len(), 4, "one entry per benchmark: {medians:?}");
    for case in medians {
        for server in ["broker", "nats-server"] {
            let figures = case["median"][server]
                .as_object()
                .with_context(|| format!("no figures for {server} in {case}"))?;
            assert!(
                figures
                    .values()
                    .all(|v| v.as_f64().is_some_and(|v| v > 0.0)),
                "a missing or zero figure for {server}: {case}"
            );
        }
    }
    Ok(())
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
