//! The account service through its HTTP API and its `TransactionCreated` listener, over every
//! broker × database target (`<broker>/<database>::<scenario>`).

mod api;
mod hostile;
mod listener;
mod naive;
mod notes;
mod parking;
mod rebuild;
mod startup;
mod support;

use test_support::matrix::{self, Axes};

fn main() {
    // The console's scenarios watch the service's queue group by name.
    assert_eq!(
        console::scenarios::ACCOUNT_CONSUMER,
        account::startup::CONSUMER,
        "the console watches another consumer than the one the account service declares"
    );
    let mut scenarios = Vec::new();
    scenarios.extend_from_slice(api::SCENARIOS);
    scenarios.extend_from_slice(hostile::SCENARIOS);
    scenarios.extend_from_slice(listener::SCENARIOS);
    scenarios.extend_from_slice(naive::SCENARIOS);
    scenarios.extend_from_slice(rebuild::SCENARIOS);
    scenarios.extend_from_slice(notes::SCENARIOS);
    scenarios.extend_from_slice(parking::SCENARIOS);
    scenarios.extend_from_slice(startup::SCENARIOS);
    matrix::run(&scenarios, Axes::BrokersAndDatabases);
}
