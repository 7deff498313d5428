//! PUB, SUB, UNSUB and MSG: reply subjects, wildcards, auto-unsubscribe, invalid subjects.

use anyhow::{ensure, Context};
use futures_util::StreamExt;

use crate::protocol::expect_ops;
use crate::raw::{Msg, RawClient, ServerOp, WAIT};
use crate::{block_on, scenarios, within, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        published_message_reaches_a_subscriber_with_its_reply_subject,
        star_wildcard_matches_exactly_one_token,
        full_wildcard_matches_one_or_more_tokens_but_not_zero,
        lone_full_wildcard_subscription_receives_every_subject,
        wildcard_characters_inside_a_token_are_literal,
        unsub_with_max_delivers_exactly_that_many_then_stops,
        unsub_stops_delivery_at_once,
        unsub_with_a_max_already_reached_stops_delivery_at_once,
        utf8_subjects_are_matched_token_by_token,
        every_one_of_many_subscribers_gets_the_message,
        unsub_of_an_unknown_sid_is_harmless,
        invalid_subjects_on_sub_get_invalid_subject_and_the_connection_stays,
        sub_with_a_missing_sid_closes_the_connection,
        two_matching_subscriptions_on_one_connection_each_get_a_msg,
        messages_from_one_publisher_arrive_in_order,
        payload_near_max_payload_arrives_intact,
    ]
}

fn published_message_reaches_a_subscriber_with_its_reply_subject(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut sub = RawClient::quiet(port).await?;
        let mut publisher = RawClient::quiet(port).await?;
        sub.send("SUB ps.reply 11\r\n").await?;
        sub.ping_until_pong().await?;
        publisher
            .send("PUB ps.reply reply.here 5\r\nhello\r\n")
            .await?;
        publisher.ping_until_pong().await?;
        let expected = ServerOp::Msg(Msg {
            subject: "ps.reply".into(),
            sid: "11".into(),
            reply: Some("reply.here".into()),
            headers: None,
            payload: b"hello".to_vec(),
        });
        expect_ops(sub.ping_until_pong().await?, &[expected], "subscriber")
    })
}

/// Subscribes to `pattern` as sid 1, publishes one message to each subject (the payload is
/// the subject), and checks exactly the `matching` ones arrive, in order.
async fn check_matches(
    port: u16,
    pattern: &str,
    subjects: &[&str],
    matching: &[&str],
) -> anyhow::Result<()> {
    let mut c = RawClient::quiet(port).await?;
    c.send(format!("SUB {pattern} 1\r\n")).await?;
    for subject in subjects {
        c.send(format!("PUB {subject} {}\r\n{subject}\r\n", subject.len()))
            .await?;
    }
    let expected: Vec<_> = matching
        .iter()
        .map(|s| ServerOp::msg(s, "1", s.as_bytes()))
        .collect();
    expect_ops(
        c.ping_until_pong().await?,
        &expected,
        &format!("SUB {pattern}"),
    )
}

fn star_wildcard_matches_exactly_one_token(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let subjects = ["sw", "sw.bar", "sw.bar.baz", "sw.qux", "swx.bar"];
        check_matches(port, "sw.*", &subjects, &["sw.bar", "sw.qux"]).await?;
        let subjects = ["sm.a.end", "sm.b.end", "sm.a.other", "sm.end", "sm.a.b.end"];
        check_matches(port, "sm.*.end", &subjects, &["sm.a.end", "sm.b.end"]).await
    })
}

fn full_wildcard_matches_one_or_more_tokens_but_not_zero(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let subjects = ["fw", "fw.a", "fw.a.b", "fw.a.b.c", "fwx.a"];
        check_matches(port, "fw.>", &subjects, &["fw.a", "fw.a.b", "fw.a.b.c"]).await?;
        let subjects = ["fm.x.y", "fm.x", "fm.y.z"];
        check_matches(port, "fm.*.>", &subjects, &["fm.x.y", "fm.y.z"]).await
    })
}

fn lone_full_wildcard_subscription_receives_every_subject(t: &Target) -> anyhow::Result<()> {
    // A server of its own: `>` would see the traffic of every other scenario.
    let server = t.start(&[])?;
    block_on(async move {
        let subjects = ["a", "a.b", "x.y.z.w", "_INBOX.abc"];
        check_matches(server.port(), ">", &subjects, &subjects).await
    })
}

fn wildcard_characters_inside_a_token_are_literal(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        check_matches(port, "lit.f*o", &["lit.f*o", "lit.foo"], &["lit.f*o"]).await?;
        check_matches(port, "lit.a>", &["lit.a>", "lit.a.b"], &["lit.a>"]).await
    })
}

fn unsub_with_max_delivers_exactly_that_many_then_stops(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB um.subject 4\r\nUNSUB 4 3\r\n").await?;
        for i in 0..5 {
            c.send(format!("PUB um.subject 1\r\n{i}\r\n")).await?;
        }
        let expected: Vec<_> = (0..3)
            .map(|i| ServerOp::msg("um.subject", "4", i.to_string().as_bytes()))
            .collect();
        expect_ops(c.ping_until_pong().await?, &expected, "after 5 PUBs")?;
        c.send("PUB um.subject 1\r\nx\r\n").await?;
        expect_ops(c.ping_until_pong().await?, &[], "after the max was reached")
    })
}

