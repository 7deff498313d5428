//! Edges of what a stream stores and how its info looks: subjects a client library would never
//! build (a key-value key with `*` or `>`, control characters, a very long token) are stored as
//! nats-server stores them, a subject with an empty token reaches no stream, the object store
//! round-trips a many-chunk object with an unusual name, and the `cluster` member appears in
//! exactly the stream info replies nats-server puts it in.

use std::time::Duration;

use anyhow::{ensure, Context};
use async_nats::jetstream::{self, kv, object_store};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_stream_stores_wildcard_characters_and_odd_bytes_but_never_an_empty_token,
        js_kv_keys_published_around_the_client_validation_are_stored,
        js_object_store_round_trips_a_many_chunk_object_with_an_unusual_name,
        js_only_stream_info_carries_the_cluster_leader,
    ]
}

/// The bound on one async-nats JetStream call.
const CALL: Duration = Duration::from_secs(10);

fn js_stream_stores_wildcard_characters_and_odd_bytes_but_never_an_empty_token(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "EDGSUBJ", "subjects": ["edg.>"]})).await?;
        let long = format!("edg.{}", "t".repeat(4000));
        let stored = [
            "edg.a*b",
            "edg.*",
            "edg.>",
            "edg.x.*.y",
            "edg.a>",
            "edg.form\x0cfeed",
            "edg.ctl\x01",
            "edg.caf\u{e9}",
            "edg.a/b=c",
            long.as_str(),
        ];
        for (seq, subject) in (1u64..).zip(stored) {
            let ack = publish(&c, subject, &[], "v").await?;
            ensure!(
                ack == json!({"stream": "EDGSUBJ", "seq": seq}),
                "{subject:?}: {ack}"
            );
        }
        // A subject with an empty token matches no subscription, so no stream answers.
        for subject in ["edg.a..b", "edg.a."] {
            let mut inbox = Inbox::new(&c).await?;
            c.publish_with_reply(subject, inbox.subject.clone(), "v".into())
                .await?;
            let msg = inbox.next(WAIT, "the no-responders status").await?;
            expect_status(&msg, "NATS/1.0 503", &[])?;
        }
        let state = stream_state(&c, "EDGSUBJ").await?;
        let expected = json!({"messages": stored.len(), "num_subjects": stored.len(),
            "first_seq": 1, "last_seq": stored.len()});
        for key in ["messages", "num_subjects", "first_seq", "last_seq"] {
            ensure!(state[key] == expected[key], "{key}: {state}");
        }
        // Each comes back under the subject it was published to.
        for (seq, subject) in (1u64..).zip(stored) {
            let got = api_ok(&c, "STREAM.MSG.GET.EDGSUBJ", json!({"seq": seq})).await?;
            ensure!(got["message"]["subject"] == subject, "seq {seq}: {got}");
        }
        // A literal `*` in last_by_subj is a wildcard there: the last of `edg.*`'s matches.
        let got = api_ok(
            &c,
            "STREAM.MSG.GET.EDGSUBJ",
            json!({"last_by_subj": "edg.*"}),
        )
        .await?;
        ensure!(got["message"]["seq"] == stored.len(), "{got}");
        Ok(())
    })
}

fn js_kv_keys_published_around_the_client_validation_are_stored(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let client = connect(&url).await?;
        let js = jetstream::new(client.clone());
        let store = within(
            CALL,
            "create_key_value",
            js.create_key_value(kv::Config {
                bucket: "ekv".into(),
                ..Default::default()
            }),
        )
        .await??;
        within(CALL, "put", store.put("plain", "p".into())).await??;
        // async-nats refuses these keys; a raw publish to the bucket's subject bypasses that.
        let bypass = ["*", ">", "a.*", "sp\x0cace"];
        for key in bypass {
            let ack = publish(&client, &format!("$KV.ekv.{key}"), &[], key).await?;
            ensure!(ack.get("error").is_none(), "{key:?}: {ack}");
        }
        let state = stream_state(&client, "KV_ekv").await?;
        ensure!(
            state["messages"] == 5 && state["num_subjects"] == 5,
            "{state}"
        );
        // Each key's last value, read back by its literal subject.
        for key in ["sp\x0cace", "a.*"] {
            let subject = format!("$KV.ekv.{key}");
            let got = api_ok(
                &client,
                "STREAM.MSG.GET.KV_ekv",
                json!({"last_by_subj": subject}),
            )
            .await?;
            ensure!(got["message"]["subject"] == subject.as_str(), "{got}");
        }
        let value = within(CALL, "get", store.get("plain")).await??;
        ensure!(value.as_deref() == Some(&b"p"[..]), "{value:?}");
        Ok(())
    })
}

