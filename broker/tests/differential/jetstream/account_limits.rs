//! An account's own JetStream limits (`accounts { A { jetstream { ... } } }`): reported in the
//! account info and enforced on streams, consumers and publishes with nats-server's errors.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_account_limits_cap_streams_consumers_and_stream_bytes,
        js_account_storage_limits_refuse_reservations_and_publishes,
    ]
}

/// A JetStream server with accounts `A` (user a/a, these JetStream settings) and `B` (user
/// b/b, `jetstream: enabled`).
fn server_with(t: &Target, a_jetstream: &str) -> anyhow::Result<(ServerProcess, TempDir)> {
    let store = tempfile::Builder::new().prefix("js-acclim-").tempdir()?;
    let config = format!(
        "accounts {{\n  A {{ users: [{{user: a, password: a}}], jetstream {a_jetstream} }}\n  \
         B {{ users: [{{user: b, password: b}}], jetstream: enabled }}\n}}\n"
    );
    let dir = store.path().to_str().context("store path is not UTF-8")?;
    let server = t.start_with_config(&config, &["-js", "-sd", dir])?;
    Ok((server, store))
}

async fn login(url: &str, user: &str) -> anyhow::Result<async_nats::Client> {
    let options = async_nats::ConnectOptions::with_user_and_password(user.into(), user.into());
    within(WAIT, "a user login", options.connect(url))
        .await?
        .with_context(|| format!("logging in as {user}"))
}

/// The error of `reply`, which must have one.
fn error_of(reply: &Value) -> anyhow::Result<Value> {
    reply
        .get("error")
        .cloned()
        .with_context(|| format!("expected an error, got {reply}"))
}

fn refused(code: u64, err_code: u64, description: &str) -> Value {
    json!({"code": code, "err_code": err_code, "description": description})
}

fn js_account_limits_cap_streams_consumers_and_stream_bytes(t: &Target) -> anyhow::Result<()> {
    let (server, _store) = server_with(
        t,
        "{ max_mem: 10MB, max_file: 1GB, max_streams: 2, max_consumers: 3, \
         max_ack_pending: 50, mem_max_stream_bytes: 1MB, disk_max_stream_bytes: 2MB, \
         max_bytes_required: true }",
    )?;
    let url = server.client_url();
    block_on(async move {
        let c = login(&url, "a").await?;
        let info = api_ok(&c, "INFO", Value::Null).await?;
        let limits = json!({"max_memory": 10_485_760, "max_storage": 1_073_741_824,
            "max_streams": 2, "max_consumers": 3, "max_ack_pending": 50,
            "memory_max_stream_bytes": 1_048_576, "storage_max_stream_bytes": 2_097_152,
            "max_bytes_required": true});
        ensure!(info["limits"] == limits, "{info}");
        let create = |config: Value| {
            let c = c.clone();
            async move { api(&c, "STREAM.CREATE.S1", config).await }
        };
        let required = refused(
            400,
            10113,
            "account requires a stream config to have max bytes set",
        );
        let too_big = refused(
            400,
            10122,
            "stream max bytes exceeds account limit max stream bytes",
        );
        let consumers = refused(400, 10026, "maximum consumers limit reached");
        let reply = create(json!({"name": "S1", "subjects": ["s1"]})).await?;
        ensure!(error_of(&reply)? == required, "{reply}");
        let reply =
            create(json!({"name": "S1", "subjects": ["s1"], "max_bytes": 3_000_000})).await?;
        ensure!(error_of(&reply)? == too_big, "{reply}");
        let reply = create(json!({"name": "S1", "subjects": ["s1"], "max_bytes": 1000,
            "max_consumers": 5}))
        .await?;
        ensure!(error_of(&reply)? == consumers, "{reply}");
        create_stream(
            &c,
            json!({"name": "S1", "subjects": ["s1"], "max_bytes": 1000}),
        )
        .await?;
        create_stream(
            &c,
            json!({"name": "M1", "subjects": ["m1"], "max_bytes": 1_048_576,
                "storage": "memory"}),
        )
        .await?;
        let reply = api(
            &c,
            "STREAM.CREATE.S3",
            json!({"name": "S3", "subjects": ["s3"], "max_bytes": 1000}),
        )
        .await?;
        let streams = refused(400, 10027, "maximum number of streams reached");
        ensure!(error_of(&reply)? == streams, "{reply}");
        let info = api_ok(&c, "INFO", Value::Null).await?;
        ensure!(
            info["reserved_memory"] == 1_048_576 && info["reserved_storage"] == 1000,
            "{info}"
        );
        // Three consumers per stream, the account's max_ack_pending as default and ceiling.
        for i in 0..3 {
            create_consumer(
                &c,
                "S1",
                json!({"durable_name": format!("C{i}"), "ack_policy": "explicit"}),
            )
            .await?;
        }
        let body = json!({"stream_name": "S1",
            "config": {"durable_name": "C3", "ack_policy": "explicit"}});
        let reply = api(&c, "CONSUMER.CREATE.S1.C3", body).await?;
        ensure!(error_of(&reply)? == consumers, "{reply}");
        let c0 = consumer_info(&c, "S1", "C0").await?;
        ensure!(c0["config"]["max_ack_pending"] == 50, "{c0}");
        let body = json!({"stream_name": "M1", "config": {"durable_name": "X",
            "ack_policy": "explicit", "max_ack_pending": 51}});
        let reply = api(&c, "CONSUMER.CREATE.M1.X", body).await?;
        let excess = refused(
            400,
            10121,
            "consumer max ack pending exceeds system limit of 50",
        );
        ensure!(error_of(&reply)? == excess, "{reply}");
        // Updates are held to the same max_bytes rules.
        for (max_bytes, expected) in [(3_000_000, &too_big), (-1, &required)] {
            let update = json!({"name": "S1", "subjects": ["s1"], "max_bytes": max_bytes});
            let reply = api(&c, "STREAM.UPDATE.S1", update).await?;
            ensure!(error_of(&reply)? == *expected, "{reply}");
        }
        // The other account has no limits of its own.
        let b = login(&url, "b").await?;
        let info = api_ok(&b, "INFO", Value::Null).await?;
        let none = json!({"max_memory": -1, "max_storage": -1, "max_streams": -1,
            "max_consumers": -1, "max_ack_pending": -1, "memory_max_stream_bytes": -1,
            "storage_max_stream_bytes": -1, "max_bytes_required": false});
        ensure!(info["limits"] == none, "{info}");
        Ok(())
    })
}

