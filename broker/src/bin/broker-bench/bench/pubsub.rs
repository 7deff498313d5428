//! 1:1 publish/subscribe throughput: one raw subscriber, one raw publisher. The subscriber counts
//! MSG frames until every published message arrived; the rate is timed from the first publish
//! to the last receipt. A lost message fails the run.

use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use super::{Benchmark, Case, Env, Sample, Work, WorkUnit};
use crate::raw::{DeliveryFrame, Publisher, RawConn};
use crate::system::{CpuProbe, CpuSnapshot};
use crate::targets::Target;

/// The subject published and subscribed on.
const SUBJECT: &str = "bench.pubsub";

/// 1:1 publish/subscribe throughput with raw clients.
pub(crate) struct PubSubRaw;

impl Benchmark for PubSubRaw {
    fn name(&self) -> &'static str {
        "pubsub"
    }

    fn title(&self) -> &'static str {
        "pub/sub 1:1, raw TCP"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, payload: usize) -> u64 {
        if payload <= 64 {
            3_000_000
        } else {
            2_500_000
        }
    }

    fn run(&self, _env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        let mut sub = RawConn::connect(&target.url).context("connecting the subscriber")?;
        sub.write_all(format!("SUB {SUBJECT} 1\r\n").as_bytes())?;
        sub.ping_pong().context("subscribing")?;
        let mut publ = RawConn::connect(&target.url).context("connecting the publisher")?;
        let publ_socket = publ.try_clone_stream()?;
        let publisher = Publisher::new(SUBJECT, case.payload);
        let frame = DeliveryFrame::new(SUBJECT, 1, case.payload);
        let probe = CpuProbe::new(target.pid);
        // Until the publisher is done in duration mode, the subscriber does not know how many.
        let expected = AtomicU64::new(match case.work {
            Work::Count(n) => n,
            Work::For(_) => u64::MAX,
        });

        let (published, received) = std::thread::scope(|s| {
            let publishing = s.spawn(|| -> anyhow::Result<(CpuSnapshot, u64)> {
                let start = probe.snapshot();
                let sent = match case.work {
                    Work::Count(n) => publisher.send_count(&mut publ, n).map(|()| n),
                    Work::For(d) => publisher.send_for(&mut publ, d),
                };
                let sent = sent.context("publishing")?;
                expected.store(sent, Ordering::Release);
                Ok((start, sent))
            });
            let received = sub
                .count_deliveries(&frame, |n| n >= expected.load(Ordering::Acquire))
                .map(|(count, last)| (count, last, probe.snapshot()));
            if received.is_err() {
                // Unblock a publisher stuck writing to a server that stopped reading.
                let _ = publ_socket.shutdown(Shutdown::Both);
            }
            let published = publishing
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the publisher thread panicked")));
            (published, received)
        });

        let (count, last, end) = match received {
            Ok(r) => r,
            Err(e) => {
                let sent = published.map_or("the published".into(), |(_, n)| n.to_string());
                return Err(e.context(format!("the subscriber did not get all {sent} messages")));
            }
        };
        let (start, sent) = published?;
        if count != sent {
            anyhow::bail!("published {sent} messages but received {count}");
        }
        Ok(Sample::throughput(
            count,
            case.payload,
            last.duration_since(start.at()),
            start.usage_until(&end),
        ))
    }
}
