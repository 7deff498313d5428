//! The invariants of the ordering protocol (docs/ordering.md), checked account by account:
//! every transaction ends applied or rejected; each is applied exactly once (one ledger entry
//! per number, numbers 1..n); the balance equals a sequential replay in number order; no
//! balance goes negative.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::client::{Account, Client, LedgerEntry, Transaction};

/// What one account looks like from both services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountView {
    /// From the account service.
    pub account: Account,
    /// From the account service, in number order.
    pub ledger: Vec<LedgerEntry>,
    /// From the transaction service, in number order.
    pub transactions: Vec<Transaction>,
}

/// Waits (bounded) until no transaction of `accounts` is pending, and returns their views.
pub async fn settled(
    client: &Client,
    accounts: &[String],
    bound: Duration,
) -> anyhow::Result<Vec<AccountView>> {
    let deadline = Instant::now() + bound;
    loop {
        let views = read(client, accounts).await?;
        let pending = views
            .iter()
            .flat_map(|v| &v.transactions)
            .filter(|t| t.status == "pending")
            .count();
        if pending == 0 {
            return Ok(views);
        }
        if Instant::now() > deadline {
            bail!("{pending} transactions still pending after {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads every account's view.
pub async fn read(client: &Client, accounts: &[String]) -> anyhow::Result<Vec<AccountView>> {
    let mut views = Vec::with_capacity(accounts.len());
    for id in accounts {
        views.push(AccountView {
            account: client.account(id).await?,
            ledger: client.ledger(id).await?,
            transactions: client.transactions(id).await?,
        });
    }
    Ok(views)
}

/// Checks every invariant; the error lists each violation (up to 20).
pub fn check(views: &[AccountView]) -> anyhow::Result<()> {
    let mut violations = Vec::new();
    let mut seen = HashSet::new();
    for view in views {
        check_account(view, &mut violations);
        for entry in &view.ledger {
            if !seen.insert(entry.transaction_id.clone()) {
                violations.push(format!(
                    "transaction {} applied twice",
                    entry.transaction_id
                ));
            }
        }
    }
    if violations.is_empty() {
        return Ok(());
    }
    let shown: Vec<_> = violations.iter().take(20).cloned().collect();
    bail!(
        "{} invariant violations:\n{}",
        violations.len(),
        shown.join("\n")
    )
}

fn check_account(view: &AccountView, violations: &mut Vec<String>) {
    let id = &view.account.id;
    let n = view.transactions.len();
    if view.ledger.len() != n || view.account.last_transaction_number != n as i64 {
        violations.push(format!(
            "account {id}: {n} transactions, {} ledger entries, last number {}",
            view.ledger.len(),
            view.account.last_transaction_number
        ));
        return;
    }
    let mut balance = 0i64;
    for (i, (tx, entry)) in view.transactions.iter().zip(&view.ledger).enumerate() {
        let number = i as i64 + 1;
        if tx.number != number || entry.number != number || entry.transaction_id != tx.id {
            violations.push(format!(
                "account {id}: number {number} is not transaction {}",
                tx.id
            ));
            return;
        }
        let applies = tx.kind == "deposit" || balance >= tx.amount;
        if applies {
            balance += if tx.kind == "deposit" {
                tx.amount
            } else {
                -tx.amount
            };
        }
        let expected = if applies { "applied" } else { "rejected" };
        if entry.outcome != expected || tx.status != expected || entry.balance_after != balance {
            violations.push(format!(
                "account {id} number {number}: replay says {expected} with balance {balance}, \
                 ledger says {} with {}, transaction service says {}",
                entry.outcome, entry.balance_after, tx.status
            ));
        }
        if entry.balance_after < 0 {
            violations.push(format!("account {id} number {number}: negative balance"));
        }
    }
    if view.account.balance != balance {
        violations.push(format!(
            "account {id}: balance {} but replay gives {balance}",
            view.account.balance
        ));
    }
}
