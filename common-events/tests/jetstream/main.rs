//! The Publisher and the topology against each broker target (`<broker>::<scenario>`).

mod publisher;

use test_support::matrix::{self, Axes};

fn main() {
    matrix::run(publisher::SCENARIOS, Axes::Brokers);
}
