//! The projection: a mixed sequence, out-of-order and duplicate deliveries, an account that
//! opens late, conflicts, a reported balance that differs, and poison.

use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{lines, spawn_app, Outcome, TestApp, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_mixed_sequence_makes_a_statement_with_a_running_balance),
    scenario!(out_of_order_and_duplicate_deliveries_give_the_same_statement),
    scenario!(transactions_wait_for_their_account_to_open),
    scenario!(a_claim_on_a_taken_number_is_a_conflict_and_no_line),
    scenario!(a_reported_balance_unlike_the_running_one_is_counted_and_the_statement_goes_on),
    scenario!(poison_is_terminated_and_the_listener_goes_on),
];

/// Alice's account of `docs/ordering.md`: deposit 100, withdrawal 150 refused, withdrawal 40,
/// deposit 10.
fn alices(account: common_events::AccountId) -> Vec<Outcome> {
    vec![
        Outcome::deposit(account, 1, 100, 100),
        Outcome::refused(
            account,
            2,
            150,
            "insufficient funds: balance 100, withdrawal 150",
        ),
        Outcome::withdrawal(account, 3, 40, 60),
        Outcome::deposit(account, 4, 10, 70),
    ]
}

fn alices_lines() -> Vec<(i64, String, i64)> {
    [
        (1, "applied", 100),
        (2, "rejected", 100),
        (3, "applied", 60),
        (4, "applied", 70),
    ]
    .into_iter()
    .map(|(n, o, b)| (n, o.to_owned(), b))
    .collect()
}

async fn settled(
    app: &TestApp,
    account: common_events::AccountId,
    last: i64,
) -> anyhow::Result<()> {
    until_eq("the statement settled", BOUND, last, || {
        app.last_number(account)
    })
    .await
}

async fn a_mixed_sequence_makes_a_statement_with_a_running_balance(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("alice").await?;
    app.outcomes(&alices(account)).await?;
    settled(&app, account, 4).await?;
    let (status, body) = app.statement(account, "").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(lines(&body), alices_lines());
    assert_eq!(body["owner"], "alice");
    assert_eq!(
        (
            body["opening_balance"].as_i64(),
            body["closing_balance"].as_i64()
        ),
        (Some(0), Some(70))
    );
    let refused = &body["lines"][1];
    assert_eq!(
        refused["reason"],
        "insufficient funds: balance 100, withdrawal 150"
    );
    assert_eq!(
        (refused["kind"].as_str(), refused["amount"].as_i64()),
        (Some("withdrawal"), Some(150))
    );
    assert!(body["lines"][0].get("reason").is_none(), "{body}");
    assert!(body["lines"][0]["occurred_at"]
        .as_str()
        .is_some_and(|at| at.ends_with('Z')));
    let (_, middle) = app.statement(account, "?from=2&to=3").await?;
    assert_eq!(lines(&middle), alices_lines()[1..3]);
    assert_eq!(
        (
            middle["opening_balance"].as_i64(),
            middle["closing_balance"].as_i64()
        ),
        (Some(100), Some(60))
    );
    assert_eq!(
        (middle["from"].as_i64(), middle["to"].as_i64()),
        (Some(2), Some(3))
    );
    let (_, later) = app.statement(account, "?from=9").await?;
    assert_eq!(lines(&later), []);
    assert_eq!(
        (
            later["opening_balance"].as_i64(),
            later["closing_balance"].as_i64()
        ),
        (Some(70), Some(70))
    );
    Ok(())
}

