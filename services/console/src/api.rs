//! The console's JSON API under `/api`, which the page uses. It validates like the services'
//! APIs (`4xx` with `{"error", "message"}`), turns amounts typed as currency into minor units,
//! and passes the services' answers through with their status.
//!
//! | Method and path | What |
//! |---|---|
//! | `GET /api/status` | broker connection and each service's readiness |
//! | `GET /api/accounts?after=&limit=` | the account service's page of accounts |
//! | `POST /api/accounts` `{"owner"}` | opens an account (owner 1-200 characters) |
//! | `GET /api/accounts/{id}` | one account |
//! | `GET /api/accounts/{id}/ledger?after=&limit=` | the account's numbers: the account service's ledger (applied, rejected, with reasons) merged with the transaction service's pending ones |
//! | `GET /api/accounts/{id}/statement?from=&to=&limit=` | the statement service's statement of the account: opening and closing balance, a line per number with the running balance (its `4xx` answers pass through) |
//! | `POST /api/transactions` `{"account_id","kind","amount":"12.50"}` | a deposit or withdrawal; the `Idempotency-Key` header is passed on (one is made when missing) |
//! | `GET /api/timeline` | the kept timeline entries, oldest first |
//! | `GET /api/events` | the timeline as server-sent events (see [`crate::sse`]) |
//! | `GET /api/live` | the same over a WebSocket, what the page uses (see [`crate::live`]) |
//! | `GET /api/broker?fresh=true` | the broker panel's snapshot (read now with `fresh`) |
//! | `GET /api/scenarios` | the scenarios |
//! | `POST /api/scenarios/{slug}/run` | runs one; answers its verdict |

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use common_events::{AccountId, TransactionKind};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::ConsoleError;
use crate::money::parse_cents;
use service_kit::page::PageQuery;

use crate::scenarios::{self, ScenarioEnv, ScenarioError, ScenarioId, CATALOG, OWNER_PREFIX};

/// The longest owner name, as the account service accepts it.
pub const MAX_OWNER_CHARS: usize = 200;
/// The longest idempotency key passed on.
pub const MAX_KEY_CHARS: usize = 200;

/// The API routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/accounts", get(list_accounts).post(open_account))
        .route("/api/accounts/{id}", get(show_account))
        .route("/api/accounts/{id}/ledger", get(ledger))
        .route("/api/accounts/{id}/statement", get(statement))
        .route("/api/transactions", post(create_transaction))
        .route("/api/timeline", get(timeline))
        .route("/api/events", get(crate::sse::events))
        .route("/api/live", get(crate::live::live))
        .route("/api/broker", get(broker))
        .route("/api/scenarios", get(list_scenarios))
        .route("/api/scenarios/{slug}/run", post(run_scenario))
        .with_state(state)
}

async fn status(State(state): State<AppState>) -> impl IntoResponse {
    let services = &state.services;
    let accounts =
        futures_util::future::join_all(services.account_urls.iter().map(|url| services.probe(url)));
    let (accounts, transaction, statement) = tokio::join!(
        accounts,
        services.probe(&services.transaction_url),
        services.probe(&services.statement_url),
    );
    Json(json!({
        "broker": {"url": state.link.url(), "connected": state.link.is_connected()},
        "account_service": accounts,
        "transaction_service": transaction,
        "statement_service": statement,
    }))
}

/// The query string that asks a service for the same page (`?limit=…&after=…`).
fn paging(page: &PageQuery) -> Result<String, ConsoleError> {
    let limit = page.limit().map_err(ConsoleError::invalid)?;
    let mut query = format!("?limit={limit}");
    let after = page.after_text();
    if !after.is_empty() {
        query.push_str("&after=");
        query.push_str(&encode(after));
    }
    Ok(query)
}

/// Percent-encodes a query value (ids and numbers need none; anything else is escaped).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn parse_account(id: &str) -> Result<AccountId, ConsoleError> {
    id.trim()
        .parse()
        .map_err(|_| ConsoleError::invalid(format!("account id {id:?} is not a UUID")))
}

