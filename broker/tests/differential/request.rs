//! Request-reply: replies routed through `_INBOX.>` wildcard subscriptions.

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;

use crate::protocol::expect_ops;
use crate::raw::{Msg, RawClient, ServerOp, WAIT};
use crate::{block_on, scenarios, within, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        async_nats_request_gets_the_reply_of_a_responder,
        concurrent_requests_each_get_their_own_reply,
        reply_subject_routes_through_an_inbox_full_wildcard,
        request_to_a_queue_group_of_responders_gets_exactly_one_reply,
    ]
}

/// Spawns a responder that answers every request on `subject` with `<prefix><payload>`.
async fn spawn_responder(
    client: &async_nats::Client,
    subject: &'static str,
    group: Option<&'static str>,
    prefix: &'static str,
) -> anyhow::Result<()> {
    let mut requests = match group {
        Some(group) => client.queue_subscribe(subject, group.into()).await?,
        None => client.subscribe(subject).await?,
    };
    client.flush().await?;
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let Some(reply) = request.reply else { continue };
            let mut answer = prefix.as_bytes().to_vec();
            answer.extend_from_slice(&request.payload);
            let _ = client.publish(reply, answer.into()).await;
        }
    });
    Ok(())
}

fn async_nats_request_gets_the_reply_of_a_responder(t: &Target) -> anyhow::Result<()> {
    let url = t.shared()?.client_url();
    block_on(async move {
        let responder = async_nats::connect(&url)
            .await
            .context("connecting the responder")?;
        spawn_responder(&responder, "rq.echo", None, "echo:").await?;
        let requester = async_nats::connect(&url)
            .await
            .context("connecting the requester")?;
        let reply = within(WAIT, "the reply", requester.request("rq.echo", "hi".into())).await??;
        ensure!(reply.payload == "echo:hi", "reply {:?}", reply.payload);
        ensure!(
            reply.subject.starts_with("_INBOX."),
            "reply came on {}",
            reply.subject
        );
        Ok(())
    })
}

fn concurrent_requests_each_get_their_own_reply(t: &Target) -> anyhow::Result<()> {
    let url = t.shared()?.client_url();
    block_on(async move {
        let responder = async_nats::connect(&url)
            .await
            .context("connecting the responder")?;
        spawn_responder(&responder, "rq.many", None, "").await?;
        let requester = async_nats::connect(&url)
            .await
            .context("connecting the requester")?;
        let requests = (0..100).map(|i| {
            let requester = requester.clone();
            async move {
                let reply = requester.request("rq.many", i.to_string().into()).await?;
                anyhow::Ok((i, reply.payload))
            }
        });
        let replies = within(
            WAIT,
            "100 replies",
            futures_util::future::join_all(requests),
        )
        .await?;
        for result in replies {
            let (i, payload) = result?;
            ensure!(
                payload == i.to_string(),
                "request {i} got reply {payload:?}"
            );
        }
        Ok(())
    })
}

fn reply_subject_routes_through_an_inbox_full_wildcard(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    block_on(async move {
        let mut requester = RawClient::quiet(port).await?;
        let mut responder = RawClient::quiet(port).await?;
        requester.send("SUB _INBOX.rawreq.> 1\r\n").await?;
        responder.send("SUB rq.raw 9\r\n").await?;
        requester.ping_until_pong().await?;
        responder.ping_until_pong().await?;
        requester
            .send("PUB rq.raw _INBOX.rawreq.abc.1 3\r\nask\r\n")
            .await?;
        requester.ping_until_pong().await?;
        let ops = responder.ping_until_pong().await?;
        let [ServerOp::Msg(request)] = ops.as_slice() else {
            bail!("responder expected one request, got {ops:?}");
        };
        let reply = request
            .reply
            .clone()
            .context("the request lost its reply subject")?;
        ensure!(reply == "_INBOX.rawreq.abc.1", "reply subject {reply}");
        responder
            .send(format!("PUB {reply} 6\r\nanswer\r\n"))
            .await?;
        responder.ping_until_pong().await?;
        let expected = ServerOp::Msg(Msg {
            subject: reply,
            sid: "1".into(),
            reply: None,
            headers: None,
            payload: b"answer".to_vec(),
        });
        expect_ops(requester.ping_until_pong().await?, &[expected], "requester")
    })
}

fn request_to_a_queue_group_of_responders_gets_exactly_one_reply(t: &Target) -> anyhow::Result<()> {
    let port = t.shared()?.port();
    let url = t.shared()?.client_url();
    block_on(async move {
        let responders = async_nats::connect(&url)
            .await
            .context("connecting responders")?;
        for prefix in ["a:", "b:", "c:"] {
            spawn_responder(&responders, "rq.group", Some("svc"), prefix).await?;
        }
        let mut requester = RawClient::quiet(port).await?;
        requester.send("SUB _INBOX.grp.> 1\r\n").await?;
        for i in 0..20 {
            requester
                .send(format!("PUB rq.group _INBOX.grp.{i} 1\r\nx\r\n"))
                .await?;
        }
        let mut replies = Vec::new();
        while replies.len() < 20 {
            match requester.expect().await.context("waiting for 20 replies")? {
                ServerOp::Msg(msg) => replies.push(msg.subject),
                other => bail!("expected replies, got {other:?}"),
            }
        }
        // One more barrier: any duplicate reply would have been sent by now.
        responders.flush().await?;
        let extra = requester.ping_until_pong().await?;
        ensure!(
            extra.is_empty(),
            "more than one reply per request: {extra:?}"
        );
        replies.sort();
        replies.dedup();
        ensure!(replies.len() == 20, "replies went to {replies:?}");
        Ok(())
    })
}
