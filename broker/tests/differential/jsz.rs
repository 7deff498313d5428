//! `/jsz`: JetStream's configuration and usage on the monitoring port, with nats-server's
//! fields. Values that differ by nature (ids, times, limits computed from the machine) are only
//! checked for their type and sign; counts are checked exactly.
//!
//! The JetStream series of `/metrics` are a broker extension (nats-server has no `/metrics`).

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use crate::http::{get, get_json};
use crate::jetstream::{api, connect, create_consumer, create_stream, publish_n, JsServer};
use crate::monitor::poll_metrics;
use crate::protocol::u64_field;
use crate::raw::RawClient;
use crate::{block_on, scenarios, with_log, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        jsz_without_jetstream_says_disabled_and_counts_nothing,
        jsz_reports_config_usage_and_api_counts,
        jsz_lists_account_streams_consumers_and_configs_as_asked,
        jsz_refuses_a_bad_boolean_with_400,
    ]
}

/// Broker-only: nats-server has no `/metrics`.
pub fn broker_extensions() -> Vec<Scenario> {
    scenarios![broker_extension_metrics_has_jetstream_series_per_stream_and_consumer]
}

/// Two streams, `JZF` (file, 3 messages) and `JZM` (memory, 1 message); two consumers of `JZF`,
/// `workers` (pull) and `pusher` (push); and one failing API request. That makes five API
/// requests, one of them an error.
async fn populate(port: u16) -> anyhow::Result<()> {
    let client = connect(&format!("nats://127.0.0.1:{port}")).await?;
    create_stream(&client, json!({"name": "JZF", "subjects": ["jzf.>"]})).await?;
    let memory = json!({"name": "JZM", "subjects": ["jzm.>"], "storage": "memory"});
    create_stream(&client, memory).await?;
    publish_n(&client, "jzf.a", "file", 3).await?;
    publish_n(&client, "jzm.a", "memory", 1).await?;
    let pull = json!({"durable_name": "workers", "ack_policy": "explicit"});
    create_consumer(&client, "JZF", pull).await?;
    let push = json!({"durable_name": "pusher", "deliver_subject": "jz.push"});
    create_consumer(&client, "JZF", push).await?;
    let missing = api(&client, "STREAM.INFO.JZ_NONE", Value::Null).await?;
    ensure!(
        missing.get("error").is_some(),
        "info of no stream: {missing}"
    );
    Ok(())
}

/// Asserts that every field is an unsigned number.
fn numbers(value: &Value, fields: &[&str]) -> anyhow::Result<()> {
    for field in fields {
        u64_field(value, field)?;
    }
    Ok(())
}

/// nats-server's `JetStreamStats`, which the top level and each account detail carry.
fn stats(value: &Value) -> anyhow::Result<()> {
    numbers(
        value,
        &[
            "memory",
            "storage",
            "reserved_memory",
            "reserved_storage",
            "accounts",
            "ha_assets",
        ],
    )?;
    numbers(&value["api"], &["total", "errors"])
}

/// The fields every answer has, with the types nats-server gives them.
fn top_level(jsz: &Value, server_id: &Value) -> anyhow::Result<()> {
    ensure!(
        jsz["server_id"] == *server_id,
        "server_id is not INFO's: {jsz}"
    );
    ensure!(jsz["now"].is_string(), "now: {jsz}");
    ensure!(jsz["config"].is_object(), "config: {jsz}");
    for field in ["max_memory", "max_storage"] {
        ensure!(jsz["config"][field].is_i64(), "config.{field}: {jsz}");
    }
    numbers(jsz, &["streams", "consumers", "messages", "bytes"])?;
    stats(jsz)
}

fn jsz_without_jetstream_says_disabled_and_counts_nothing(t: &Target) -> anyhow::Result<()> {
    let server = t.shared()?;
    let (port, http_port) = (server.port(), server.http_port());
    block_on(async move {
        let info = RawClient::connect(port).await?.info;
        for path in ["/jsz", "/jsz?accounts=true&streams=true&consumers=true"] {
            let jsz = get_json(http_port, path).await?;
            top_level(&jsz, &info["server_id"])?;
            ensure!(jsz["disabled"] == true, "{path}: not disabled: {jsz}");
            let config = json!({"max_memory": 0, "max_storage": 0});
            ensure!(jsz["config"] == config, "{path}: config: {jsz}");
            for field in ["accounts", "streams", "consumers", "messages", "bytes"] {
                ensure!(jsz[field] == 0, "{path}: {field}: {jsz}");
            }
            ensure!(jsz.get("account_details").is_none(), "{path}: {jsz}");
        }
        Ok(())
    })
}

