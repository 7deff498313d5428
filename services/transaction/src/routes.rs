//! The HTTP API: `POST /api/transactions`, `GET /api/transactions/{id}`,
//! `GET /api/transactions?account_id=…&after=…&limit=…` and `GET /openapi.json`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use common_events::{AccountId, Amount, TransactionId, TransactionKind};
use serde::Deserialize;

use service_kit::observe::RequestTrace;
use service_kit::page::{page, PageQuery};

use crate::create::{CreateRequest, Creator};
use crate::error::ApiError;
use crate::idempotency::IdempotencyKey;
use crate::store::{NewTransaction, Store, StoreError};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Creates transactions in batches.
    pub creator: Creator,
    /// The largest allowed amount, in minor units.
    pub max_amount: i64,
}

/// The API routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/transactions", post(create).get(list))
        .route("/api/transactions/{id}", get(show))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

/// The body of `POST /api/transactions`, before validation.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    account_id: String,
    kind: String,
    amount: i64,
}

impl CreateBody {
    fn validate(&self, max_amount: i64) -> Result<NewTransaction, ApiError> {
        let account_id: AccountId = self.account_id.parse().map_err(|_| {
            ApiError::Invalid(format!("account_id {:?} is not a UUID", self.account_id))
        })?;
        let kind: TransactionKind = self
            .kind
            .parse()
            .map_err(|err| ApiError::Invalid(format!("{err}")))?;
        let amount = Amount::new(self.amount).map_err(|err| ApiError::Invalid(err.to_string()))?;
        if amount.get() > max_amount {
            return Err(ApiError::Invalid(format!(
                "amount {} is above the maximum of {max_amount} minor units",
                amount.get()
            )));
        }
        Ok(NewTransaction {
            account_id,
            kind,
            amount,
        })
    }
}

async fn create(
    State(state): State<AppState>,
    RequestTrace(trace): RequestTrace,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(request) = body?;
    let new = request.validate(state.max_amount)?;
    let key = IdempotencyKey::from_headers(&headers)?;
    let request = CreateRequest { new, key, trace };
    let created = state
        .creator
        .submit(request)
        .await
        .map_err(StoreError::Batch)??;
    let location = format!("/api/transactions/{}", created.record.id);
    let replayed = if created.replayed { "true" } else { "false" };
    let headers = [
        (header::LOCATION, location),
        (
            header::HeaderName::from_static("idempotent-replayed"),
            replayed.to_owned(),
        ),
    ];
    Ok((StatusCode::CREATED, headers, Json(created.record)))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("no transaction {id}"));
    let parsed: TransactionId = id.parse().map_err(|_| not_found())?;
    let record = state.store.get(parsed).await?.ok_or_else(not_found)?;
    Ok(Json(record))
}

/// The account of `GET /api/transactions` (its paging is a [`PageQuery`] of the same query
/// string).
#[derive(Debug, Deserialize)]
pub struct ListParams {
    account_id: String,
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListParams>, QueryRejection>,
    paging: Result<Query<PageQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(params) = query.map_err(|err| ApiError::Invalid(err.body_text()))?;
    let Query(paging) = paging.map_err(|err| ApiError::Invalid(err.body_text()))?;
    let account_id: AccountId = params.account_id.parse().map_err(|_| {
        ApiError::Invalid(format!("account_id {:?} is not a UUID", params.account_id))
    })?;
    let limit = paging.limit().map_err(ApiError::Invalid)?;
    let after = paging.after_number().map_err(ApiError::Invalid)?;
    let items = state.store.list(account_id, after, limit).await?;
    Ok(Json(page(&items, limit, |r| r.number)))
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
