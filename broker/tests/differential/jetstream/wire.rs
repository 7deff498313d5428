//! Wire helpers of the JetStream scenarios: inbox subscriptions, pull requests, status
//! messages, `$JS.ACK` reply subjects and acks.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use async_nats::Message;
use futures_util::StreamExt;
use serde_json::Value;

use crate::raw::WAIT;
use crate::within;

/// A subscription on a fresh inbox, for pull replies and push deliveries.
pub struct Inbox {
    pub subject: String,
    pub sub: async_nats::Subscriber,
}

impl Inbox {
    pub async fn new(client: &async_nats::Client) -> anyhow::Result<Self> {
        let subject = client.new_inbox();
        Self::on(client, &subject).await
    }

    pub async fn on(client: &async_nats::Client, subject: &str) -> anyhow::Result<Self> {
        let sub = client.subscribe(subject.to_string()).await?;
        client.flush().await?;
        Ok(Inbox {
            subject: subject.to_string(),
            sub,
        })
    }

    /// The next message, bounded by `bound`.
    pub async fn next(&mut self, bound: Duration, what: &str) -> anyhow::Result<Message> {
        within(bound, what, self.sub.next())
            .await?
            .with_context(|| format!("the subscription ended while waiting for {what}"))
    }

    /// Messages arriving within `bound` (none is fine).
    pub async fn drain_for(&mut self, bound: Duration) -> Vec<Message> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + bound;
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, self.sub.next()).await {
            out.push(msg);
        }
        out
    }

    /// Collects messages until one carries a status (returned last) or `count` plain messages
    /// arrived.
    pub async fn until_status(
        &mut self,
        bound: Duration,
        max_plain: usize,
    ) -> anyhow::Result<Vec<Message>> {
        let mut out = Vec::new();
        loop {
            let msg = self
                .next(bound, &format!("a status after {} messages", out.len()))
                .await
                .with_context(|| format!("received {:?}", summary(&out)))?;
            let is_status = msg.status.is_some();
            out.push(msg);
            if is_status || out.len() > max_plain {
                return Ok(out);
            }
        }
    }
}

/// Sends a pull request (`MSG.NEXT`) for `stream`/`consumer` with this JSON body (or a raw
/// string body when `body` is a JSON string) and returns the inbox its replies go to.
pub async fn pull(
    client: &async_nats::Client,
    stream: &str,
    consumer: &str,
    body: Value,
) -> anyhow::Result<Inbox> {
    let inbox = Inbox::new(client).await?;
    pull_into(client, stream, consumer, body, &inbox.subject).await?;
    Ok(inbox)
}

/// Sends a pull request whose replies go to `reply`.
pub async fn pull_into(
    client: &async_nats::Client,
    stream: &str,
    consumer: &str,
    body: Value,
    reply: &str,
) -> anyhow::Result<()> {
    let payload = match &body {
        Value::Null => Vec::new(),
        Value::String(s) => s.clone().into_bytes(),
        other => serde_json::to_vec(other)?,
    };
    client
        .publish_with_reply(
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
            reply.to_string(),
            payload.into(),
        )
        .await?;
    client.flush().await?;
    Ok(())
}

/// `NATS/1.0 <code> <description>` rebuilt from a status message, or `None` for a message.
pub fn status_line(msg: &Message) -> Option<String> {
    let status = msg.status?;
    Some(match &msg.description {
        Some(description) => format!("NATS/1.0 {} {description}", status.as_u16()),
        None => format!("NATS/1.0 {}", status.as_u16()),
    })
}

/// A header's value.
pub fn header<'a>(msg: &'a Message, name: &str) -> Option<&'a str> {
    msg.headers.as_ref()?.get(name).map(|v| v.as_str())
}

