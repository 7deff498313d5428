//! The open-loop load: random deposits and withdrawals at a fixed rate (see [`crate::schedule`]),
//! each timed from its scheduled time to its HTTP response and to its outcome event.

use std::sync::Arc;

use anyhow::Context;
use tokio::time::Instant;

use crate::client::Client;
use crate::load::random_transaction;
use crate::outcomes::Outcomes;
use crate::schedule::{self, OpenReport, Plan, Sample};

/// Runs `plan` against the services of `client`, over `accounts`, watching `nats` for the
/// outcomes.
pub async fn run(
    client: &Client,
    nats: &async_nats::Client,
    accounts: &[String],
    plan: &Plan,
) -> anyhow::Result<OpenReport> {
    anyhow::ensure!(!accounts.is_empty(), "no accounts to load");
    let outcomes = Outcomes::watch(nats).await?;
    let accounts: Arc<[String]> = accounts.into();
    schedule::drive(plan, |_slot| {
        let (client, outcomes) = (client.clone(), outcomes.clone());
        let accounts = Arc::clone(&accounts);
        async move {
            let (account, kind, amount) = random_transaction(&accounts);
            let sent = Instant::now();
            let created = client
                .create(account, kind, amount)
                .await?
                .with_context(|| format!("account {account} unknown"))?;
            let responded = Instant::now();
            let outcome = outcomes.of(&created.id).await?;
            Ok(Sample {
                sent,
                responded,
                settled: outcome.at,
                applied: outcome.applied,
            })
        }
    })
    .await
}
