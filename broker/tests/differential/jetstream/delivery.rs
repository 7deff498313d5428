//! TODO

use crate::Scenario;

pub fn scenarios() -> Vec<Scenario> {
    Vec::new()
}
