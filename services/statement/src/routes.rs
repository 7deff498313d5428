//! The HTTP API: `GET /api/accounts/{id}/statement?from=&to=&limit=` and `GET /openapi.json`.
//!
//! `from` and `to` are **transaction numbers** of the account's sequence, both included (`from`
//! 1 and `to` the last line when absent): a statement is the lines of that range, the balance
//! before it (`opening_balance`) and after the last line shown (`closing_balance`). Numbers,
//! not times, because they are what orders an account's lines; each line still says when it
//! happened (`occurred_at`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use common_events::AccountId;
use serde::Deserialize;
pub use service_kit::api_error::ApiError;

use crate::store::Store;

/// Lines a statement shows when the request names no `limit`.
pub const DEFAULT_LINES: i64 = 100;
/// The most lines one statement response shows (`limit`); a longer range is read in pages,
/// following `next_from`.
pub const MAX_LINES: i64 = 1000;

/// The API routes over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/api/accounts/{id}/statement", get(statement))
        .route("/openapi.json", get(openapi))
        .with_state(store)
}

/// The query of a statement request, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// A validated statement request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// The first number shown.
    pub from: i64,
    /// The last number shown (`i64::MAX`: up to the last line).
    pub to: i64,
    /// The most lines shown.
    pub limit: i64,
}

impl StatementQuery {
    /// Checks every parameter; the error names the parameter and what it must be.
    pub fn range(&self) -> Result<Range, String> {
        let number = |name: &str, value: &Option<String>, default: i64, max: i64| match value {
            None => Ok(default),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| format!("{name} must be a whole number from 1 to {max}")),
        };
        let from = number("from", &self.from, 1, i64::MAX)?;
        let to = number("to", &self.to, i64::MAX, i64::MAX)?;
        let limit = number("limit", &self.limit, DEFAULT_LINES, MAX_LINES)?;
        if to < from {
            return Err(format!("to ({to}) must not be below from ({from})"));
        }
        Ok(Range { from, to, limit })
    }
}

async fn statement(
    State(store): State<Store>,
    Path(id): Path<String>,
    query: Result<Query<StatementQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::Malformed(err.body_text()))?;
    let range = query.range().map_err(ApiError::Malformed)?;
    let unknown = || ApiError::NotFound(format!("no statement for account {id}"));
    let account_id: AccountId = id.parse().map_err(|_| unknown())?;
    let account = store.account(account_id).await?.ok_or_else(unknown)?;
    let opening_balance = store.balance_before(account_id, range.from).await?;
    // One more than shown, to know whether another page follows.
    let mut lines = store
        .lines(account_id, range.from, range.to, range.limit + 1)
        .await?;
    let more = lines.len() as i64 > range.limit;
    lines.truncate(usize::try_from(range.limit).unwrap_or(usize::MAX));
    let closing_balance = lines.last().map_or(opening_balance, |l| l.balance_after);
    let next_from = more.then(|| lines.last().map(|l| l.number + 1)).flatten();
    Ok(Json(serde_json::json!({
        "account_id": account_id.to_string(),
        "owner": account.owner,
        "from": range.from,
        "to": (range.to != i64::MAX).then_some(range.to),
        "opening_balance": opening_balance,
        "closing_balance": closing_balance,
        "lines": lines,
        "next_from": next_from,
        "last_transaction_number": account.last_transaction_number,
        "balance": account.balance,
    })))
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: Option<&str>, to: Option<&str>, limit: Option<&str>) -> StatementQuery {
        StatementQuery {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            limit: limit.map(str::to_owned),
        }
    }

    #[test]
    fn without_parameters_a_statement_is_every_line_a_page_of_the_default_size() {
        let range = query(None, None, None).range().unwrap();
        assert_eq!(
            range,
            Range {
                from: 1,
                to: i64::MAX,
                limit: DEFAULT_LINES
            }
        );
        assert_eq!(DEFAULT_LINES, 100);
    }

    #[test]
    fn the_page_size_is_one_to_the_named_limit() {
        let max = MAX_LINES.to_string();
        assert_eq!(
            query(None, None, Some(&max)).range().unwrap().limit,
            MAX_LINES
        );
        let over = (MAX_LINES + 1).to_string();
        for bad in ["0", "-1", over.as_str(), "ten", ""] {
            let err = query(None, None, Some(bad)).range().unwrap_err();
            assert_eq!(
                err,
                format!("limit must be a whole number from 1 to {MAX_LINES}")
            );
        }
    }

    #[test]
    fn from_and_to_are_numbers_in_order() {
        let range = query(Some("2"), Some("2"), None).range().unwrap();
        assert_eq!((range.from, range.to), (2, 2));
        for (from, to, needle) in [
            (Some("0"), None, "from must be"),
            (Some("1.5"), None, "from must be"),
            (Some("9223372036854775808"), None, "from must be"),
            (None, Some("-3"), "to must be"),
            (None, Some("2026-01-01"), "to must be"),
            (Some("5"), Some("4"), "must not be below from"),
        ] {
            let err = query(from, to, None).range().unwrap_err();
            assert!(err.contains(needle), "{from:?} {to:?}: {err}");
        }
    }
}
