//! async-nats' own JetStream API working unchanged: pull consumers (`fetch`, `messages()`),
//! an ordered consumer, a push queue-group consumer with two members, the key-value store and
//! the object store (both built on streams).

use std::collections::BTreeSet;
use std::future::IntoFuture;
use std::time::Duration;

use anyhow::{ensure, Context};
use async_nats::jetstream::{self, consumer, kv, stream};
use futures_util::StreamExt;

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_async_nats_pull_consumer_fetch_and_messages_work_unchanged,
        js_async_nats_ordered_consumer_reads_the_stream_in_order,
        js_async_nats_push_queue_group_consumer_with_two_members_shares_messages,
        js_async_nats_key_value_put_get_update_delete_and_watch,
        js_async_nats_object_store_put_get_info_and_delete,
    ]
}

/// The bound on one async-nats JetStream call.
const CALL: Duration = Duration::from_secs(5);

fn js_async_nats_pull_consumer_fetch_and_messages_work_unchanged(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let js = jetstream::new(connect(&url).await?);
        let stream = within(
            CALL,
            "create_stream",
            js.create_stream(stream::Config {
                name: "NPULL".into(),
                subjects: vec!["npull.>".into()],
                ..Default::default()
            }),
        )
        .await??;
        for i in 0..6 {
            let ack = js
                .publish(format!("npull.{i}"), format!("m{i}").into())
                .await?;
            let ack = within(CALL, "a PubAck", ack.into_future()).await??;
            ensure!(
                ack.stream == "NPULL" && ack.sequence == i + 1 && !ack.duplicate,
                "{ack:?}"
            );
        }
        let consumer: consumer::PullConsumer = within(
            CALL,
            "get_or_create_consumer",
            stream.get_or_create_consumer(
                "W",
                consumer::pull::Config {
                    durable_name: Some("W".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            ),
        )
        .await??;
        let mut batch = consumer.fetch().max_messages(3).messages().await?;
        let mut got = Vec::new();
        while let Some(msg) = within(CALL, "a fetched message", batch.next()).await? {
            let msg = msg.map_err(|e| anyhow::anyhow!("{e}"))?;
            got.push(String::from_utf8_lossy(&msg.payload).into_owned());
            msg.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        ensure!(got == ["m0", "m1", "m2"], "fetch: {got:?}");
        let mut messages = consumer.messages().await?;
        for expected in ["m3", "m4", "m5"] {
            let msg = within(CALL, "a message from messages()", messages.next())
                .await?
                .context("the stream ended")?;
            let msg = msg.map_err(|e| anyhow::anyhow!("{e}"))?;
            ensure!(msg.payload == expected, "messages(): {:?}", msg.payload);
            let info = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?;
            ensure!(
                info.stream == "NPULL" && info.consumer == "W" && info.delivered == 1,
                "{info:?}"
            );
            msg.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        drop(messages);
        let mut consumer = consumer;
        let info = within(CALL, "consumer info", consumer.info()).await??;
        ensure!(
            info.ack_floor.stream_sequence == 6
                && info.num_ack_pending == 0
                && info.num_pending == 0,
            "{info:?}"
        );
        Ok(())
    })
}

fn js_async_nats_ordered_consumer_reads_the_stream_in_order(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let js = jetstream::new(connect(&url).await?);
        let stream = within(
            CALL,
            "create_stream",
            js.create_stream(stream::Config {
                name: "NORD".into(),
                subjects: vec!["nord".into()],
                storage: stream::StorageType::Memory,
                ..Default::default()
            }),
        )
        .await??;
        for i in 0..10 {
            within(
                CALL,
                "a PubAck",
                js.publish("nord", format!("m{i}").into())
                    .await?
                    .into_future(),
            )
            .await??;
        }
        let consumer = within(
            CALL,
            "an ordered consumer",
            stream.create_consumer(consumer::pull::OrderedConfig::default()),
        )
        .await??;
        let mut messages = consumer.messages().await?;
        for i in 0..10 {
            let msg = within(CALL, "an ordered message", messages.next())
                .await?
                .context("the stream ended")?;
            let msg = msg.map_err(|e| anyhow::anyhow!("{e}"))?;
            ensure!(
                msg.payload == format!("m{i}"),
                "message {i}: {:?}",
                msg.payload
            );
        }
        Ok(())
    })
}