async fn list_accounts(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ConsoleError> {
    let Query(page) = query?;
    let path = format!("/api/accounts{}", paging(&page)?);
    let answer = state.services.account(Method::GET, &path, None).await?;
    Ok(Json(answer.success()?))
}

/// The body of `POST /api/accounts`.
#[derive(Debug, Deserialize)]
struct OpenBody {
    owner: String,
}

async fn open_account(
    State(state): State<AppState>,
    body: Result<Json<OpenBody>, JsonRejection>,
) -> Result<impl IntoResponse, ConsoleError> {
    let Json(body) = body?;
    let owner = body.owner.trim();
    let chars = owner.chars().count();
    if chars == 0 || chars > MAX_OWNER_CHARS {
        return Err(ConsoleError::invalid(format!(
            "owner must be 1 to {MAX_OWNER_CHARS} characters, got {chars}"
        )));
    }
    let body = json!({"owner": owner});
    let answer = state
        .services
        .account(Method::POST, "/api/accounts", Some(&body))
        .await?;
    let status = answer.status;
    Ok((status, Json(answer.success()?)))
}

async fn show_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ConsoleError> {
    let id = parse_account(&id)?;
    let answer = state
        .services
        .account(Method::GET, &format!("/api/accounts/{id}"), None)
        .await?;
    Ok(Json(answer.success()?))
}

/// The account service's ledger (applied and rejected numbers) merged by number with the
/// transaction service's list (pending ones, and reasons). A number the transaction service
/// does not know (a scenario's) comes from the ledger alone; one the account service has not
/// consumed yet is `pending`.
async fn ledger(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ConsoleError> {
    let id = parse_account(&id)?;
    let Query(page) = query?;
    page.after_number().map_err(ConsoleError::invalid)?;
    let paging = paging(&page)?;
    let ledger_path = format!("/api/accounts/{id}/ledger{paging}");
    let transactions_path = format!("/api/transactions{paging}&account_id={id}");
    let services = &state.services;
    let (ledger, transactions) = tokio::join!(
        services.account(Method::GET, &ledger_path, None),
        services.transaction(Method::GET, &transactions_path, None, &[]),
    );
    let ledger = ledger?.success()?;
    // The ledger alone still says a lot when the transaction service is down.
    let (transactions, transaction_problem) = match transactions.and_then(|a| a.success()) {
        Ok(body) => (body, None),
        Err(err) => (json!({"items": []}), Some(err.to_string())),
    };
    let mut rows: BTreeMap<u64, Value> = BTreeMap::new();
    for item in transactions["items"].as_array().into_iter().flatten() {
        let Some(number) = item["number"].as_u64() else {
            continue;
        };
        rows.insert(
            number,
            json!({
                "number": number,
                "transaction_id": item["id"],
                "kind": item["kind"],
                "amount": item["amount"],
                "status": item["status"],
                "reason": item.get("reason").cloned().unwrap_or(Value::Null),
                "balance_after": null,
            }),
        );
    }
    for entry in ledger["items"].as_array().into_iter().flatten() {
        let Some(number) = entry["number"].as_u64() else {
            continue;
        };
        let row = rows
            .entry(number)
            .or_insert_with(|| json!({"number": number}));
        row["transaction_id"] = entry["transaction_id"].clone();
        row["kind"] = entry["kind"].clone();
        row["amount"] = entry["amount"].clone();
        row["status"] = entry["outcome"].clone();
        row["balance_after"] = entry["balance_after"].clone();
        if let Some(reason) = entry.get("reason").filter(|r| !r.is_null()) {
            row["reason"] = reason.clone();
        } else if row.get("reason").is_none() {
            row["reason"] = Value::Null;
        }
    }
    let next_after = match (&ledger["next_after"], &transactions["next_after"]) {
        (Value::Null, other) | (other, Value::Null) => other.clone(),
        (a, b) => json!(a.as_u64().min(b.as_u64())),
    };
    Ok(Json(json!({
        "items": rows.into_values().collect::<Vec<_>>(),
        "next_after": next_after,
        "transaction_service_problem": transaction_problem,
    })))
}

/// The query of `GET /api/accounts/{id}/statement`: passed on as it is, for the statement
/// service to judge (its `400` answers name the parameter).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// The statement service's statement of the account, passed through.
async fn statement(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<StatementQuery>, QueryRejection>,
) -> Result<Json<Value>, ConsoleError> {
    let id = parse_account(&id)?;
    let Query(query) = query?;
    let params: Vec<String> = [
        ("from", &query.from),
        ("to", &query.to),
        ("limit", &query.limit),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_deref().map(|v| format!("{name}={}", encode(v))))
    .collect();
    let mut path = format!("/api/accounts/{id}/statement");
    if !params.is_empty() {
        path.push('?');
        path.push_str(&params.join("&"));
    }
    let answer = state.services.statement(&path).await?;
    Ok(Json(answer.success()?))
}

/// The body of `POST /api/transactions`, before validation.
#[derive(Debug, Deserialize)]
struct TransactionBody {
    account_id: String,
    kind: String,
    amount: Value,
}

async fn create_transaction(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<TransactionBody>, JsonRejection>,
) -> Result<impl IntoResponse, ConsoleError> {
    let Json(body) = body?;
    let account = parse_account(&body.account_id)?;
    let kind: TransactionKind = body
        .kind
        .parse()
        .map_err(|err| ConsoleError::invalid(format!("{err}")))?;
    let typed = match &body.amount {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        other => {
            return Err(ConsoleError::invalid(format!(
                "amount must be a decimal amount like \"12.50\", got {other}"
            )))
        }
    };
    let cents = parse_cents(&typed).map_err(|err| ConsoleError::invalid(err.to_string()))?;
    let key = match headers.get("idempotency-key") {
        None => uuid::Uuid::new_v4().to_string(),
        Some(value) => {
            let key = value
                .to_str()
                .map_err(|_| ConsoleError::malformed("Idempotency-Key must be ASCII"))?
                .trim();
            if key.is_empty() || key.len() > MAX_KEY_CHARS {
                return Err(ConsoleError::invalid(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_CHARS} characters"
                )));
            }
            key.to_owned()
        }
    };
    refuse_scenario_accounts(&state, account).await?;
    let request = json!({"account_id": account, "kind": kind, "amount": cents});
    let answer = state
        .services
        .transaction(
            Method::POST,
            "/api/transactions",
            Some(&request),
            &[("idempotency-key", key.as_str())],
        )
        .await?;
    let status = answer.status;
    let mut created = answer.success()?;
    created["idempotency_key"] = json!(key);
    Ok((status, Json(created)))
}