/// Asserts `msg` is a status message with exactly this line and these headers (and no others).
pub fn expect_status(msg: &Message, line: &str, headers: &[(&str, &str)]) -> anyhow::Result<()> {
    ensure!(
        status_line(msg).as_deref() == Some(line),
        "expected status {line:?}, got {}",
        describe(msg)
    );
    let mut actual: Vec<(String, String)> = msg
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.as_str().to_string()))
        })
        .collect();
    actual.sort();
    let mut expected: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    expected.sort();
    ensure!(
        actual == expected,
        "status {line:?}: expected headers {expected:?}, got {actual:?}"
    );
    ensure!(
        msg.payload.is_empty(),
        "status {line:?} with a payload {:?}",
        msg.payload
    );
    Ok(())
}

/// One line describing a message, for failure output.
pub fn describe(msg: &Message) -> String {
    match status_line(msg) {
        Some(line) => format!("[{line}] on {}", msg.subject),
        None => format!(
            "{} reply={:?} payload={:?}",
            msg.subject,
            msg.reply.as_deref(),
            String::from_utf8_lossy(&msg.payload)
        ),
    }
}

pub fn summary(msgs: &[Message]) -> Vec<String> {
    msgs.iter().map(describe).collect()
}

/// The payloads of plain (non-status) messages, as strings.
pub fn payloads(msgs: &[Message]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.status.is_none())
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

/// The fields of a `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
/// reply subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckReply {
    pub stream: String,
    pub consumer: String,
    pub delivered: u64,
    pub stream_seq: u64,
    pub consumer_seq: u64,
    pub pending: u64,
}

impl AckReply {
    pub fn of(msg: &Message) -> anyhow::Result<Self> {
        let reply = msg
            .reply
            .as_deref()
            .with_context(|| format!("no reply subject on {}", describe(msg)))?;
        Self::parse(reply)
    }

    pub fn parse(reply: &str) -> anyhow::Result<Self> {
        let tokens: Vec<&str> = reply.split('.').collect();
        // nats-server 2.10 sends the 9-token form (no domain or account hash).
        if tokens.len() != 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
            bail!("not a 9-token $JS.ACK reply subject: {reply}");
        }
        let number = |i: usize| -> anyhow::Result<u64> {
            tokens[i]
                .parse()
                .with_context(|| format!("token {i} of {reply}"))
        };
        number(7)?; // the timestamp: present and numeric, value not compared
        Ok(AckReply {
            stream: tokens[2].into(),
            consumer: tokens[3].into(),
            delivered: number(4)?,
            stream_seq: number(5)?,
            consumer_seq: number(6)?,
            pending: number(8)?,
        })
    }

    /// `(delivered, stream_seq, consumer_seq, pending)`.
    pub fn numbers(&self) -> (u64, u64, u64, u64) {
        (
            self.delivered,
            self.stream_seq,
            self.consumer_seq,
            self.pending,
        )
    }
}

/// Sends an ack body (`+ACK`, `-NAK`, …) for `msg` without waiting for anything.
pub async fn ack_with(
    client: &async_nats::Client,
    msg: &Message,
    body: &str,
) -> anyhow::Result<()> {
    let reply = msg
        .reply
        .clone()
        .with_context(|| format!("no reply subject on {}", describe(msg)))?;
    client.publish(reply, body.to_string().into()).await?;
    client.flush().await?;
    Ok(())
}

/// Sends an ack body as a request and returns the server's answer.
pub async fn ack_sync(
    client: &async_nats::Client,
    msg: &Message,
    body: &str,
) -> anyhow::Result<Message> {
    let reply = msg
        .reply
        .clone()
        .with_context(|| format!("no reply subject on {}", describe(msg)))?;
    within(
        WAIT,
        "the answer to an ack sent as a request",
        client.request(reply, body.to_string().into()),
    )
    .await?
    .context("ack sent as a request")
}

/// Polls `check` every 20 ms until it returns `Ok(true)`, for at most `bound`.
pub async fn eventually<F, Fut>(bound: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what} did not happen within {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
