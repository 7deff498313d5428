//! The HTTP API's validation and paging, through the router alone (`tower::ServiceExt::oneshot`,
//! no broker), on each database.

use axum::body::Body;
use axum::http::Request;
use common_events::{AccountId, TransactionId, TransactionKind, TransactionNumber};
use http_body_util::BodyExt;
use serde_json::Value;
use service_kit::db::Db;
use service_kit::http::json_api;
use statement::projection::{Claim, Effect};
use statement::routes::{router, DEFAULT_LINES, MAX_LINES};
use statement::store::Store;
use test_support::scenario;
use test_support::{Scenario, Target};
use tower::ServiceExt;

pub const SCENARIOS: &[Scenario] = &[
    scenario!(
        bad_parameters_are_400_and_unknown_accounts_404,
        only = one_broker
    ),
    scenario!(
        long_statements_come_in_pages_of_the_named_size,
        only = one_broker
    ),
];

/// These need no broker: one broker's targets are enough.
fn one_broker(target: &Target) -> bool {
    target.broker.name() == "broker"
}

/// A migrated store on a fresh database of `target`, and where it lives.
async fn store(target: &Target) -> anyhow::Result<(Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let url = target.database().fresh_url(dir.path(), "statement").await?;
    let db = Db::connect(&url, 2).await?;
    db.migrate(statement::MIGRATIONS.sqlite, statement::MIGRATIONS.postgres)
        .await?;
    Ok((Store::new(db), dir))
}

/// Opens `account` and records deposits of 1 numbered 1 to `count`.
async fn with_lines(store: &Store, account: AccountId, count: u64) -> anyhow::Result<()> {
    store.open(account, "paged", 0).await?;
    for number in 1..=count {
        let claim = Claim {
            account_id: account,
            transaction_id: TransactionId::new(),
            number: TransactionNumber::new(number)?,
            kind: TransactionKind::Deposit,
            amount: 1,
            effect: Effect::Applied {
                reported_balance: number as i64,
            },
            occurred_at: 1_767_225_600_000,
        };
        anyhow::ensure!(store.record(&claim, number as i64).await?, "line {number}");
    }
    Ok(())
}

async fn get(store: &Store, uri: &str) -> anyhow::Result<(u16, Value)> {
    send(store, Request::get(uri).body(Body::empty())?).await
}

/// `request` through the routes as the server serves them (body limit, JSON 404 and 405).
async fn send(store: &Store, request: Request<Body>) -> anyhow::Result<(u16, Value)> {
    let response = json_api(router(store.clone())).oneshot(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes)?))
}

async fn bad_parameters_are_400_and_unknown_accounts_404(t: Target) -> anyhow::Result<()> {
    let (store, _dir) = store(&t).await?;
    let account = AccountId::new();
    with_lines(&store, account, 2).await?;
    let path = format!("/api/accounts/{account}/statement");
    let over = MAX_LINES + 1;
    for (query, needle) in [
        ("?from=0".to_owned(), "from must be"),
        ("?from=abc".to_owned(), "from must be"),
        ("?from=%00".to_owned(), "from must be"),
        ("?to=-1".to_owned(), "to must be"),
        ("?to=2026-01-01T00:00:00Z".to_owned(), "to must be"),
        ("?from=3&to=2".to_owned(), "must not be below"),
        ("?limit=0".to_owned(), "limit must be"),
        (format!("?limit={over}"), "limit must be"),
        ("?form=1".to_owned(), "unknown field"),
    ] {
        let (status, body) = get(&store, &format!("{path}{query}")).await?;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "malformed_request", "{query}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{query}: {message}");
    }
    for id in [AccountId::new().to_string(), "not-a-uuid".to_owned()] {
        let (status, body) = get(&store, &format!("/api/accounts/{id}/statement")).await?;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{id}"
        );
    }
    let (status, body) = get(&store, &format!("{path}?from=2&to=2&limit={MAX_LINES}")).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lines"].as_array().map(Vec::len), Some(1));
    let post = Request::post(&path).body(Body::from("{}"))?;
    let (status, body) = send(&store, post).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, body) = get(&store, "/api/statements").await?;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = get(&store, "/openapi.json").await?;
    assert_eq!(status, 200);
    assert_eq!(body["info"]["title"], "statement-service");
    Ok(())
}

async fn long_statements_come_in_pages_of_the_named_size(t: Target) -> anyhow::Result<()> {
    let (store, _dir) = store(&t).await?;
    let account = AccountId::new();
    let count = DEFAULT_LINES as u64 + 1;
    with_lines(&store, account, count).await?;
    let path = format!("/api/accounts/{account}/statement");
    let (_, first) = get(&store, &path).await?;
    assert_eq!(
        first["lines"].as_array().map(Vec::len),
        Some(DEFAULT_LINES as usize)
    );
    assert_eq!(first["next_from"], DEFAULT_LINES + 1);
    assert_eq!(first["closing_balance"], DEFAULT_LINES);
    let (_, rest) = get(&store, &format!("{path}?from={}", DEFAULT_LINES + 1)).await?;
    assert_eq!(rest["lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["next_from"], Value::Null);
    assert_eq!(rest["opening_balance"], DEFAULT_LINES);
    assert_eq!(rest["closing_balance"], count);
    let (_, small) = get(&store, &format!("{path}?from=10&limit=3")).await?;
    let numbers: Vec<i64> = small["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|line| line["number"].as_i64())
        .collect();
    assert_eq!(numbers, [10, 11, 12]);
    assert_eq!(small["next_from"], 13);
    assert_eq!(small["opening_balance"], 9);
    Ok(())
}
