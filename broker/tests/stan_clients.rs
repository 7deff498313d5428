//! The NATS Streaming client table: `node-nats-streaming` 0.3.2, the client the seeds' services
//! used, against the broker started with `-cid`. The table itself is in `tests/stan/*.test.js`
//! (node's own test runner; each test starts a broker of its own on free ports); this test
//! installs its pinned npm packages on first use (`npm ci`, from `package-lock.json`), runs it
//! with this build's broker, and fails with its output when any of it fails.
//!
//! Node.js 18 or newer and npm must be on PATH; without them this test fails and says so.

use std::path::{Path, PathBuf};

use broker::harness::node;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("stan")
}

#[test]
fn node_nats_streaming_passes_the_client_table_against_the_broker() {
    let dir = suite_dir();
    node::npm_ci(&dir).unwrap();
    let output = node::node()
        .unwrap()
        .args(["--test", "--test-concurrency=1", "--test-reporter=tap"])
        .current_dir(&dir)
        .env("BROKER_BIN", env!("CARGO_BIN_EXE_broker"))
        .output()
        .expect("running node --test");
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
