//! Queue groups: each message goes to one member of each group and to every plain subscriber.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;

use crate::raw::{RawClient, ServerOp, WAIT};
use crate::{block_on, scenarios, within, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        queue_group_delivers_each_message_to_one_member_of_each_group_and_to_every_plain_subscriber,
        queue_group_spreads_messages_across_its_members,
        queue_members_on_one_connection_share_the_messages,
        async_nats_queue_subscribers_split_the_messages,
    ]
}

/// Enough messages that a random pick sends some to every member of a three-member group
/// with overwhelming probability: the chance one member gets none is 3 * (2/3)^300.
const MESSAGES: usize = 300;

/// One raw subscriber per entry of `(subject, queue group)`.
async fn subscribers(port: u16, subs: &[(&str, Option<&str>)]) -> anyhow::Result<Vec<RawClient>> {
    let mut clients = Vec::new();
    for (subject, group) in subs {
        let mut c = RawClient::quiet(port).await?;
        let group = group.map(|g| format!(" {g}")).unwrap_or_default();
        c.send(format!("SUB {subject}{group} 1\r\n")).await?;
        c.ping_until_pong().await?;
        clients.push(c);
    }
    Ok(clients)
}

/// Publishes messages `0..MESSAGES` on `subject` (payload = the number) and waits until the
/// server has processed them.
async fn publish_numbers(port: u16, subject: &str) -> anyhow::Result<()> {
    let mut publisher = RawClient::quiet(port).await?;
    let mut batch = String::new();
    for i in 0..MESSAGES {
        let payload = i.to_string();
        batch.push_str(&format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()));
    }
    publisher.send(batch).await?;
    publisher.ping_until_pong().await?;
    Ok(())
}

/// The payloads (as numbers) a subscriber received before the PONG to its PING.
async fn received(client: &mut RawClient) -> anyhow::Result<Vec<usize>> {
    let mut numbers = Vec::new();
    for op in client.ping_until_pong().await? {
        let ServerOp::Msg(msg) = op else {
            bail!("expected only MSGs, got {op:?}");
        };
        numbers.push(String::from_utf8(msg.payload)?.parse()?);
    }
    Ok(numbers)
}

/// Checks that the members' messages, put together, are each number exactly once.
fn exactly_once(group: &str, per_member: &[Vec<usize>]) -> anyhow::Result<()> {
    let mut counts = BTreeMap::new();
    for number in per_member.iter().flatten() {
        *counts.entry(*number).or_insert(0) += 1;
    }
    let twice: Vec<_> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    ensure!(
        twice.is_empty(),
        "group {group} got these more than once: {twice:?}"
    );
    let missing: Vec<_> = (0..MESSAGES).filter(|i| !counts.contains_key(i)).collect();
    ensure!(missing.is_empty(), "group {group} never got: {missing:?}");
    Ok(())
}

fn queue_group_delivers_each_message_to_one_member_of_each_group_and_to_every_plain_subscriber(
    t: &Target,
) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let s = "qg.orders";
        let layout = [
            (s, Some("g1")),
            (s, Some("g1")),
            (s, Some("g1")),
            (s, Some("g2")),
            (s, Some("g2")),
            (s, None),
            (s, None),
        ];
        let mut clients = subscribers(port, &layout).await?;
        publish_numbers(port, s).await?;
        let mut got = Vec::new();
        for client in &mut clients {
            got.push(received(client).await?);
        }
        exactly_once("g1", &got[0..3])?;
        exactly_once("g2", &got[3..5])?;
        let all: Vec<usize> = (0..MESSAGES).collect();
        for (i, plain) in got[5..].iter().enumerate() {
            ensure!(
                *plain == all,
                "plain subscriber {i} got {} messages out of order or lost",
                plain.len()
            );
        }
        Ok(())
    })
}

fn queue_group_spreads_messages_across_its_members(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let s = "qs.spread";
        let layout = [
            (s, Some("workers")),
            (s, Some("workers")),
            (s, Some("workers")),
        ];
        let mut clients = subscribers(port, &layout).await?;
        publish_numbers(port, s).await?;
        let mut sizes = Vec::new();
        for client in &mut clients {
            sizes.push(received(client).await?.len());
        }
        ensure!(
            sizes.iter().sum::<usize>() == MESSAGES,
            "members got {sizes:?} messages"
        );
        ensure!(
            sizes.iter().all(|n| *n > 0),
            "some member got nothing: {sizes:?}"
        );
        Ok(())
    })
}

fn queue_members_on_one_connection_share_the_messages(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB qc.one grp 1\r\nSUB qc.one grp 2\r\n").await?;
        for i in 0..MESSAGES {
            let payload = i.to_string();
            c.send(format!("PUB qc.one {}\r\n{payload}\r\n", payload.len()))
                .await?;
        }
        let mut per_sid: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for op in c.ping_until_pong().await? {
            let ServerOp::Msg(msg) = op else {
                bail!("expected only MSGs, got {op:?}")
            };
            per_sid
                .entry(msg.sid)
                .or_default()
                .push(String::from_utf8(msg.payload)?.parse()?);
        }
        exactly_once("grp", &per_sid.into_values().collect::<Vec<_>>())
    })
}

fn async_nats_queue_subscribers_split_the_messages(t: &Target) -> anyhow::Result<()> {
    let url = t.shared()?.client_url();
    block_on(async move {
        let client = async_nats::connect(url)
            .await
            .context("connecting async-nats")?;
        let mut a = client.queue_subscribe("qa.jobs", "workers".into()).await?;
        let mut b = client.queue_subscribe("qa.jobs", "workers".into()).await?;
        client.flush().await?;
        for i in 0..MESSAGES {
            client.publish("qa.jobs", i.to_string().into()).await?;
        }
        client.flush().await?;
        let mut seen = vec![Vec::new(), Vec::new()];
        for _ in 0..MESSAGES {
            let next = within(WAIT, "a queue message", async {
                tokio::select! {
                    Some(m) = a.next() => Some((0, m)),
                    Some(m) = b.next() => Some((1, m)),
                    else => None,
                }
            });
            let (member, msg) = next.await?.context("both subscriptions ended")?;
            seen[member].push(std::str::from_utf8(&msg.payload)?.parse()?);
        }
        exactly_once("workers", &seen)
    })
}
