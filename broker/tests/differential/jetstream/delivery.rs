//! Where a consumer starts and what it selects: deliver_policy all/last/new/by_start_sequence/
//! by_start_time/last_per_subject, filter_subject(s) and headers_only.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_deliver_policies_start_where_nats_server_starts,
        js_deliver_policy_option_errors,
        js_filter_subject_and_filter_subjects_select_the_messages,
        js_headers_only_sends_headers_and_nats_msg_size_without_payload,
        js_last_per_subject_consumer_forgets_what_a_purge_removed,
    ]
}

/// Creates a pull consumer on `stream` with this config, checks its `delivered.stream_seq`
/// and `num_pending` at creation, and pulls up to `count` messages: returns their stream seqs.
async fn start(
    c: &async_nats::Client,
    stream: &str,
    config: Value,
    created: (u64, u64),
    count: usize,
) -> anyhow::Result<Vec<u64>> {
    let name = config["name"].as_str().context("name")?.to_string();
    let reply = create_consumer(c, stream, config.clone()).await?;
    let at_creation = (
        reply["delivered"]["stream_seq"]
            .as_u64()
            .context("delivered")?,
        reply["num_pending"].as_u64().context("num_pending")?,
    );
    ensure!(
        at_creation == created,
        "{config}: (delivered.stream_seq, num_pending) = {at_creation:?}, expected {created:?}"
    );
    let mut inbox = pull(
        c,
        stream,
        &name,
        json!({"batch": count.max(1), "no_wait": true}),
    )
    .await?;
    let mut seqs = Vec::new();
    loop {
        let msg = inbox.next(WAIT, "messages then a status").await?;
        if msg.status.is_some() {
            return Ok(seqs);
        }
        seqs.push(AckReply::of(&msg)?.stream_seq);
        if seqs.len() == count {
            return Ok(seqs);
        }
    }
}

fn js_deliver_policies_start_where_nats_server_starts(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "DPS", "subjects": ["dps.*"]})).await?;
        // a:1 b:2 a:3 b:4 a:5
        for (i, subject) in ["dps.a", "dps.b", "dps.a", "dps.b", "dps.a"]
            .iter()
            .enumerate()
        {
            publish(&c, subject, &[], &format!("m{}", i + 1)).await?;
        }
        let four = api_ok(&c, "STREAM.MSG.GET.DPS", json!({"seq": 4})).await?;
        let time = four["message"]["time"]
            .as_str()
            .context("time of seq 4")?
            .to_string();
        let base = |name: &str, policy: &str| json!({"name": name, "ack_policy": "explicit", "deliver_policy": policy});
        let seqs = start(&c, "DPS", base("ALL", "all"), (0, 5), 5).await?;
        ensure!(seqs == [1, 2, 3, 4, 5], "all: {seqs:?}");
        // `last` starts at the last message: delivered.stream_seq is one below it.
        let seqs = start(&c, "DPS", base("LAST", "last"), (4, 1), 5).await?;
        ensure!(seqs == [5], "last: {seqs:?}");
        let seqs = start(&c, "DPS", base("NEW", "new"), (5, 0), 5).await?;
        ensure!(seqs.is_empty(), "new: {seqs:?}");
        let mut config = base("SEQ", "by_start_sequence");
        config["opt_start_seq"] = json!(3);
        let seqs = start(&c, "DPS", config, (2, 3), 5).await?;
        ensure!(seqs == [3, 4, 5], "by_start_sequence: {seqs:?}");
        let mut config = base("TIME", "by_start_time");
        config["opt_start_time"] = json!(time);
        let seqs = start(&c, "DPS", config, (3, 2), 5).await?;
        ensure!(seqs == [4, 5], "by_start_time: {seqs:?}");
        // last_per_subject: the last message of each subject, in stream order.
        let mut config = base("LPS", "last_per_subject");
        config["filter_subject"] = json!("dps.*");
        let seqs = start(&c, "DPS", config, (3, 2), 5).await?;
        ensure!(seqs == [4, 5], "last_per_subject: {seqs:?}");
        // A `new` consumer gets what is published after it was created.
        publish(&c, "dps.b", &[], "m6").await?;
        let mut inbox = pull(&c, "DPS", "NEW", json!({"batch": 1})).await?;
        let msg = inbox.next(WAIT, "the new message").await?;
        ensure!(
            AckReply::of(&msg)?.numbers() == (1, 6, 1, 0),
            "{}",
            describe(&msg)
        );
        Ok(())
    })
}