fn unsub_stops_delivery_at_once(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB us.subject 1\r\nPUB us.subject 1\r\na\r\nUNSUB 1\r\nPUB us.subject 1\r\nb\r\n")
            .await?;
        let expected = [ServerOp::msg("us.subject", "1", b"a")];
        expect_ops(
            c.ping_until_pong().await?,
            &expected,
            "SUB, PUB, UNSUB, PUB",
        )
    })
}

fn unsub_with_a_max_already_reached_stops_delivery_at_once(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        let three = "PUB ur.s 1\r\na\r\n".repeat(3);
        c.send(format!(
            "SUB ur.s 1\r\n{three}UNSUB 1 2\r\nPUB ur.s 1\r\nb\r\n"
        ))
        .await?;
        let expected = vec![ServerOp::msg("ur.s", "1", b"a"); 3];
        expect_ops(
            c.ping_until_pong().await?,
            &expected,
            "UNSUB 1 2 after 3 messages",
        )
    })
}

fn utf8_subjects_are_matched_token_by_token(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let subjects = ["ü.x", "ü.日本", "u.x", "ü", "ü.x.y"];
        check_matches(port, "ü.*", &subjects, &["ü.x", "ü.日本"]).await
    })
}

fn every_one_of_many_subscribers_gets_the_message(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut subscribers = Vec::new();
        for _ in 0..40 {
            let mut c = RawClient::quiet(port).await?;
            c.send("SUB fan.s 1\r\n").await?;
            c.ping_until_pong().await?;
            subscribers.push(c);
        }
        let mut publisher = RawClient::quiet(port).await?;
        publisher.send("PUB fan.s 3\r\nfan\r\n").await?;
        publisher.ping_until_pong().await?;
        for (i, c) in subscribers.iter_mut().enumerate() {
            let expected = [ServerOp::msg("fan.s", "1", b"fan")];
            expect_ops(
                c.ping_until_pong().await?,
                &expected,
                &format!("subscriber {i}"),
            )?;
        }
        Ok(())
    })
}

fn unsub_of_an_unknown_sid_is_harmless(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("UNSUB 999\r\nUNSUB 998 5\r\n").await?;
        c.expect_still_open().await
    })
}

fn invalid_subjects_on_sub_get_invalid_subject_and_the_connection_stays(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        for (sid, subject) in ["foo..bar", "foo.", ".foo", ">.a", "a.>.b", "foo.>."]
            .iter()
            .enumerate()
        {
            c.send(format!("SUB {subject} {sid}\r\n")).await?;
            let ops = c.ping_until_pong().await?;
            expect_ops(
                ops,
                &[ServerOp::err("Invalid Subject")],
                &format!("SUB {subject}"),
            )?;
        }
        c.send("SUB inv.ok 1\r\nPUB inv.ok 2\r\nok\r\n").await?;
        let expected = [ServerOp::msg("inv.ok", "1", b"ok")];
        expect_ops(
            c.ping_until_pong().await?,
            &expected,
            "a valid SUB afterwards",
        )
    })
}

fn sub_with_a_missing_sid_closes_the_connection(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB nosid\r\nPING\r\n").await?;
        c.expect_close_with_at_most_an_error().await?;
        Ok(())
    })
}

fn two_matching_subscriptions_on_one_connection_each_get_a_msg(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB tm.* 1\r\nSUB tm.x 2\r\nSUB tm.> 3\r\nPUB tm.x 1\r\nm\r\n")
            .await?;
        let mut ops = c.ping_until_pong().await?;
        ops.sort_by_key(|op| format!("{op:?}"));
        let expected: Vec<_> = ["1", "2", "3"]
            .iter()
            .map(|sid| ServerOp::msg("tm.x", sid, b"m"))
            .collect();
        expect_ops(
            ops,
            &expected,
            "one MSG per matching subscription (in any order)",
        )
    })
}

fn messages_from_one_publisher_arrive_in_order(t: &Target) -> anyhow::Result<()> {
    let url = t.shared()?.client_url();
    block_on(async move {
        let client = async_nats::connect(url)
            .await
            .context("connecting async-nats")?;
        let mut sub = client.subscribe("order.subject").await?;
        client.flush().await?;
        for i in 0..500 {
            client
                .publish("order.subject", i.to_string().into())
                .await?;
        }
        client.flush().await?;
        for i in 0..500 {
            let msg = within(WAIT, &format!("message {i}"), sub.next())
                .await?
                .context("closed")?;
            ensure!(
                msg.payload == i.to_string(),
                "message {i} was {:?}",
                msg.payload
            );
        }
        Ok(())
    })
}

fn payload_near_max_payload_arrives_intact(t: &Target) -> anyhow::Result<()> {
    let url = t.shared()?.client_url();
    block_on(async move {
        let client = async_nats::connect(url)
            .await
            .context("connecting async-nats")?;
        let max = client.server_info().max_payload;
        let payload: Vec<u8> = (0..max - 100).map(|i| (i % 251) as u8).collect();
        let mut sub = client.subscribe("big.subject").await?;
        client.flush().await?;
        client
            .publish("big.subject", payload.clone().into())
            .await?;
        client.flush().await?;
        let msg = within(WAIT, "the large message", sub.next())
            .await?
            .context("closed")?;
        ensure!(
            msg.payload == payload,
            "payload of {} bytes differs",
            msg.payload.len()
        );
        Ok(())
    })
}