fn js_account_storage_limits_refuse_reservations_and_publishes(t: &Target) -> anyhow::Result<()> {
    let (server, _store) = server_with(t, "{ max_file: 1000, max_mem: 500 }")?;
    let url = server.client_url();
    block_on(async move {
        let c = login(&url, "a").await?;
        create_stream(&c, json!({"name": "S1", "subjects": ["s1"]})).await?;
        create_stream(
            &c,
            json!({"name": "S2", "subjects": ["s2"], "max_bytes": 1000}),
        )
        .await?;
        let reply = api(
            &c,
            "STREAM.CREATE.S3",
            json!({"name": "S3", "subjects": ["s3"], "max_bytes": 999}),
        )
        .await?;
        let storage = refused(500, 10047, "insufficient storage resources available");
        ensure!(error_of(&reply)? == storage, "{reply}");
        let reply = api(
            &c,
            "STREAM.CREATE.M",
            json!({"name": "M", "subjects": ["m"], "storage": "memory", "max_bytes": 501}),
        )
        .await?;
        let memory = refused(500, 10028, "insufficient memory resources available");
        ensure!(error_of(&reply)? == memory, "{reply}");
        create_stream(
            &c,
            json!({"name": "M", "subjects": ["m"], "storage": "memory"}),
        )
        .await?;
        // A stream without max_bytes counts as -1 in the reported reservation (nats-server
        // adds the values up unsigned): 1000 - 1 for the files, 2^64 - 1 for the memory.
        let info = api_ok(&c, "INFO", Value::Null).await?;
        ensure!(
            info["reserved_storage"] == 999 && info["reserved_memory"] == u64::MAX,
            "{info}"
        );
        let exceeded =
            json!({"error": refused(400, 10002, "resource limits exceeded for account")});
        // Three 300-byte messages fit the files' 1000 bytes, two 200-byte ones the memory's 500.
        for (subject, stream, size, stored) in [("s1", "S1", 300, 3u64), ("m", "M", 200, 2)] {
            let payload = "x".repeat(size);
            for seq in 1..=stored {
                let ack = publish(&c, subject, &[], &payload).await?;
                ensure!(ack == json!({"stream": stream, "seq": seq}), "{ack}");
            }
            let ack = publish(&c, subject, &[], &payload).await?;
            let mut expected = exceeded.clone();
            expected["stream"] = json!(stream);
            expected["seq"] = json!(0);
            ensure!(ack == expected, "{subject}: {ack}");
        }
        Ok(())
    })
}