fn js_deliver_policy_option_errors(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "DPE", "subjects": ["dpe"]})).await?;
        // All are err_code 10094 (an invalid policy), with the reason in the description.
        let cases: Vec<(Value, u64, u64, &str)> = vec![
            (json!({"deliver_policy": "last_per_subject"}), 400, 10094,
                "consumer delivery policy is deliver last per subject, but optional filter subject is not set"),
            (json!({"deliver_policy": "by_start_sequence"}), 400, 10094,
                "consumer delivery policy is deliver by start sequence, but optional start sequence is not set"),
            (json!({"deliver_policy": "by_start_time"}), 400, 10094,
                "consumer delivery policy is deliver by start time, but optional start time is not set"),
            (json!({"deliver_policy": "all", "opt_start_seq": 3}), 400, 10094,
                "consumer delivery policy is deliver all, but optional start sequence is also set"),
        ];
        for (extra, code, err_code, description) in cases {
            let mut config = json!({"durable_name": "X", "ack_policy": "explicit"});
            if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
                config.extend(extra.clone());
            }
            let reply = api(
                &c,
                "CONSUMER.CREATE.DPE.X",
                json!({"stream_name": "DPE", "config": config}),
            )
            .await?;
            expect_error(&reply, code, err_code, description)
                .with_context(|| format!("{extra}"))?;
        }
        Ok(())
    })
}

fn js_filter_subject_and_filter_subjects_select_the_messages(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "DFS", "subjects": ["dfs.>"]})).await?;
        for (i, subject) in ["dfs.a", "dfs.b", "dfs.c.x", "dfs.a", "dfs.c.y", "dfs.b"]
            .iter()
            .enumerate()
        {
            publish(&c, subject, &[], &format!("m{}", i + 1)).await?;
        }
        let base = |name: &str| json!({"name": name, "ack_policy": "explicit"});
        let mut config = base("FA");
        config["filter_subject"] = json!("dfs.a");
        let seqs = start(&c, "DFS", config, (0, 2), 6).await?;
        ensure!(seqs == [1, 4], "filter dfs.a: {seqs:?}");
        let mut config = base("FW");
        config["filter_subject"] = json!("dfs.c.*");
        let seqs = start(&c, "DFS", config, (0, 2), 6).await?;
        ensure!(seqs == [3, 5], "filter dfs.c.*: {seqs:?}");
        let mut config = base("FM");
        config["filter_subjects"] = json!(["dfs.b", "dfs.c.>"]);
        let seqs = start(&c, "DFS", config, (0, 4), 6).await?;
        ensure!(seqs == [2, 3, 5, 6], "filter_subjects: {seqs:?}");
        // The consumer sequence counts only the selected messages; pending counts down.
        let mut inbox = pull(&c, "DFS", "FA", json!({"batch": 1, "expires": ms(2000)})).await?;
        publish(&c, "dfs.b", &[], "m7").await?;
        publish(&c, "dfs.a", &[], "m8").await?;
        let msg = inbox
            .next(WAIT, "dfs.a after the filtered-out dfs.b")
            .await?;
        ensure!(
            AckReply::of(&msg)?.numbers() == (1, 8, 3, 0),
            "{}",
            describe(&msg)
        );
        Ok(())
    })
}

fn js_headers_only_sends_headers_and_nats_msg_size_without_payload(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "DHO", "subjects": ["dho"]})).await?;
        publish(&c, "dho", &[], "plain").await?;
        publish(&c, "dho", &[("X-Trace", "t1")], "with headers").await?;
        create_consumer(
            &c,
            "DHO",
            json!({"name": "H", "ack_policy": "explicit", "headers_only": true}),
        )
        .await?;
        let mut inbox = pull(&c, "DHO", "H", json!({"batch": 2})).await?;
        let first = inbox.next(WAIT, "the first message").await?;
        ensure!(first.payload.is_empty(), "{}", describe(&first));
        ensure!(
            header(&first, "Nats-Msg-Size") == Some("5"),
            "{:?}",
            first.headers
        );
        let second = inbox.next(WAIT, "the second message").await?;
        ensure!(second.payload.is_empty(), "{}", describe(&second));
        // The stored headers are kept and Nats-Msg-Size (the payload's size) is added.
        ensure!(
            header(&second, "X-Trace") == Some("t1"),
            "{:?}",
            second.headers
        );
        ensure!(
            header(&second, "Nats-Msg-Size") == Some("12"),
            "{:?}",
            second.headers
        );
        Ok(())
    })
}

fn js_last_per_subject_consumer_forgets_what_a_purge_removed(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "LPP", "subjects": ["lpp.*"]})).await?;
        publish_n(&c, "lpp.a", "a", 2).await?;
        publish_n(&c, "lpp.b", "b", 1).await?;
        let config = json!({"name": "L", "ack_policy": "explicit",
            "deliver_policy": "last_per_subject", "filter_subject": "lpp.*"});
        let reply = create_consumer(&c, "LPP", config).await?;
        ensure!(reply["num_pending"] == 2, "{reply}");
        // The last messages of each subject are gone before they were delivered (a KV
        // listing whose entries expired): they are no longer pending.
        api_ok(&c, "STREAM.PURGE.LPP", Value::Null).await?;
        eventually(WAIT, "num_pending 0 after the purge", || async {
            Ok(consumer_info(&c, "LPP", "L").await?["num_pending"] == 0)
        })
        .await?;
        Ok(())
    })
}
