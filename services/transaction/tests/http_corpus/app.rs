//! The transaction service's API as it serves (its routes, with the body limit and JSON errors
//! of `json_api`, and the default configuration), on a new SQLite database without a broker,
//! knowing one account. Shared by the corpus test and the `transaction_http` fuzz target.

use std::path::Path;

use axum::Router;
use clap::Parser;
use common_events::AccountId;
use service_kit::http::json_api;
use test_support::corpus::offline_database;
use transaction::routes::{self, AppState};
use transaction::startup::MIGRATIONS;
use transaction::store::Store;
use transaction::{create, Config};

/// The router, and the variables of the corpus: `{account}`, an account the service knows.
pub async fn router(dir: &Path) -> anyhow::Result<(Router, Vec<(&'static str, String)>)> {
    let config = Config::parse_from(["transaction-service"]);
    let (db, relay) = offline_database(dir, "transaction", MIGRATIONS).await?;
    let store = Store::new(db, relay);
    let account = AccountId::new();
    store.learn_account(account).await?;
    let state = AppState {
        creator: create::creator(store.clone(), config.idempotency_key_retention),
        store,
        max_amount: config.max_amount,
    };
    Ok((
        json_api(routes::router(state)),
        vec![("{account}", account.to_string())],
    ))
}
