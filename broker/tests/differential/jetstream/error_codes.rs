//! Errors at the edges of requests and headers, where the status, `err_code` and description
//! follow from how nats-server parses a value, not from a rule written down: a sequence header
//! that is not a number, a message delete of a sequence the store does not have, an offset past
//! Go's `int`.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_a_non_numeric_expected_last_sequence_is_a_wrong_last_sequence,
        js_a_non_numeric_expected_last_subject_sequence_is_a_wrong_last_sequence,
        js_an_empty_expected_sequence_header_checks_nothing,
        js_msg_delete_outside_a_file_streams_range_is_a_failed_delete,
        js_msg_delete_outside_a_memory_streams_range_is_a_sequence_not_found,
        js_msg_delete_without_a_request_is_a_bad_request,
        js_msg_delete_on_a_sealed_stream_is_refused_as_sealed,
        js_msg_get_of_sequence_zero_is_a_bad_request,
        js_an_offset_past_gos_int_is_invalid_json_on_every_paged_request,
        js_the_largest_offset_go_reads_is_the_end_of_the_list,
    ]
}

/// 2^63: one past the largest `int` Go decodes.
const PAST_GO_INT: u64 = 1 << 63;

/// The PubAck error nats-server sends when an expected-sequence header does not hold.
fn wrong_last_sequence(stream: &str, last: u64) -> Value {
    let description = format!("wrong last sequence: {last}");
    json!({"error": {"code": 400, "err_code": 10071, "description": description},
        "stream": stream, "seq": 0})
}

fn js_a_non_numeric_expected_last_sequence_is_a_wrong_last_sequence(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECLS", "subjects": ["ecls"]})).await?;
        publish_n(&c, "ecls", "m", 2).await?;
        // nats-server reads anything but decimal digits as the largest sequence, which no
        // stream has reached: the check fails and names the real last sequence.
        for value in ["abc", "-1", "+2", "2x", "0x2"] {
            let ack = publish(&c, "ecls", &[("Nats-Expected-Last-Sequence", value)], "m").await?;
            ensure!(ack == wrong_last_sequence("ECLS", 2), "{value:?}: {ack}");
        }
        // Digits past u64 wrap around as Go's arithmetic does: 2^64 + 2 reads as 2.
        let wrapped = "18446744073709551618";
        let ack = publish(&c, "ecls", &[("Nats-Expected-Last-Sequence", wrapped)], "m").await?;
        ensure!(
            ack == json!({"stream": "ECLS", "seq": 3}),
            "{wrapped}: {ack}"
        );
        Ok(())
    })
}

fn js_a_non_numeric_expected_last_subject_sequence_is_a_wrong_last_sequence(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECSS", "subjects": ["ecss.*"]})).await?;
        publish_n(&c, "ecss.a", "m", 2).await?;
        let header = [("Nats-Expected-Last-Subject-Sequence", "abc")];
        let ack = publish(&c, "ecss.a", &header, "m").await?;
        ensure!(
            ack == wrong_last_sequence("ECSS", 2),
            "a subject with messages: {ack}"
        );
        let ack = publish(&c, "ecss.b", &header, "m").await?;
        ensure!(
            ack == wrong_last_sequence("ECSS", 0),
            "a subject without: {ack}"
        );
        Ok(())
    })
}

fn js_an_empty_expected_sequence_header_checks_nothing(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECEH", "subjects": ["eceh"]})).await?;
        publish_n(&c, "eceh", "m", 2).await?;
        let names = [
            "Nats-Expected-Last-Sequence",
            "Nats-Expected-Last-Subject-Sequence",
        ];
        for (seq, name) in (3..).zip(names) {
            let ack = publish(&c, "eceh", &[(name, "")], "m").await?;
            ensure!(
                ack == json!({"stream": "ECEH", "seq": seq}),
                "{name}: {ack}"
            );
        }
        Ok(())
    })
}

/// Deletes `seq` from `stream` and returns the reply.
async fn delete(c: &async_nats::Client, stream: &str, seq: u64) -> anyhow::Result<Value> {
    let what = format!("STREAM.MSG.DELETE.{stream}");
    api(c, &what, json!({"seq": seq})).await
}

