//! Publish-only throughput through async-nats, for comparison with the raw client: shows what
//! an application using the standard client gets (the client library is usually the limit).

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{Benchmark, Case, Env, Sample, Work, WorkUnit};
use crate::system::CpuProbe;
use crate::targets::Target;

/// The subject published on; nobody else subscribes to it.
const SUBJECT: &str = "bench.pubasync";

/// Publish-only throughput with async-nats.
pub(crate) struct PublishAsync;

impl Benchmark for PublishAsync {
    fn name(&self) -> &'static str {
        "pub-async"
    }

    fn title(&self) -> &'static str {
        "publish, async-nats, 0 subs"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, _payload: usize) -> u64 {
        3_000_000
    }

    fn run(&self, env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        env.runtime.block_on(measure(target, case))
    }
}

async fn measure(target: &Target, case: &Case) -> anyhow::Result<Sample> {
    let client = crate::tls::connect(&target.url)
        .await
        .context("connecting the publisher")?;
    // The barrier: a message to ourselves comes back only after the server has processed every
    // PUB before it on this connection.
    let barrier_subject = client.new_inbox();
    let mut barrier = client
        .subscribe(barrier_subject.clone())
        .await
        .context("subscribing to the barrier subject")?;
    client.flush().await.context("flushing the subscription")?;
    let payload = Bytes::from(vec![b'x'; case.payload]);
    let probe = CpuProbe::new(target.pid);
    let start = probe.snapshot();
    let mut count = 0u64;
    let more = |count: u64| match case.work {
        Work::Count(n) => count < n,
        Work::For(d) => !count.is_multiple_of(1024) || start.at().elapsed() < d,
    };
    while more(count) {
        client
            .publish(SUBJECT, payload.clone())
            .await
            .context("publishing")?;
        count += 1;
    }
    client
        .publish(barrier_subject, Bytes::new())
        .await
        .context("publishing the barrier")?;
    barrier
        .next()
        .await
        .context("the barrier subscription closed")?;
    let end = probe.snapshot();
    Ok(Sample::throughput(
        count,
        case.payload,
        end.at().duration_since(start.at()),
        start.usage_until(&end),
    ))
}
