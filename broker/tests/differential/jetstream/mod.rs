//! JetStream scenarios: the `$JS.API.*` subset the bundled broker implements, pinned to what
//! nats-server 2.10 sends on the wire.
//!
//! They run against both servers. Most use the target's shared JetStream server
//! ([`crate::Target::jetstream`]) with stream names of their own; scenarios that restart the
//! server use a [`JsServer`] of their own.
//!
//! API requests go through a core-NATS request with a JSON body ([`api`]) so that the exact
//! fields the server returns can be asserted; `async_nats::jetstream` is used where a scenario
//! is about the client working unchanged. Values that differ by server by nature (server ids,
//! timestamps, `created`, cluster names) are never asserted.

mod account_limits;
pub(crate) mod accounts;
mod acks;
mod clients;
mod config;
mod consumer_limits;
mod consumers;
mod delivery;
mod edges;
mod error_codes;
mod imports;
mod interest;
mod lifecycle;
mod limits;
mod messages;
mod publish;
mod pull;
mod push;
mod requests;
mod resources;
mod restart;
mod retention;
mod sources;
mod sourcing;
mod streams;
mod transforms;
mod wire;

pub use wire::*;

use std::time::Duration;

use anyhow::{ensure, Context};
use async_nats::HeaderMap;
use broker::harness::ServerProcess;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::raw::WAIT;
use crate::{within, Scenario, Target};

/// Every JetStream scenario.
pub fn scenarios() -> Vec<Scenario> {
    [
        streams::scenarios(),
        accounts::scenarios(),
        account_limits::scenarios(),
        messages::scenarios(),
        limits::scenarios(),
        retention::scenarios(),
        publish::scenarios(),
        consumers::scenarios(),
        lifecycle::scenarios(),
        pull::scenarios(),
        push::scenarios(),
        acks::scenarios(),
        delivery::scenarios(),
        restart::scenarios(),
        clients::scenarios(),
        interest::scenarios(),
        requests::scenarios(),
        consumer_limits::scenarios(),
        resources::scenarios(),
        error_codes::scenarios(),
        transforms::scenarios(),
        sourcing::scenarios(),
        sources::scenarios(),
        imports::scenarios(),
        edges::scenarios(),
        config::scenarios(),
    ]
    .concat()
}

/// Arguments that switch JetStream on with its store in `dir`.
pub fn jetstream_args(dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let dir = dir.to_str().context("store directory path is not UTF-8")?;
    Ok(vec!["-js".into(), "-sd".into(), dir.into()])
}

/// A JetStream server of a scenario's own, with its store in a temporary directory that
/// survives restarts.
pub struct JsServer {
    pub server: ServerProcess,
    store: TempDir,
    target_kind: broker::harness::ServerKind,
}

impl JsServer {
    pub fn start(t: &Target) -> anyhow::Result<Self> {
        let store = tempfile::Builder::new()
            .prefix("js-store-")
            .tempdir()
            .context("creating a store directory")?;
        let args = jetstream_args(store.path())?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = t.start(&args)?;
        Ok(JsServer {
            server,
            store,
            target_kind: t.kind().clone(),
        })
    }

    /// Stops the server (SIGTERM and a bounded wait, or SIGKILL when `kill`) and starts it
    /// again on the same store directory. The harness picks new ports, so clients reconnect
    /// to [`ServerProcess::client_url`] afterwards.
    pub fn restart(&mut self, kill: bool) -> anyhow::Result<()> {
        if kill {
            self.server.kill()?;
        } else {
            self.server.terminate(Duration::from_secs(10))?;
        }
        let args = jetstream_args(self.store.path())?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.server = ServerProcess::start(&self.target_kind, &args)?;
        Ok(())
    }
}

/// Connects an async-nats client.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    within(WAIT, "connecting", async_nats::connect(url))
        .await?
        .with_context(|| format!("connecting to {url}"))
}

/// Sends `body` (JSON; `Value::Null` sends an empty payload) to `$JS.API.<what>` and parses
/// the JSON reply.
pub async fn api(client: &async_nats::Client, what: &str, body: Value) -> anyhow::Result<Value> {
    let payload = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body)?
    };
    let subject = format!("$JS.API.{what}");
    let reply = within(
        WAIT,
        &subject,
        client.request(subject.clone(), payload.into()),
    )
    .await?
    .with_context(|| format!("request to {subject}"))?;
    serde_json::from_slice(&reply.payload).with_context(|| {
        format!(
            "the reply to {subject} is not JSON: {:?}",
            String::from_utf8_lossy(&reply.payload)
        )
    })
}

/// Like [`api`], and fails when the reply carries an `error`.
pub async fn api_ok(client: &async_nats::Client, what: &str, body: Value) -> anyhow::Result<Value> {
    let reply = api(client, what, body).await?;
    ensure!(
        reply.get("error").is_none(),
        "$JS.API.{what} failed: {reply}"
    );
    Ok(reply)
}

/// Asserts `reply` is the error nats-server sends: HTTP-like `code`, JetStream `err_code` and
/// the exact description.
pub fn expect_error(
    reply: &Value,
    code: u64,
    err_code: u64,
    description: &str,
) -> anyhow::Result<()> {
    let expected = json!({"code": code, "err_code": err_code, "description": description});
    ensure!(
        reply.get("error") == Some(&expected),
        "expected error {expected}, got {reply}"
    );
    Ok(())
}

/// Asserts the reply's `type` field.
pub fn expect_type(reply: &Value, kind: &str) -> anyhow::Result<()> {
    let expected = format!("io.nats.jetstream.api.v1.{kind}");
    ensure!(
        reply["type"] == expected.as_str(),
        "expected type {expected}, got {reply}"
    );
    Ok(())
}

