//! Server memory with a large file stream: on a freshly started server, store 1M messages
//! (windowed publish, as `js-pub-async`), check they are all there, then read the server's peak
//! resident memory over its life (`VmHWM`) and its resident memory now (`VmRSS`).

use anyhow::Context;

use super::{Benchmark, Case, Env, Figure, Sample, Suite, WorkUnit, PEAK_RSS_MIB, RSS_MIB};
use crate::jetstream::with_stream;
use crate::system::{process_memory, CpuProbe};
use crate::targets::Target;

/// Peak and current RSS of a server holding a stream of many messages.
pub(crate) struct JsRss {
    /// Outstanding PubAcks while storing.
    pub window: usize,
}

impl Benchmark for JsRss {
    fn name(&self) -> &'static str {
        "js-rss"
    }

    fn title(&self) -> &'static str {
        "JetStream memory, stored"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, _payload: usize) -> u64 {
        1_000_000
    }

    fn suite(&self) -> Suite {
        Suite::JetStream
    }

    fn timeable(&self) -> bool {
        false // the question is about a given number of stored messages
    }

    fn fresh_server(&self) -> bool {
        true
    }

    fn run(&self, _env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        let super::Work::Count(count) = case.work else {
            anyhow::bail!("js-rss needs a message count, not a duration");
        };
        let pid = target
            .pid
            .context("js-rss reads the server's memory, so it needs a server it started")?;
        with_stream(&target.url, |js| {
            let frame = js.publish_frame(case.payload);
            let probe = CpuProbe::new(target.pid);
            let start = probe.snapshot();
            js.publish_windowed(&frame, self.window, |n| n < count)?;
            let end = probe.snapshot();
            js.check_stored(count)?;
            let memory = process_memory(pid)?;
            let mib = |kib: u64| kib as f64 / 1024.0;
            Ok(Sample::rate(
                count,
                end.at().duration_since(start.at()),
                start.usage_until(&end),
                vec![
                    Figure {
                        metric: PEAK_RSS_MIB,
                        value: mib(memory.peak_kib),
                    },
                    Figure {
                        metric: RSS_MIB,
                        value: mib(memory.current_kib),
                    },
                ],
            ))
        })
    }
}
