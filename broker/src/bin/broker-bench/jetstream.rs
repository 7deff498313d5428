//! JetStream over the raw client: the API requests the benchmarks need (a file stream and a
//! durable pull consumer, created, inspected and deleted), publishing with PubAcks, and pulling
//! with acks. Every exchange is plain NATS: a PUB whose reply subject is on an inbox this
//! connection subscribes to.

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};

use crate::raw::{Msg, RawConn, Stall};

/// The stream every JetStream benchmark creates, and deletes when done.
pub(crate) const STREAM: &str = "BENCH";
/// Its one subject.
const SUBJECT: &str = "bench.js";
/// The durable pull consumer of `js-consume`.
const CONSUMER: &str = "BENCH_C";
/// How long a pull request waits for messages before it expires, in nanoseconds.
const PULL_EXPIRES_NS: u64 = 30_000_000_000;

/// `<inbox>.r.*`: API replies and the reply to the final ack.
const SID_REPLIES: u64 = 1;
/// `<inbox>.a`: PubAcks.
const SID_PUB_ACKS: u64 = 2;
/// `<inbox>.p`: messages delivered for pull requests.
const SID_PULLED: u64 = 3;

/// A raw connection with the inbox subscriptions that JetStream replies arrive on.
pub(crate) struct JsConn {
    conn: RawConn,
    inbox: String,
    requests: u64,
}

/// How many messages a stream holds, and its last sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamState {
    pub messages: u64,
    pub last_seq: u64,
}

impl JsConn {
    /// Connects to `url` and subscribes to the inbox.
    pub(crate) fn connect(url: &str) -> anyhow::Result<JsConn> {
        let mut conn = RawConn::connect(url)?;
        let inbox = format!("_INBOX.bench.{:016x}", fastrand::u64(..));
        let subs = format!(
            "SUB {inbox}.r.* {SID_REPLIES}\r\nSUB {inbox}.a {SID_PUB_ACKS}\r\n\
             SUB {inbox}.p {SID_PULLED}\r\n"
        );
        conn.write_all(subs.as_bytes())?;
        conn.ping_pong().context("subscribing to the inbox")?;
        Ok(JsConn {
            conn,
            inbox,
            requests: 0,
        })
    }

    /// Sends a JetStream API request (with an empty body for `None`, as clients send to the
    /// endpoints that take none) and returns its JSON reply; an `error` in it is an error.
    pub(crate) fn request(&mut self, subject: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.requests += 1;
        let reply = format!("{}.r.{}", self.inbox, self.requests);
        let body = body.map_or_else(String::new, Value::to_string);
        let frame = format!("PUB {subject} {reply} {}\r\n{body}\r\n", body.len());
        self.conn.write_all(frame.as_bytes())?;
        let answer = self
            .wait_reply(&reply)
            .with_context(|| format!("waiting for the reply to {subject}"))?;
        let answer: Value = serde_json::from_slice(&answer)
            .with_context(|| format!("the reply to {subject} is not JSON"))?;
        if let Some(err) = answer.get("error") {
            bail!("{subject} failed: {err}");
        }
        Ok(answer)
    }

    /// Waits for the message on `reply` (one of ours) and returns its payload.
    fn wait_reply(&mut self, reply: &str) -> anyhow::Result<Vec<u8>> {
        let mut answer: Option<anyhow::Result<Vec<u8>>> = None;
        let mut stall = Stall::new(&self.conn);
        while answer.is_none() {
            let seen = self.conn.read_msgs(|m| {
                if m.sid == SID_REPLIES && m.subject == reply.as_bytes() {
                    answer = Some(match m.status() {
                        Some(503) => Err(anyhow::anyhow!(
                            "no responders: is JetStream enabled on this server?"
                        )),
                        _ => Ok(m.payload.to_vec()),
                    });
                }
                Ok(())
            })?;
            stall.check(seen, || format!("a reply on {reply}"))?;
        }
        answer.expect("the loop ends with an answer")
    }

    /// Deletes any stream left from an earlier run and creates an empty file stream.
    pub(crate) fn create_stream(&mut self) -> anyhow::Result<()> {
        if self.stream_exists()? {
            self.delete_stream()?;
        }
        let config = json!({
            "name": STREAM,
            "subjects": [SUBJECT],
            "retention": "limits",
            "storage": "file",
            "num_replicas": 1,
        });
        self.request(&format!("$JS.API.STREAM.CREATE.{STREAM}"), Some(&config))?;
        Ok(())
    }

    fn stream_exists(&mut self) -> anyhow::Result<bool> {
        let names = self.request("$JS.API.STREAM.NAMES", None)?;
        Ok(names["streams"]
            .as_array()
            .is_some_and(|s| s.iter().any(|n| n == STREAM)))
    }

    /// Deletes the stream and its consumers.
    pub(crate) fn delete_stream(&mut self) -> anyhow::Result<()> {
        self.request(&format!("$JS.API.STREAM.DELETE.{STREAM}"), None)?;
        Ok(())
    }

