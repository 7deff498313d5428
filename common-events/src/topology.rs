//! Every subject and stream of the application, declared in one place; [`ConsumerSpec`], which
//! a service fills in for each consumer it reads with; and [`ensure`], which creates whatever is
//! missing (idempotent; safe for replicas starting at once).
//!
//! Streams are shared by everyone, so they live here. Consumers belong to the service that reads
//! with them: each service declares its own (its durable name is its queue group).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

/// The subjects events are published on.
pub mod subjects {
    /// [`crate::AccountOpened`].
    pub const ACCOUNT_OPENED: &str = "accounts.opened";
    /// [`crate::TransactionCreated`].
    pub const TRANSACTION_CREATED: &str = "transactions.created";
    /// [`crate::TransactionApplied`].
    pub const TRANSACTION_APPLIED: &str = "transactions.applied";
    /// [`crate::TransactionRejected`].
    pub const TRANSACTION_REJECTED: &str = "transactions.rejected";
}

/// A stream: its name and the subjects it captures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream name.
    pub name: &'static str,
    /// Subjects bound to it.
    pub subjects: &'static [&'static str],
}

/// `ACCOUNTS`: `accounts.>`.
pub const ACCOUNTS: StreamSpec = StreamSpec {
    name: "ACCOUNTS",
    subjects: &["accounts.>"],
};

/// `TRANSACTIONS`: `transactions.>` (created, applied, rejected).
pub const TRANSACTIONS: StreamSpec = StreamSpec {
    name: "TRANSACTIONS",
    subjects: &["transactions.>"],
};

/// Every stream the application uses.
pub const STREAMS: [StreamSpec; 2] = [ACCOUNTS, TRANSACTIONS];

/// The stream that captures `subject`, if any.
pub fn stream_of(subject: &str) -> Option<StreamSpec> {
    STREAMS.into_iter().find(|spec| {
        spec.subjects
            .iter()
            .any(|pattern| subject_matches(pattern, subject))
    })
}

/// Whether the NATS subject `pattern` (with `*` for one token and a final `>` for one or more)
/// matches the literal `subject`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for part in pattern.split('.') {
        match (part, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (part, Some(token)) if part == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// Where a new consumer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The first message of the stream (`deliver_policy: all`).
    All,
    /// Only messages published after the consumer is created (`deliver_policy: new`).
    New,
}

/// How long the server waits for an ack before redelivering, unless the service says otherwise
/// (`ACK_WAIT`).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(10);

/// The most unacknowledged messages in flight on one consumer, across all replicas
/// (`max_ack_pending`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Handlers one replica runs at once on one consumer, unless the service says otherwise
/// (`LISTENER_CONCURRENCY`).
pub const DEFAULT_CONCURRENCY: usize = 32;

/// A durable pull consumer: the queue group every replica of a service shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// The stream it reads.
    pub stream: StreamSpec,
    /// Durable name; replicas using the same name share the work.
    pub durable: String,
    /// The one subject it receives.
    pub filter_subject: &'static str,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Where it starts when first created.
    pub start_at: StartAt,
    /// The most unacknowledged messages in flight (`max_ack_pending`), across all replicas.
    pub max_in_flight: usize,
    /// How many handlers one replica runs at once.
    pub concurrency: usize,
    /// Deleted by the server after this long without a client (rebuild consumers); `None` keeps it.
    pub inactive_threshold: Option<Duration>,
}

impl ConsumerSpec {
    /// A durable consumer named `durable` of `filter_subject` on `stream`, starting at the
    /// stream's first message, with the default ack wait, in-flight limit and concurrency.
    pub fn new(stream: StreamSpec, durable: &str, filter_subject: &'static str) -> Self {
        Self {
            stream,
            durable: durable.to_owned(),
            filter_subject,
            ack_wait: DEFAULT_ACK_WAIT,
            start_at: StartAt::All,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            concurrency: DEFAULT_CONCURRENCY,
            inactive_threshold: None,
        }
    }

    /// A durable consumer named `durable` of the event `subject`, on the stream that captures
    /// it; `None` when no stream does.
    pub fn of_subject(durable: &str, subject: &'static str) -> Option<Self> {
        stream_of(subject).map(|stream| Self::new(stream, durable, subject))
    }

    /// A one-off consumer that replays `filter_subject` from the start (for rebuilds); the server
    /// removes it a minute after its last client goes away.
    pub fn replay(stream: StreamSpec, filter_subject: &'static str) -> Self {
        let name = format!("replay-{}", uuid::Uuid::new_v4().simple());
        Self {
            inactive_threshold: Some(Duration::from_secs(60)),
            ..Self::new(stream, &name, filter_subject)
        }
    }

