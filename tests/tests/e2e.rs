//! The whole stack with two account-service replicas and a statement service under a concurrent
//! mixed load, with a replica stopped and replaced mid-load, a third account-service replica and
//! a second statement-service replica (processes of their own) killed with SIGKILL mid-load, and
//! duplicates injected afterwards, on every broker ×
//! database target, and on a three-node nats-server cluster (`nats-cluster/sqlite`, streams with
//! 3 replicas) where one node, a follower of the `TRANSACTIONS` stream and of its
//! `account-service` consumer, is also killed (SIGKILL) mid-load and restarted. Asserts every
//! invariant of the ordering protocol (docs/ordering.md), and that every statement, once the
//! statement service has caught up, closes at the account's balance with the ledger's running
//! balance on every line.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use common_events::inspect::read_all;
use common_events::{
    Envelope, Publisher, TransactionApplied, TransactionCreated, TransactionRejected,
};
use e2e_tests::client::Client;
use e2e_tests::invariants::{self, AccountView};
use e2e_tests::load::{self, LoadOptions};
use e2e_tests::stack::{start_account, Stack};
use test_support::matrix::{self, Axes};
use test_support::process::ServiceProcess;
use test_support::wait::until_eq;
use test_support::{scenario, BrokerTarget, DatabaseTarget, NatsCluster, Target};

const SETTLE: Duration = Duration::from_secs(90);
/// How many messages a killable replica handles before it is killed: enough to be mid-load.
const HANDLED_BEFORE_KILL: u64 = 10;

fn main() {
    // The cluster on SQLite only: it is the broker under test there, not the database.
    let cluster = Target {
        broker: BrokerTarget::cluster(),
        database: Some(DatabaseTarget::Sqlite),
    };
    matrix::run_with(
        &[scenario!(
            two_replicas_under_a_concurrent_mixed_load_keep_every_invariant
        )],
        Axes::BrokersAndDatabases,
        vec![cluster],
    );
}

async fn two_replicas_under_a_concurrent_mixed_load_keep_every_invariant(
    t: Target,
) -> anyhow::Result<()> {
    let mut stack = Stack::start(&t, 2).await?;
    let accounts = load::open_accounts(&stack.client, 25).await?;
    let node_chaos = match stack.broker.cluster() {
        Some(cluster) => Some(kill_a_node_mid_load(&mut stack, cluster).await?),
        None => None,
    };
    let chaos = replace_a_replica_mid_load(&mut stack)?;
    let crashes = kill_replicas_mid_load(&stack).await?;
    let options = LoadOptions {
        transactions: 800,
        concurrency: 32,
        settle_timeout: SETTLE,
    };
    let report = load::run(&stack.client, &stack.nats, &accounts, &options).await?;
    eprintln!("{}: {}", t.broker, report.summary());
    chaos.await.context("the chaos task panicked")??;
    crashes.await.context("the crashing task panicked")??;
    if let Some(node_chaos) = node_chaos {
        node_chaos
            .await
            .context("the node-killing task panicked")??;
    }
    let views = invariants::settled(&stack.client, &accounts, SETTLE).await?;
    invariants::check(&views)?;
    let began = Instant::now();
    let statements = invariants::statements_caught_up(&stack.client, &views, SETTLE).await?;
    invariants::check_statements(&views, &statements)?;
    let lines: usize = statements.iter().map(|s| s.lines.len()).sum();
    eprintln!(
        "{}: {} statements with {lines} lines agree with the accounts ({:.1} s to catch up)",
        t.broker,
        statements.len(),
        began.elapsed().as_secs_f64()
    );
    each_outcome_is_published_exactly_once(&stack, &views).await?;
    replayed_duplicates_change_nothing(&stack, &accounts, &views).await?;
    a_rebuild_equals_the_live_state(&stack, &accounts, &views).await
}

