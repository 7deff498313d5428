//! The NATS Streaming client table: `node-nats-streaming` 0.3.2, the client the seeds' services
//! used, against the broker started with `-cid`. The table itself is in `tests/stan/*.test.js`
//! (node's own test runner; each test starts a broker of its own on free ports); this test
//! installs its pinned npm packages on first use (`npm ci`, from `package-lock.json`), runs it
//! with this build's broker, and fails with its output when any of it fails.
//!
//! Node.js 18 or newer and npm must be on PATH; without them this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("stan")
}

fn run(command: &mut Command, what: &str) -> std::process::Output {
    match command.output() {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run {what}: {e}. The NATS Streaming client table needs Node.js (18 or newer) \
             and npm on PATH (Debian: apt-get install nodejs npm)"
        ),
    }
}

/// Installs the pinned client when its packages are missing or older than the lock file.
fn install(dir: &Path) {
    let marker = dir.join("node_modules").join(".package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = match (marker.metadata(), lock.metadata()) {
        (Ok(m), Ok(l)) => m.modified().ok() >= l.modified().ok(),
        _ => false,
    };
    if fresh {
        return;
    }
    let output = run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir),
        "npm ci",
    );
    assert!(
        output.status.success(),
        "npm ci in {} failed ({}):\n{}{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn node_nats_streaming_passes_the_client_table_against_the_broker() {
    let dir = suite_dir();
    install(&dir);
    let output = run(
        Command::new("node")
            .args(["--test", "--test-concurrency=1", "--test-reporter=tap"])
            .current_dir(&dir)
            .env("BROKER_BIN", env!("CARGO_BIN_EXE_broker")),
        "node --test",
    );
    let tap = String::from_utf8_lossy(&output.stdout);
    let count = |key: &str| {
        tap.lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let (pass, fail) = (count("pass"), count("fail"));
    let failed: Vec<&str> = tap
        .lines()
        .filter(|l| l.trim_start().starts_with("not ok"))
        .collect();
    assert!(
        output.status.success() && fail == 0 && pass > 0,
        "the NATS Streaming client table failed ({}): {pass} passed, {fail} failed\n{}\n\n{tap}\n{}",
        output.status,
        failed.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("node-nats-streaming client table: {pass} passed");
}
