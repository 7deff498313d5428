//! Start-up and stop, with the checks every service shares: a busy HTTP port and a passed
//! `CONNECT_DEADLINE` fail clearly; SIGTERM while waiting for the broker stops it at once (those
//! need no broker or database of the target, so they run once), and SIGTERM with nothing in
//! flight stops it within 2 s, with its broker up or gone.

use test_support::scenario;
use test_support::startup::{self, Binary};
use test_support::{Scenario, Target};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(
        a_busy_http_port_fails_at_once_naming_the_setting,
        only = once
    ),
    scenario!(
        with_a_connect_deadline_and_no_broker_the_binary_exits_with_an_error,
        only = once
    ),
    scenario!(
        sigterm_while_waiting_for_the_broker_stops_at_once,
        only = once
    ),
    scenario!(sigterm_with_nothing_in_flight_exits_well_under_two_seconds),
];

const SERVICE: Binary = Binary {
    path: env!("CARGO_BIN_EXE_statement-service"),
    name: "statement",
};

fn once(target: &Target) -> bool {
    target.is("broker", "sqlite")
}

async fn a_busy_http_port_fails_at_once_naming_the_setting(_: Target) -> anyhow::Result<()> {
    startup::a_busy_http_port_fails_at_once(|args| async move {
        let config = <statement::Config as clap::Parser>::try_parse_from(args)?;
        statement::run(config, std::future::pending()).await
    })
    .await
}

async fn with_a_connect_deadline_and_no_broker_the_binary_exits_with_an_error(
    _: Target,
) -> anyhow::Result<()> {
    startup::gives_up_at_its_connect_deadline(SERVICE).await
}

async fn sigterm_while_waiting_for_the_broker_stops_at_once(_: Target) -> anyhow::Result<()> {
    startup::sigterm_while_waiting_for_the_broker_stops_at_once(SERVICE).await
}

async fn sigterm_with_nothing_in_flight_exits_well_under_two_seconds(
    t: Target,
) -> anyhow::Result<()> {
    startup::sigterm_with_nothing_in_flight_stops_quickly(&t, SERVICE).await
}
