//! The NATS Streaming client tables, against the broker started with `-cid`:
//! - `node-nats-streaming` 0.3.2, the client the seeds' services used: the table is in
//!   `tests/stan/*.test.js` (node's own test runner; each test starts a broker of its own on
//!   free ports). Its pinned npm packages are installed on first use (`npm ci`). Node.js 18 or
//!   newer and npm must be on PATH.
//! - the C client (libnats with its streaming API, Debian's `libnats-dev`): the table is
//!   `tests/stan/c/stan_client_table.c`, compiled here with `cc` and run against one broker.
//!
//! Each fails with the table's output when any of it fails, and when what it needs is missing.

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

#[test]
fn the_c_client_passes_its_table_against_the_broker() {
    let source = suite_dir().join("c").join("stan_client_table.c");
    let program = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stan_client_table");
    let compiled = std::process::Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&program)
        .arg(&source)
        .arg("-lnats")
        .output()
        .expect("running cc (the C client table needs a C compiler)");
    assert!(
        compiled.status.success(),
        "cannot compile the C client table (it needs libnats with its streaming API: \
         apt-get install libnats-dev):\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let kind = broker::harness::ServerKind::Bundled(env!("CARGO_BIN_EXE_broker").into());
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().to_str().unwrap();
    let server =
        broker::harness::ServerProcess::start(&kind, &["-cid", "test-cluster", "-sd", dir])
            .unwrap();
    // The streaming component connects just after the client port opens: wait until its
    // monitoring endpoint answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !serverz_answers(server.http_port()) {
        assert!(
            std::time::Instant::now() < deadline,
            "NATS Streaming never started:\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = std::process::Command::new(&program)
        .arg(server.client_url())
        .output()
        .expect("running the C client table");
    let tap = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && tap.contains("1.."),
        "the C client table failed ({}):\n{tap}\n{}\nbroker log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    println!("{tap}");
}

/// Whether `/streaming/serverz` on the monitoring port answers 200.
fn serverz_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /streaming/serverz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut answer = String::new();
    socket.write_all(request.as_bytes()).is_ok()
        && socket.read_to_string(&mut answer).is_ok()
        && answer.split(' ').nth(1) == Some("200")
}
