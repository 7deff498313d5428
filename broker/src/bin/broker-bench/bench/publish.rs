//! Publish-only throughput: one raw TCP publisher, no subscribers, as fast as the socket takes
//! pipelined PUB frames; timed from the first write to the PONG answering a final PING.

use super::{Benchmark, Case, Env, Sample, Work, WorkUnit};
use crate::raw::{Publisher, RawConn};
use crate::system::CpuProbe;
use crate::targets::Target;

/// The subject published on; nobody subscribes to it.
const SUBJECT: &str = "bench.pub";

/// Publish-only throughput with the raw client.
pub(crate) struct PublishRaw;

impl Benchmark for PublishRaw {
    fn name(&self) -> &'static str {
        "pub"
    }

    fn title(&self) -> &'static str {
        "publish, raw TCP, 0 subs"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, payload: usize) -> u64 {
        if payload <= 64 {
            10_000_000
        } else {
            6_000_000
        }
    }

    fn run(&self, _env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        let mut conn = RawConn::connect(&target.url)?;
        let publisher = Publisher::new(SUBJECT, case.payload);
        let probe = CpuProbe::new(target.pid);
        let start = probe.snapshot();
        let count = match case.work {
            Work::Count(n) => {
                publisher.send_count(&mut conn, n)?;
                n
            }
            Work::For(d) => publisher.send_for(&mut conn, d)?,
        };
        conn.ping_pong()?;
        let end = probe.snapshot();
        Ok(Sample::throughput(
            count,
            case.payload,
            end.at().duration_since(start.at()),
            start.usage_until(&end),
        ))
    }
}
