//! Small JetStream helpers for tests of the event plumbing.

use async_nats::jetstream;
use common_events::{AccountId, Amount, Envelope, TransactionCreated, TransactionId};
use common_events::{TransactionKind, TransactionNumber};

/// Connects to `url` and returns a JetStream context.
pub async fn connect(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::connect(url).await?;
    Ok(jetstream::new(client))
}

/// A pull consumer of the TRANSACTIONS stream.
pub async fn consumer(
    js: &jetstream::Context,
    durable: &str,
) -> anyhow::Result<jetstream::consumer::PullConsumer> {
    let stream = js.get_stream("TRANSACTIONS").await?;
    stream
        .get_consumer(durable)
        .await
        .map_err(|err| anyhow::anyhow!(err))
}

/// A consumer's `(num_pending, num_ack_pending)`.
pub async fn pending(js: &jetstream::Context, durable: &str) -> anyhow::Result<(u64, usize)> {
    let info = consumer(js, durable).await?.get_info().await?;
    Ok((info.num_pending, info.num_ack_pending))
}

/// A `TransactionCreated` with the given number, for a new account.
pub fn created(number: u64) -> Envelope<TransactionCreated> {
    Envelope::new(TransactionCreated {
        transaction_id: TransactionId::new(),
        account_id: AccountId::new(),
        number: TransactionNumber::new(number).expect("a transaction number is 1 or more"),
        kind: TransactionKind::Deposit,
        amount: Amount::new(100).expect("positive"),
    })
}
