//! The transaction service through its HTTP API and its events, over every broker × database
//! target (`<broker>/<database>::<scenario>`).

mod api;
mod crash;
mod events;
mod hostile;
mod idempotency;
mod startup;
mod support;

use test_support::matrix::{self, Axes};

fn main() {
    let mut scenarios = Vec::new();
    scenarios.extend_from_slice(api::SCENARIOS);
    scenarios.extend_from_slice(hostile::SCENARIOS);
    scenarios.extend_from_slice(events::SCENARIOS);
    scenarios.extend_from_slice(idempotency::SCENARIOS);
    scenarios.extend_from_slice(crash::SCENARIOS);
    scenarios.extend_from_slice(startup::SCENARIOS);
    matrix::run(&scenarios, Axes::BrokersAndDatabases);
}
