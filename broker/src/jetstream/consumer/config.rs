//! A consumer's configuration as the API carries it, with nats-server's defaults and checks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jetstream::errors::ApiError;
use crate::jetstream::stream::config::{is_valid_name, MAX_NAME_LEN};
use crate::jetstream::stream::{Retention, StreamConfig};
use crate::jetstream::subjects::collide;
use crate::options::{AccountJetStreamLimits, JetStreamLimits};
use crate::proto::subject::{is_valid_literal_subject, is_valid_subject};

/// ack_wait when none is given: 30 s.
const DEFAULT_ACK_WAIT: i64 = 30_000_000_000;
/// max_ack_pending when none is given, for consumers that ack.
const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// max_waiting of a pull consumer when none is given.
const DEFAULT_MAX_WAITING: i64 = 512;
const MIN_HEARTBEAT_NANOS: i64 = 100_000_000;
const MAX_DESCRIPTION_LEN: usize = 4 * 1024;

/// Where a new consumer starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DeliverPolicy {
    #[default]
    #[serde(rename = "all")]
    All,
    #[serde(rename = "last")]
    Last,
    #[serde(rename = "new")]
    New,
    #[serde(rename = "by_start_sequence")]
    ByStartSequence,
    #[serde(rename = "by_start_time")]
    ByStartTime,
    #[serde(rename = "last_per_subject")]
    LastPerSubject,
}

/// What a consumer expects back for a delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AckPolicy {
    #[default]
    None,
    All,
    Explicit,
}

/// How fast stored messages are replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// `ConsumerConfig`, with nats-server's JSON names. Durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ConsumerConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub durable_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub deliver_policy: DeliverPolicy,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    pub ack_policy: AckPolicy,
    #[serde(skip_serializing_if = "is_zero")]
    pub ack_wait: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_deliver: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    pub replay_policy: ReplayPolicy,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub rate_limit_bps: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sample_freq: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_waiting: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub idle_heartbeat: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_batch: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_expires: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_bytes: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_group: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub inactive_threshold: i64,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub mem_storage: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub direct: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

fn nanos(n: i64) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

impl ConsumerConfig {
    /// A push consumer delivers to a subject; a pull consumer waits for requests.
    pub fn is_push(&self) -> bool {
        !self.deliver_subject.is_empty()
    }

    /// Durable consumers outlive their subscribers.
    pub fn is_durable(&self) -> bool {
        !self.durable_name.is_empty()
    }

    /// ack_wait.
    pub fn ack_wait(&self) -> Duration {
        nanos(self.ack_wait)
    }

    /// How long to wait before redelivering the `deliveries`-th delivery (1 = the first).
    pub fn redelivery_delay(&self, deliveries: u64) -> Duration {
        match self.backoff.len() {
            0 => self.ack_wait(),
            n => nanos(self.backoff[(deliveries as usize).saturating_sub(1).min(n - 1)]),
        }
    }

    /// idle_heartbeat, if set.
    pub fn heartbeat(&self) -> Option<Duration> {
        (self.idle_heartbeat > 0).then(|| nanos(self.idle_heartbeat))
    }

    /// inactive_threshold, if set.
    pub fn inactive_threshold(&self) -> Option<Duration> {
        (self.inactive_threshold > 0).then(|| nanos(self.inactive_threshold))
    }

    /// The subject filters; empty means every subject.
    pub fn filters(&self) -> Vec<String> {
        if !self.filter_subject.is_empty() {
            vec![self.filter_subject.clone()]
        } else {
            self.filter_subjects.clone()
        }
    }

