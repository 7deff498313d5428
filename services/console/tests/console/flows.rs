//! What the console does for a user against a running stack: accounts, deposits and
//! withdrawals, statements, and bad input.

use anyhow::Context;
use common_events::AccountId;
use serde_json::{json, Value};
use test_support::wait::until_eq;
use test_support::{eventually, scenario, Scenario, Target};

use crate::support::{key, rig, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(opens_deposits_and_withdraws_through_the_console),
    scenario!(shows_an_account_s_statement_from_the_statement_service),
    scenario!(bad_input_is_refused_with_a_4xx_and_a_message),
];

async fn opens_deposits_and_withdraws_through_the_console(t: Target) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let account = rig.open("alice").await?;
    let first_key = key();
    let deposit = rig
        .transact(&account, "deposit", "12.50", &first_key)
        .await?;
    assert_eq!(
        (&deposit["number"], &deposit["amount"], &deposit["status"]),
        (&json!(1), &json!(1250), &json!("pending"))
    );
    assert_eq!(deposit["idempotency_key"], json!(first_key));
    let again = rig
        .transact(&account, "deposit", "12.50", &first_key)
        .await?;
    assert_eq!(
        again["id"], deposit["id"],
        "the same key replays the first result"
    );
    let withdrawal = rig.transact(&account, "withdrawal", "2.5", &key()).await?;
    assert_eq!(
        (&withdrawal["number"], &withdrawal["amount"]),
        (&json!(2), &json!(250))
    );
    let too_much = rig.transact(&account, "withdrawal", "100", &key()).await?;
    assert_eq!(too_much["number"], json!(3));
    until_eq("balance 10.00 at number 3", BOUND, (1000, 3), || {
        rig.balance(&account)
    })
    .await?;
    let ledger = eventually("the ledger to hold 3 decided numbers", BOUND, || async {
        let (status, ledger) = rig
            .console
            .get(&format!("/api/accounts/{account}/ledger"))
            .await?;
        anyhow::ensure!(status == 200, "{status} {ledger}");
        let decided = ledger["items"].as_array().is_some_and(|items| {
            items.len() == 3 && items.iter().all(|i| i["status"] != "pending")
        });
        Ok(decided.then_some(ledger))
    })
    .await?;
    let rows: Vec<(u64, &str)> = ledger["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|i| {
            (
                i["number"].as_u64().unwrap_or(0),
                i["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(rows, [(1, "applied"), (2, "applied"), (3, "rejected")]);
    let reason = ledger["items"][2]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("insufficient funds"), "{ledger}");
    let (_, page) = rig.console.get("/api/accounts?limit=10").await?;
    let listed = page["items"].as_array().context("items")?;
    assert!(listed
        .iter()
        .any(|a| a["id"] == json!(account) && a["balance"] == json!(1000)));
    Ok(())
}

/// `GET /api/accounts/{id}/statement` passes the statement service's statement through: the
/// lines with their running balance, a range, and the service's own 4xx answers.
async fn shows_an_account_s_statement_from_the_statement_service(t: Target) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let account = rig.open("stella").await?;
    rig.transact(&account, "deposit", "12.50", &key()).await?;
    rig.transact(&account, "withdrawal", "100", &key()).await?;
    rig.transact(&account, "withdrawal", "2.50", &key()).await?;
    let path = format!("/api/accounts/{account}/statement");
    let statement = eventually("the statement to reach number 3", BOUND, || async {
        let (status, statement) = rig.console.get(&path).await?;
        let caught_up = status == 200 && statement["last_transaction_number"] == json!(3);
        Ok(caught_up.then_some(statement))
    })
    .await?;
    let lines: Vec<(&Value, &Value, &Value)> = statement["lines"]
        .as_array()
        .context("lines")?
        .iter()
        .map(|l| (&l["number"], &l["outcome"], &l["balance_after"]))
        .collect();
    let (one, two, three) = (json!(1), json!(2), json!(3));
    let (applied, rejected) = (json!("applied"), json!("rejected"));
    let (full, less) = (json!(1250), json!(1000));
    assert_eq!(
        lines,
        [
            (&one, &applied, &full),
            (&two, &rejected, &full),
            (&three, &applied, &less)
        ]
    );
    assert_eq!(
        (&statement["opening_balance"], &statement["closing_balance"]),
        (&json!(0), &json!(1000))
    );
    let (balance, last) = rig.balance(&account).await?;
    assert_eq!(
        (json!(balance), json!(last)),
        (statement["closing_balance"].clone(), json!(3)),
        "the statement closes at the account's balance"
    );
    let (status, range) = rig.console.get(&format!("{path}?from=2&to=2")).await?;
    assert_eq!(status, 200, "{range}");
    assert_eq!(
        (&range["opening_balance"], &range["closing_balance"]),
        (&json!(1250), &json!(1250))
    );
    assert_eq!(range["lines"].as_array().map(Vec::len), Some(1));
    let reason = range["lines"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("insufficient funds"), "{range}");
    // The statement service judges the range and answers for itself.
    let (status, answer) = rig.console.get(&format!("{path}?limit=0")).await?;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("malformed_request"))
    );
    let (status, answer) = rig.console.get(&format!("{path}?from=x%26to%3D1")).await?;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("malformed_request"))
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, answer) = rig
        .console
        .get(&format!("/api/accounts/{unknown}/statement"))
        .await?;
    assert_eq!((status, &answer["error"]), (404, &json!("not_found")));
    // The console's own checks.
    let (status, answer) = rig.console.get("/api/accounts/nope/statement").await?;
    assert_eq!((status, &answer["error"]), (422, &json!("invalid_value")));
    let (status, answer) = rig.console.get(&format!("{path}?since=1")).await?;
    assert_eq!((status, &answer["error"]), (422, &json!("invalid_value")));
    let (_, status_body) = rig.console.get("/api/status").await?;
    assert_eq!(status_body["statement_service"]["ready"], json!(true));
    Ok(())
}

