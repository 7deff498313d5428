//! Event sourcing: a service started on an empty database with `--rebuild` replays the streams
//! and reaches the same balances and ledgers.

use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{spawn_app, start, Tx, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_rebuild_on_an_empty_database_reaches_the_same_balances),
    scenario!(a_rebuild_refuses_a_database_that_has_accounts),
];

async fn a_rebuild_on_an_empty_database_reaches_the_same_balances(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let (a, b) = (app.open("a").await?, app.open("b").await?);
    let script = [
        Tx::deposit(a, 1, 100),
        Tx::withdrawal(a, 2, 150),
        Tx::withdrawal(a, 3, 40),
        Tx::deposit(b, 1, 7),
    ];
    for tx in script.iter().rev() {
        app.created(tx).await?;
    }
    until_eq("a settled", BOUND, (60, 3), || app.balance(a)).await?;
    until_eq("b settled", BOUND, (7, 1), || app.balance(b)).await?;
    let url = t.database().fresh_url(app.dir.path(), "rebuilt").await?;
    let (rebuilt, _) = start(&app.broker.url(), &url, true).await?;
    for id in [a, b] {
        let live = app.get(&format!("/api/accounts/{id}/ledger")).await?;
        let again = rebuilt.get(&format!("/api/accounts/{id}/ledger")).await?;
        assert_eq!(live, again, "ledger of {id}");
        let live = app.get(&format!("/api/accounts/{id}")).await?;
        assert_eq!(live, rebuilt.get(&format!("/api/accounts/{id}")).await?);
    }
    Ok(())
}

async fn a_rebuild_refuses_a_database_that_has_accounts(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    app.open("a").await?;
    assert_eq!(app.store.account_count().await?, 1);
    let err = account::rebuild::rebuild(&app.store, &app.js)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("empty database"), "{err}");
    Ok(())
}
