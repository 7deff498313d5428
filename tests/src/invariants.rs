//! The invariants of the ordering protocol (docs/ordering.md), checked account by account:
//! every transaction ends applied or rejected; each is applied exactly once (one ledger entry
//! per number, numbers 1..n); the balance equals a sequential replay in number order; no
//! balance goes negative. And the statement service agrees: once it has caught up with an
//! account, its statement closes at the account's balance, line for line with the ledger.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::client::{Account, Client, LedgerEntry, Statement, Transaction};

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
///
/// The views are read again once nothing is pending: one read takes the account, its ledger
/// and its transactions one after another, so the read that finds nothing pending may have
/// taken the account before its last transaction was applied. An outcome is published only
/// after the account service committed, so everything a later read sees is settled.
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
            return read(client, accounts).await;
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
    report(violations)
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

/// Waits (bounded) until the statement service has recorded, for every account of `views`,
/// the account's `last_transaction_number`, and returns the statements in the same order.
pub async fn statements_caught_up(
    client: &Client,
    views: &[AccountView],
    bound: Duration,
) -> anyhow::Result<Vec<Statement>> {
    let deadline = Instant::now() + bound;
    loop {
        let mut statements = Vec::with_capacity(views.len());
        let mut behind = Vec::new();
        for view in views {
            let wanted = view.account.last_transaction_number;
            match client.statement(&view.account.id).await? {
                Some(s) if s.last_transaction_number == wanted => statements.push(s),
                Some(s) => behind.push(format!(
                    "{} at {} of {wanted}",
                    view.account.id, s.last_transaction_number
                )),
                None => behind.push(format!("{} not opened", view.account.id)),
            }
        }
        if behind.is_empty() {
            return Ok(statements);
        }
        if Instant::now() > deadline {
            bail!(
                "the statement service did not catch up within {bound:?}: {}",
                behind.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks that every statement (as [`statements_caught_up`] returns them, in the order of
/// `views`) closes at the account's balance, opens at 0, and has one line per ledger entry with
/// the same number, transaction, outcome and running balance (`balance_after`).
pub fn check_statements(views: &[AccountView], statements: &[Statement]) -> anyhow::Result<()> {
    let mut violations = Vec::new();
    if views.len() != statements.len() {
        bail!(
            "{} accounts but {} statements",
            views.len(),
            statements.len()
        );
    }
    for (view, statement) in views.iter().zip(statements) {
        let id = &view.account.id;
        if statement.account_id != *id {
            violations.push(format!(
                "statement of {} read for {id}",
                statement.account_id
            ));
            continue;
        }
        if statement.opening_balance != 0 || statement.closing_balance != view.account.balance {
            violations.push(format!(
                "account {id}: statement opens at {} and closes at {}, the account's balance is {}",
                statement.opening_balance, statement.closing_balance, view.account.balance
            ));
        }
        if statement.lines.len() != view.ledger.len() {
            violations.push(format!(
                "account {id}: {} statement lines, {} ledger entries",
                statement.lines.len(),
                view.ledger.len()
            ));
            continue;
        }
        for (line, entry) in statement.lines.iter().zip(&view.ledger) {
            let same = (
                &line.number,
                &line.transaction_id,
                &line.outcome,
                &line.balance_after,
            ) == (
                &entry.number,
                &entry.transaction_id,
                &entry.outcome,
                &entry.balance_after,
            );
            if !same {
                violations.push(format!(
                    "account {id}: statement line #{} {} {} balance {} but ledger #{} {} {} \
                     balance {}",
                    line.number,
                    line.transaction_id,
                    line.outcome,
                    line.balance_after,
                    entry.number,
                    entry.transaction_id,
                    entry.outcome,
                    entry.balance_after
                ));
            }
        }
    }
    report(violations)
}

/// `Ok` when there are no violations, else an error listing them (up to 20).
fn report(violations: Vec<String>) -> anyhow::Result<()> {
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
