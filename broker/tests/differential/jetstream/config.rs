//! The `jetstream` setting of a config file in the forms nats-server 2.10 reads (a word, a
//! boolean, a block with sizes written every way, limits, settings without meaning on one
//! server), the forms it refuses, and the JetStream domain, which changes what clients see.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_config_forms_nats_server_reads_start_the_server,
        js_config_forms_nats_server_refuses_stop_the_server,
        js_domain_is_in_info_pub_acks_stream_and_account_info_and_its_api_answers,
    ]
}

/// `(jetstream setting, whether JetStream is then on)`; each file also names a store directory
/// through `-sd`.
const ACCEPTED: &[(&str, bool)] = &[
    ("jetstream: enabled", true),
    ("jetstream: \"enabled\"", true),
    ("jetstream: enable", true),
    ("jetstream: true", true),
    ("jetstream: on", true),
    ("jetstream: disabled", false),
    ("jetstream: false", false),
    ("jetstream { enabled: false }", false),
    ("jetstream {}", true),
    ("jetstream { max_mem: 1GB, max_file: 10GB }", true),
    (
        "jetstream { max_memory_store: 536870912, max_file_store: 1TB }",
        true,
    ),
    (
        "jetstream { max_mem_store: 512MB, max_file_store: \"2G\" }",
        true,
    ),
    ("jetstream { max_mem: \"512M\", max_file: \"1T\" }", true),
    ("jetstream { max_mem: 1G, max_file: 4K }", true),
    ("jetstream { max_file_store: -1 }", true),
    ("jetstream { domain: hub }", true),
    ("jetstream { unique_tag: \"az:\" }", true),
    ("jetstream { max_outstanding_catchup: 64MB }", true),
    ("jetstream { sync_interval: \"2m\" }", true),
    ("jetstream { sync_interval: always }", true),
    ("jetstream { request_queue_limit: 1000 }", true),
    ("jetstream { extension_hint: will_extend }", true),
    ("jetstream { cipher: chacha }", true),
    ("jetstream { cipher: aes }", true),
    (
        "jetstream { limits { max_ack_pending: 100, max_request_batch: 10, \
         duplicate_window: \"1m\", max_ha_assets: 2 } }",
        true,
    ),
];

/// Settings nats-server 2.10.26 does not start with.
const REFUSED: &[&str] = &[
    "jetstream: \"on\"",
    "jetstream: maybe",
    "jetstream { max_memory_store: \"1GB\" }",
    "jetstream { max_file_store: \"512\" }",
    "jetstream { max_file_store: \"10g\" }",
    "jetstream { cipher: des }",
    "jetstream { domain: \"a.b\" }",
    "jetstream { bogus: 1 }",
    "jetstream { max_buffered_msgs: 100 }",
    "jetstream { strict: true }",
    "jetstream { limits { bogus: 1 } }",
];

fn js_config_forms_nats_server_reads_start_the_server(t: &Target) -> anyhow::Result<()> {
    let store = tempfile::Builder::new().prefix("js-forms-").tempdir()?;
    let dir = store.path().to_str().context("store path is not UTF-8")?;
    for (setting, on) in ACCEPTED {
        let server = t
            .start_with_config(&format!("{setting}\n"), &["-sd", dir])
            .with_context(|| format!("starting with `{setting}`"))?;
        let url = server.client_url();
        let jetstream = block_on(async move {
            let c = connect(&url).await?;
            let info = c.server_info();
            if info.jetstream {
                // The API answers too.
                api_ok(&c, "INFO", Value::Null).await?;
            }
            Ok(info.jetstream)
        })?;
        ensure!(jetstream == *on, "`{setting}`: jetstream is {jetstream}");
    }
    // The store directory at the top level or in the block (and then without -sd, which
    // nats-server counts as a second one).
    for text in [
        format!("store_dir: \"{dir}\"\njetstream: enabled\n"),
        format!("jetstream {{ store: \"{dir}\" }}\n"),
    ] {
        let server = t
            .start_with_config(&text, &[])
            .with_context(|| format!("starting with `{text}`"))?;
        let url = server.client_url();
        block_on(async move { api_ok(&connect(&url).await?, "INFO", Value::Null).await })?;
    }
    Ok(())
}

fn js_config_forms_nats_server_refuses_stop_the_server(t: &Target) -> anyhow::Result<()> {
    let store = tempfile::Builder::new().prefix("js-forms-").tempdir()?;
    let dir = store.path().to_str().context("store path is not UTF-8")?;
    for setting in REFUSED {
        let started = t.start_with_config(&format!("{setting}\n"), &["-sd", dir]);
        ensure!(started.is_err(), "`{setting}` was accepted");
    }
    let both = format!("store_dir: \"{dir}\"\njetstream {{ store_dir: \"{dir}\" }}\n");
    ensure!(
        t.start_with_config(&both, &[]).is_err(),
        "a store directory given twice was accepted"
    );
    Ok(())
}

fn js_domain_is_in_info_pub_acks_stream_and_account_info_and_its_api_answers(
    t: &Target,
) -> anyhow::Result<()> {
    let store = tempfile::Builder::new().prefix("js-domain-").tempdir()?;
    let dir = store.path().to_str().context("store path is not UTF-8")?;
    let server = t.start_with_config("jetstream { domain: hub }\n", &["-sd", dir])?;
    let url = server.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        ensure!(
            c.server_info().domain.as_deref() == Some("hub"),
            "INFO {:?}",
            c.server_info()
        );
        let account = api_ok(&c, "INFO", Value::Null).await?;
        ensure!(account["domain"] == "hub", "{account}");
        let config = json!({"name": "DOM", "subjects": ["dom.>"]});
        let created = create_stream(&c, config.clone()).await?;
        ensure!(created.get("domain").is_none(), "create: {created}");
        let ack = publish(&c, "dom.x", &[], "v").await?;
        ensure!(
            ack == json!({"stream": "DOM", "domain": "hub", "seq": 1}),
            "{ack}"
        );
        let updated = api_ok(&c, "STREAM.UPDATE.DOM", config).await?;
        let list = api_ok(&c, "STREAM.LIST", Value::Null).await?;
        ensure!(updated["domain"] == "hub", "update: {updated}");
        ensure!(list["streams"][0]["domain"] == "hub", "list: {list}");
        // The domain's API subjects reach the same API.
        let reply = within(
            WAIT,
            "STREAM.INFO through the domain",
            c.request("$JS.hub.API.STREAM.INFO.DOM", "".into()),
        )
        .await??;
        let info: Value = serde_json::from_slice(&reply.payload)?;
        ensure!(
            info["domain"] == "hub" && info["state"]["messages"] == 1,
            "{info}"
        );
        ensure!(info["cluster"]["leader"].is_string(), "{info}");
        // Another domain's are nobody's.
        let other = c.request("$JS.other.API.INFO", "".into()).await;
        let no_responders =
            matches!(&other, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders);
        ensure!(no_responders, "{other:?}");
        Ok(())
    })
}
