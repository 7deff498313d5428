//! JetStream publish to a file stream with the raw client, each message acknowledged with a
//! PubAck: `js-pub` waits for every PubAck before the next publish (throughput and the latency
//! of each publish), `js-pub-async` keeps a window of PubAcks outstanding (throughput). Both
//! check afterwards, from stream info, that the stream holds exactly what was published.

use std::time::Instant;

use super::{Benchmark, Case, Env, Latencies, Sample, Suite, Work, WorkUnit};
use crate::jetstream::with_stream;
use crate::system::CpuProbe;
use crate::targets::Target;

/// Synchronous JetStream publish: publish, wait for the PubAck, repeat.
pub(crate) struct JsPublish;

impl Benchmark for JsPublish {
    fn name(&self) -> &'static str {
        "js-pub"
    }

    fn title(&self) -> &'static str {
        "JetStream publish, sync"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, _payload: usize) -> u64 {
        // The broker's default fsyncs before every PubAck: about 0.3-0.5 ms each here.
        5_000
    }

    fn suite(&self) -> Suite {
        Suite::JetStream
    }

    fn run(&self, _env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        with_stream(&target.url, |js| {
            let frame = js.publish_frame(case.payload);
            // A warm-up, so that creating the first file is not in the figures.
            let warm_up = match case.work {
                Work::Count(n) => (n / 10).clamp(10, 1000),
                Work::For(_) => 100,
            };
            for _ in 0..warm_up {
                js.publish_sync(&frame)?;
            }
            let mut times = Latencies::new()?;
            let probe = CpuProbe::new(target.pid);
            let start = probe.snapshot();
            let mut count = 0;
            while !case.work.finished(count, start.at()) {
                let sent = Instant::now();
                let seq = js.publish_sync(&frame)?;
                times.record(sent.elapsed());
                count += 1;
                anyhow::ensure!(
                    seq == warm_up + count,
                    "PubAck for sequence {seq}, expected {}",
                    warm_up + count
                );
            }
            let end = probe.snapshot();
            js.check_stored(warm_up + count)?;
            Ok(Sample::rate(
                count,
                end.at().duration_since(start.at()),
                start.usage_until(&end),
                times.figures(),
            ))
        })
    }
}

/// Windowed JetStream publish: up to `window` PubAcks outstanding.
pub(crate) struct JsPublishAsync {
    /// Outstanding PubAcks allowed.
    pub window: usize,
}

impl Benchmark for JsPublishAsync {
    fn name(&self) -> &'static str {
        "js-pub-async"
    }

    fn title(&self) -> &'static str {
        "JetStream publish, window"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, _payload: usize) -> u64 {
        300_000
    }

    fn suite(&self) -> Suite {
        Suite::JetStream
    }

    fn run(&self, _env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        with_stream(&target.url, |js| {
            let frame = js.publish_frame(case.payload);
            let probe = CpuProbe::new(target.pid);
            let start = probe.snapshot();
            let count = js.publish_windowed(&frame, self.window, |published| {
                !case.work.finished(published, start.at())
            })?;
            let end = probe.snapshot();
            js.check_stored(count)?;
            Ok(Sample::rate(
                count,
                end.at().duration_since(start.at()),
                start.usage_until(&end),
                Vec::new(),
            ))
        })
    }
}