    /// The stream's message count and last sequence, from stream info.
    pub(crate) fn stream_state(&mut self) -> anyhow::Result<StreamState> {
        let info = self.request(&format!("$JS.API.STREAM.INFO.{STREAM}"), None)?;
        let number = |k: &str| {
            info["state"][k]
                .as_u64()
                .with_context(|| format!("stream info without state.{k}: {info}"))
        };
        Ok(StreamState {
            messages: number("messages")?,
            last_seq: number("last_seq")?,
        })
    }

    /// Fails unless the stream holds exactly messages 1 to `count`.
    pub(crate) fn check_stored(&mut self, count: u64) -> anyhow::Result<()> {
        let state = self.stream_state()?;
        let want = StreamState {
            messages: count,
            last_seq: count,
        };
        ensure!(
            state == want,
            "the stream holds {} messages up to sequence {}, not {count}",
            state.messages,
            state.last_seq
        );
        Ok(())
    }

    /// A PUB frame of `payload` bytes on the stream's subject whose PubAck comes to our inbox.
    pub(crate) fn publish_frame(&self, payload: usize) -> Vec<u8> {
        // PUB <subject> [reply-to] <#bytes>\r\n[payload]\r\n
        let mut frame = format!("PUB {SUBJECT} {}.a {payload}\r\n", self.inbox).into_bytes();
        frame.extend(std::iter::repeat_n(b'x', payload));
        frame.extend_from_slice(b"\r\n");
        frame
    }

    /// Publishes `frame` and waits for its PubAck; returns the stored sequence.
    pub(crate) fn publish_sync(&mut self, frame: &[u8]) -> anyhow::Result<u64> {
        self.conn.write_all(frame)?;
        let mut seq = None;
        let mut stall = Stall::new(&self.conn);
        while seq.is_none() {
            let seen = self.conn.read_msgs(|m| {
                if m.sid == SID_PUB_ACKS {
                    seq = Some(pub_ack_seq(m)?);
                }
                Ok(())
            })?;
            stall.check(seen, || "a PubAck".into())?;
        }
        Ok(seq.expect("the loop ends with a sequence"))
    }

    /// Publishes `frame` until `more(published)` says stop, with at most `window` PubAcks
    /// outstanding, and waits for every PubAck; returns how many were published.
    pub(crate) fn publish_windowed(
        &mut self,
        frame: &[u8],
        window: usize,
        mut more: impl FnMut(u64) -> bool,
    ) -> anyhow::Result<u64> {
        let window = window as u64;
        let batch = frame.repeat(window as usize);
        // Refill when a quarter of the window is free, so writes are not one frame each.
        let refill = (window / 4).max(1);
        let (mut sent, mut acked, mut done) = (0u64, 0u64, false);
        let mut stall = Stall::new(&self.conn);
        while !done || acked < sent {
            let room = window - (sent - acked);
            if !done && room >= refill {
                let mut n = 0;
                while n < room && more(sent + n) {
                    n += 1;
                }
                done = n < room;
                self.conn.write_all(&batch[..n as usize * frame.len()])?;
                sent += n;
                continue;
            }
            let seen = self.conn.read_msgs(|m| {
                if m.sid == SID_PUB_ACKS {
                    pub_ack_seq(m)?;
                    acked += 1;
                }
                Ok(())
            })?;
            stall.check(seen, || format!("PubAcks ({acked} of {sent} so far)"))?;
        }
        Ok(sent)
    }

    /// Creates the durable pull consumer with explicit acks.
    pub(crate) fn create_consumer(&mut self, max_ack_pending: u64) -> anyhow::Result<()> {
        let request = json!({
            "stream_name": STREAM,
            "config": {
                "durable_name": CONSUMER,
                "deliver_policy": "all",
                "ack_policy": "explicit",
                "ack_wait": 60_000_000_000u64,
                "max_ack_pending": max_ack_pending,
            },
        });
        self.request(
            &format!("$JS.API.CONSUMER.CREATE.{STREAM}.{CONSUMER}"),
            Some(&request),
        )?;
        Ok(())
    }

    /// The consumer's info.
    pub(crate) fn consumer_info(&mut self) -> anyhow::Result<Value> {
        self.request(&format!("$JS.API.CONSUMER.INFO.{STREAM}.{CONSUMER}"), None)
    }

    /// The raw connection, for the pull loop.
    pub(crate) fn conn(&mut self) -> &mut RawConn {
        &mut self.conn
    }

    /// Where pulled messages arrive.
    pub(crate) fn pull_inbox(&self) -> String {
        format!("{}.p", self.inbox)
    }

    /// The subject a final ack asks its confirmation on.
    pub(crate) fn ack_confirm_inbox(&self) -> String {
        format!("{}.r.acked", self.inbox)
    }

    /// Waits for the confirmation of a final ack sent with [`JsConn::ack_confirm_inbox`].
    pub(crate) fn wait_ack_confirmed(&mut self) -> anyhow::Result<()> {
        self.wait_reply(&self.ack_confirm_inbox()).map(drop)
    }
}