fn js_object_store_round_trips_a_many_chunk_object_with_an_unusual_name(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let store = object_store_bucket(&url, "eobj").await?;
        // 1.5 MiB: twelve 128 KiB chunks.
        let data: Vec<u8> = (0..1_572_864u32).map(|i| (i % 253) as u8).collect();
        let name = "dir/sub dir/r\u{e9}sum\u{e9} #1.tar.gz";
        let info = within(CALL, "put", store.put(name, &mut data.as_slice())).await??;
        ensure!(info.size == data.len() && info.chunks == 12, "{info:?}");
        let read = read_object(&store, name).await?;
        ensure!(read == data, "read {} bytes, not the ones put", read.len());
        // Putting it again replaces it: the old chunks are purged.
        let smaller = &data[..200_000];
        let info = within(CALL, "put again", store.put(name, &mut &smaller[..])).await??;
        ensure!(info.chunks == 2, "{info:?}");
        let read = read_object(&store, name).await?;
        ensure!(
            read == smaller,
            "read {} bytes after the replace",
            read.len()
        );
        let c = connect(&url).await?;
        let state = stream_state(&c, "OBJ_eobj").await?;
        // Two chunks and one meta message are left.
        ensure!(state["messages"] == 3, "{state}");
        Ok(())
    })
}

/// A new object store bucket, through a client of its own.
pub(super) async fn object_store_bucket(
    url: &str,
    bucket: &str,
) -> anyhow::Result<object_store::ObjectStore> {
    let js = jetstream::new(connect(url).await?);
    let config = object_store::Config {
        bucket: bucket.into(),
        ..Default::default()
    };
    let created = within(CALL, "create_object_store", js.create_object_store(config)).await?;
    created.map_err(|e| anyhow::anyhow!("creating object store {bucket}: {e}"))
}

/// Everything an object holds.
pub(super) async fn read_object(
    store: &object_store::ObjectStore,
    name: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut object = within(CALL, "get", store.get(name)).await??;
    let mut read = Vec::new();
    within(CALL, "reading the object", object.read_to_end(&mut read)).await??;
    Ok(read)
}

fn js_only_stream_info_carries_the_cluster_leader(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let server_id = c.server_info().server_id;
        let config = json!({"name": "ECLU", "subjects": ["eclu.>"]});
        let created = create_stream(&c, config.clone()).await?;
        let mut update = config.clone();
        update["max_msgs"] = json!(10);
        let updated = api_ok(&c, "STREAM.UPDATE.ECLU", update).await?;
        let info = api_ok(&c, "STREAM.INFO.ECLU", Value::Null).await?;
        let list = api_ok(&c, "STREAM.LIST", json!({"subject": "eclu.x"})).await?;
        let listed = list["streams"]
            .get(0)
            .context("STREAM.LIST without the stream")?;
        for (what, reply) in [("create", &created), ("update", &updated), ("list", listed)] {
            ensure!(reply.get("cluster").is_none(), "{what}: {reply}");
        }
        ensure!(
            info["cluster"] == json!({"leader": server_id}),
            "info: {info}"
        );
        create_consumer(&c, "ECLU", json!({"durable_name": "D"})).await?;
        let consumer = consumer_info(&c, "ECLU", "D").await?;
        ensure!(consumer.get("cluster").is_none(), "consumer: {consumer}");
        Ok(())
    })
}