    /// The server-side configuration. No `max_deliver`: an ordering-critical consumer never
    /// drops an event for good.
    pub fn config(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(self.durable.clone()),
            filter_subject: self.filter_subject.to_owned(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            deliver_policy: match self.start_at {
                StartAt::All => consumer::DeliverPolicy::All,
                StartAt::New => consumer::DeliverPolicy::New,
            },
            max_ack_pending: i64::try_from(self.max_in_flight).unwrap_or(i64::MAX),
            max_deliver: -1,
            inactive_threshold: self.inactive_threshold.unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// What went wrong while creating streams or consumers.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A stream could not be created or read.
    #[error("ensuring stream {stream}: {source}")]
    Stream {
        /// The stream.
        stream: &'static str,
        /// The server's answer.
        source: async_nats::Error,
    },
    /// A consumer could not be created or read.
    #[error("ensuring consumer {consumer} on {stream}: {source}")]
    Consumer {
        /// The stream.
        stream: &'static str,
        /// The durable name.
        consumer: String,
        /// The server's answer.
        source: async_nats::Error,
    },
}

/// File-backed stream configuration for `spec`, with one replica.
pub fn stream_config(spec: StreamSpec) -> stream::Config {
    stream_config_replicated(spec, 1)
}

/// File-backed stream configuration for `spec` with `replicas` copies (`num_replicas`; more
/// than one needs a JetStream cluster of at least that many servers).
pub fn stream_config_replicated(spec: StreamSpec, replicas: usize) -> stream::Config {
    stream::Config {
        name: spec.name.to_owned(),
        subjects: spec.subjects.iter().map(|s| (*s).to_owned()).collect(),
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// Creates every stream (one replica) and the given consumers when missing; leaves existing
/// ones alone. Retries a few times, since two replicas starting together may race to create the
/// same one.
pub async fn ensure(
    js: &jetstream::Context,
    consumers: &[ConsumerSpec],
) -> Result<(), TopologyError> {
    ensure_replicated(js, consumers, 1).await
}

/// [`ensure`], creating missing streams with `stream_replicas` replicas (`STREAM_REPLICAS`).
/// Existing streams keep the replicas they have; consumers inherit their stream's.
pub async fn ensure_replicated(
    js: &jetstream::Context,
    consumers: &[ConsumerSpec],
    stream_replicas: usize,
) -> Result<(), TopologyError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ensure_once(js, consumers, stream_replicas).await {
            Ok(()) => return Ok(()),
            Err(err) if attempt >= 3 => return Err(err),
            Err(err) => {
                tracing::debug!(error = %err, attempt, "ensure raced another client; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
        }
    }
}

async fn ensure_once(
    js: &jetstream::Context,
    consumers: &[ConsumerSpec],
    stream_replicas: usize,
) -> Result<(), TopologyError> {
    for spec in STREAMS {
        js.get_or_create_stream(stream_config_replicated(spec, stream_replicas))
            .await
            .map_err(|err| TopologyError::Stream {
                stream: spec.name,
                source: err.into(),
            })?;
    }
    for spec in consumers {
        ensure_consumer(js, spec).await?;
    }
    Ok(())
}

/// Creates one consumer when missing and returns it.
pub async fn ensure_consumer(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
) -> Result<consumer::PullConsumer, TopologyError> {
    let wrap = |err: async_nats::Error| TopologyError::Consumer {
        stream: spec.stream.name,
        consumer: spec.durable.clone(),
        source: err,
    };
    let stream = js
        .get_stream(spec.stream.name)
        .await
        .map_err(|err| wrap(err.into()))?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(&spec.durable, spec.config())
        .await
        .map_err(|err| wrap(err.into()))?;
    let ack_wait = consumer.cached_info().config.ack_wait;
    if ack_wait != spec.ack_wait {
        tracing::warn!(
            consumer = %spec.durable,
            existing = ?ack_wait,
            configured = ?spec.ack_wait,
            "the consumer was created with another ack wait and keeps it: ACK_WAIT applies to \
             consumers created from now on"
        );
    }
    Ok(consumer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_subject_has_its_stream_and_others_have_none() {
        assert_eq!(stream_of(subjects::ACCOUNT_OPENED), Some(ACCOUNTS));
        for subject in [
            subjects::TRANSACTION_CREATED,
            subjects::TRANSACTION_APPLIED,
            subjects::TRANSACTION_REJECTED,
        ] {
            assert_eq!(stream_of(subject), Some(TRANSACTIONS));
        }
        assert_eq!(stream_of("notifications.sent"), None);
        assert_eq!(
            stream_of("accounts"),
            None,
            "`>` needs at least one more token"
        );
        assert!(ConsumerSpec::of_subject("x", "statements.closed").is_none());
    }

    #[test]
    fn subject_patterns_match_token_by_token() {
        assert!(subject_matches("a.*.c", "a.b.c"));
        assert!(!subject_matches("a.*.c", "a.b.d"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.b", "a.bc"));
        assert!(!subject_matches("a.b.c", "a.b"));
    }
}
