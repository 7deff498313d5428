//! JetStream across accounts through imports and exports: a stream capturing subjects another
//! account exports, another account's JetStream API through a service import, and a source
//! or mirror whose origin stream lives in another account (`external`).

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::accounts::{login, store};
use super::sourcing::{await_state, message};
use super::*;
use crate::raw::WAIT;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_a_stream_captures_subjects_imported_from_another_account,
        js_another_accounts_api_answers_through_a_service_import,
        js_a_source_in_another_account_copies_through_the_imports,
    ]
}

const CONFIG: &str = r#"
accounts {
  A: {
    users: [ {user: a, password: a} ]
    jetstream: enabled
    exports: [
      { stream: "orders.>" }
      { service: "$JS.API.>" }
      { service: "$JS.FC.>" }
      { stream: "deliver.b.>", accounts: [B] }
    ]
  }
  B: {
    users: [ {user: b, password: b} ]
    jetstream: enabled
    imports: [
      { stream: { account: A, subject: "orders.>" }, prefix: "a" }
      { service: { account: A, subject: "$JS.API.>" }, to: "$JS.A.API.>" }
      { service: { account: A, subject: "$JS.FC.>" } }
      { stream: { account: A, subject: "deliver.b.>" } }
    ]
  }
}
"#;

fn start(t: &Target, dir: &tempfile::TempDir) -> anyhow::Result<broker::harness::ServerProcess> {
    let args = jetstream_args(dir.path())?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    t.start_with_config(CONFIG, &args)
}

/// A request to account A's JetStream API, made in account B through the import.
async fn a_api(b: &async_nats::Client, what: &str, body: Value) -> anyhow::Result<Value> {
    let subject = format!("$JS.A.API.{what}");
    let payload = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body)?
    };
    let reply = crate::within(WAIT, &subject, b.request(subject.clone(), payload.into()))
        .await?
        .with_context(|| format!("request to {subject}"))?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

/// Clients of both accounts, with A's stream `ORDERS` holding `n` messages on `orders.x`.
async fn with_orders(
    port: u16,
    n: usize,
) -> anyhow::Result<(async_nats::Client, async_nats::Client)> {
    let a = login(port, "a").await?;
    let b = login(port, "b").await?;
    create_stream(&a, json!({"name": "ORDERS", "subjects": ["orders.>"]})).await?;
    publish_n(&a, "orders.x", "o", n).await?;
    Ok((a, b))
}

fn js_a_stream_captures_subjects_imported_from_another_account(t: &Target) -> anyhow::Result<()> {
    let dir = store()?;
    let server = start(t, &dir)?;
    block_on(async move {
        let a = login(server.port(), "a").await?;
        let b = login(server.port(), "b").await?;
        create_stream(&b, json!({"name": "COPY", "subjects": ["a.orders.>"]})).await?;
        for n in 0..2 {
            a.publish("orders.eu", format!("o{n}").into()).await?;
        }
        a.flush().await?;
        await_state(&b, "COPY", 2, 2).await?;
        let m = message(&b, "COPY", 2).await?;
        ensure!(m[0] == "a.orders.eu" && m[1] == "o1", "{m}");
        // A has no stream of that name: the streams stay each account's own.
        let info = api(&a, "STREAM.INFO.COPY", Value::Null).await?;
        expect_error(&info, 404, 10059, "stream not found")
    })
}

fn js_another_accounts_api_answers_through_a_service_import(t: &Target) -> anyhow::Result<()> {
    let dir = store()?;
    let server = start(t, &dir)?;
    block_on(async move {
        let (a, b) = with_orders(server.port(), 3).await?;
        let info = a_api(&b, "STREAM.INFO.ORDERS", Value::Null).await?;
        ensure!(info["config"]["name"] == "ORDERS", "{info}");
        ensure!(info["state"]["messages"] == 3, "{info}");
        // Created through the import, the stream is A's.
        let created = a_api(
            &b,
            "STREAM.CREATE.VIA",
            json!({"name": "VIA", "subjects": ["via"]}),
        )
        .await?;
        ensure!(created.get("error").is_none(), "{created}");
        api_ok(&a, "STREAM.INFO.VIA", Value::Null).await?;
        let own = api(&b, "STREAM.INFO.VIA", Value::Null).await?;
        expect_error(&own, 404, 10059, "stream not found")
    })
}

fn js_a_source_in_another_account_copies_through_the_imports(t: &Target) -> anyhow::Result<()> {
    let dir = store()?;
    let server = start(t, &dir)?;
    block_on(async move {
        let (a, b) = with_orders(server.port(), 2).await?;
        let external = json!({"api": "$JS.A.API", "deliver": "deliver.b"});
        let sources = json!([{"name": "ORDERS", "external": external}]);
        let info = create_stream(&b, json!({"name": "FROM_A", "sources": sources})).await?;
        ensure!(info["config"]["sources"] == sources, "{info}");
        await_state(&b, "FROM_A", 2, 2).await?;
        let m = message(&b, "FROM_A", 1).await?;
        // The origin is named with a short hash of its API prefix (SHA-256 of "$JS.A.API",
        // its first 8 bytes each as one of 62 letters and digits).
        ensure!(
            m[0] == "orders.x" && m[1] == "o0" && m[2] == "ORDERS:z0zeNTHp 1 > >",
            "{m}"
        );
        // What A stores next follows.
        publish_n(&a, "orders.y", "p", 1).await?;
        await_state(&b, "FROM_A", 3, 3).await?;
        let info = api_ok(&b, "STREAM.INFO.FROM_A", Value::Null).await?;
        let source = &info["sources"][0];
        ensure!(
            source["name"] == "ORDERS" && source["external"] == external,
            "{info}"
        );
        // A mirror across accounts takes the same imports.
        let mirror = json!({"name": "ORDERS", "external": external});
        create_stream(&b, json!({"name": "MIRROR_A", "mirror": mirror})).await?;
        await_state(&b, "MIRROR_A", 3, 3).await?;
        let m = message(&b, "MIRROR_A", 3).await?;
        ensure!(m[0] == "orders.y" && m[1] == "p0", "{m}");
        Ok(())
    })
}
