//! Request-reply latency with async-nats: a responder connection answers every request on a
//! subject with its payload, a requester connection makes sequential `request()`s after a
//! warm-up, and an HDR histogram of the round-trip times gives p50 and p99.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{Benchmark, Case, Env, Latencies, Sample, Work, WorkUnit};
use crate::system::CpuProbe;
use crate::targets::Target;

/// The subject the responder listens on.
const SUBJECT: &str = "bench.reqrep";

/// Request-reply round-trip latency with async-nats.
pub(crate) struct RequestReply;

impl Benchmark for RequestReply {
    fn name(&self) -> &'static str {
        "reqrep"
    }

    fn title(&self) -> &'static str {
        "request-reply, async-nats"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Requests
    }

    fn default_count(&self, _payload: usize) -> u64 {
        10_000
    }

    fn run(&self, env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        env.runtime.block_on(measure(target, case))
    }
}

async fn measure(target: &Target, case: &Case) -> anyhow::Result<Sample> {
    let responder = crate::tls::connect(&target.url)
        .await
        .context("connecting the responder")?;
    let mut requests = responder
        .subscribe(SUBJECT)
        .await
        .context("subscribing the responder")?;
    responder
        .flush()
        .await
        .context("flushing the subscription")?;
    let responding = tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            if let Some(reply) = msg.reply {
                if responder.publish(reply, msg.payload).await.is_err() {
                    break;
                }
            }
        }
    });
    let result = requester(target, case).await;
    responding.abort();
    result
}

async fn requester(target: &Target, case: &Case) -> anyhow::Result<Sample> {
    let client = crate::tls::connect(&target.url)
        .await
        .context("connecting the requester")?;
    let payload = Bytes::from(vec![b'x'; case.payload]);
    let warm_up = match case.work {
        Work::Count(n) => Work::Count((n / 10).max(100)),
        Work::For(d) => Work::For(d / 10),
    };
    run_requests(&client, &payload, warm_up, &mut Latencies::new()?)
        .await
        .context("warming up")?;
    let mut times = Latencies::new()?;
    let probe = CpuProbe::new(target.pid);
    let start = probe.snapshot();
    let count = run_requests(&client, &payload, case.work, &mut times).await?;
    let end = probe.snapshot();
    Ok(Sample {
        count,
        seconds: end.at().duration_since(start.at()).as_secs_f64(),
        figures: times.figures(),
        cpu: start.usage_until(&end),
    })
}

/// Makes sequential requests, recording each round trip; returns how many.
async fn run_requests(
    client: &async_nats::Client,
    payload: &Bytes,
    work: Work,
    times: &mut Latencies,
) -> anyhow::Result<u64> {
    let (limit, until) = match work {
        Work::Count(n) => (n, None),
        Work::For(d) => (u64::MAX, Some(Instant::now() + d)),
    };
    let mut done = 0;
    while done < limit && until.is_none_or(|t| Instant::now() < t) {
        let sent = Instant::now();
        client
            .request(SUBJECT, payload.clone())
            .await
            .with_context(|| format!("request {} failed", done + 1))?;
        times.record(sent.elapsed());
        done += 1;
    }
    Ok(done)
}