fn js_msg_delete_outside_a_file_streams_range_is_a_failed_delete(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECDF", "subjects": ["ecdf"]})).await?;
        // Sequence 0 is never found; in an empty stream everything else is past the end.
        let reply = delete(&c, "ECDF", 0).await?;
        expect_error(&reply, 500, 10057, "no message found").context("empty, seq 0")?;
        let reply = delete(&c, "ECDF", 1).await?;
        expect_error(&reply, 500, 10057, "stream store EOF").context("empty, seq 1")?;
        publish_n(&c, "ecdf", "m", 4).await?;
        api_ok(&c, "STREAM.MSG.DELETE.ECDF", json!({"seq": 1})).await?;
        api_ok(&c, "STREAM.MSG.DELETE.ECDF", json!({"seq": 3})).await?;
        // The file store answers from its range: below the first sequence (0, or one already
        // deleted) is "no message found", past the last is "stream store EOF"; a gap inside the
        // range is the 400 every other store gives.
        let reply = delete(&c, "ECDF", 0).await?;
        expect_error(&reply, 500, 10057, "no message found").context("seq 0")?;
        let reply = delete(&c, "ECDF", 1).await?;
        expect_error(&reply, 500, 10057, "no message found").context("seq 1")?;
        let reply = delete(&c, "ECDF", 5).await?;
        expect_error(&reply, 500, 10057, "stream store EOF").context("seq 5")?;
        let reply = delete(&c, "ECDF", 3).await?;
        expect_error(&reply, 400, 10043, "sequence 3 not found").context("seq 3")?;
        // Purged: the range is empty, the last sequence stays.
        api_ok(&c, "STREAM.PURGE.ECDF", Value::Null).await?;
        let reply = delete(&c, "ECDF", 4).await?;
        expect_error(&reply, 500, 10057, "no message found").context("purged seq 4")?;
        let reply = delete(&c, "ECDF", 5).await?;
        expect_error(&reply, 500, 10057, "stream store EOF").context("purged seq 5")
    })
}

fn js_msg_delete_outside_a_memory_streams_range_is_a_sequence_not_found(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let config = json!({"name": "ECDM", "subjects": ["ecdm"], "storage": "memory"});
        create_stream(&c, config).await?;
        publish_n(&c, "ecdm", "m", 2).await?;
        api_ok(&c, "STREAM.MSG.DELETE.ECDM", json!({"seq": 1})).await?;
        for seq in [0, 1, 3] {
            let reply = delete(&c, "ECDM", seq).await?;
            let description = format!("sequence {seq} not found");
            expect_error(&reply, 400, 10043, &description).context(seq)?;
        }
        Ok(())
    })
}

fn js_msg_delete_without_a_request_is_a_bad_request(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECDE", "subjects": ["ecde"]})).await?;
        publish_n(&c, "ecde", "m", 1).await?;
        for body in [Value::Null, json!({})] {
            let reply = api(&c, "STREAM.MSG.DELETE.ECDE", body.clone()).await?;
            expect_error(&reply, 400, 10003, "bad request").context(body)?;
        }
        ensure!(stream_state(&c, "ECDE").await?["messages"] == 1);
        Ok(())
    })
}

fn js_msg_delete_on_a_sealed_stream_is_refused_as_sealed(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECSL", "subjects": ["ecsl"]})).await?;
        publish_n(&c, "ecsl", "m", 1).await?;
        let sealed = json!({"name": "ECSL", "subjects": ["ecsl"], "sealed": true});
        api_ok(&c, "STREAM.UPDATE.ECSL", sealed).await?;
        let reply = delete(&c, "ECSL", 1).await?;
        expect_error(&reply, 400, 10109, "invalid operation on sealed stream")
    })
}

fn js_msg_get_of_sequence_zero_is_a_bad_request(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECGZ", "subjects": ["ecgz"]})).await?;
        publish_n(&c, "ecgz", "m", 1).await?;
        let reply = api(&c, "STREAM.MSG.GET.ECGZ", json!({"seq": 0})).await?;
        expect_error(&reply, 400, 10003, "bad request")
    })
}

/// The paged requests; `{stream}` is replaced by a stream of the scenario's own.
const PAGED: [&str; 5] = [
    "STREAM.LIST",
    "STREAM.NAMES",
    "CONSUMER.LIST.{stream}",
    "CONSUMER.NAMES.{stream}",
    "STREAM.INFO.{stream}",
];

fn js_an_offset_past_gos_int_is_invalid_json_on_every_paged_request(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECO", "subjects": ["eco"]})).await?;
        for what in PAGED.map(|p| p.replace("{stream}", "ECO")) {
            let reply = api(&c, &what, json!({"offset": PAST_GO_INT})).await?;
            expect_error(&reply, 400, 10025, "invalid JSON").context(what)?;
        }
        Ok(())
    })
}

fn js_the_largest_offset_go_reads_is_the_end_of_the_list(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ECP", "subjects": ["ecp"]})).await?;
        create_consumer(&c, "ECP", json!({"durable_name": "D"})).await?;
        // The stream lists count every stream of the shared server: only the end is checked.
        for what in PAGED.map(|p| p.replace("{stream}", "ECP")) {
            let reply = api_ok(&c, &what, json!({"offset": PAST_GO_INT - 1})).await?;
            ensure!(
                reply["offset"] == reply["total"] || what.starts_with("STREAM.INFO"),
                "{what}: {reply}"
            );
        }
        Ok(())
    })
}
