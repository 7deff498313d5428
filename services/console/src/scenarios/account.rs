//! The scenario account, through the account service's HTTP API: opening it, reading its
//! balance and last number, and its ledger.

use common_events::AccountId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::env::{unreachable, POLL};
use super::{ScenarioEnv, ScenarioError};

/// The number a service's ledger consumed, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerOutcome {
    /// The number.
    pub number: u64,
    /// `applied` or `rejected`.
    pub outcome: String,
}

pub(super) async fn open_account(
    env: &ScenarioEnv,
    owner: &str,
) -> Result<AccountId, ScenarioError> {
    let url = env.account_url();
    let down = |err| ScenarioError::Unavailable(unreachable(url, err));
    let response = env
        .http
        .post(format!("{url}/api/accounts"))
        .json(&json!({"owner": owner}))
        .send()
        .await
        .map_err(down)?;
    let status = response.status();
    let body: Value = response.json().await.map_err(down)?;
    if status.as_u16() != 201 {
        return Err(ScenarioError::Failed(format!(
            "opening the scenario account: {status} {body}"
        )));
    }
    let id: AccountId = body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ScenarioError::Failed(format!("the account service answered {body}")))?;
    // Wait until the account is there to read (another replica may answer the next request).
    let deadline = tokio::time::Instant::now() + env.ready_bound;
    loop {
        if read_account(env, id).await?.is_some() {
            return Ok(id);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ScenarioError::Failed(format!(
                "account {id} was opened but cannot be read back"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `(balance, last_transaction_number)`, `None` while the account is unknown; from the first
/// replica that answers (one may have crashed).
pub(super) async fn read_account(
    env: &ScenarioEnv,
    id: AccountId,
) -> Result<Option<(i64, u64)>, ScenarioError> {
    let response = env.account_get(&format!("/api/accounts/{id}")).await?;
    if response.status().as_u16() == 404 {
        return Ok(None);
    }
    let body: Value = response
        .json()
        .await
        .map_err(|err| ScenarioError::Failed(format!("reading account {id}: {err}")))?;
    let balance = body["balance"].as_i64();
    let last = body["last_transaction_number"].as_u64();
    match (balance, last) {
        (Some(balance), Some(last)) => Ok(Some((balance, last))),
        _ => Err(ScenarioError::Failed(format!(
            "account {id} reads as {body}"
        ))),
    }
}

pub(super) async fn ledger(
    env: &ScenarioEnv,
    id: AccountId,
) -> Result<Vec<LedgerOutcome>, ScenarioError> {
    let body: Value = env
        .account_get(&format!("/api/accounts/{id}/ledger"))
        .await?
        .json()
        .await
        .map_err(|err| ScenarioError::Failed(err.to_string()))?;
    let items = body["items"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|item| {
            Some(LedgerOutcome {
                number: item["number"].as_u64()?,
                outcome: item["outcome"].as_str()?.to_owned(),
            })
        })
        .collect())
}
