//! `Idempotency-Key` hardening: the key's limits, its retention and sweep, and a request the
//! database refuses failing alone rather than with its whole batch; and a batch written in
//! multi-row statements numbering each account as one statement per request would.

use common_events::{AccountId, Amount, Publisher, TraceContext, TransactionKind};
use serde_json::json;
use service_kit::db::Backend;
use service_kit::outbox::{Relay, RelayOptions};
use test_support::{eventually, scenario, Scenario, Target};
use transaction::create::CreateRequest;
use transaction::idempotency::retention::parse_key_retention;
use transaction::idempotency::{IdempotencyKey, MAX_KEY_BYTES};
use transaction::store::{NewTransaction, Store, StoreError};

use crate::events::created_events;
use crate::support::{spawn_app, spawn_app_with, TestApp, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(an_empty_overlong_or_spaced_idempotency_key_is_400_naming_the_limit),
    scenario!(a_key_older_than_the_retention_makes_a_new_transaction_and_is_swept),
    scenario!(a_request_the_database_refuses_fails_alone_and_the_rest_of_its_batch_is_written),
    scenario!(a_batch_over_several_accounts_numbers_each_in_request_order_and_publishes_every_one),
];

/// A request to create a deposit, with an `Idempotency-Key` or without.
fn request(account: AccountId, amount: i64, key: Option<&str>) -> anyhow::Result<CreateRequest> {
    Ok(CreateRequest {
        new: NewTransaction {
            account_id: account,
            kind: TransactionKind::Deposit,
            amount: Amount::new(amount)?,
        },
        key: key
            .map(|k| IdempotencyKey::parse(k.as_bytes()))
            .transpose()?,
        trace: TraceContext::new_root(),
    })
}

/// A store over the app's database, to write batches directly (so that the requests surely
/// share one); its relay is never run, the app's own publishes the rows.
fn direct_store(app: &TestApp) -> Store {
    let relay = Relay::new(
        app.db.clone(),
        Publisher::new(app.js.clone()),
        RelayOptions::default(),
    );
    Store::new(app.db.clone(), relay)
}

/// An amount the test's trigger refuses (below the tests' `--max-amount`).
const REFUSED: i64 = 424_242;

async fn an_empty_overlong_or_spaced_idempotency_key_is_400_naming_the_limit(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    let body = json!({"account_id": account.to_string(), "kind": "deposit", "amount": 5});
    let random: String = (0..10_240).map(|_| fastrand::alphanumeric()).collect();
    let too_long = "k".repeat(MAX_KEY_BYTES + 1);
    for (key, says) in [
        ("", "is empty"),
        (too_long.as_str(), "the limit is 255 bytes"),
        (random.as_str(), "the limit is 255 bytes"),
        ("two words", "visible ASCII"),
    ] {
        let (status, error) = app.post(&body, Some(key)).await?;
        assert_eq!(status, 400, "{key:.20}: {error}");
        assert_eq!(error["error"], "malformed_request");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{key:.20}: {message}");
    }
    let headers = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")];
    let (status, error) = app
        .service
        .post("/api/transactions", &body, &headers)
        .await?;
    assert_eq!(
        (status, &error["error"]),
        (400, &json!("malformed_request"))
    );
    let longest = "k".repeat(MAX_KEY_BYTES);
    let (status, created) = app.post(&body, Some(&longest)).await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["number"], 1, "the refused keys created nothing");
    Ok(())
}

async fn a_key_older_than_the_retention_makes_a_new_transaction_and_is_swept(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app_with(&t, &["--idempotency-key-retention=1s"]).await?;
    let account = app.known_account().await?;
    let body = json!({"account_id": account.to_string(), "kind": "deposit", "amount": 7});
    let (status, first) = app.post(&body, Some("kept-1s")).await?;
    assert_eq!(status, 201, "{first}");
    // Replayed while the key holds, a new transaction once it is older than a second.
    let second = eventually("the key to expire", BOUND, || async {
        let (status, again) = app.post(&body, Some("kept-1s")).await?;
        anyhow::ensure!(status == 201, "{status}: {again}");
        Ok((again["id"] != first["id"]).then_some(again))
    })
    .await?;
    assert_eq!(second["number"], 2, "{second}");
    let other = json!({"account_id": account.to_string(), "kind": "withdrawal", "amount": 1});
    let (status, _) = app.post(&other, Some("swept")).await?;
    assert_eq!(status, 201);
    eventually("the sweep to delete the expired keys", BOUND, || async {
        let left: i64 = sqlx::query_scalar("select count(*) from idempotency_key")
            .fetch_one(app.db.pool())
            .await?;
        Ok((left == 0).then_some(()))
    })
    .await?;
    Ok(())
}

