//! The Listener runner against each broker target (`<broker>::<scenario>`).

mod listener;

use test_support::matrix::{self, Axes};

fn main() {
    matrix::run(listener::SCENARIOS, Axes::Brokers);
}
