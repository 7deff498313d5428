//! INFO on connect and the CONNECT options: verbose, pedantic, echo, headers, no_responders.

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;
use serde_json::Value;

use crate::raw::{Msg, RawClient, ServerOp, WAIT};
use crate::{block_on, scenarios, within, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        info_on_connect_has_the_documented_fields_with_the_right_types,
        verbose_connect_acknowledges_connect_pub_sub_and_unsub_but_not_ping,
        connect_without_a_verbose_field_keeps_verbose_on,
        pedantic_connect_rejects_an_invalid_publish_subject_and_keeps_the_connection,
        echo_false_hides_own_messages_but_delivers_those_of_others,
        hpub_headers_arrive_byte_for_byte_in_hmsg,
        async_nats_headers_round_trip,
        verbose_connect_acknowledges_hpub,
        publish_with_no_responders_on_and_no_subscriber_gets_a_503_status,
        async_nats_request_with_no_subscriber_fails_with_no_responders,
        no_responders_without_headers_is_refused_and_closed,
        connect_with_name_lang_and_version_is_accepted,
    ]
}

fn info_on_connect_has_the_documented_fields_with_the_right_types(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.shared()?;
    block_on(async {
        let client = RawClient::connect(server.port()).await?;
        let info = &client.info;
        for field in ["server_id", "server_name", "version", "host", "client_ip"] {
            ensure!(
                info[field].is_string(),
                "INFO {field} is not a string: {info}"
            );
        }
        let version = info["version"].as_str().unwrap_or_default();
        ensure!(
            version.starts_with("2.10"),
            "INFO version {version:?} is not 2.10.x"
        );
        ensure!(info["proto"] == 1, "INFO proto is not 1: {info}");
        ensure!(
            info["port"] == server.port(),
            "INFO port is not {}: {info}",
            server.port()
        );
        ensure!(info["headers"] == true, "INFO headers is not true: {info}");
        ensure!(
            info["max_payload"].as_u64() > Some(0),
            "INFO max_payload: {info}"
        );
        ensure!(
            info["client_id"].is_u64(),
            "INFO client_id is not a number: {info}"
        );
        ensure!(info["client_ip"] == "127.0.0.1", "INFO client_ip: {info}");
        let jetstream = &info["jetstream"];
        ensure!(
            jetstream.is_null() || jetstream.is_boolean(),
            "INFO jetstream: {info}"
        );
        let auth = &info["auth_required"];
        ensure!(
            auth.is_null() || auth == false,
            "auth_required without auth: {info}"
        );
        Ok(())
    })
}

fn verbose_connect_acknowledges_connect_pub_sub_and_unsub_but_not_ping(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect(port).await?;
        c.send("CONNECT {\"verbose\":true,\"pedantic\":false}\r\n")
            .await?;
        expect_ops(c.ping_until_pong().await?, &[ServerOp::Ok], "after CONNECT")?;
        expect_ops(c.ping_until_pong().await?, &[], "after PING")?;
        c.send("SUB verbose.subject 1\r\n").await?;
        expect_ops(c.ping_until_pong().await?, &[ServerOp::Ok], "after SUB")?;
        c.send("PUB verbose.subject 2\r\nhi\r\n").await?;
        let mut ops = c.ping_until_pong().await?;
        ops.sort_by_key(|op| format!("{op:?}"));
        let msg = ServerOp::msg("verbose.subject", "1", b"hi");
        expect_ops(ops, &[ServerOp::Ok, msg], "after PUB (in any order)")?;
        c.send("UNSUB 1\r\n").await?;
        expect_ops(c.ping_until_pong().await?, &[ServerOp::Ok], "after UNSUB")
    })
}

fn connect_without_a_verbose_field_keeps_verbose_on(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect(port).await?;
        c.send("CONNECT {}\r\nSUB some.subject 1\r\n").await?;
        let ops = c.ping_until_pong().await?;
        expect_ops(
            ops,
            &[ServerOp::Ok, ServerOp::Ok],
            "after CONNECT {} and SUB",
        )
    })
}

fn pedantic_connect_rejects_an_invalid_publish_subject_and_keeps_the_connection(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect_with(port, r#"{"verbose":false,"pedantic":true}"#).await?;
        c.send("PUB pedantic.* 2\r\nhi\r\n").await?;
        let ops = c.ping_until_pong().await?;
        expect_ops(
            ops,
            &[ServerOp::err("Invalid Publish Subject")],
            "after PUB pedantic.*",
        )?;
        c.send("SUB pedantic.ok 1\r\nPUB pedantic.ok 2\r\nok\r\n")
            .await?;
        let ops = c.ping_until_pong().await?;
        expect_ops(
            ops,
            &[ServerOp::msg("pedantic.ok", "1", b"ok")],
            "after a valid PUB",
        )
    })
}

fn echo_false_hides_own_messages_but_delivers_those_of_others(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut quiet = RawClient::connect_with(port, r#"{"verbose":false,"echo":false}"#).await?;
        let mut other = RawClient::quiet(port).await?;
        quiet.send("SUB echo.subject 1\r\n").await?;
        other.send("SUB echo.subject 1\r\n").await?;
        quiet.ping_until_pong().await?;
        other.ping_until_pong().await?;
        quiet.send("PUB echo.subject 4\r\nmine\r\n").await?;
        quiet
            .ping_until_pong()
            .await
            .map(|ops| expect_ops(ops, &[], "own PUB"))??;
        other.send("PUB echo.subject 6\r\ntheirs\r\n").await?;
        let ops = other.ping_until_pong().await?;
        let mine = ServerOp::msg("echo.subject", "1", b"mine");
        let theirs = ServerOp::msg("echo.subject", "1", b"theirs");
        expect_ops(ops, &[mine, theirs.clone()], "echo-on subscriber")?;
        let ops = quiet.ping_until_pong().await?;
        expect_ops(ops, &[theirs], "echo-off subscriber")
    })
}