/// Connects to `url`, creates a fresh stream, runs `f` on it and deletes the stream again, so
/// every run starts from an empty store and leaves none behind.
pub(crate) fn with_stream<T>(
    url: &str,
    f: impl FnOnce(&mut JsConn) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut js = JsConn::connect(url).context("connecting the JetStream client")?;
    js.create_stream().context("creating the stream")?;
    let result = f(&mut js);
    let deleted = js.delete_stream().context("deleting the stream");
    let value = result?;
    deleted?;
    Ok(value)
}

/// The frame of a pull request for `batch` messages of the benchmark consumer.
pub(crate) fn pull_request(reply: &str, batch: u64) -> Vec<u8> {
    let body = format!("{{\"batch\":{batch},\"expires\":{PULL_EXPIRES_NS}}}");
    format!(
        "PUB $JS.API.CONSUMER.MSG.NEXT.{STREAM}.{CONSUMER} {reply} {}\r\n{body}\r\n",
        body.len()
    )
    .into_bytes()
}

/// Whether `m` is a message delivered for a pull request (not a status or other reply).
pub(crate) fn is_pulled(m: &Msg<'_>) -> bool {
    m.sid == SID_PULLED
}

/// The stored sequence a PubAck reports; its error, if it reports one.
// {"stream":"BENCH","seq":12} or {"error":{"code":503,"description":"..."}}
fn pub_ack_seq(m: &Msg<'_>) -> anyhow::Result<u64> {
    let text = || String::from_utf8_lossy(m.payload).into_owned();
    if let Some(code) = m.status() {
        bail!("a PubAck with status {code}: is JetStream enabled on this server?");
    }
    let key = b"\"seq\":";
    let at = memchr::memmem::find(m.payload, key).with_context(|| format!("PubAck {}", text()))?;
    let digits: &[u8] = &m.payload[at + key.len()..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let seq = std::str::from_utf8(&digits[..end])
        .ok()
        .and_then(|d| d.parse().ok())
        .with_context(|| format!("a PubAck without a sequence: {}", text()))?;
    if memchr::memmem::find(m.payload, b"\"error\"").is_some() {
        bail!("PubAck {}", text());
    }
    Ok(seq)
}

/// How many times the message was delivered, from the ack subject it carries:
/// `$JS.ACK.<stream>.<consumer>.<deliveries>.<stream seq>.<consumer seq>.<time>.<pending>`,
/// or the same with `<domain>.<account hash>.` after `$JS.ACK.` and a token at the end.
pub(crate) fn deliveries(ack_subject: &[u8]) -> Option<u64> {
    let tokens: Vec<&[u8]> = ack_subject.split(|b| *b == b'.').collect();
    let at = match tokens.len() {
        9 => 4,
        12 => 6,
        _ => return None,
    };
    std::str::from_utf8(tokens[at]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(sid: u64, headers: &'a [u8], payload: &'a [u8]) -> Msg<'a> {
        Msg {
            subject: b"_INBOX.x.a",
            sid,
            reply: None,
            headers,
            payload,
        }
    }

    #[test]
    fn a_pub_ack_gives_its_sequence() {
        let ack = msg(SID_PUB_ACKS, b"", br#"{"stream":"BENCH","seq":1234}"#);
        assert_eq!(pub_ack_seq(&ack).unwrap(), 1234);
        let dup = msg(
            SID_PUB_ACKS,
            b"",
            br#"{"stream":"B","seq":7,"duplicate":true}"#,
        );
        assert_eq!(pub_ack_seq(&dup).unwrap(), 7);
    }

    #[test]
    fn a_pub_ack_error_or_status_fails() {
        let err = msg(
            SID_PUB_ACKS,
            b"",
            br#"{"error":{"code":503,"description":"resources exceeded"}}"#,
        );
        assert!(format!("{:#}", pub_ack_seq(&err).unwrap_err()).contains("resources"));
        let status = msg(SID_PUB_ACKS, b"NATS/1.0 503\r\n\r\n", b"");
        assert!(pub_ack_seq(&status).is_err());
    }

    #[test]
    fn ack_subjects_tell_the_delivery_count() {
        assert_eq!(deliveries(b"$JS.ACK.S.C.1.10.12.1700000000.5"), Some(1));
        assert_eq!(deliveries(b"$JS.ACK.dom.hash.S.C.3.2.3.4.5.rand"), Some(3));
        assert_eq!(deliveries(b"$JS.ACK.S.C"), None);
    }

    #[test]
    fn a_pull_request_asks_for_a_batch_with_an_expiry() {
        let frame = String::from_utf8(pull_request("_INBOX.x.p", 100)).unwrap();
        assert!(frame.starts_with("PUB $JS.API.CONSUMER.MSG.NEXT.BENCH.BENCH_C _INBOX.x.p "));
        assert!(frame.contains("{\"batch\":100,\"expires\":30000000000}"));
    }
}
