//! JetStream and configured accounts: with `accounts {}` in the config, only the accounts whose
//! block says `jetstream: enabled` have JetStream, each with streams of its own; every other
//! account, the global one included, is told "JetStream not enabled for account".

use anyhow::Context;
use serde_json::{json, Value};

use super::*;
use crate::raw::WAIT;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_only_accounts_with_jetstream_enabled_have_it_and_the_others_are_refused,
        js_each_account_has_streams_of_its_own,
    ]
}

const CONFIG: &str = r#"
accounts {
  JSA: { users: [ {user: a, password: a} ], jetstream: enabled }
  JSB: { users: [ {user: b, password: b} ], jetstream: enabled }
  PLAIN: { users: [ {user: p, password: p} ] }
}
authorization { users: [ {user: g, password: g} ] }
"#;

/// A server with [`CONFIG`] and JetStream on, its store in `dir`.
fn start(t: &Target, dir: &tempfile::TempDir) -> anyhow::Result<broker::harness::ServerProcess> {
    let args = jetstream_args(dir.path())?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    t.start_with_config(CONFIG, &args)
}

pub(crate) fn store() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("js-accounts-")
        .tempdir()
        .context("creating a store directory")
}

/// Connects as `who` (password = user name).
pub(super) async fn login(port: u16, who: &str) -> anyhow::Result<async_nats::Client> {
    let options = async_nats::ConnectOptions::with_user_and_password(who.into(), who.into());
    crate::within(
        WAIT,
        "connecting",
        options.connect(format!("127.0.0.1:{port}")),
    )
    .await?
    .with_context(|| format!("connecting as {who}"))
}

fn js_only_accounts_with_jetstream_enabled_have_it_and_the_others_are_refused(
    t: &Target,
) -> anyhow::Result<()> {
    let dir = store()?;
    let server = start(t, &dir)?;
    block_on(async move {
        let a = login(server.port(), "a").await?;
        let info = api(&a, "INFO", Value::Null).await?;
        expect_fields(&info, &[("/streams", json!(0)), ("/api/errors", json!(0))])?;
        for who in ["p", "g"] {
            let c = login(server.port(), who).await?;
            let info = api(&c, "INFO", Value::Null).await?;
            expect_type(&info, "account_info_response")?;
            expect_error(&info, 503, 10039, "JetStream not enabled for account")?;
            let created = api(
                &c,
                "STREAM.CREATE.X",
                json!({"name": "X", "subjects": ["x"]}),
            )
            .await?;
            expect_type(&created, "stream_create_response")?;
            expect_error(&created, 503, 10039, "JetStream not enabled for account")?;
            let names = api(&c, "STREAM.NAMES", Value::Null).await?;
            expect_error(&names, 503, 10039, "JetStream not enabled for account")?;
            expect_fields(&names, &[("/total", json!(0)), ("/streams", Value::Null)])?;
        }
        Ok(())
    })
}

fn js_each_account_has_streams_of_its_own(t: &Target) -> anyhow::Result<()> {
    let dir = store()?;
    let server = start(t, &dir)?;
    block_on(async move {
        let a = login(server.port(), "a").await?;
        let b = login(server.port(), "b").await?;
        // The same name and subjects in two accounts: no overlap, two streams.
        for c in [&a, &b] {
            create_stream(c, json!({"name": "ORDERS", "subjects": ["orders.>"]})).await?;
        }
        publish_n(&a, "orders.new", "a", 3).await?;
        publish_n(&b, "orders.new", "b", 1).await?;
        expect_fields(
            &stream_state(&a, "ORDERS").await?,
            &[("/messages", json!(3))],
        )?;
        expect_fields(
            &stream_state(&b, "ORDERS").await?,
            &[("/messages", json!(1))],
        )?;
        let info = api(&b, "INFO", Value::Null).await?;
        expect_fields(&info, &[("/streams", json!(1)), ("/consumers", json!(0))])?;
        // A consumer in one account delivers that account's messages only.
        create_consumer(
            &b,
            "ORDERS",
            json!({"durable_name": "D", "ack_policy": "explicit"}),
        )
        .await?;
        expect_fields(
            &consumer_info(&b, "ORDERS", "D").await?,
            &[("/num_pending", json!(1))],
        )?;
        let missing = api(&a, "CONSUMER.INFO.ORDERS.D", Value::Null).await?;
        expect_error(&missing, 404, 10014, "consumer not found")
    })
}
