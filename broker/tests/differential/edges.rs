//! Raw protocol edges: framing, separators, case, malformed commands and size limits.

use anyhow::ensure;

use crate::protocol::expect_ops;
use crate::raw::{RawClient, ServerOp};
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        frame_split_byte_by_byte_across_writes_is_parsed,
        many_pipelined_commands_in_one_write_are_all_processed,
        operation_names_are_case_insensitive,
        tabs_and_repeated_spaces_separate_arguments,
        zero_length_payload_is_delivered,
        payload_containing_crlf_is_delivered_intact,
        pub_whose_payload_is_longer_than_its_size_closes_the_connection,
        pub_whose_payload_is_shorter_than_its_size_closes_the_connection,
        pub_with_a_non_numeric_size_closes_the_connection,
        unknown_operation_gets_unknown_protocol_operation_and_close,
        payload_over_max_payload_gets_maximum_payload_violation_and_close,
        control_line_over_max_control_line_gets_an_error_and_close,
        ping_before_connect_gets_pong,
        pub_before_connect_is_delivered_with_verbose_defaults_when_auth_is_off,
        connect_with_invalid_json_closes_the_connection,
        connect_with_unknown_fields_is_accepted,
        control_lines_ending_in_a_bare_lf_are_accepted,
        unsolicited_pong_is_ignored,
        hpub_without_headers_in_connect_closes_the_connection,
        client_gone_in_the_middle_of_a_payload_delivers_nothing,
    ]
}

fn frame_split_byte_by_byte_across_writes_is_parsed(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect(port).await?;
        let frames =
            "CONNECT {\"verbose\":false}\r\nSUB split.s 1\r\nPUB split.s r.1 5\r\nab\r\nc\r\n";
        for byte in frames.as_bytes() {
            c.send([*byte]).await?;
        }
        let ops = c.ping_until_pong().await?;
        let [ServerOp::Msg(msg)] = ops.as_slice() else {
            anyhow::bail!("expected one MSG, got {ops:?}");
        };
        ensure!(
            msg.payload == b"ab\r\nc" && msg.reply.as_deref() == Some("r.1"),
            "{msg:?}"
        );
        Ok(())
    })
}

fn many_pipelined_commands_in_one_write_are_all_processed(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        let mut batch = String::from("SUB pipe.s 1\r\n");
        for i in 0..2000 {
            let payload = format!("m{i}");
            batch.push_str(&format!(
                "PUB pipe.s {}\r\n{payload}\r\nPING\r\n",
                payload.len()
            ));
        }
        c.send(batch).await?;
        for i in 0..2000 {
            let ops = c.until_pong().await?;
            let expected = ServerOp::msg("pipe.s", "1", format!("m{i}").as_bytes());
            expect_ops(ops, &[expected], &format!("pipelined PUB {i}"))?;
        }
        c.expect_still_open().await
    })
}

fn operation_names_are_case_insensitive(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect(port).await?;
        c.send("connect {\"verbose\":false}\r\nSub case.s 1\r\npUb case.s 2\r\nhi\r\n")
            .await?;
        c.send("unsub 1 5\r\nping\r\n").await?;
        expect_ops(
            c.until_pong().await?,
            &[ServerOp::msg("case.s", "1", b"hi")],
            "mixed case",
        )
    })
}

fn tabs_and_repeated_spaces_separate_arguments(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB\ttab.s  \t 1\r\nPUB  tab.s\t\t2\r\nhi\r\nPUB tab.s   re.ply \t 2\r\nyo\r\n")
            .await?;
        let ops = c.ping_until_pong().await?;
        ensure!(ops.len() == 2, "expected two MSGs, got {ops:?}");
        ensure!(ops[0] == ServerOp::msg("tab.s", "1", b"hi"), "got {ops:?}");
        let ServerOp::Msg(second) = &ops[1] else {
            anyhow::bail!("got {ops:?}")
        };
        ensure!(
            second.reply.as_deref() == Some("re.ply") && second.payload == b"yo",
            "{ops:?}"
        );
        Ok(())
    })
}

fn zero_length_payload_is_delivered(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB zero.s 1\r\nPUB zero.s 0\r\n\r\n").await?;
        expect_ops(
            c.ping_until_pong().await?,
            &[ServerOp::msg("zero.s", "1", b"")],
            "PUB 0",
        )
    })
}

fn payload_containing_crlf_is_delivered_intact(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        let payload = "a\r\nPING\r\nb\r\n";
        c.send(format!(
            "SUB crlf.s 1\r\nPUB crlf.s {}\r\n{payload}\r\n",
            payload.len()
        ))
        .await?;
        let expected = [ServerOp::msg("crlf.s", "1", payload.as_bytes())];
        expect_ops(c.ping_until_pong().await?, &expected, "payload with CRLF")
    })
}

