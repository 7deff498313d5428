//! The HTTP API: numbering, idempotency, validation, reads and the operational routes.

use serde_json::json;
use test_support::scenario;
use test_support::{Scenario, Target};

use crate::support::spawn_app;

pub const SCENARIOS: &[Scenario] = &[
    scenario!(transactions_of_an_account_are_numbered_from_one),
    scenario!(concurrent_creates_on_one_account_get_distinct_consecutive_numbers),
    scenario!(a_retried_request_with_an_idempotency_key_returns_the_first_result),
    scenario!(an_idempotency_key_reused_for_another_request_is_422),
    scenario!(concurrent_requests_with_one_idempotency_key_create_one_transaction),
    scenario!(an_unknown_account_is_404_saying_accounts_appear_moments_after_opening),
    scenario!(malformed_json_is_400_and_invalid_values_are_422),
    scenario!(a_transaction_is_read_by_id_and_an_unknown_id_is_404),
    scenario!(an_accounts_transactions_are_listed_in_pages_by_number),
    scenario!(health_readiness_metrics_and_openapi_are_served),
];

async fn transactions_of_an_account_are_numbered_from_one(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let (a, b) = (app.known_account().await?, app.known_account().await?);
    for expected in 1..=3 {
        let created = app.create(a, "deposit", 100).await?;
        assert_eq!(created["number"], expected);
        assert_eq!(created["status"], "pending");
        assert_eq!(created["amount"], 100);
        assert_eq!(created["kind"], "deposit");
    }
    let other = app.create(b, "withdrawal", 5).await?;
    assert_eq!(other["number"], 1, "numbers are per account");
    Ok(())
}

async fn concurrent_creates_on_one_account_get_distinct_consecutive_numbers(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    let creates = (0..20).map(|_| app.create(account, "deposit", 1));
    let mut numbers: Vec<i64> = futures_util::future::try_join_all(creates)
        .await?
        .iter()
        .map(|c| c["number"].as_i64().unwrap_or(-1))
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=20).collect::<Vec<i64>>());
    Ok(())
}

async fn a_retried_request_with_an_idempotency_key_returns_the_first_result(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    let body = json!({"account_id": account.to_string(), "kind": "deposit", "amount": 250});
    let (first_status, first) = app.post(&body, Some("key-1")).await?;
    let (again_status, again) = app.post(&body, Some("key-1")).await?;
    assert_eq!((first_status, again_status), (201, 201));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(again["number"], 1);
    let next = app.create(account, "deposit", 1).await?;
    assert_eq!(next["number"], 2, "the replay did not consume a number");
    Ok(())
}

async fn concurrent_requests_with_one_idempotency_key_create_one_transaction(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    let body = json!({"account_id": account.to_string(), "kind": "deposit", "amount": 5});
    let posts = (0..10).map(|_| app.post(&body, Some("same-key")));
    let answers = futures_util::future::try_join_all(posts).await?;
    let mut ids: Vec<&str> = answers
        .iter()
        .filter_map(|(_, b)| b["id"].as_str())
        .collect();
    assert!(
        answers.iter().all(|(status, _)| *status == 201),
        "{answers:?}"
    );
    ids.dedup();
    assert_eq!(ids.len(), 1, "one transaction for one key: {answers:?}");
    let next = app.create(account, "deposit", 1).await?;
    assert_eq!(next["number"], 2, "the key's retries consumed no numbers");
    Ok(())
}

async fn an_idempotency_key_reused_for_another_request_is_422(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    let body = json!({"account_id": account.to_string(), "kind": "deposit", "amount": 250});
    app.post(&body, Some("key-2")).await?;
    let other = json!({"account_id": account.to_string(), "kind": "deposit", "amount": 999});
    let (status, error) = app.post(&other, Some("key-2")).await?;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"], "idempotency_key_reused");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("send a new key"), "{message}");
    assert!(
        !message.contains("key-2"),
        "the key is not echoed: {message}"
    );
    Ok(())
}

async fn an_unknown_account_is_404_saying_accounts_appear_moments_after_opening(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let body =
        json!({"account_id": uuid::Uuid::new_v4().to_string(), "kind": "deposit", "amount": 1});
    let (status, error) = app.post(&body, None).await?;
    assert_eq!(status, 404);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("moments after they are opened"),
        "{message}"
    );
    Ok(())
}

async fn malformed_json_is_400_and_invalid_values_are_422(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?.to_string();
    let (status, body) = app
        .service
        .post_raw("/api/transactions", "{\"account_id\": ")
        .await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "malformed_request");
    let invalid = [
        json!({"account_id": account, "kind": "deposit", "amount": 0}),
        json!({"account_id": account, "kind": "deposit", "amount": -5}),
        json!({"account_id": account, "kind": "deposit", "amount": 1_000_001}),
        json!({"account_id": account, "kind": "refund", "amount": 5}),
        json!({"account_id": "not-a-uuid", "kind": "deposit", "amount": 5}),
        json!({"account_id": account, "kind": "deposit", "amount": "5"}),
        json!({"account_id": account, "kind": "deposit"}),
    ];
    for body in invalid {
        let (status, error) = app.post(&body, None).await?;
        assert_eq!(status, 422, "{body} gave {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    Ok(())
}

async fn a_transaction_is_read_by_id_and_an_unknown_id_is_404(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    let created = app.create(account, "withdrawal", 7).await?;
    let id = created["id"].as_str().unwrap_or_default();
    let (status, read) = app.get(&format!("/api/transactions/{id}")).await?;
    assert_eq!(status, 200);
    assert_eq!(read["number"], 1);
    assert_eq!(read["kind"], "withdrawal");
    let missing = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/api/transactions/{missing}")).await?.0,
        404
    );
    assert_eq!(app.get("/api/transactions/not-an-id").await?.0, 404);
    Ok(())
}

async fn an_accounts_transactions_are_listed_in_pages_by_number(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    for _ in 0..5 {
        app.create(account, "deposit", 3).await?;
    }
    let path = format!("/api/transactions?account_id={account}&limit=2");
    let (status, page) = app.get(&path).await?;
    assert_eq!(status, 200);
    let numbers = |page: &serde_json::Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["number"].as_i64())
            .collect()
    };
    assert_eq!(numbers(&page), [1, 2]);
    assert_eq!(page["next_after"], 2);
    let (_, last) = app.get(&format!("{path}&after=4")).await?;
    assert_eq!(numbers(&last), [5]);
    assert!(last["next_after"].is_null());
    assert_eq!(app.get("/api/transactions?account_id=nope").await?.0, 422);
    Ok(())
}

async fn health_readiness_metrics_and_openapi_are_served(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    assert_eq!(app.get("/healthz").await?.0, 200);
    let (status, ready) = app.get("/readyz").await?;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready, json!({"database": true, "broker": true}));
    let (status, metrics) = app.get("/metrics").await?;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap_or_default();
    assert!(
        text.contains("listener_messages_total{listener=\"applied\""),
        "{text}"
    );
    assert!(text.contains("outbox_published_total"), "{text}");
    let (status, doc) = app.get("/openapi.json").await?;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/transactions"]["post"].is_object());
    Ok(())
}
