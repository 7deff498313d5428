//! The console against a real stack (a broker with JetStream, the transaction service and an
//! account service in-process, see `e2e_tests::stack`), once per broker: `<broker>::<scenario>`.

mod events;
mod flows;
mod scenarios;
mod support;

use test_support::matrix::{self, Axes};

fn main() {
    let all = [flows::SCENARIOS, events::SCENARIOS, scenarios::SCENARIOS].concat();
    matrix::run(&all, Axes::Brokers);
}
