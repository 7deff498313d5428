//! Request-reply latency with async-nats: a responder connection answers every request on a
//! subject with its payload, a requester connection makes sequential `request()`s after a
//! warm-up, and an HDR histogram of the round-trip times gives p50 and p99.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use hdrhistogram::Histogram;

use super::{Benchmark, Case, Env, Figure, Sample, Work, WorkUnit, P50_US, P99_US};
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
    let responder = async_nats::connect(&target.url)
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
    let client = async_nats::connect(&target.url)
        .await
        .context("connecting the requester")?;
    let payload = Bytes::from(vec![b'x'; case.payload]);
    let warm_up = match case.work {
        Work::Count(n) => Work::Count((n / 10).max(100)),
        Work::For(d) => Work::For(d / 10),
    };
    run_requests(&client, &payload, warm_up, &mut new_histogram()?)
        .await
        .context("warming up")?;
    let mut hist = new_histogram()?;
    let probe = CpuProbe::new(target.pid);
    let start = probe.snapshot();
    let count = run_requests(&client, &payload, case.work, &mut hist).await?;
    let end = probe.snapshot();
    let elapsed = end.at().duration_since(start.at());
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(Sample {
        count,
        seconds: elapsed.as_secs_f64(),
        figures: vec![
            Figure {
                metric: P50_US,
                value: us(0.50),
            },
            Figure {
                metric: P99_US,
                value: us(0.99),
            },
        ],
        cpu: start.usage_until(&end),
    })
}

/// Round-trip times in nanoseconds, from 1 ns to 60 s, 3 significant digits.
fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).context("creating the latency histogram")
}

/// Makes sequential requests, recording each round trip; returns how many.
async fn run_requests(
    client: &async_nats::Client,
    payload: &Bytes,
    work: Work,
    hist: &mut Histogram<u64>,
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
        hist.saturating_record(duration_ns(sent.elapsed()));
        done += 1;
    }
    Ok(done)
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
