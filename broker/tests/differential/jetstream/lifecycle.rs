//! Consumer lifecycle: legacy durable and ephemeral create, the create action, ephemeral
//! consumers' inactive_threshold, and config errors of push consumers.

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_legacy_durable_create_and_legacy_ephemeral_create,
        js_consumer_create_action_create_and_update_and_changing_ack_policy,
        js_named_consumer_without_durable_name_is_ephemeral_and_expires_when_inactive,
        js_push_consumer_config_errors,
    ]
}

fn js_legacy_durable_create_and_legacy_ephemeral_create(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CLG", "subjects": ["clg"]})).await?;
        publish_n(&c, "clg", "m", 2).await?;
        let reply = api(
            &c,
            "CONSUMER.DURABLE.CREATE.CLG.LD",
            json!({"stream_name": "CLG",
            "config": {"durable_name": "LD", "ack_policy": "explicit"}}),
        )
        .await?;
        expect_type(&reply, "consumer_create_response")?;
        ensure!(
            reply["name"] == "LD" && reply["config"]["durable_name"] == "LD",
            "{reply}"
        );
        // The legacy durable form does not fill in config.name.
        ensure!(reply["config"].get("name").is_none(), "{reply}");
        let reply = api(
            &c,
            "CONSUMER.DURABLE.CREATE.CLG.LD2",
            json!({"stream_name": "CLG",
            "config": {"ack_policy": "explicit"}}),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10018,
            "consumer expected to be durable but a durable name was not set",
        )?;
        // $JS.API.CONSUMER.CREATE.<stream>: an ephemeral with a server-chosen name.
        let reply = api(
            &c,
            "CONSUMER.CREATE.CLG",
            json!({"stream_name": "CLG",
            "config": {"ack_policy": "explicit"}}),
        )
        .await?;
        ensure!(reply.get("error").is_none(), "{reply}");
        let name = reply["name"].as_str().context("ephemeral name")?;
        ensure!(!name.is_empty(), "{reply}");
        ensure!(reply["config"].get("durable_name").is_none(), "{reply}");
        // Ephemerals get a 5 s inactive_threshold by default.
        expect_fields(
            &reply,
            &[
                ("/config/inactive_threshold", json!(5_000_000_000u64)),
                ("/num_pending", json!(2)),
            ],
        )?;
        let info = consumer_info(&c, "CLG", name).await?;
        ensure!(info["name"] == name, "{info}");
        let reply = api(
            &c,
            "CONSUMER.CREATE.CLG",
            json!({"stream_name": "CLG",
            "config": {"durable_name": "X", "ack_policy": "explicit"}}),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10020,
            "consumer expected to be ephemeral but a durable name was set in request",
        )
    })
}

fn js_consumer_create_action_create_and_update_and_changing_ack_policy(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CAC", "subjects": ["cac"]})).await?;
        let cfg = json!({"durable_name": "A", "ack_policy": "explicit"});
        create_consumer(&c, "CAC", cfg.clone()).await?;
        // action "create" on an identical existing consumer succeeds (idempotent).
        let reply = api(
            &c,
            "CONSUMER.CREATE.CAC.A",
            json!({"stream_name": "CAC", "config": cfg, "action": "create"}),
        )
        .await?;
        ensure!(reply.get("error").is_none(), "{reply}");
        let reply = api(
            &c,
            "CONSUMER.CREATE.CAC.B",
            json!({"stream_name": "CAC",
            "config": {"durable_name": "B", "ack_policy": "explicit"}, "action": "update"}),
        )
        .await?;
        expect_error(&reply, 400, 10149, "consumer does not exist")?;
        let reply = api(
            &c,
            "CONSUMER.CREATE.CAC.A",
            json!({"stream_name": "CAC",
            "config": {"durable_name": "A", "ack_policy": "all"}}),
        )
        .await?;
        expect_error(&reply, 500, 10012, "ack policy can not be updated")?;
        let reply = api(&c, "CONSUMER.CREATE.CAC.A", json!({"stream_name": "CAC",
            "config": {"durable_name": "A", "ack_policy": "explicit", "max_ack_pending": 5}, "action": "create"})).await?;
        expect_error(&reply, 400, 10148, "consumer already exists")?;
        // Without an action, a changed updatable field updates the consumer.
        let reply = api(
            &c,
            "CONSUMER.CREATE.CAC.A",
            json!({"stream_name": "CAC",
            "config": {"durable_name": "A", "ack_policy": "explicit", "max_ack_pending": 5}}),
        )
        .await?;
        ensure!(reply["config"]["max_ack_pending"] == 5, "{reply}");
        Ok(())
    })
}

fn js_named_consumer_without_durable_name_is_ephemeral_and_expires_when_inactive(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CEP", "subjects": ["cep"]})).await?;
        let reply = create_consumer(
            &c,
            "CEP",
            json!({"name": "E1", "ack_policy": "explicit",
            "inactive_threshold": ms(300)}),
        )
        .await?;
        ensure!(reply["config"].get("durable_name").is_none(), "{reply}");
        create_consumer(
            &c,
            "CEP",
            json!({"durable_name": "KEEP", "ack_policy": "explicit",
            "inactive_threshold": ms(300)}),
        )
        .await?;
        let c2 = c.clone();
        eventually(
            Duration::from_secs(3),
            "the inactive ephemeral's deletion",
            move || {
                let c = c2.clone();
                async move {
                    let reply = api(&c, "CONSUMER.INFO.CEP.E1", Value::Null).await?;
                    Ok(reply.get("error").is_some())
                }
            },
        )
        .await?;
        let reply = api(&c, "CONSUMER.INFO.CEP.E1", Value::Null).await?;
        expect_error(&reply, 404, 10014, "consumer not found")?;
        // A durable with an inactive_threshold is removed too once inactive.
        let c2 = c.clone();
        eventually(
            Duration::from_secs(3),
            "the inactive durable's deletion",
            move || {
                let c = c2.clone();
                async move {
                    Ok(api(&c, "CONSUMER.INFO.CEP.KEEP", Value::Null)
                        .await?
                        .get("error")
                        .is_some())
                }
            },
        )
        .await
    })
}

fn js_push_consumer_config_errors(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CPE", "subjects": ["cpe"]})).await?;
        let body = |config: Value| json!({"stream_name": "CPE", "config": config});
        let reply = api(
            &c,
            "CONSUMER.CREATE.CPE.P1",
            body(json!({"durable_name": "P1",
            "deliver_subject": "cpe.push", "flow_control": true})),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10108,
            "consumer with flow control also needs heartbeats",
        )?;
        let reply = api(
            &c,
            "CONSUMER.CREATE.CPE.P2",
            body(json!({"durable_name": "P2",
            "deliver_subject": "cpe.push", "ack_policy": "explicit", "max_waiting": 5})),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10080,
            "consumer in push mode can not set max waiting",
        )?;
        // A push consumer's config has no max_waiting, and its ack policy defaults to none.
        let reply = create_consumer(
            &c,
            "CPE",
            json!({"durable_name": "P3", "deliver_subject": "cpe.push"}),
        )
        .await?;
        let config = &reply["config"];
        ensure!(
            config.get("max_waiting").is_none() && config["ack_policy"] == "none",
            "{reply}"
        );
        ensure!(config["deliver_subject"] == "cpe.push", "{reply}");
        Ok(())
    })
}