/// A scenario account's numbers were published by the console, not by the transaction service:
/// a transaction through the transaction service would reuse number 1 and be taken for a
/// duplicate. Unknown accounts and an unreachable account service are left to the transaction
/// service to judge.
async fn refuse_scenario_accounts(
    state: &AppState,
    account: AccountId,
) -> Result<(), ConsoleError> {
    let path = format!("/api/accounts/{account}");
    let Ok(answer) = state.services.account(Method::GET, &path, None).await else {
        return Ok(());
    };
    let owner = answer.body["owner"].as_str().unwrap_or_default();
    if answer.status == StatusCode::OK && owner.starts_with(OWNER_PREFIX) {
        return Err(ConsoleError::conflict(
            "scenario_account",
            format!(
                "account {account} belongs to a scenario ({owner:?}): its transaction numbers \
                 were published by the console, so a new transaction would reuse one and be \
                 taken for a duplicate; open an account of your own"
            ),
        ));
    }
    Ok(())
}

async fn timeline(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({"items": state.timeline.recent()}))
}

#[derive(Debug, Deserialize)]
struct BrokerQuery {
    #[serde(default)]
    fresh: bool,
}

async fn broker(
    State(state): State<AppState>,
    query: Result<Query<BrokerQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ConsoleError> {
    let Query(query) = query?;
    let snapshot = if query.fresh {
        state.panel.refresh().await
    } else {
        state.panel.latest()
    };
    Ok(Json(snapshot))
}

async fn list_scenarios() -> impl IntoResponse {
    Json(json!({"items": CATALOG}))
}

async fn run_scenario(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<impl IntoResponse, ConsoleError> {
    let id = ScenarioId::from_slug(&slug).ok_or_else(|| {
        let known: Vec<&str> = CATALOG.iter().map(|s| s.slug).collect();
        ConsoleError::not_found(format!("no scenario {slug:?}; there are {known:?}"))
    })?;
    let _permit = state
        .scenario_permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ConsoleError::busy("scenarios are already running; try again when they finish")
        })?;
    let js = state
        .link
        .jetstream()
        .filter(|_| state.link.is_connected())
        .ok_or_else(|| ConsoleError::BrokerUnreachable(state.link.url().to_owned()))?;
    let account_url = state.services.ready_account_url().await.ok_or_else(|| {
        ConsoleError::unavailable("no_account_service", "no account-service URL is configured")
    })?;
    // The ready replica first; every replica, for the scenarios that arm faults on each.
    let env = ScenarioEnv::new(js, account_url).with_replicas(state.services.account_urls.clone());
    // On a task of its own: a browser that goes away mid-run must not cancel the run halfway,
    // which would skip its clean-up (the naive consumer, the armed faults).
    let run = tokio::spawn(async move { scenarios::run(id, &env).await });
    let outcome = run.await.map_err(|err| {
        ConsoleError::gateway("scenario_failed", format!("the run failed: {err}"))
    })?;
    match outcome {
        Ok(verdict) => {
            state.scenario_stats.record(&verdict);
            Ok(Json(verdict))
        }
        Err(ScenarioError::Unavailable(why)) => {
            Err(ConsoleError::unavailable("scenario_unavailable", why))
        }
        Err(ScenarioError::Failed(why)) => Err(ConsoleError::gateway("scenario_failed", why)),
    }
}
