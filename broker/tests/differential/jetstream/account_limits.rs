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
        js_account_jwt_limits_enable_jetstream_and_are_enforced,
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
        // An update reserves what max_bytes grows by, beside its old value.
        let grow = json!({"name": "S2", "subjects": ["s2"], "max_bytes": 1001});
        let reply = api(&c, "STREAM.UPDATE.S2", grow).await?;
        ensure!(error_of(&reply)? == storage, "{reply}");
        let same = json!({"name": "S2", "subjects": ["s2"], "max_bytes": 1000});
        api_ok(&c, "STREAM.UPDATE.S2", same).await?;
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

/// An async-nats client logged in as a new user of `account` (operator mode).
async fn jwt_login(url: &str, account: &nkeys::KeyPair) -> anyhow::Result<async_nats::Client> {
    let (key, jwt) = crate::creds::user(account, json!({}), json!({}));
    let seed = key.seed()?;
    let options = async_nats::ConnectOptions::with_jwt(jwt, move |nonce| {
        let pair = nkeys::KeyPair::from_seed(&seed);
        async move {
            let pair = pair.map_err(async_nats::AuthError::new)?;
            pair.sign(&nonce).map_err(async_nats::AuthError::new)
        }
    });
    within(WAIT, "a JWT login", options.connect(url))
        .await?
        .context("logging in with a user JWT")
}

fn js_account_jwt_limits_enable_jetstream_and_are_enforced(t: &Target) -> anyhow::Result<()> {
    use crate::creds::{claims, encode};
    let operator = nkeys::KeyPair::new_operator();
    let (limited, tiered, plain, system) = (
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_account(),
    );
    let base = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1});
    let mut with_js = base.clone();
    for (k, v) in [
        ("mem_storage", json!(-1)),
        ("disk_storage", json!(1000)),
        ("streams", json!(2)),
        ("consumer", json!(-1)),
        ("max_ack_pending", json!(0)),
        ("disk_max_stream_bytes", json!(600)),
    ] {
        with_js[k] = v;
    }
    let mut with_tier = base.clone();
    with_tier["tiered_limits"] = json!({"R1": {"mem_storage": 100, "disk_storage": -1,
        "streams": -1, "consumer": 1, "max_bytes_required": true}});
    let op = claims("operator", &operator, &operator.public_key(), json!({}));
    let mut config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n",
        encode(&operator, &op)
    );
    // nats-server runs JetStream in operator mode only with a system account.
    let accounts = [
        (&limited, &with_js),
        (&tiered, &with_tier),
        (&plain, &base),
        (&system, &base),
    ];
    for (account, limits) in accounts {
        let c = claims(
            "account",
            &operator,
            &account.public_key(),
            json!({"limits": limits}),
        );
        let line = format!("  {}: {}\n", account.public_key(), encode(&operator, &c));
        config.push_str(&line);
    }
    config.push_str(&format!("}}\nsystem_account: {}\n", system.public_key()));
    let store = tempfile::Builder::new().prefix("js-jwtlim-").tempdir()?;
    let dir = store.path().to_str().context("store path is not UTF-8")?;
    let server = t.start_with_config(&config, &["-js", "-sd", dir])?;
    let url = server.client_url();
    block_on(async move {
        let c = jwt_login(&url, &limited).await?;
        let info = api_ok(&c, "INFO", Value::Null).await?;
        let expected = json!({"max_memory": -1, "max_storage": 1000, "max_streams": 2,
            "max_consumers": -1, "max_ack_pending": -1, "memory_max_stream_bytes": -1,
            "storage_max_stream_bytes": 600, "max_bytes_required": false});
        ensure!(info["limits"] == expected, "{info}");
        let reply = api(
            &c,
            "STREAM.CREATE.J1",
            json!({"name": "J1", "subjects": ["j1"], "max_bytes": 601}),
        )
        .await?;
        let too_big = refused(
            400,
            10122,
            "stream max bytes exceeds account limit max stream bytes",
        );
        ensure!(error_of(&reply)? == too_big, "{reply}");
        create_stream(&c, json!({"name": "J1", "subjects": ["j1"]})).await?;
        create_stream(&c, json!({"name": "J2", "subjects": ["j2"]})).await?;
        let reply = api(
            &c,
            "STREAM.CREATE.J3",
            json!({"name": "J3", "subjects": ["j3"]}),
        )
        .await?;
        let streams = refused(400, 10027, "maximum number of streams reached");
        ensure!(error_of(&reply)? == streams, "{reply}");
        // The per-stream cap of 600 bytes holds the account's file usage.
        let payload = "x".repeat(250);
        for seq in 1..=2 {
            let ack = publish(&c, "j1", &[], &payload).await?;
            ensure!(ack == json!({"stream": "J1", "seq": seq}), "{ack}");
        }
        let ack = publish(&c, "j2", &[], &payload).await?;
        let exceeded = json!({"error": refused(400, 10002, "resource limits exceeded for account"),
            "stream": "J2", "seq": 0});
        ensure!(ack == exceeded, "{ack}");
        // The R1 tier's limits are the account's on one server.
        let c = jwt_login(&url, &tiered).await?;
        let info = api_ok(&c, "INFO", Value::Null).await?;
        let tier = json!({"max_memory": 100, "max_storage": -1, "max_streams": -1,
            "max_consumers": 1, "max_ack_pending": -1, "memory_max_stream_bytes": -1,
            "storage_max_stream_bytes": -1, "max_bytes_required": true});
        ensure!(info["tiers"]["R1"]["limits"] == tier, "{info}");
        ensure!(info["limits"]["max_memory"] == 0, "{info}");
        let reply = api(
            &c,
            "STREAM.CREATE.T",
            json!({"name": "T", "subjects": ["t"]}),
        )
        .await?;
        let required = refused(
            400,
            10113,
            "account requires a stream config to have max bytes set",
        );
        ensure!(error_of(&reply)? == required, "{reply}");
        // An account whose JWT has no JetStream limits has no JetStream.
        let c = jwt_login(&url, &plain).await?;
        let reply = api(&c, "INFO", Value::Null).await?;
        let off = refused(503, 10039, "JetStream not enabled for account");
        ensure!(error_of(&reply)? == off, "{reply}");
        Ok(())
    })
}