fn js_async_nats_push_queue_group_consumer_with_two_members_shares_messages(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let js = jetstream::new(connect(&url).await?);
        let stream = within(
            CALL,
            "create_stream",
            js.create_stream(stream::Config {
                name: "NQG".into(),
                subjects: vec!["nqg".into()],
                ..Default::default()
            }),
        )
        .await??;
        let config = consumer::push::Config {
            durable_name: Some("WORKERS".into()),
            deliver_subject: "nqg.deliver".into(),
            deliver_group: Some("workers".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        };
        let _: consumer::PushConsumer =
            within(CALL, "the push consumer", stream.create_consumer(config)).await??;
        // Two members, each on its own connection, bind to the same durable.
        let mut members = Vec::new();
        for _ in 0..2 {
            let js = jetstream::new(connect(&url).await?);
            let stream = within(CALL, "get_stream", js.get_stream("NQG")).await??;
            let consumer: consumer::PushConsumer =
                within(CALL, "get_consumer", stream.get_consumer("WORKERS"))
                    .await?
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            members.push(consumer.messages().await?);
        }
        let (mut one, mut two) = (members.remove(0), members.remove(0));
        for i in 0..20 {
            within(
                CALL,
                "a PubAck",
                js.publish("nqg", format!("m{i}").into())
                    .await?
                    .into_future(),
            )
            .await??;
        }
        let mut seen = [BTreeSet::new(), BTreeSet::new()];
        while seen[0].len() + seen[1].len() < 20 {
            let (i, msg) = tokio::select! {
                Some(msg) = one.next() => (0, msg),
                Some(msg) = two.next() => (1, msg),
                _ = tokio::time::sleep(WAIT) => anyhow::bail!("only {:?} arrived", seen),
            };
            let msg = msg.map_err(|e| anyhow::anyhow!("{e}"))?;
            let seq = msg
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            ensure!(
                !seen[0].contains(&seq) && !seen[1].contains(&seq),
                "seq {seq} delivered twice"
            );
            seen[i].insert(seq);
            msg.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        ensure!(
            !seen[0].is_empty() && !seen[1].is_empty(),
            "one member got everything: {seen:?}"
        );
        Ok(())
    })
}

fn js_async_nats_key_value_put_get_update_delete_and_watch(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let js = jetstream::new(connect(&url).await?);
        let store = within(
            CALL,
            "create_key_value",
            js.create_key_value(kv::Config {
                bucket: "nkv".into(),
                history: 5,
                ..Default::default()
            }),
        )
        .await??;
        let rev = within(CALL, "put", store.put("color", "red".into())).await??;
        ensure!(rev == 1, "first revision {rev}");
        let value = within(CALL, "get", store.get("color")).await??;
        ensure!(value.as_deref() == Some(&b"red"[..]), "{value:?}");
        let rev = within(CALL, "update", store.update("color", "blue".into(), 1)).await??;
        ensure!(rev == 2, "update revision {rev}");
        // An update against a stale revision fails (Nats-Expected-Last-Subject-Sequence).
        let stale = within(
            CALL,
            "stale update",
            store.update("color", "green".into(), 1),
        )
        .await?;
        let wrong = matches!(&stale, Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision);
        ensure!(wrong, "stale update: {stale:?}");
        // create only succeeds for a key without a value.
        ensure!(
            within(CALL, "create", store.create("color", "x".into()))
                .await?
                .is_err(),
            "create over a value"
        );
        let rev = within(CALL, "create", store.create("shape", "round".into())).await??;
        ensure!(rev == 3, "create revision {rev}");
        let mut watch = within(CALL, "watch", store.watch("color")).await??;
        within(CALL, "delete", store.delete("color")).await??;
        let entry = within(CALL, "get after delete", store.get("color")).await??;
        ensure!(entry.is_none(), "value after delete: {entry:?}");
        let entry = within(CALL, "entry after delete", store.entry("color"))
            .await??
            .context("no delete marker")?;
        ensure!(
            entry.operation == kv::Operation::Delete && entry.revision == 4,
            "{entry:?}"
        );
        within(CALL, "put", store.put("color", "black".into())).await??;
        // The watcher sees the delete, then the new value.
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let entry = within(CALL, "a watched entry", watch.next())
                .await?
                .context("watch ended")??;
            seen.push((
                entry.operation,
                String::from_utf8_lossy(&entry.value).into_owned(),
                entry.revision,
            ));
        }
        let expected = vec![
            (kv::Operation::Delete, String::new(), 4),
            (kv::Operation::Put, "black".to_string(), 5),
        ];
        ensure!(seen == expected, "watched {seen:?}");
        let status = within(CALL, "status", store.status()).await??;
        ensure!(
            status.history() == 5 && status.bucket() == "nkv",
            "{status:?}"
        );
        Ok(())
    })
}

fn js_async_nats_object_store_put_get_info_and_delete(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let store = super::edges::object_store_bucket(&url, "nobj").await?;
        // 300 000 bytes: more than two 128 KiB chunks.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let info = within(CALL, "put", store.put("blob", &mut data.as_slice())).await??;
        ensure!(info.size == data.len() && info.chunks == 3, "{info:?}");
        let read = super::edges::read_object(&store, "blob").await?;
        ensure!(
            read == data,
            "read {} bytes that differ from the {} put",
            read.len(),
            data.len()
        );
        let info = within(CALL, "info", store.info("blob")).await??;
        ensure!(info.name == "blob" && !info.deleted, "{info:?}");
        within(CALL, "delete", store.delete("blob")).await??;
        let gone = within(CALL, "get after delete", store.get("blob")).await?;
        ensure!(gone.is_err(), "object still readable after delete");
        Ok(())
    })
}
