//! `statement-service rebuild`: the statements dropped and replayed from the streams are the
//! statements the live service made, whether the rebuild fills a fresh database or the one a
//! running service uses.

use anyhow::Context;
use test_support::scenario;
use test_support::{Scenario, Target};

use crate::support::{config, spawn_app, start, statement, Outcome, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_rebuild_gives_the_same_statements),
    scenario!(the_rebuild_command_replays_into_the_database_and_exits),
];

async fn a_rebuild_gives_the_same_statements(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let (a, b) = (app.open("a").await?, app.open("b").await?);
    let script = [
        Outcome::deposit(a, 1, 100, 100),
        Outcome::refused(a, 2, 150, "insufficient funds: balance 100, withdrawal 150"),
        Outcome::withdrawal(a, 3, 40, 60),
        Outcome::refused(b, 1, 5, "insufficient funds: balance 0, withdrawal 5"),
        Outcome::deposit(b, 2, 7, 7),
    ];
    // Published last first, so the replay meets every line out of its turn too.
    for outcome in script.iter().rev() {
        app.outcome(outcome).await?;
    }
    test_support::wait::until_eq("both settled", BOUND, (3, 2), || async {
        Ok((app.last_number(a).await?, app.last_number(b).await?))
    })
    .await?;
    let mut live = Vec::new();
    for id in [a, b] {
        live.push(app.statement(id, "").await?);
    }
    // Into a fresh database, then served from it.
    let url = t.database().fresh_url(app.dir.path(), "rebuilt").await?;
    let report = statement::rebuild::run(
        &config(&app.broker.url(), &url, &[]).common,
        std::future::pending(),
    )
    .await?;
    assert_eq!((report.accounts, report.lines), (2, 5));
    let rebuilt = start(&app.broker.url(), &url).await?;
    for (id, expected) in [a, b].into_iter().zip(&live) {
        assert_eq!(
            &statement(&rebuilt, id, "").await?,
            expected,
            "statement of {id}"
        );
    }
    // Into the database the live service uses, while it runs.
    let common = config(&app.broker.url(), &app.database_url, &[]).common;
    let again = statement::rebuild::run(&common, std::future::pending()).await?;
    assert_eq!(again, report);
    for (id, expected) in [a, b].into_iter().zip(&live) {
        assert_eq!(&app.statement(id, "").await?, expected, "statement of {id}");
    }
    Ok(())
}

async fn the_rebuild_command_replays_into_the_database_and_exits(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    app.outcome(&Outcome::deposit(account, 1, 9, 9)).await?;
    test_support::wait::until_eq("settled", BOUND, 1, || app.last_number(account)).await?;
    let program = env!("CARGO_BIN_EXE_statement-service");
    let (nats, database) = (app.broker.url(), app.database_url.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program)
            .arg("rebuild")
            .env("NATS_URL", nats)
            .env("DATABASE_URL", database)
            .env("CONNECT_DEADLINE", "20s")
            .output()
    })
    .await?
    .context("running statement-service rebuild")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("rebuilt 1 statements with 1 lines"),
        "{stdout}"
    );
    let (_, body) = app.statement(account, "").await?;
    assert_eq!(body["closing_balance"], 9);
    Ok(())
}