async fn bad_input_is_refused_with_a_4xx_and_a_message(t: Target) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let c = &rig.console;
    let account = rig.open("bob").await?;
    let long = "x".repeat(201);
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "/api/accounts",
            json!({"owner": "  "}),
            422,
            "invalid_value",
            "owner must be 1 to 200",
        ),
        (
            "/api/accounts",
            json!({"owner": long}),
            422,
            "invalid_value",
            "owner must be 1 to 200",
        ),
        (
            "/api/accounts",
            json!({"name": "x"}),
            422,
            "invalid_value",
            "owner",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": "12.345"}),
            422,
            "invalid_value",
            "at most 2 decimals",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": "-1"}),
            422,
            "invalid_value",
            "a number like 12.50",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": "0.00"}),
            422,
            "invalid_value",
            "positive",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": "1000000.01"}),
            422,
            "invalid_value",
            "at most 1000000.00",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": true}),
            422,
            "invalid_value",
            "decimal amount",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "refund", "amount": "1"}),
            422,
            "invalid_value",
            "kind must be",
        ),
        (
            "/api/transactions",
            json!({"account_id": "nope", "kind": "deposit", "amount": "1"}),
            422,
            "invalid_value",
            "not a UUID",
        ),
    ];
    for (path, body, status, code, message) in cases {
        let (got, answer) = c.post(path, &body, &[]).await?;
        assert_eq!(got, status, "{path} {body}: {answer}");
        assert_eq!(answer["error"], json!(code), "{path} {body}: {answer}");
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{path} {body}: {answer}");
    }
    let (status, answer) = c.post_raw("/api/accounts", "{not json").await?;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("malformed_request")),
        "{answer}"
    );
    // The services' own errors pass through with their status and message.
    let unknown = AccountId::new();
    let body = json!({"account_id": unknown, "kind": "deposit", "amount": "1"});
    let (status, answer) = c.post("/api/transactions", &body, &[]).await?;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    let (status, answer) = c.get(&format!("/api/accounts/{unknown}")).await?;
    assert_eq!(
        (status, &answer["error"]),
        (404, &json!("not_found")),
        "{answer}"
    );
    for path in [
        "/api/accounts/not-a-uuid".to_owned(),
        format!("/api/accounts/{account}/ledger?after=abc"),
        "/api/accounts?limit=0".to_owned(),
    ] {
        let (status, answer) = c.get(&path).await?;
        assert_eq!(
            (status, &answer["error"]),
            (422, &json!("invalid_value")),
            "{path}: {answer}"
        );
    }
    let (status, answer) = c
        .post("/api/scenarios/nothing/run", &json!({}), &[])
        .await?;
    assert_eq!(
        (status, &answer["error"]),
        (404, &json!("not_found")),
        "{answer}"
    );
    Ok(())
}
