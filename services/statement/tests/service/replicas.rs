//! Two replicas sharing the consumers and the database, under a shuffled load with
//! duplicates: every account's statement is the one a replay in number order gives, each
//! number recorded once.

use common_events::AccountId;
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{lines, spawn_app, start, statement, Outcome, BOUND};

pub const SCENARIOS: &[Scenario] = &[scenario!(
    two_replicas_record_a_shuffled_load_with_duplicates_once
)];

/// Accounts and outcomes per account in the load.
const ACCOUNTS: usize = 4;
const PER_ACCOUNT: u64 = 10;

/// An account's outcomes as the account service would publish them, and the lines they make.
fn history(rng: &mut fastrand::Rng, account: AccountId) -> (Vec<Outcome>, Vec<(i64, String, i64)>) {
    let (mut outcomes, mut expected, mut balance) = (Vec::new(), Vec::new(), 0);
    for number in 1..=PER_ACCOUNT {
        let amount = rng.i64(1..=80);
        let outcome = if rng.bool() {
            balance += amount;
            Outcome::deposit(account, number, amount, balance)
        } else if amount <= balance {
            balance -= amount;
            Outcome::withdrawal(account, number, amount, balance)
        } else {
            let reason = format!("insufficient funds: balance {balance}, withdrawal {amount}");
            Outcome::refused(account, number, amount, &reason)
        };
        let kind = if outcome.result.is_ok() {
            "applied"
        } else {
            "rejected"
        };
        expected.push((number as i64, kind.to_owned(), balance));
        outcomes.push(outcome);
    }
    (outcomes, expected)
}

async fn two_replicas_record_a_shuffled_load_with_duplicates_once(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let other = start(&app.broker.url(), &app.database_url).await?;
    let mut rng = fastrand::Rng::with_seed(12);
    let (mut load, mut expected) = (Vec::new(), Vec::new());
    for _ in 0..ACCOUNTS {
        let account = app.open("load").await?;
        let (outcomes, lines) = history(&mut rng, account);
        // A tenth of the outcomes twice, as redeliveries would be.
        let again: Vec<Outcome> = outcomes
            .iter()
            .filter(|_| rng.u8(0..10) == 0)
            .cloned()
            .collect();
        load.extend(outcomes.into_iter().chain(again));
        expected.push((account, lines));
    }
    rng.shuffle(&mut load);
    app.outcomes(&load).await?;
    for (account, _) in &expected {
        until_eq("the account settled", BOUND, PER_ACCOUNT as i64, || {
            app.last_number(*account)
        })
        .await?;
    }
    // Every delivery settled on one replica or the other.
    until_eq("every outcome acked", BOUND, load.len() as u64, || async {
        let mut acked = 0;
        for listener in ["transactions-applied", "transactions-rejected"] {
            acked += app.listener(listener, "acked").await?;
            acked += crate::support::metric(
                &other,
                &format!("listener_messages_total{{listener=\"{listener}\",outcome=\"acked\"}}"),
            )
            .await?;
        }
        Ok(acked)
    })
    .await?;
    for (account, lines_expected) in &expected {
        let (_, body) = statement(&other, *account, "").await?;
        assert_eq!(&lines(&body), lines_expected, "statement of {account}");
        assert_eq!(
            body["closing_balance"],
            lines_expected.last().map_or(0, |l| l.2)
        );
    }
    for name in [
        "statement_conflicts_total",
        "statement_balance_mismatches_total",
    ] {
        let both = app.metric(name).await? + crate::support::metric(&other, name).await?;
        assert_eq!(both, 0, "{name}");
    }
    other.stop().await
}
