//! JetStream consume with explicit acks: the stream is pre-filled (not timed), then one durable
//! pull consumer fetches it in batches and acks every message with a plain `+ACK` (an empty
//! body), the last one asking for a confirmation. Timed from the first pull request to that
//! confirmation, after which consumer info must show nothing pending and every message acked.

use anyhow::{bail, ensure, Context};

use super::{Benchmark, Case, Env, Sample, Suite, WorkUnit};
use crate::jetstream::{self, with_stream, JsConn};
use crate::raw::Stall;
use crate::system::CpuProbe;
use crate::targets::Target;

/// Pull-consume and ack a pre-filled stream.
pub(crate) struct JsConsume {
    /// Outstanding PubAcks while pre-filling.
    pub window: usize,
    /// Messages per pull request.
    pub batch: usize,
}

impl Benchmark for JsConsume {
    fn name(&self) -> &'static str {
        "js-consume"
    }

    fn title(&self) -> &'static str {
        "JetStream pull + ack"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, _payload: usize) -> u64 {
        200_000
    }

    fn suite(&self) -> Suite {
        Suite::JetStream
    }

    fn timeable(&self) -> bool {
        false // the stream is filled with a known count first
    }

    fn run(&self, _env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        let super::Work::Count(count) = case.work else {
            bail!("js-consume needs a message count, not a duration");
        };
        with_stream(&target.url, |js| {
            let frame = js.publish_frame(case.payload);
            js.publish_windowed(&frame, self.window, |n| n < count)
                .context("pre-filling the stream")?;
            js.check_stored(count)?;
            let batch = self.batch as u64;
            js.create_consumer((4 * batch).max(1000))?;
            let probe = CpuProbe::new(target.pid);
            let start = probe.snapshot();
            pull_and_ack(js, count, batch, case.payload)?;
            js.wait_ack_confirmed()
                .context("waiting for the last ack's confirmation")?;
            check_all_acked(js, count)?;
            let end = probe.snapshot();
            Ok(Sample::rate(
                count,
                end.at().duration_since(start.at()),
                start.usage_until(&end),
                Vec::new(),
            ))
        })
    }
}

/// Keeps one to two batches requested until `count` messages arrived, acking each; the last
/// ack asks for a confirmation.
fn pull_and_ack(js: &mut JsConn, count: u64, batch: u64, payload: usize) -> anyhow::Result<()> {
    let inbox = js.pull_inbox();
    let confirm = js.ack_confirm_inbox();
    let (mut requested, mut delivered) = (0u64, 0u64);
    let mut out = Vec::new();
    let mut stall = Stall::new(js.conn());
    while delivered < count {
        while requested < count && requested - delivered <= batch {
            let n = batch.min(count - requested);
            out.extend(jetstream::pull_request(&inbox, n));
            requested += n;
        }
        js.conn().write_all(&out)?;
        out.clear();
        let seen = js.conn().read_msgs(|m| {
            if !jetstream::is_pulled(m) {
                return Ok(());
            }
            if let Some(code) = m.status() {
                bail!("a pull request ended with status {code} after {delivered} of {count}");
            }
            let reply = m.reply.context("a delivery without an ack subject")?;
            ensure!(
                m.payload.len() == payload,
                "a delivery of {} bytes, not {payload}",
                m.payload.len()
            );
            ensure!(
                jetstream::deliveries(reply) == Some(1),
                "a redelivery: {}",
                String::from_utf8_lossy(reply)
            );
            delivered += 1;
            // PUB <subject> [reply-to] <#bytes>: an empty body is an ack.
            out.extend_from_slice(b"PUB ");
            out.extend_from_slice(reply);
            if delivered == count {
                out.extend_from_slice(format!(" {confirm}").as_bytes());
            }
            out.extend_from_slice(b" 0\r\n\r\n");
            Ok(())
        })?;
        stall.check(seen, || {
            format!("deliveries ({delivered} of {count} so far)")
        })?;
    }
    js.conn().write_all(&out)
}

/// Fails unless consumer info shows every one of the `count` messages delivered and acked.
fn check_all_acked(js: &mut JsConn, count: u64) -> anyhow::Result<()> {
    let info = js.consumer_info()?;
    let number = |path: &[&str]| {
        path.iter()
            .fold(&info, |v, k| &v[*k])
            .as_u64()
            .with_context(|| format!("consumer info without {}: {info}", path.join(".")))
    };
    let (ack_pending, pending) = (number(&["num_ack_pending"])?, number(&["num_pending"])?);
    let floor = number(&["ack_floor", "stream_seq"])?;
    ensure!(
        ack_pending == 0 && pending == 0 && floor == count,
        "after the last ack: {ack_pending} acks pending, {pending} messages not delivered, \
         ack floor at {floor} of {count}"
    );
    Ok(())
}