fn hpub_headers_arrive_byte_for_byte_in_hmsg(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect_with(port, r#"{"verbose":false,"headers":true}"#).await?;
        let headers = "NATS/1.0\r\nA: b\r\nX-Two:  spaced value \r\n\r\n";
        let total = headers.len() + 5;
        c.send("SUB hdr.subject 7\r\n").await?;
        let hpub = format!(
            "HPUB hdr.subject reply.to {} {total}\r\n{headers}hello\r\n",
            headers.len()
        );
        c.send(hpub).await?;
        let expected = ServerOp::Msg(Msg {
            subject: "hdr.subject".into(),
            sid: "7".into(),
            reply: Some("reply.to".into()),
            headers: Some(headers.as_bytes().to_vec()),
            payload: b"hello".to_vec(),
        });
        expect_ops(c.ping_until_pong().await?, &[expected], "after HPUB")
    })
}

fn verbose_connect_acknowledges_hpub(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let options = r#"{"verbose":true,"pedantic":false,"headers":true}"#;
        let mut c = RawClient::connect_with(port, options).await?;
        c.send("HPUB hdr.verbose 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
            .await?;
        expect_ops(c.ping_until_pong().await?, &[ServerOp::Ok], "after HPUB")
    })
}

fn async_nats_headers_round_trip(t: &Target) -> anyhow::Result<()> {
    let url = t.shared()?.client_url();
    block_on(async move {
        let client = async_nats::connect(url)
            .await
            .context("connecting async-nats")?;
        let mut sub = client.subscribe("hdr.async").await?;
        client.flush().await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Trace-Id", "abc-123");
        headers.append("Multi", "one");
        headers.append("Multi", "two");
        client
            .publish_with_headers("hdr.async", headers, "body".into())
            .await?;
        client.flush().await?;
        let msg = within(WAIT, "the message with headers", sub.next())
            .await?
            .context("no msg")?;
        let got = msg.headers.context("message arrived without headers")?;
        ensure!(
            got.get("Trace-Id").map(|v| v.as_str()) == Some("abc-123"),
            "got {got:?}"
        );
        let multi: Vec<_> = got
            .get_all("Multi")
            .map(|v| v.as_str().to_string())
            .collect();
        ensure!(multi == ["one", "two"], "Multi header values {multi:?}");
        ensure!(msg.payload == "body", "payload {:?}", msg.payload);
        Ok(())
    })
}

fn publish_with_no_responders_on_and_no_subscriber_gets_a_503_status(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let options = r#"{"verbose":false,"headers":true,"no_responders":true}"#;
        let mut c = RawClient::connect_with(port, options).await?;
        c.send("SUB inbox.noresp 2\r\nPUB nobody.listens inbox.noresp 0\r\n\r\n")
            .await?;
        let ops = c.ping_until_pong().await?;
        let [ServerOp::Msg(msg)] = ops.as_slice() else {
            bail!("expected one HMSG with status 503, got {ops:?}");
        };
        let headers = String::from_utf8_lossy(msg.headers.as_deref().unwrap_or_default());
        ensure!(
            msg.subject == "inbox.noresp" && msg.sid == "2",
            "got {msg:?}"
        );
        ensure!(
            headers.starts_with("NATS/1.0 503"),
            "status headers {headers:?}"
        );
        ensure!(headers.ends_with("\r\n\r\n"), "status headers {headers:?}");
        ensure!(msg.payload.is_empty(), "503 with a payload: {msg:?}");
        Ok(())
    })
}

fn async_nats_request_with_no_subscriber_fails_with_no_responders(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.shared()?.client_url();
    block_on(async move {
        let client = async_nats::connect(url)
            .await
            .context("connecting async-nats")?;
        let request = client.request("nobody.home", "ping".into());
        match within(WAIT, "the request to fail", request).await? {
            Ok(msg) => bail!("request with no subscriber got a reply: {msg:?}"),
            Err(err) => {
                let kind = err.kind();
                ensure!(
                    kind == async_nats::RequestErrorKind::NoResponders,
                    "error {err} of kind {kind:?}"
                );
            }
        }
        Ok(())
    })
}

fn no_responders_without_headers_is_refused_and_closed(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::connect(port).await?;
        let options = r#"{"verbose":false,"headers":false,"no_responders":true}"#;
        c.send(format!("CONNECT {options}\r\nPING\r\n")).await?;
        c.expect_err_and_close("no responders requires headers support")
            .await
    })
}

fn connect_with_name_lang_and_version_is_accepted(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let options = r#"{"verbose":false,"pedantic":false,"name":"diff test","lang":"rust","version":"9.9.9","protocol":1}"#;
        let mut c = RawClient::connect_with(port, options).await?;
        c.expect_still_open().await?;
        Ok(())
    })
}

/// Fails unless `ops` equals `expected`, saying what came instead.
pub fn expect_ops(ops: Vec<ServerOp>, expected: &[ServerOp], when: &str) -> anyhow::Result<()> {
    if ops != expected {
        bail!("{when}: expected {expected:?}, got {ops:?}");
    }
    Ok(())
}

/// A JSON value's field as `u64`, or an error naming it.
pub fn u64_field(value: &Value, field: &str) -> anyhow::Result<u64> {
    value[field]
        .as_u64()
        .with_context(|| format!("{field} is not a number in {value}"))
}
