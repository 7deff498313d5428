//! The HTTP API: opening, reading and listing accounts, validation and operational routes.

use common_events::inspect::read_all;
use common_events::AccountOpened;
use serde_json::json;
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{spawn_app, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(opening_an_account_returns_it_and_publishes_account_opened),
    scenario!(malformed_json_is_400_invalid_owners_are_422_and_unknown_ids_404),
    scenario!(accounts_are_listed_in_pages),
    scenario!(health_readiness_metrics_and_openapi_are_served),
];

async fn opening_an_account_returns_it_and_publishes_account_opened(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let (status, body) = app
        .service
        .post("/api/accounts", &json!({"owner": "alice"}), &[])
        .await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["owner"], "alice");
    assert_eq!(body["balance"], 0);
    assert_eq!(body["last_transaction_number"], 0);
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    let (status, read) = app.get(&format!("/api/accounts/{id}")).await?;
    assert_eq!((status, &read), (200, &body));
    let opened = || async { Ok(read_all::<AccountOpened>(&app.js).await?.len()) };
    until_eq("one AccountOpened", BOUND, 1, opened).await?;
    let events = read_all::<AccountOpened>(&app.js).await?;
    assert_eq!(events[0].1.data.account_id.to_string(), id);
    assert_eq!(events[0].1.data.owner, "alice");
    Ok(())
}

async fn malformed_json_is_400_invalid_owners_are_422_and_unknown_ids_404(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let (status, body) = app.service.post_raw("/api/accounts", "{\"owner\"").await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_request"))
    );
    for invalid in [
        json!({"owner": ""}),
        json!({"owner": "  "}),
        json!({"owner": 5}),
        json!({}),
    ] {
        let (status, body) = app.service.post("/api/accounts", &invalid, &[]).await?;
        assert_eq!(status, 422, "{invalid} gave {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let long = "x".repeat(201);
    assert_eq!(
        app.service
            .post("/api/accounts", &json!({"owner": long}), &[])
            .await?
            .0,
        422
    );
    let missing = uuid::Uuid::new_v4();
    let (status, body) = app.get(&format!("/api/accounts/{missing}")).await?;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    assert_eq!(app.get("/api/accounts/not-an-id").await?.0, 404);
    assert_eq!(
        app.get(&format!("/api/accounts/{missing}/ledger")).await?.0,
        404
    );
    Ok(())
}

async fn accounts_are_listed_in_pages(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    for owner in ["a", "b", "c"] {
        app.open(owner).await?;
    }
    let (status, page) = app.get("/api/accounts?limit=2").await?;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    let after = page["next_after"].as_str().unwrap_or_default();
    let (_, rest) = app
        .get(&format!("/api/accounts?limit=2&after={after}"))
        .await?;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert!(rest["next_after"].is_null());
    assert_eq!(app.get("/api/accounts?limit=0").await?.0, 422);
    Ok(())
}

async fn health_readiness_metrics_and_openapi_are_served(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    assert_eq!(app.get("/healthz").await?.0, 200);
    let (status, ready) = app.get("/readyz").await?;
    assert_eq!(
        (status, ready),
        (
            200,
            json!({"database": true, "broker": true, "parked_transactions": 0})
        )
    );
    let (status, metrics) = app.get("/metrics").await?;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap_or_default();
    assert!(text.contains("listener=\"transactions-created\""), "{text}");
    let (status, doc) = app.get("/openapi.json").await?;
    assert_eq!((status, &doc["openapi"]), (200, &json!("3.1.0")));
    assert!(doc["paths"]["/api/accounts"]["post"].is_object());
    Ok(())
}
