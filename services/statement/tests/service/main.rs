//! The statement service through its listeners, its HTTP API and its rebuild, the listener-only
//! example of `docs/new-service.md`, and that page against the tree, over every broker ×
//! database target (`<broker>/<database>::<scenario>`).

mod api;
mod example;
mod guide;
mod projection;
mod rebuild;
mod replicas;
mod startup;
mod support;

/// The listener-only example of `docs/new-service.md`, compiled and run by `example`.
#[allow(dead_code)]
#[path = "../../examples/listener_only/main.rs"]
mod listener_only;

use test_support::matrix::{self, Axes};
use test_support::Scenario;

/// Every scenario of the suite.
pub fn all_scenarios() -> Vec<Scenario> {
    [
        api::SCENARIOS,
        projection::SCENARIOS,
        rebuild::SCENARIOS,
        replicas::SCENARIOS,
        startup::SCENARIOS,
        example::SCENARIOS,
        guide::SCENARIOS,
    ]
    .concat()
}

fn main() {
    matrix::run(&all_scenarios(), Axes::BrokersAndDatabases);
}
