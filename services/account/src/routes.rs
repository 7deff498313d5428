//! The HTTP API: `POST /api/accounts`, `GET /api/accounts/{id}`, `GET /api/accounts` (paged),
//! `GET /api/accounts/{id}/ledger` (paged by number) and `GET /openapi.json`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use common_events::AccountId;
use serde::Deserialize;

use service_kit::http::check_text;
use service_kit::observe::RequestTrace;
use service_kit::page::{page, PageQuery};

use crate::error::ApiError;
use crate::store::Store;

/// The longest owner name accepted.
const MAX_OWNER_LEN: usize = 200;

/// The API routes over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/api/accounts", post(open).get(list))
        .route("/api/accounts/{id}", get(show))
        .route("/api/accounts/{id}/ledger", get(ledger))
        .route("/openapi.json", get(openapi))
        .with_state(store)
}

/// The body of `POST /api/accounts`.
#[derive(Debug, Deserialize)]
pub struct OpenRequest {
    owner: String,
}

async fn open(
    State(store): State<Store>,
    RequestTrace(trace): RequestTrace,
    body: Result<Json<OpenRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(request) = body?;
    let owner = request.owner.trim();
    if owner.is_empty() || owner.chars().count() > MAX_OWNER_LEN {
        return Err(ApiError::Invalid(format!(
            "owner must be 1 to {MAX_OWNER_LEN} characters"
        )));
    }
    check_text("owner", owner).map_err(ApiError::Invalid)?;
    let account = store.open(owner, trace).await?;
    let location = format!("/api/accounts/{}", account.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(account),
    ))
}

fn parse_id(id: &str) -> Result<AccountId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("no account {id}")))
}

async fn show(
    State(store): State<Store>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let account = store.get(parse_id(&id)?).await?;
    account
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no account {id}")))
}

async fn list(
    State(store): State<Store>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::Invalid(err.body_text()))?;
    let limit = query.limit().map_err(ApiError::Invalid)?;
    let after = query.after_text();
    check_text("after", after).map_err(ApiError::Invalid)?;
    let items = store.list(after, limit).await?;
    Ok(Json(page(&items, limit, |a| a.id.clone())))
}

async fn ledger(
    State(store): State<Store>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::Invalid(err.body_text()))?;
    let limit = query.limit().map_err(ApiError::Invalid)?;
    let after = query.after_number().map_err(ApiError::Invalid)?;
    let account_id = parse_id(&id)?;
    if store.get(account_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no account {id}")));
    }
    let items = store.ledger(account_id, after, limit).await?;
    Ok(Json(page(&items, limit, |e| e.number)))
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
