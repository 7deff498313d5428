//! Hostile input over HTTP on every database: text PostgreSQL refuses (a NUL) never reaches
//! it, and the shared HTTP rules (body limit, content type, unknown routes and methods)
//! answer with JSON errors.

use serde_json::json;
use test_support::scenario;
use test_support::{Scenario, Target};

use crate::support::spawn_app;

pub const SCENARIOS: &[Scenario] = &[
    scenario!(nul_and_control_characters_in_fields_queries_and_paths_are_4xx),
    scenario!(long_non_json_and_misrouted_requests_get_json_errors),
];

async fn nul_and_control_characters_in_fields_queries_and_paths_are_4xx(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?.to_string();
    for body in [
        json!({"account_id": account, "kind": "deposit\u{0}", "amount": 1}),
        json!({"account_id": account, "kind": "\u{202e}deposit", "amount": 1}),
        json!({"account_id": "\u{0}", "kind": "deposit", "amount": 1}),
        json!({"account_id": format!("{account}\u{0}"), "kind": "deposit", "amount": 1}),
    ] {
        let (status, answer) = app.service.post("/api/transactions", &body, &[]).await?;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_value", "{body}: {answer}");
    }
    for (path, status) in [
        ("/api/transactions/%00", 404),
        ("/api/transactions?account_id=%00", 422),
        (
            &format!("/api/transactions?account_id={account}%00") as &str,
            422,
        ),
        (
            &format!("/api/transactions?account_id={account}&after=%00"),
            422,
        ),
    ] {
        let (got, answer) = app.service.get(path).await?;
        assert_eq!(got, status, "{path}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    Ok(())
}

async fn long_non_json_and_misrouted_requests_get_json_errors(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    app.service
        .check_http_rules("/api/transactions", "account_id")
        .await
}