    /// Fills in nats-server's defaults and checks the configuration against its stream, the
    /// server's limits and the account's.
    pub fn normalize(
        mut self,
        stream: &StreamConfig,
        limits: &JetStreamLimits,
        account: &AccountJetStreamLimits,
    ) -> Result<ConsumerConfig, ApiError> {
        self.check_names()?;
        self.check_mode()?;
        self.check_filters(stream)?;
        self.check_start()?;
        self.check_retention(stream)?;
        if !self.backoff.is_empty()
            && self.max_deliver > 0
            && self.backoff.len() as i64 > self.max_deliver
        {
            return Err(ApiError::max_deliver_backoff());
        }
        if self.num_replicas < 0 {
            return Err(ApiError::invalid_config(
                "replicas count cannot be negative",
            ));
        }
        if self.num_replicas > 1 {
            return Err(ApiError::replicas_not_supported());
        }
        self.fill_defaults(stream, limits, account);
        self.check_limits(stream, limits, account)?;
        Ok(self)
    }

    /// The server's, the account's and the stream's limits, against the configuration with its
    /// defaults.
    fn check_limits(
        &self,
        stream: &StreamConfig,
        limits: &JetStreamLimits,
        account: &AccountJetStreamLimits,
    ) -> Result<(), ApiError> {
        let batch_limit = limits.max_request_batch;
        if !self.is_push() && batch_limit > 0 && self.max_batch > batch_limit {
            return Err(ApiError::max_request_batch_exceeded(batch_limit));
        }
        for limit in [
            limits.max_ack_pending,
            account.max_ack_pending,
            stream.consumer_limits.max_ack_pending,
        ] {
            if limit > 0 && self.max_ack_pending > limit {
                return Err(ApiError::max_ack_pending_excess(limit));
            }
        }
        Ok(())
    }

    fn check_names(&mut self) -> Result<(), ApiError> {
        if !self.durable_name.is_empty() && !self.name.is_empty() && self.durable_name != self.name
        {
            return Err(ApiError::durable_and_name_mismatch());
        }
        for name in [&self.durable_name, &self.name] {
            if name.is_empty() {
                continue;
            }
            if name.contains('/') || name.contains('\\') {
                return Err(ApiError::consumer_name_path_separators());
            }
            if !is_valid_name(name) {
                return Err(ApiError::bad_durable_name());
            }
            if name.len() > MAX_NAME_LEN {
                return Err(ApiError::consumer_name_too_long(MAX_NAME_LEN));
            }
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(ApiError::invalid_policy(format!(
                "consumer description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
            )));
        }
        Ok(())
    }

    fn check_mode(&self) -> Result<(), ApiError> {
        if self.is_push() {
            if !is_valid_subject(self.deliver_subject.as_bytes()) {
                return Err(ApiError::invalid_deliver_subject());
            }
            if !is_valid_literal_subject(self.deliver_subject.as_bytes()) {
                return Err(ApiError::deliver_to_wildcards());
            }
            if self.max_waiting != 0 {
                return Err(ApiError::push_max_waiting());
            }
            if self.max_ack_pending > 0 && self.ack_policy == AckPolicy::None {
                return Err(ApiError::max_pending_ack_policy());
            }
            if self.idle_heartbeat > 0 && self.idle_heartbeat < MIN_HEARTBEAT_NANOS {
                return Err(ApiError::small_heartbeat());
            }
        } else {
            if self.max_waiting < 0 {
                return Err(ApiError::max_waiting_negative());
            }
            if self.idle_heartbeat > 0 {
                return Err(ApiError::heartbeat_requires_push());
            }
            if self.flow_control {
                return Err(ApiError::flow_control_requires_push());
            }
            if self.max_batch < 0 {
                return Err(ApiError::max_request_batch_negative());
            }
            if self.max_expires != 0 && self.max_expires < 1_000_000 {
                return Err(ApiError::max_request_expires_too_small());
            }
        }
        if self.flow_control && self.idle_heartbeat == 0 {
            return Err(ApiError::flow_control_needs_heartbeats());
        }
        Ok(())
    }