/// Stops the second replica gracefully a moment into the load and starts a replacement on the
/// same database. (The delay is the fault schedule, not a wait for a condition.)
fn replace_a_replica_mid_load(
    stack: &mut Stack,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let second = stack.replicas.pop().context("two replicas")?;
    let (nats, database) = (stack.broker.url(), stack.account_database.clone());
    let replicas = stack.stream_replicas;
    Ok(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.stop().await?;
        let replacement = start_account(&nats, replicas, &database, false).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        replacement.stop().await
    }))
}

/// Starts a third account-service replica (on the shared database) and a second
/// statement-service replica, each a process of its own, and returns a task that kills each
/// with SIGKILL as soon as it has handled [`HANDLED_BEFORE_KILL`] messages of the load (read
/// from its `/metrics`): a crash mid-load, its unacknowledged messages left to the others.
async fn kill_replicas_mid_load(
    stack: &Stack,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let common = |database: &str| {
        vec![
            ("NATS_URL", stack.broker.url()),
            ("DATABASE_URL", database.to_owned()),
            ("STREAM_REPLICAS", stack.stream_replicas.to_string()),
        ]
    };
    let mut account_env = common(&stack.account_database);
    account_env.push(("REPLICA_ID", "account-killed".to_owned()));
    let statement_env = common(&stack.statement_database);
    let started = tokio::task::spawn_blocking(move || {
        let program = Path::new(env!("CARGO_BIN_EXE_killable"));
        let account = ServiceProcess::start_with_args(program, &["account-service"], &account_env)?;
        let statement =
            ServiceProcess::start_with_args(program, &["statement-service"], &statement_env)?;
        anyhow::Ok([
            ("account-service", account),
            ("statement-service", statement),
        ])
    })
    .await??;
    for (_, process) in &started {
        process.wait_ready(SETTLE).await?;
    }
    Ok(tokio::spawn(async move {
        let http = reqwest::Client::new();
        for (name, mut process) in started {
            let metrics = format!("{}/metrics", process.url());
            let handled = test_support::eventually(
                &format!("the killable {name} to handle {HANDLED_BEFORE_KILL} messages"),
                SETTLE,
                || async {
                    let text = http.get(&metrics).send().await?.text().await?;
                    let acked = acked_messages(&text);
                    Ok((acked >= HANDLED_BEFORE_KILL).then_some(acked))
                },
            )
            .await?;
            tokio::task::spawn_blocking(move || process.kill()).await?;
            eprintln!("killed the {name} replica (SIGKILL) after it acked {handled} messages");
        }
        anyhow::Ok(())
    }))
}

/// The messages a service's listeners acknowledged, from its `/metrics`
/// (`listener_messages_total{listener,outcome="acked"}`, every listener).
fn acked_messages(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("listener_messages_total{") && l.contains("outcome=\"acked\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// On the cluster: checks the services created the streams with 3 replicas, then picks a
/// follower, a node leading neither the `TRANSACTIONS` stream nor its `account-service`
/// consumer (with three nodes and two leaders there is always one), and a moment into the load
/// kills it (SIGKILL), keeps it down for a second and restarts it on the same ports and store,
/// waiting until its `/healthz` says it has caught up (its replicas of both streams included).
///
/// The test's own connection moves off that node first: its core-NATS subscription to the
/// outcomes (the load tool's clock) would miss what is published while it reconnects.
async fn kill_a_node_mid_load(
    stack: &mut Stack,
    cluster: NatsCluster,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let js = async_nats::jetstream::new(stack.nats.clone());
    for name in ["ACCOUNTS", "TRANSACTIONS"] {
        let mut stream = js.get_stream(name).await?;
        let replicas = stream.info().await?.config.num_replicas;
        anyhow::ensure!(
            replicas == 3,
            "stream {name} has {replicas} replicas, not 3"
        );
    }
    let mut stream = js.get_stream("TRANSACTIONS").await?;
    let leader_of = |c: Option<&async_nats::jetstream::stream::ClusterInfo>| {
        c.and_then(|c| c.leader.clone()).unwrap_or_default()
    };
    let stream_leader = leader_of(stream.info().await?.cluster.as_ref());
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer("account-service")
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let consumer_leader = leader_of(consumer.info().await?.cluster.as_ref());
    let victim = cluster
        .names()
        .into_iter()
        .find(|n| *n != stream_leader && *n != consumer_leader)
        .context("a follower")?;
    let node = cluster
        .index_of(&victim)
        .with_context(|| format!("no node named {victim}"))?;
    if stack.nats.server_info().server_name == victim {
        stack.nats = e2e_tests::stack::connect(&cluster.url_without(node)).await?;
    }
    Ok(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            cluster.kill(node)?;
            eprintln!(
                "nats-cluster: killed {victim} (SIGKILL), a follower: TRANSACTIONS stream \
                 leader {stream_leader}, account-service consumer leader {consumer_leader}"
            );
            std::thread::sleep(Duration::from_secs(1));
            cluster.restart(node)?;
            eprintln!(
                "nats-cluster: {victim} restarted and serving JetStream {:.1} s after the kill",
                started.elapsed().as_secs_f64()
            );
            anyhow::Ok(())
        })
        .await?
    }))
}

