//! Consumers and the interest of their clients: a push consumer starts when its subscriber
//! arrives, a pull request whose requester left is dropped, and a bound push consumer keeps
//! its deliver subject.

use std::time::Duration;

use anyhow::ensure;
use serde_json::json;

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_push_consumer_delivers_as_soon_as_its_subscriber_arrives,
        js_pull_request_whose_requester_left_is_dropped,
        js_bound_push_consumer_cannot_move_to_another_deliver_subject,
    ]
}

/// Well under the broker's one-second idle wake-up: a delivery this soon after the subscription
/// was started by the subscription itself.
const PROMPT: Duration = Duration::from_millis(400);

/// Receives messages `m0`, `m1`, … (`count` of them, each within `bound`) and checks the
/// `$JS.ACK` numbers of the i-th (from 1) against `numbers(i)`.
async fn expect_in_order(
    inbox: &mut Inbox,
    count: u64,
    bound: Duration,
    numbers: impl Fn(u64) -> (u64, u64, u64, u64),
) -> anyhow::Result<()> {
    for i in 1..=count {
        let msg = inbox.next(bound, "the next delivery").await?;
        ensure!(msg.payload == format!("m{}", i - 1), "{}", describe(&msg));
        ensure!(
            AckReply::of(&msg)?.numbers() == numbers(i),
            "{}",
            describe(&msg)
        );
    }
    Ok(())
}

fn js_push_consumer_delivers_as_soon_as_its_subscriber_arrives(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "IPS", "subjects": ["ips.*"]})).await?;
        publish_n(&c, "ips.a", "m", 3).await?;
        // Nobody listens on the deliver subject yet: nothing is delivered, the consumer waits.
        let reply = create_consumer(
            &c,
            "IPS",
            json!({"durable_name": "D", "deliver_subject": "ipsx.deliver", "ack_policy": "none"}),
        )
        .await?;
        ensure!(reply.get("push_bound").is_none(), "{reply}");
        expect_counters(&c, "IPS", "D", [0, 0, 0, 0, 0, 0, 3]).await?;
        // The subscription itself starts the delivery (a KV watcher's first messages, with the
        // pending count as of that moment, depend on it).
        let mut inbox = Inbox::on(&c, "ipsx.deliver").await?;
        expect_in_order(&mut inbox, 3, PROMPT, |i| (1, i, i, 3 - i)).await?;
        expect_counters(&c, "IPS", "D", [3, 3, 3, 3, 0, 0, 0]).await
    })
}

fn js_pull_request_whose_requester_left_is_dropped(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "IPL", "subjects": ["ipl"]})).await?;
        let config = json!({"durable_name": "D", "ack_policy": "explicit"});
        create_consumer(&c, "IPL", config).await?;
        let body = json!({"batch": 5, "expires": ms(30_000)});
        let gone = pull(&c, "IPL", "D", body.clone()).await?;
        let mut stays = pull(&c, "IPL", "D", body).await?;
        // Pull requests reach nats-server's consumer a moment after they were sent.
        eventually(WAIT, "both requests waiting", || async {
            Ok(consumer_info(&c, "IPL", "D").await?["num_waiting"] == 2)
        })
        .await?;
        // The first requester stops listening: its request no longer counts, and the
        // messages go to the one still waiting instead of to nobody.
        let mut gone = gone.sub;
        gone.unsubscribe().await?;
        c.flush().await?;
        let info = consumer_info(&c, "IPL", "D").await?;
        ensure!(info["num_waiting"] == 1, "{info}");
        publish_n(&c, "ipl", "m", 3).await?;
        expect_in_order(&mut stays, 3, WAIT, |i| (1, i, i, 0)).await?;
        expect_counters(&c, "IPL", "D", [3, 3, 0, 0, 3, 0, 0]).await
    })
}

fn js_bound_push_consumer_cannot_move_to_another_deliver_subject(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "IPU", "subjects": ["ipu"]})).await?;
        let config = |deliver: &str| {
            json!({"stream_name": "IPU", "config": {"durable_name": "D",
                "deliver_subject": deliver, "deliver_group": "g", "ack_policy": "explicit"}})
        };
        let mut bound = Inbox::on(&c, "ipux.a").await?;
        api_ok(&c, "CONSUMER.CREATE.IPU.D", config("ipux.a")).await?;
        // Another member of the group asking for its own deliver subject (as the legacy
        // client's queue_subscribe does) is refused while the first one listens.
        let reply = api(&c, "CONSUMER.CREATE.IPU.D", config("ipux.b")).await?;
        expect_error(&reply, 400, 10013, "consumer name already in use")?;
        bound.sub.unsubscribe().await?;
        c.flush().await?;
        let reply = api_ok(&c, "CONSUMER.CREATE.IPU.D", config("ipux.b")).await?;
        ensure!(reply["config"]["deliver_subject"] == "ipux.b", "{reply}");
        Ok(())
    })
}