/// Asserts that each `(JSON pointer, value)` pair holds in `value`.
pub fn expect_fields(value: &Value, fields: &[(&str, Value)]) -> anyhow::Result<()> {
    for (pointer, expected) in fields {
        let actual = value.pointer(pointer);
        ensure!(
            actual == Some(expected),
            "{pointer}: expected {expected}, got {actual:?} in {value}"
        );
    }
    Ok(())
}

/// Creates a stream with this config (a JSON object with at least `name`).
pub async fn create_stream(client: &async_nats::Client, config: Value) -> anyhow::Result<Value> {
    let name = config["name"]
        .as_str()
        .context("stream config without name")?;
    let reply = api(client, &format!("STREAM.CREATE.{name}"), config.clone()).await?;
    ensure!(
        reply.get("error").is_none(),
        "creating stream {config}: {reply}"
    );
    Ok(reply)
}

/// Creates a consumer with `CONSUMER.CREATE.<stream>.<name>` (or the legacy ephemeral form
/// when the config has neither `name` nor `durable_name`).
pub async fn create_consumer(
    client: &async_nats::Client,
    stream: &str,
    config: Value,
) -> anyhow::Result<Value> {
    let name = config
        .get("durable_name")
        .or_else(|| config.get("name"))
        .and_then(Value::as_str);
    let what = match name {
        Some(name) => format!("CONSUMER.CREATE.{stream}.{name}"),
        None => format!("CONSUMER.CREATE.{stream}"),
    };
    let body = json!({"stream_name": stream, "config": config});
    let reply = api(client, &what, body).await?;
    ensure!(
        reply.get("error").is_none(),
        "creating consumer {config} on {stream}: {reply}"
    );
    Ok(reply)
}

/// `$JS.API.STREAM.INFO.<stream>` `state`.
pub async fn stream_state(client: &async_nats::Client, stream: &str) -> anyhow::Result<Value> {
    let info = api_ok(client, &format!("STREAM.INFO.{stream}"), Value::Null).await?;
    Ok(info["state"].clone())
}

/// A stream state without its timestamps.
pub fn untimed(state: &Value) -> Value {
    let mut state = state.clone();
    if let Some(map) = state.as_object_mut() {
        map.remove("first_ts");
        map.remove("last_ts");
    }
    state
}

/// `$JS.API.CONSUMER.INFO.<stream>.<consumer>`.
pub async fn consumer_info(
    client: &async_nats::Client,
    stream: &str,
    consumer: &str,
) -> anyhow::Result<Value> {
    api_ok(
        client,
        &format!("CONSUMER.INFO.{stream}.{consumer}"),
        Value::Null,
    )
    .await
}

/// The counters of a consumer info that the scenarios compare (no timestamps).
pub fn counters(info: &Value) -> Value {
    json!({
        "delivered": {
            "consumer_seq": info["delivered"]["consumer_seq"],
            "stream_seq": info["delivered"]["stream_seq"],
        },
        "ack_floor": {
            "consumer_seq": info["ack_floor"]["consumer_seq"],
            "stream_seq": info["ack_floor"]["stream_seq"],
        },
        "num_ack_pending": info["num_ack_pending"],
        "num_redelivered": info["num_redelivered"],
        "num_waiting": info["num_waiting"],
        "num_pending": info["num_pending"],
    })
}

/// Asserts a consumer's counters:
/// `(delivered consumer_seq, delivered stream_seq, ack floor consumer_seq, ack floor stream_seq,
/// num_ack_pending, num_redelivered, num_pending)`.
pub async fn expect_counters(
    client: &async_nats::Client,
    stream: &str,
    consumer: &str,
    expected: [u64; 7],
) -> anyhow::Result<()> {
    let info = consumer_info(client, stream, consumer).await?;
    let [dc, ds, ac, as_, ack_pending, redelivered, pending] = expected;
    let actual = counters(&info);
    let want = json!({
        "delivered": {"consumer_seq": dc, "stream_seq": ds},
        "ack_floor": {"consumer_seq": ac, "stream_seq": as_},
        "num_ack_pending": ack_pending,
        "num_redelivered": redelivered,
        "num_waiting": actual["num_waiting"],
        "num_pending": pending,
    });
    ensure!(
        actual == want,
        "consumer {stream}/{consumer}: expected {want}, got {actual}"
    );
    Ok(())
}

/// Publishes with a reply and returns the PubAck (or error) JSON.
pub async fn publish(
    client: &async_nats::Client,
    subject: &str,
    headers: &[(&str, &str)],
    payload: &str,
) -> anyhow::Result<Value> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, *value);
    }
    let what = format!("the PubAck for {subject}");
    let reply = if headers.is_empty() {
        let request = client.request(subject.to_string(), payload.to_string().into());
        within(WAIT, &what, request).await?
    } else {
        let request =
            client.request_with_headers(subject.to_string(), map, payload.to_string().into());
        within(WAIT, &what, request).await?
    }
    .with_context(|| format!("publishing to {subject}"))?;
    serde_json::from_slice(&reply.payload).with_context(|| {
        format!(
            "the PubAck for {subject} is not JSON: {:?}",
            String::from_utf8_lossy(&reply.payload)
        )
    })
}

/// Publishes `count` messages `<prefix><i>` (i from 0) to `subject`, each acknowledged.
pub async fn publish_n(
    client: &async_nats::Client,
    subject: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<()> {
    for i in 0..count {
        let ack = publish(client, subject, &[], &format!("{prefix}{i}")).await?;
        ensure!(ack.get("error").is_none(), "publish to {subject}: {ack}");
    }
    Ok(())
}

/// Milliseconds as the nanoseconds the JetStream API uses for durations.
pub const fn ms(millis: u64) -> u64 {
    millis * 1_000_000
}
