//! The one-command stack, run as users run it: the `bank` binary on a data directory, every
//! port picked free. It prints its table, serves the walk-through, survives a replica's
//! `kill -9`, stops in order within five seconds and resumes with every balance intact.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    balance, bank_command, children_of, open_account, runtime, settled, transact, until, Bank,
    SETTLE_BOUND,
};

#[test]
fn one_command_runs_the_bank_survives_a_replica_crash_stops_in_order_and_resumes() {
    let data = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let rt = runtime();
    let mut bank = Bank::start(data.path(), &[]);
    for name in [
        "broker",
        "broker monitor",
        "transaction",
        "account-1",
        "account-2",
        "statement",
        "console",
    ] {
        bank.url(name);
    }
    let account = rt.block_on(async {
        let account = open_account(&http, &bank, "alice").await;
        transact(&http, &bank, &account, "deposit", 10_000, "alice-1").await;
        transact(&http, &bank, &account, "withdrawal", 2_500, "alice-2").await;
        settled(&http, &bank, &account, (7_500, 2)).await;
        account
    });

    // A replica dies as kill -9 would kill it; the stack restarts it and the bank goes on.
    let replicas = children_of(bank.child.id(), "account-service");
    assert_eq!(
        replicas.len(),
        2,
        "two account-service children: {replicas:?}"
    );
    // SAFETY: kill(2) on a process we just found as our child's child.
    assert_eq!(
        unsafe { libc::kill(replicas[1] as libc::pid_t, libc::SIGKILL) },
        0
    );
    bank.expect_stderr(
        "was killed by signal 9; restarting it",
        Duration::from_secs(10),
    );
    rt.block_on(async {
        until("the replica is back", SETTLE_BOUND, || async {
            (children_of(bank.child.id(), "account-service").len() == 2).then_some(())
        })
        .await;
        transact(&http, &bank, &account, "deposit", 500, "alice-3").await;
        settled(&http, &bank, &account, (8_000, 3)).await;
    });

    let children = children_of(bank.child.id(), "");
    assert_eq!(
        children.len(),
        6,
        "broker, transaction, two replicas, statement, console: {children:?}"
    );
    let (took, status) = bank.signal_and_wait(libc::SIGINT);
    assert!(status.success(), "bank exited with {status}");
    assert!(took < Duration::from_secs(5), "the stop took {took:?}");
    let left: Vec<u32> = children
        .into_iter()
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    assert!(left.is_empty(), "no child outlives the stack: {left:?}");
    drop(bank);

    let bank = Bank::start(data.path(), &[]);
    rt.block_on(async {
        assert_eq!(balance(&http, &bank, &account).await, (8_000, 3));
        transact(&http, &bank, &account, "withdrawal", 1_000, "alice-4").await;
        settled(&http, &bank, &account, (7_000, 4)).await;
    });
}

#[test]
fn a_busy_port_stops_the_stack_before_it_starts_and_names_the_flag() {
    let data = tempfile::tempdir().expect("tempdir");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let output = bank_command(data.path(), &[&format!("--console-port={port}")])
        .output()
        .expect("running bank");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("port {port} (console) is in use"))
            && stderr.contains("--console-port")
            && stderr.contains("BANK_CONSOLE_PORT"),
        "{stderr}"
    );
}

#[test]
fn a_second_stack_on_the_same_data_directory_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let _first = Bank::start(data.path(), &["--account-replicas=1"]);
    let output = bank_command(data.path(), &[])
        .output()
        .expect("running bank");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("another bank (pid"), "{stderr}");
}
