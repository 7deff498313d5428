//! `broker-bench`: measures core NATS and JetStream throughput and latency of the bundled broker
//! against the reference nats-server (or of any servers given with `--url`) and prints them side
//! by side.
//!
//! The layout:
//! - `args`: the command line.
//! - `targets`: the servers under test, started with `broker::harness` or given by URL.
//! - `bench`: the [`bench::Benchmark`] trait and one module per benchmark.
//! - `raw`: a minimal blocking NATS client, so the client is not the bottleneck; `jetstream`:
//!   the JetStream requests, PubAcks and pull deliveries over it.
//! - `runner`: runs, repeats and alternates; `report`: tables and JSON.
//! - `system`: machine facts and per-process CPU time from `/proc`.
//! - `tls`: `--tls`, a certificate for the servers and the raw clients' TLS.

mod args;
mod bench;
mod jetstream;
mod raw;
mod report;
mod runner;
mod system;
mod targets;
mod tls;

use std::process::ExitCode;

use anyhow::Context;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("broker-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the benchmarks; `Ok(false)` when any run failed.
fn run() -> anyhow::Result<bool> {
    let settings = args::parse(std::env::args().skip(1))?;
    if settings.help {
        print!("{}", args::USAGE);
        return Ok(true);
    }
    let benches = runner::select(&settings)?;
    let machine = system::Machine::detect();
    let mut targets = targets::Targets::prepare(&settings, &runner::suites(&benches))?;
    let env = bench::Env {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?,
    };
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let jetstream = targets.groups.iter().any(|g| g.suite != bench::Suite::Core);
    let fsync = jetstream.then(system::fsync_latency).transpose()?;
    if !settings.json {
        report::print_header(&report::Header {
            date: date.clone(),
            machine: machine.clone(),
            targets: &targets,
            settings: &settings,
            fsync,
        });
    }
    let results = runner::run_all(&settings, &env, &mut targets, &benches);
    let end = system::Conditions::now(jetstream);
    if settings.json {
        let header = report::Header {
            date,
            machine,
            targets: &targets,
            settings: &settings,
            fsync,
        };
        report::print_json(&header, &results, &end)?;
    } else {
        report::print_results(&targets, &results, &end);
    }
    Ok(results
        .iter()
        .all(|r| r.targets.iter().all(|t| t.errors.is_empty())))
}