async fn each_outcome_is_published_exactly_once(
    stack: &Stack,
    views: &[AccountView],
) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(stack.nats.clone());
    let total: usize = views.iter().map(|v| v.transactions.len()).sum();
    let applied = read_all::<TransactionApplied>(&js).await?;
    let rejected = read_all::<TransactionRejected>(&js).await?;
    let mut ids: Vec<String> = applied
        .iter()
        .map(|(_, e)| e.data.transaction_id.to_string())
        .collect();
    ids.extend(
        rejected
            .iter()
            .map(|(_, e)| e.data.transaction_id.to_string()),
    );
    ids.sort();
    ids.dedup();
    assert_eq!(
        applied.len() + rejected.len(),
        total,
        "one outcome event per transaction"
    );
    assert_eq!(ids.len(), total, "no transaction has two outcome events");
    Ok(())
}

/// Publishes 100 stored `TransactionCreated` events again under new event ids (as a redelivery
/// storm would deliver them) and checks nothing changes.
async fn replayed_duplicates_change_nothing(
    stack: &Stack,
    accounts: &[String],
    before: &[AccountView],
) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(stack.nats.clone());
    let created = read_all::<TransactionCreated>(&js).await?;
    let publisher = Publisher::new(js.clone());
    for (_, event) in created.iter().take(100) {
        publisher
            .publish(&Envelope::new(event.data.clone()), None)
            .await?;
    }
    let consumer_idle = || async {
        let stream = js.get_stream("TRANSACTIONS").await?;
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_consumer("account-service")
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let info = consumer.get_info().await?;
        Ok((info.num_pending, info.num_ack_pending))
    };
    until_eq("the duplicates to be acked", SETTLE, (0, 0), consumer_idle).await?;
    let after = invariants::read(&stack.client, accounts).await?;
    assert!(after == before, "duplicates changed the state");
    Ok(())
}

async fn a_rebuild_equals_the_live_state(
    stack: &Stack,
    accounts: &[String],
    live: &[AccountView],
) -> anyhow::Result<()> {
    let target_db = if stack.account_database.starts_with("sqlite") {
        format!(
            "sqlite://{}?mode=rwc",
            stack.dir.path().join("rebuilt.db").display()
        )
    } else {
        test_support::postgres::fresh_database().await?
    };
    let rebuilt =
        start_account(&stack.broker.url(), stack.stream_replicas, &target_db, true).await?;
    let client = Client::new(&rebuilt.url, &stack.client.transaction_url)?;
    let again = invariants::read(&client, accounts).await?;
    for (live, again) in live.iter().zip(&again) {
        assert_eq!(live.account, again.account, "rebuilt account differs");
        assert_eq!(
            live.ledger, again.ledger,
            "rebuilt ledger of {} differs",
            live.account.id
        );
    }
    rebuilt.stop().await
}