async fn a_request_the_database_refuses_fails_alone_and_the_rest_of_its_batch_is_written(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    refuse_marked_amounts(&app).await?;
    let (account, unknown) = (app.known_account().await?, AccountId::new());
    // One batch, written directly, so the refused request surely shares it.
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.push(request(account, 1 + i, None)?);
    }
    batch.insert(4, request(account, REFUSED, Some("refused"))?);
    batch.push(request(account, 3, Some("kept"))?);
    batch.push(request(unknown, 3, None)?);
    let retention = parse_key_retention("24h").map_err(anyhow::Error::msg)?;
    let results = direct_store(&app).create_batch(&batch, retention).await?;
    let numbers: Vec<i64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|c| c.record.number.as_i64()))
        .collect();
    assert_eq!(numbers, (1..=11).collect::<Vec<_>>(), "{results:?}");
    assert!(
        matches!(results[4], Err(StoreError::Db(_))),
        "{:?}",
        results[4]
    );
    assert!(matches!(results[12], Err(StoreError::UnknownAccount(_))));
    // Through the API, amid concurrent requests: that one 500, every other one 201.
    let body =
        |amount| json!({"account_id": account.to_string(), "kind": "deposit", "amount": amount});
    let mut posts: Vec<_> = (0..40).map(|_| body(1)).collect();
    posts.insert(20, body(REFUSED));
    let answers =
        futures_util::future::try_join_all(posts.iter().map(|b| app.post(b, None))).await?;
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 201)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].0, &refused[0].1["error"]),
        (500, &json!("internal"))
    );
    let mut numbers: Vec<i64> = answers
        .iter()
        .filter_map(|(_, b)| b["number"].as_i64())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (12..=51).collect::<Vec<_>>());
    let stored: i64 =
        sqlx::query_scalar("select count(*) from transaction_record where amount = $1")
            .bind(REFUSED)
            .fetch_one(app.db.pool())
            .await?;
    assert_eq!(stored, 0);
    let key: i64 = sqlx::query_scalar("select count(*) from idempotency_key where key = 'refused'")
        .fetch_one(app.db.pool())
        .await?;
    assert_eq!(key, 0, "the refused request's key is free again");
    Ok(())
}

/// Installs a trigger in the test's database that refuses a transaction of [`REFUSED`] minor
/// units, as a database refuses a value it cannot store.
async fn a_batch_over_several_accounts_numbers_each_in_request_order_and_publishes_every_one(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let (a, b, unknown) = (
        app.known_account().await?,
        app.known_account().await?,
        AccountId::new(),
    );
    // Longer than one multi-row run (64), two accounts interleaved, a keyed request (written on
    // its own, first) and an unknown account among them.
    let mut batch = Vec::new();
    for i in 0..70 {
        batch.push(request(if i % 3 == 0 { b } else { a }, 1 + i, None)?);
    }
    batch.insert(10, request(a, 500, Some("keyed"))?);
    batch.insert(20, request(unknown, 5, None)?);
    let retention = parse_key_retention("24h").map_err(anyhow::Error::msg)?;
    let results = direct_store(&app).create_batch(&batch, retention).await?;
    assert_eq!(results.len(), batch.len());
    assert!(matches!(results[20], Err(StoreError::UnknownAccount(id)) if id == unknown));
    assert_eq!(
        results[10].as_ref().map(|c| c.record.number.as_i64()).ok(),
        Some(1),
        "the keyed request is written first"
    );
    for account in [a, b] {
        let mut created = Vec::new();
        for (request, result) in batch.iter().zip(&results) {
            if request.new.account_id != account || request.key.is_some() {
                continue;
            }
            let record = &result.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?.record;
            assert_eq!(
                (record.account_id, record.amount),
                (account, request.new.amount)
            );
            created.push(record.number.as_i64());
        }
        let first = if account == a { 2 } else { 1 };
        let expected: Vec<i64> = (first..first + created.len() as i64).collect();
        assert_eq!(created, expected, "numbered in request order, no gaps");
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from transaction_record")
        .fetch_one(app.db.pool())
        .await?;
    assert_eq!(rows, 71);
    eventually("every created event to be published", BOUND, || async {
        let events = created_events(&app).await?;
        Ok((events.len() == 71).then_some(()))
    })
    .await?;
    let events = created_events(&app).await?;
    for (request, result) in batch.iter().zip(&results) {
        let Ok(created) = result else { continue };
        let event = events
            .iter()
            .find(|e| e.transaction_id == created.record.id)
            .ok_or_else(|| anyhow::anyhow!("no event for {:?}", created.record))?;
        assert_eq!(
            (event.account_id, event.number, event.amount),
            (
                request.new.account_id,
                created.record.number,
                request.new.amount
            )
        );
    }
    Ok(())
}

async fn refuse_marked_amounts(app: &TestApp) -> anyhow::Result<()> {
    let statements: &[&str] = match app.db.backend() {
        Backend::Sqlite => &[
            "create trigger refuse_marked before insert on transaction_record \
             when new.amount = 424242 begin select raise(abort, 'refused by the test'); end",
        ],
        Backend::Postgres => &[
            "create function refuse_marked() returns trigger language plpgsql as \
             $$ begin raise exception 'refused by the test'; end $$",
            "create trigger refuse_marked before insert on transaction_record for each row \
             when (new.amount = 424242) execute function refuse_marked()",
        ],
    };
    for statement in statements {
        sqlx::query(statement).execute(app.db.pool()).await?;
    }
    Ok(())
}