/// Sends `bad` from a fresh connection while another one subscribes to `bad.s`, and expects
/// the sender to be closed (an `-ERR` first is allowed) and nothing delivered.
async fn expect_malformed_pub_closes(port: u16, bad: &str) -> anyhow::Result<()> {
    let mut watcher = RawClient::quiet(port).await?;
    watcher.send("SUB bad.s 1\r\n").await?;
    watcher.ping_until_pong().await?;
    let mut c = RawClient::quiet(port).await?;
    c.send(format!("{bad}PING\r\n")).await?;
    let ops = c.until_closed().await?;
    let only_errors = ops.iter().all(|op| matches!(op, ServerOp::Err(_)));
    ensure!(
        only_errors,
        "{bad:?}: expected at most an -ERR before the close, got {ops:?}"
    );
    expect_ops(
        watcher.ping_until_pong().await?,
        &[],
        "the watcher of the malformed PUB",
    )
}

fn pub_whose_payload_is_longer_than_its_size_closes_the_connection(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        expect_malformed_pub_closes(port, "PUB bad.s 2\r\nhixx\r\n").await?;
        expect_malformed_pub_closes(port, "PUB bad.s 3\r\nhi\r\n").await
    })
}

fn pub_whose_payload_is_shorter_than_its_size_closes_the_connection(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move { expect_malformed_pub_closes(port, "PUB bad.s 1\r\nhi\r\n").await })
}

fn pub_with_a_non_numeric_size_closes_the_connection(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        expect_malformed_pub_closes(port, "PUB bad.s x\r\n").await?;
        expect_malformed_pub_closes(port, "PUB bad.s -2\r\nhi\r\n").await?;
        expect_malformed_pub_closes(port, "PUB bad.s\r\n").await
    })
}

fn unknown_operation_gets_unknown_protocol_operation_and_close(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("FOO bar\r\nPING\r\n").await?;
        c.expect_err_and_close("Unknown Protocol Operation").await
    })
}

fn payload_over_max_payload_gets_maximum_payload_violation_and_close(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        let max = c.info["max_payload"].as_u64().unwrap_or(1024 * 1024);
        c.send(format!("PUB big.s {}\r\n", max + 1)).await?;
        c.expect_err_and_close("Maximum Payload Violation").await
    })
}

fn control_line_over_max_control_line_gets_an_error_and_close(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send(format!("SUB {} 1\r\n", "a".repeat(5000))).await?;
        c.expect_err_and_close("maximum control line exceeded")
            .await
    })
}

fn ping_before_connect_gets_pong(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect(port).await?;
        expect_ops(c.ping_until_pong().await?, &[], "PING before CONNECT")
    })
}

fn pub_before_connect_is_delivered_with_verbose_defaults_when_auth_is_off(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut sub = RawClient::quiet(port).await?;
        sub.send("SUB early.s 1\r\n").await?;
        sub.ping_until_pong().await?;
        let mut c = RawClient::connect(port).await?;
        c.send("PUB early.s 5\r\nearly\r\n").await?;
        // Before CONNECT the options are the defaults, and those are verbose.
        expect_ops(
            c.ping_until_pong().await?,
            &[ServerOp::Ok],
            "PUB before CONNECT",
        )?;
        let expected = [ServerOp::msg("early.s", "1", b"early")];
        expect_ops(sub.ping_until_pong().await?, &expected, "subscriber")
    })
}

fn connect_with_invalid_json_closes_the_connection(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect(port).await?;
        c.send("CONNECT {bad json\r\nPING\r\n").await?;
        c.expect_close_with_at_most_an_error().await?;
        Ok(())
    })
}

fn connect_with_unknown_fields_is_accepted(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let options = r#"{"verbose":false,"future_field":[1,2],"other":{"x":null}}"#;
        RawClient::connect_with(port, options)
            .await?
            .expect_still_open()
            .await
    })
}

fn control_lines_ending_in_a_bare_lf_are_accepted(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB lf.s 1\nPUB lf.s 1\na\r\nPING\n").await?;
        expect_ops(
            c.until_pong().await?,
            &[ServerOp::msg("lf.s", "1", b"a")],
            "LF endings",
        )
    })
}

fn unsolicited_pong_is_ignored(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("PONG\r\nPONG\r\n").await?;
        c.expect_still_open().await
    })
}

fn hpub_without_headers_in_connect_closes_the_connection(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("HPUB hdr.off 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n")
            .await?;
        c.expect_close_with_at_most_an_error().await?;
        Ok(())
    })
}

fn client_gone_in_the_middle_of_a_payload_delivers_nothing(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut watcher = RawClient::quiet(port).await?;
        watcher.send("SUB gone.s 1\r\n").await?;
        watcher.ping_until_pong().await?;
        let mut c = RawClient::quiet(port).await?;
        c.send("PUB gone.s 10\r\nhalf").await?;
        drop(c);
        let mut other = RawClient::quiet(port).await?;
        other.send("PUB gone.s 5\r\nwhole\r\n").await?;
        other.ping_until_pong().await?;
        let expected = [ServerOp::msg("gone.s", "1", b"whole")];
        expect_ops(watcher.ping_until_pong().await?, &expected, "the watcher")
    })
}
