//! The statement service through its listeners, its HTTP API and its rebuild, over every
//! broker × database target (`<broker>/<database>::<scenario>`).

mod api;
mod projection;
mod rebuild;
mod support;

use test_support::matrix::{self, Axes};

fn main() {
    let mut scenarios = Vec::new();
    scenarios.extend_from_slice(api::SCENARIOS);
    scenarios.extend_from_slice(projection::SCENARIOS);
    scenarios.extend_from_slice(rebuild::SCENARIOS);
    matrix::run(&scenarios, Axes::BrokersAndDatabases);
}