async fn out_of_order_and_duplicate_deliveries_give_the_same_statement(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("alice").await?;
    let outcomes = alices(account);
    // Last first, each twice.
    for outcome in outcomes.iter().rev() {
        app.outcome(outcome).await?;
        app.outcome(outcome).await?;
    }
    settled(&app, account, 4).await?;
    // Every delivery is settled: 3 applied and 1 rejected line, each delivered twice.
    until_eq("every applied delivery acked", BOUND, 6, || {
        app.listener("transactions-applied", "acked")
    })
    .await?;
    until_eq("every rejected delivery acked", BOUND, 2, || {
        app.listener("transactions-rejected", "acked")
    })
    .await?;
    let (_, body) = app.statement(account, "").await?;
    assert_eq!(lines(&body), alices_lines());
    assert!(
        app.listener("transactions-applied", "retried").await? > 0,
        "some waited for their turn"
    );
    assert_eq!(app.metric("statement_conflicts_total").await?, 0);
    assert_eq!(app.metric("statement_balance_mismatches_total").await?, 0);
    Ok(())
}

async fn transactions_wait_for_their_account_to_open(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = common_events::AccountId::new();
    app.outcome(&Outcome::deposit(account, 1, 25, 25)).await?;
    until_eq("the deposit handed back twice", BOUND, true, || async {
        Ok(app.listener("transactions-applied", "retried").await? >= 2)
    })
    .await?;
    let (status, body) = app.statement(account, "").await?;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    app.opened(account, "late").await?;
    settled(&app, account, 1).await?;
    let (_, body) = app.statement(account, "").await?;
    assert_eq!(lines(&body), [(1, "applied".to_owned(), 25)]);
    Ok(())
}

async fn a_claim_on_a_taken_number_is_a_conflict_and_no_line(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    let first = Outcome::deposit(account, 1, 30, 30);
    app.outcome(&first).await?;
    settled(&app, account, 1).await?;
    let reason = format!(
        "conflict: number 1 of account {account} is already transaction {}",
        first.id
    );
    // The account service's refusal of a second claim, on a taken number and on one ahead.
    app.outcome(&Outcome::refused(account, 1, 5, &reason))
        .await?;
    app.outcome(&Outcome::refused(
        account,
        2,
        5,
        &reason.replace("number 1", "number 2"),
    ))
    .await?;
    // Another transaction's outcome under a taken number, without that reason.
    app.outcome(&Outcome::deposit(account, 1, 7, 7)).await?;
    until_eq("three conflicts", BOUND, 3, || {
        app.metric("statement_conflicts_total")
    })
    .await?;
    let (_, body) = app.statement(account, "").await?;
    assert_eq!(lines(&body), [(1, "applied".to_owned(), 30)]);
    assert_eq!(body["lines"][0]["transaction_id"], first.id.to_string());
    // Number 2 is still free for its real claimant.
    app.outcome(&Outcome::deposit(account, 2, 5, 35)).await?;
    settled(&app, account, 2).await
}

async fn a_reported_balance_unlike_the_running_one_is_counted_and_the_statement_goes_on(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    app.outcome(&Outcome::deposit(account, 1, 100, 999)).await?;
    app.outcome(&Outcome::withdrawal(account, 2, 30, 70))
        .await?;
    settled(&app, account, 2).await?;
    assert_eq!(app.metric("statement_balance_mismatches_total").await?, 1);
    let (_, body) = app.statement(account, "").await?;
    assert_eq!(
        lines(&body),
        [
            (1, "applied".to_owned(), 100),
            (2, "applied".to_owned(), 70)
        ]
    );
    Ok(())
}

async fn poison_is_terminated_and_the_listener_goes_on(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    app.js
        .publish("transactions.applied", "not an event".into())
        .await?
        .await?;
    let zero = format!(
        r#"{{"id":"{}","type":"TransactionApplied","schema_version":1,"occurred_at":"2026-01-01T00:00:00Z","correlation_id":null,"data":{{"transaction_id":"{}","account_id":"{account}","number":0,"kind":"deposit","amount":5,"balance_after":5}}}}"#,
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    app.js
        .publish("transactions.applied", zero.into())
        .await?
        .await?;
    app.outcome(&Outcome::deposit(account, 1, 5, 5)).await?;
    settled(&app, account, 1).await?;
    until_eq("both poison messages terminated", BOUND, 2, || {
        app.listener("transactions-applied", "undecodable")
    })
    .await
}
