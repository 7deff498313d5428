//! The server's JetStream resources, `max_file_store` and `max_memory_store` in the config
//! file: reported in `/jsz`, a stream reserving more than is left is refused, and a publish to
//! a storage already past its limit is refused with 503 "insufficient resources" until room is
//! made, without a restart.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::http::get_json;
use crate::{block_on, scenarios, with_log, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![js_server_storage_limits_refuse_streams_and_publishes_past_them]
}

/// Publishes 1000-byte messages to `subject` until one is refused; returns how many were
/// stored and the refusal.
async fn fill(client: &async_nats::Client, subject: &str) -> anyhow::Result<(usize, Value)> {
    let payload = "z".repeat(1000);
    for stored in 0..100 {
        let ack = publish(client, subject, &[], &payload).await?;
        if ack.get("error").is_some() {
            return Ok((stored, ack));
        }
    }
    anyhow::bail!("100 messages to {subject} and no refusal")
}

fn js_server_storage_limits_refuse_streams_and_publishes_past_them(
    t: &Target,
) -> anyhow::Result<()> {
    let store = tempfile::Builder::new().prefix("js-res-").tempdir()?;
    let dir = store.path().to_str().context("store path is not UTF-8")?;
    let config = format!(
        "jetstream {{ store_dir: \"{dir}\", max_file_store: 20000, max_memory_store: 10000 }}"
    );
    let server = t.start_with_config(&config, &[])?;
    let (url, http_port) = (server.client_url(), server.http_port());
    let result = block_on(async move {
        let jsz = get_json(http_port, "/jsz").await?;
        let limits = json!({"max_memory": jsz["config"]["max_memory"],
            "max_storage": jsz["config"]["max_storage"]});
        ensure!(
            limits == json!({"max_memory": 10000, "max_storage": 20000}),
            "{jsz}"
        );
        let c = connect(&url).await?;
        let info = api(&c, "INFO", Value::Null).await?;
        let account = (
            &info["limits"]["max_memory"],
            &info["limits"]["max_storage"],
        );
        ensure!(
            account == (&json!(-1), &json!(-1)),
            "no account limits: {info}"
        );

        let create = |name: &str, extra: Value| {
            let mut config =
                json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())]});
            if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
                config.extend(extra.clone());
            }
            let c = c.clone();
            let what = format!("STREAM.CREATE.{name}");
            async move { api(&c, &what, config).await }
        };
        let storage = "insufficient storage resources available";
        expect_error(
            &create("RA", json!({"max_bytes": 30000})).await?,
            500,
            10047,
            storage,
        )?;
        let reserved = create("RB", json!({"max_bytes": 15000})).await?;
        ensure!(reserved.get("error").is_none(), "{reserved}");
        expect_error(
            &create("RC", json!({"max_bytes": 10000})).await?,
            500,
            10047,
            storage,
        )?;
        // An update reserves what max_bytes grows by: RB may grow to the limit, not past it.
        let update = |max_bytes: i64| {
            let c = c.clone();
            let config = json!({"name": "RB", "subjects": ["rb.>"], "max_bytes": max_bytes});
            async move { api(&c, "STREAM.UPDATE.RB", config).await }
        };
        expect_error(&update(20001).await?, 500, 10047, storage)?;
        let grown = update(20000).await?;
        ensure!(grown.get("error").is_none(), "{grown}");
        let shrunk = update(15000).await?;
        ensure!(shrunk.get("error").is_none(), "{shrunk}");
        let memory = json!({"storage": "memory", "max_bytes": 20000});
        let text = "insufficient memory resources available";
        expect_error(&create("RM", memory).await?, 500, 10028, text)?;
        for name in ["RF", "RN"] {
            let extra = match name {
                "RN" => json!({"storage": "memory"}),
                _ => json!({}),
            };
            let created = create(name, extra).await?;
            ensure!(created.get("error").is_none(), "{created}");
        }

        // 1033 bytes a file message: the 20th takes the storage past 20000.
        let (stored, refusal) = fill(&c, "rf.x").await?;
        ensure!(stored == 20, "{stored} stored before {refusal}");
        expect_error(&refusal, 503, 10023, "insufficient resources")?;
        // 1019 bytes a memory message: the 10th takes the memory past 10000.
        let (stored, refusal) = fill(&c, "rn.x").await?;
        ensure!(stored == 10, "{stored} stored before {refusal}");
        expect_error(&refusal, 503, 10023, "insufficient resources")?;

        api_ok(&c, "STREAM.PURGE.RF", Value::Null).await?;
        let ack = publish(&c, "rf.x", &[], "room again").await?;
        ensure!(ack["seq"] == 21, "{ack}");
        Ok(())
    });
    with_log(&server, result)
}