fn jsz_reports_config_usage_and_api_counts(t: &Target) -> anyhow::Result<()> {
    let js = JsServer::start(t)?;
    let (port, http_port) = (js.server.port(), js.server.http_port());
    let result = block_on(async move {
        populate(port).await?;
        let info = RawClient::connect(port).await?.info;
        let jsz = get_json(http_port, "/jsz").await?;
        top_level(&jsz, &info["server_id"])?;
        // Sized from the machine: 75% of its memory and of the store's free disk.
        for field in ["max_memory", "max_storage"] {
            ensure!(
                jsz["config"][field].as_i64() > Some(0),
                "config.{field}: {jsz}"
            );
        }
        let store_dir = jsz["config"]["store_dir"].as_str().unwrap_or_default();
        ensure!(store_dir.ends_with("/jetstream"), "store_dir: {jsz}");
        for absent in ["disabled", "account_details", "meta_cluster"] {
            ensure!(jsz.get(absent).is_none(), "{absent}: {jsz}");
        }
        let counts = json!({
            "accounts": jsz["accounts"], "streams": jsz["streams"],
            "consumers": jsz["consumers"], "messages": jsz["messages"], "api": jsz["api"],
            "ha_assets": jsz["ha_assets"],
        });
        let expected = json!({
            "accounts": 1, "streams": 2, "consumers": 2, "messages": 4,
            "api": {"total": 5, "errors": 1}, "ha_assets": 0,
        });
        ensure!(counts == expected, "counts {counts}, expected {expected}");
        let (memory, storage) = (u64_field(&jsz, "memory")?, u64_field(&jsz, "storage")?);
        ensure!(memory > 0 && storage > memory, "memory and storage: {jsz}");
        ensure!(
            u64_field(&jsz, "bytes")? == memory + storage,
            "bytes: {jsz}"
        );
        Ok(())
    });
    with_log(&js.server, result)
}

/// The names of the objects in `list`, sorted (nats-server lists them in map order).
fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

/// The one account's details, checked for nats-server's fields.
async fn account(http_port: u16, path: &str) -> anyhow::Result<Value> {
    let jsz = get_json(http_port, path).await?;
    let details = jsz["account_details"]
        .as_array()
        .context("no account_details")?;
    ensure!(details.len() == 1, "{path}: one account expected: {jsz}");
    let account = details[0].clone();
    ensure!(
        account["name"] == "$G" && account["id"] == "$G",
        "{path}: {account}"
    );
    stats(&account)?;
    Ok(account)
}

/// The detail of stream `name` in an account's `stream_detail`.
fn stream<'a>(account: &'a Value, name: &str) -> anyhow::Result<&'a Value> {
    account["stream_detail"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == name)
        .with_context(|| format!("no stream {name} in {account}"))
}

