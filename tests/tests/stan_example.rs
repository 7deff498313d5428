//! The worked example's NATS Streaming flavour, end to end: the bundled broker with `-cid bank`
//! (as `cargo run --release` starts it), the Rust transaction and account services, and the
//! STAN audit service of `services/stan-audit` (node-nats-streaming, the seeds'
//! Listener/Publisher pattern) reading the account service's outcome events as STAN channels.
//!
//! It checks that the STAN listener sees each outcome at its stream sequence, and that the
//! AuditRecorded messages it publishes are readable by a JetStream client, one per transaction.
//! Node.js and npm must be on PATH; the example's packages are installed on first use.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context};
use async_nats::jetstream;
use e2e_tests::client::Client;
use e2e_tests::stack::{connect, start_account, start_transaction};
use futures_util::StreamExt;
use serde_json::Value;
use test_support::node;
use test_support::{BrokerTarget, DatabaseTarget};

/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(30);
/// Transactions the test makes.
const TRANSACTIONS: usize = 6;

/// Kills the audit service when the test ends, however it ends.
struct Audit(Child);

impl Drop for Audit {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stan_service_audits_the_rust_services_outcomes_on_the_same_streams() -> anyhow::Result<()>
{
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("services")
        .join("stan-audit");
    node::npm_ci(&example)?;
    let target = BrokerTarget::bundled(test_support::brokers::bundled_path());
    if let Some(missing) = target.unavailable() {
        anyhow::bail!("the bundled broker: {missing}");
    }
    let broker = target.start_with(&["-cid", "bank"])?;
    let url = broker.url();
    let dir = tempfile::tempdir()?;
    let account_db = DatabaseTarget::Sqlite
        .fresh_url(dir.path(), "account")
        .await?;
    let transaction_db = DatabaseTarget::Sqlite
        .fresh_url(dir.path(), "transaction")
        .await?;
    let account = start_account(&url, 1, &account_db, false).await?;
    let transaction = start_transaction(&url, 1, &transaction_db).await?;
    let client = Client::new(&account.url, &transaction.url)?;

    // The STAN service starts first, as a service does, before there is anything to audit.
    let mut child = node::node()?
        .arg("src/index.js")
        .current_dir(&example)
        .env("NATS_URL", &url)
        .env("STAN_CLUSTER_ID", "bank")
        .env("STAN_CLIENT_ID", "stan-audit-test")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the STAN audit service")?;
    let stdout = child.stdout.take().context("its stdout")?;
    let _audit = Audit(child);
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let ready = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.recv().await {
            if line.starts_with("stan-audit ready") {
                return Some(line);
            }
        }
        None
    })
    .await
    .context("the audit service never said it was ready")?;
    ensure!(
        ready.is_some(),
        "the audit service exited before it was ready"
    );

    let opened = client.open_account("stan-example").await?;
    let mut created = Vec::new();
    for i in 0..TRANSACTIONS {
        let (kind, amount) = if i % 3 == 2 {
            ("withdrawal", 1_000_000) // more than the balance: rejected
        } else {
            ("deposit", 10 + i as i64)
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        let made = loop {
            if let Some(t) = client.create(&opened.id, kind, amount).await? {
                break t;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the transaction service never learned the account"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        created.push(made.id);
    }

    // Each outcome is audited once, with its STAN sequence.
    let mut audited: HashMap<String, (String, u64)> = HashMap::new();
    tokio::time::timeout(WAIT, async {
        while audited.len() < TRANSACTIONS {
            let Some(line) = lines.recv().await else {
                break;
            };
            if let Some(rest) = line.strip_prefix("audited ") {
                let fields: HashMap<&str, &str> =
                    rest.split(' ').filter_map(|f| f.split_once('=')).collect();
                let sequence: u64 = rest
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.strip_prefix('#'))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                audited.insert(
                    fields["transaction"].to_string(),
                    (fields["outcome"].to_string(), sequence),
                );
            }
        }
    })
    .await
    .with_context(|| format!("audited {} of {TRANSACTIONS}", audited.len()))?;

    // The STAN sequence is the outcome event's sequence in the Rust services' stream.
    let nats = connect(&url).await?;
    let js = jetstream::new(nats);
    let mut stream = js.get_stream("TRANSACTIONS").await?;
    for id in &created {
        let (outcome, sequence) = audited
            .get(id)
            .with_context(|| format!("transaction {id} was not audited"))?;
        let stored = stream.get_raw_message(*sequence).await?;
        let event: Value = serde_json::from_slice(&stored.payload)?;
        ensure!(
            stored.subject.as_str() == format!("transactions.{outcome}"),
            "sequence {sequence} is {} in TRANSACTIONS, not an {outcome} outcome",
            stored.subject
        );
        ensure!(
            event["data"]["transaction_id"] == id.as_str(),
            "sequence {sequence} is another transaction's outcome: {event}"
        );
    }
    let rejected = audited.values().filter(|(o, _)| o == "rejected").count();
    ensure!(rejected == TRANSACTIONS / 3, "{rejected} rejected");

    // What the STAN service published is in a stream a JetStream client reads.
    let info = stream.info().await?.config.name.clone();
    ensure!(info == "TRANSACTIONS");
    let audit = js
        .get_stream("audit%2Erecorded")
        .await
        .context("the channel audit.recorded has its stream")?;
    let consumer: jetstream::consumer::PullConsumer = audit
        .create_consumer(jetstream::consumer::pull::Config::default())
        .await?;
    let mut records = consumer
        .fetch()
        .max_messages(TRANSACTIONS)
        .expires(WAIT)
        .messages()
        .await?;
    let mut recorded = Vec::new();
    while let Some(msg) = records.next().await {
        let msg = msg.map_err(|e| anyhow::anyhow!(e))?;
        let record: Value = serde_json::from_slice(&msg.payload)?;
        recorded.push(record["transaction_id"].as_str().unwrap_or("").to_string());
    }
    recorded.sort();
    let mut expected = created.clone();
    expected.sort();
    ensure!(
        recorded == expected,
        "AuditRecorded messages {recorded:?}, transactions {expected:?}"
    );
    Ok(())
}