    fn check_filters(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        if !self.filter_subject.is_empty() && !self.filter_subjects.is_empty() {
            return Err(ApiError::duplicate_filter_subjects());
        }
        if self.filter_subjects.iter().any(String::is_empty) {
            return Err(ApiError::empty_filter());
        }
        let filters = self.filters();
        for (i, f) in filters.iter().enumerate() {
            if !is_valid_subject(f.as_bytes()) {
                return Err(ApiError::invalid_config("invalid subject"));
            }
            if filters[..i].iter().any(|g| collide(f, g)) {
                return Err(ApiError::overlapping_filters());
            }
            // A filter need not meet the stream's subjects: nats-server 2.10 accepts one that
            // captures nothing yet (its 10093 error is never sent).
        }
        if self.is_push()
            && stream
                .subjects
                .iter()
                .any(|s| collide(&self.deliver_subject, s))
        {
            return Err(ApiError::deliver_cycle());
        }
        Ok(())
    }

    fn check_start(&self) -> Result<(), ApiError> {
        let bad_start = |dp: &str, start: &str| {
            Err(ApiError::invalid_policy(format!(
                "consumer delivery policy is deliver {dp}, but optional start {start} is also set"
            )))
        };
        let not_set = |dp: &str, what: &str| {
            Err(ApiError::invalid_policy(format!(
                "consumer delivery policy is deliver {dp}, but optional {what} is not set"
            )))
        };
        let (seq, time) = (self.opt_start_seq > 0, self.opt_start_time.is_some());
        let name = match self.deliver_policy {
            DeliverPolicy::All => "all",
            DeliverPolicy::Last => "last",
            DeliverPolicy::New => "new",
            DeliverPolicy::LastPerSubject => "last per subject",
            DeliverPolicy::ByStartSequence => {
                if !seq {
                    return not_set("by start sequence", "start sequence");
                }
                if time {
                    return bad_start("by start sequence", "time");
                }
                return Ok(());
            }
            DeliverPolicy::ByStartTime => {
                if !time {
                    return not_set("by start time", "start time");
                }
                if seq {
                    return bad_start("by start time", "start sequence");
                }
                return match self
                    .opt_start_time
                    .as_deref()
                    .and_then(crate::jetstream::time::parse)
                {
                    Some(_) => Ok(()),
                    None => Err(ApiError::invalid_json()),
                };
            }
        };
        if seq {
            return bad_start(name, "sequence");
        }
        if time {
            return bad_start(name, "time");
        }
        if self.deliver_policy == DeliverPolicy::LastPerSubject && self.filters().is_empty() {
            return not_set("last per subject", "filter subject");
        }
        Ok(())
    }

    fn check_retention(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        if stream.retention != Retention::WorkQueue {
            return Ok(());
        }
        if !self.is_push() && self.ack_policy == AckPolicy::None {
            return Err(ApiError::pull_requires_ack());
        }
        if self.ack_policy != AckPolicy::Explicit {
            return Err(ApiError::wq_requires_explicit_ack());
        }
        if self.deliver_policy != DeliverPolicy::All {
            return Err(ApiError::wq_not_deliver_all());
        }
        Ok(())
    }

    fn fill_defaults(
        &mut self,
        stream: &StreamConfig,
        limits: &JetStreamLimits,
        account: &AccountJetStreamLimits,
    ) {
        let acks = self.ack_policy != AckPolicy::None;
        if !self.is_push() && self.max_waiting == 0 {
            self.max_waiting = DEFAULT_MAX_WAITING;
        }
        if self.ack_wait == 0 && acks {
            self.ack_wait = DEFAULT_ACK_WAIT;
        }
        if self.max_deliver == 0 {
            self.max_deliver = -1;
        }
        if let Some(first) = self.backoff.first() {
            self.ack_wait = *first;
        }
        if self.max_ack_pending == 0 {
            self.max_ack_pending = stream.consumer_limits.max_ack_pending;
        }
        if self.inactive_threshold == 0 {
            self.inactive_threshold = stream.consumer_limits.inactive_threshold;
        }
        if acks && self.max_ack_pending == 0 {
            // The smallest of nats-server's default and the server's and account's limits.
            self.max_ack_pending = [limits.max_ack_pending, account.max_ack_pending]
                .into_iter()
                .filter(|&limit| limit > 0)
                .fold(DEFAULT_MAX_ACK_PENDING, i64::min);
        }
        if !self.is_push() && self.max_batch == 0 {
            self.max_batch = limits.max_request_batch;
        }
    }
}