fn jsz_lists_account_streams_consumers_and_configs_as_asked(t: &Target) -> anyhow::Result<()> {
    let js = JsServer::start(t)?;
    let (port, http_port) = (js.server.port(), js.server.http_port());
    let result = block_on(async move {
        populate(port).await?;
        let plain = account(http_port, "/jsz?accounts=true").await?;
        ensure!(
            plain.get("stream_detail").is_none(),
            "accounts only: {plain}"
        );
        account(http_port, "/jsz?acc=%24G").await?;
        let past = get_json(http_port, "/jsz?accounts=true&offset=1").await?;
        ensure!(past.get("account_details").is_none(), "offset 1: {past}");

        let streams = account(http_port, "/jsz?streams=true").await?;
        ensure!(
            names(&streams["stream_detail"]) == ["JZF", "JZM"],
            "{streams}"
        );
        let file = stream(&streams, "JZF")?;
        for field in ["created", "cluster", "state"] {
            ensure!(
                file.get(field).is_some(),
                "streams=true: no {field}: {file}"
            );
        }
        ensure!(file["state"]["messages"] == 3, "JZF state: {file}");
        ensure!(file["state"]["consumer_count"] == 2, "JZF state: {file}");
        for absent in ["config", "consumer_detail"] {
            ensure!(file.get(absent).is_none(), "streams=true: {absent}: {file}");
        }

        let consumers = account(http_port, "/jsz?consumers=true").await?;
        let file = stream(&consumers, "JZF")?;
        ensure!(
            names(&file["consumer_detail"]) == ["pusher", "workers"],
            "{file}"
        );
        let memory = stream(&consumers, "JZM")?;
        ensure!(
            memory.get("consumer_detail").is_none(),
            "JZM has none: {memory}"
        );
        for c in file["consumer_detail"].as_array().into_iter().flatten() {
            ensure!(c["stream_name"] == "JZF" && c["num_pending"] == 3, "{c}");
            numbers(c, &["num_ack_pending", "num_redelivered", "num_waiting"])?;
            numbers(&c["delivered"], &["consumer_seq", "stream_seq"])?;
            ensure!(c["ts"].is_string() && c.get("config").is_none(), "{c}");
        }

        let configs = account(http_port, "/jsz?consumers=true&config=true").await?;
        let file = stream(&configs, "JZF")?;
        ensure!(file["config"]["name"] == "JZF", "config=true: {file}");
        let durables: Vec<&Value> = file["consumer_detail"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["config"]["durable_name"])
            .collect();
        ensure!(
            durables.len() == 2 && durables.iter().all(|d| d.is_string()),
            "{file}"
        );
        Ok(())
    });
    with_log(&js.server, result)
}

fn jsz_refuses_a_bad_boolean_with_400(t: &Target) -> anyhow::Result<()> {
    let http_port = t.shared()?.http_port();
    block_on(async move {
        let response = get(http_port, "/jsz?accounts=maybe").await?;
        ensure!(response.status == 400, "status {}", response.status);
        ensure!(
            response
                .body
                .starts_with("Error decoding boolean for 'accounts'"),
            "body {:?}",
            response.body
        );
        Ok(())
    })
}

/// The value of a series with these labels (`{stream="JZF"}`) in a Prometheus text body.
fn sample(body: &str, series: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn broker_extension_metrics_has_jetstream_series_per_stream_and_consumer(
    t: &Target,
) -> anyhow::Result<()> {
    let js = JsServer::start(t)?;
    let (port, http_port) = (js.server.port(), js.server.http_port());
    let result = block_on(async move {
        populate(port).await?;
        let expected: [(&str, u64); 9] = [
            ("broker_jetstream_enabled", 1),
            ("broker_jetstream_streams", 2),
            ("broker_jetstream_consumers", 2),
            ("broker_jetstream_messages", 4),
            ("broker_jetstream_api_requests_total", 5),
            ("broker_jetstream_api_errors_total", 1),
            ("broker_jetstream_stream_messages{account=\"$G\",stream=\"JZF\"}", 3),
            ("broker_jetstream_stream_consumers{account=\"$G\",stream=\"JZM\"}", 0),
            (
                "broker_jetstream_consumer_pending_messages{account=\"$G\",stream=\"JZF\",consumer=\"workers\"}",
                3,
            ),
        ];
        poll_metrics(http_port, |body| {
            for (series, value) in expected {
                let got = sample(body, series);
                ensure!(got == Some(value), "{series} is {got:?}, expected {value}");
            }
            let bytes = sample(body, "broker_jetstream_bytes").context("no bytes")?;
            let by_stream = ["JZF", "JZM"].map(|s| {
                sample(
                    body,
                    &format!("broker_jetstream_stream_bytes{{account=\"$G\",stream=\"{s}\"}}"),
                )
            });
            ensure!(
                by_stream.iter().flatten().sum::<u64>() == bytes && bytes > 0,
                "bytes {bytes} is not the sum of the streams' {by_stream:?}"
            );
            Ok(())
        })
        .await
    });
    with_log(&js.server, result)
}
