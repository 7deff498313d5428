//! The account service's API as it serves (its routes and `/faults`, with the body limit and
//! JSON errors of `json_api`), on a new SQLite database without a broker, with one account
//! opened. Shared by the corpus test and the `account_http` fuzz target.

use std::path::Path;

use account::faults::{self, Faults};
use account::routes;
use account::startup::MIGRATIONS;
use account::store::Store;
use axum::Router;
use common_events::TraceContext;
use service_kit::http::json_api;
use test_support::corpus::offline_database;

/// The router, and the variables of the corpus: `{account}`, an account that exists.
pub async fn router(dir: &Path) -> anyhow::Result<(Router, Vec<(&'static str, String)>)> {
    let (db, relay) = offline_database(dir, "account", MIGRATIONS).await?;
    let store = Store::new(db, relay);
    let account = store.open("corpus owner", TraceContext::new_root()).await?;
    let faults = faults::router(Some(Faults::default()), "corpus".to_owned());
    let router = json_api(routes::router(store).merge(faults));
    Ok((router, vec![("{account}", account.id)]))
}
