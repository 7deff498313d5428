//! A stream's configuration as the API carries it, with nats-server's defaults, validation and
//! rules for updates.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jetstream::errors::ApiError;
use crate::jetstream::subjects::{collide, is_subset};
use crate::proto::subject::is_valid_subject;
use crate::store::{Discard as StoreDiscard, Limits};

pub(crate) use super::extras::{RePublish, StreamSource, SubjectTransformConfig};

/// Longest stream or consumer name.
pub(crate) const MAX_NAME_LEN: usize = 255;
/// Longest description.
const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// Most bytes of metadata keys and values together.
const MAX_METADATA_LEN: usize = 128 * 1024;
/// The duplicate window a stream gets when it sets none: two minutes.
pub(crate) const DEFAULT_DUPLICATE_WINDOW: i64 = 120_000_000_000;
const MIN_WINDOW_NANOS: i64 = 100_000_000;

/// When messages leave the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Retention {
    /// Kept until a limit removes them.
    #[default]
    Limits,
    /// Kept while some consumer has not acknowledged them.
    Interest,
    /// Removed once a consumer acknowledges them.
    #[serde(rename = "workqueue")]
    WorkQueue,
}

/// What a full stream does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Discard {
    /// Evict the oldest.
    #[default]
    Old,
    /// Refuse the new.
    New,
}

/// Where messages live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Storage {
    /// In the segmented file store.
    #[default]
    File,
    /// In memory only.
    Memory,
}

/// Defaults for the stream's consumers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ConsumerLimits {
    /// Inactive threshold for ephemeral consumers, nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    /// Largest max_ack_pending a consumer may have.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
}

/// `StreamConfig`, with nats-server's JSON names. Durations are nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct StreamConfig {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub retention: Retention,
    pub max_consumers: i64,
    pub max_msgs: i64,
    pub max_bytes: i64,
    pub max_age: i64,
    pub max_msgs_per_subject: i64,
    pub max_msg_size: i64,
    pub discard: Discard,
    pub storage: Storage,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub duplicate_window: i64,
    pub compression: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub first_seq: u64,
    pub allow_direct: bool,
    pub mirror_direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    pub sealed: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup_hdrs: bool,
    pub consumer_limits: ConsumerLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub sources: Vec<StreamSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransformConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<serde_json::Value>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            name: String::new(),
            description: String::new(),
            subjects: Vec::new(),
            retention: Retention::Limits,
            max_consumers: 0,
            max_msgs: 0,
            max_bytes: 0,
            max_age: 0,
            max_msgs_per_subject: 0,
            max_msg_size: 0,
            discard: Discard::Old,
            storage: Storage::File,
            num_replicas: 0,
            no_ack: false,
            duplicate_window: 0,
            compression: String::new(),
            first_seq: 0,
            allow_direct: false,
            mirror_direct: false,
            discard_new_per_subject: false,
            sealed: false,
            deny_delete: false,
            deny_purge: false,
            allow_rollup_hdrs: false,
            consumer_limits: ConsumerLimits::default(),
            metadata: None,
            mirror: None,
            sources: Vec::new(),
            republish: None,
            subject_transform: None,
            placement: None,
        }
    }
}

/// `null` as an empty list, as Go reads it.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Whether `name` can name a stream or consumer: not empty, no `.`, `*`, `>` or whitespace.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace())
}

impl StreamConfig {
    /// Fills in nats-server's defaults and checks the configuration on its own (other streams
    /// are checked by the caller).
    pub fn normalize(mut self) -> Result<StreamConfig, ApiError> {
        if !is_valid_name(&self.name) {
            return Err(ApiError::invalid_config(
                "stream name is required and can not contain '.', '*', '>'",
            ));
        }
        if self.name.contains('/') || self.name.contains('\\') {
            return Err(ApiError::stream_name_path_separators());
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(ApiError::invalid_config(format!(
                "stream name is too long, maximum allowed is {MAX_NAME_LEN}"
            )));
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(ApiError::invalid_config(format!(
                "stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
            )));
        }
        let metadata_len: usize = self
            .metadata
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if metadata_len > MAX_METADATA_LEN {
            return Err(ApiError::invalid_config(format!(
                "stream metadata exceeds maximum size of {MAX_METADATA_LEN} bytes"
            )));
        }
        self.fill_defaults()?;
        self.check_windows()?;
        self.check_mirror_and_sources()?;
        self.check_subjects()?;
        self.check_republish()?;
        Ok(self)
    }

    fn fill_defaults(&mut self) -> Result<(), ApiError> {
        if self.num_replicas == 0 {
            self.num_replicas = 1;
        }
        if self.num_replicas < 0 {
            return Err(ApiError::invalid_config(
                "replicas count cannot be negative",
            ));
        }
        if self.num_replicas > 5 {
            return Err(ApiError::invalid_config("maximum replicas is 5"));
        }
        for limit in [
            &mut self.max_msgs,
            &mut self.max_msgs_per_subject,
            &mut self.max_bytes,
            &mut self.max_msg_size,
            &mut self.max_consumers,
        ] {
            if *limit == 0 {
                *limit = -1;
            }
        }
        if self.compression.is_empty() {
            self.compression = "none".into();
        }
        if self.compression != "none" && self.compression != "s2" {
            return Err(ApiError::invalid_config(format!(
                "unknown compression {:?}",
                self.compression
            )));
        }
        // A mirror keeps no duplicate window: it stores what its origin stored.
        if self.duplicate_window == 0 && self.mirror.is_none() {
            self.duplicate_window = if self.max_age != 0 && self.max_age < DEFAULT_DUPLICATE_WINDOW
            {
                self.max_age
            } else {
                DEFAULT_DUPLICATE_WINDOW
            };
        }
        Ok(())
    }

    fn check_windows(&self) -> Result<(), ApiError> {
        if self.max_age < 0 {
            return Err(ApiError::invalid_config("max age can not be negative"));
        }
        if self.max_age > 0 && self.max_age < MIN_WINDOW_NANOS {
            return Err(ApiError::invalid_config("max age needs to be >= 100ms"));
        }
        if self.duplicate_window < 0 {
            return Err(ApiError::invalid_config(
                "duplicates window can not be negative",
            ));
        }
        if self.max_age != 0 && self.duplicate_window > self.max_age {
            return Err(ApiError::invalid_config(
                "duplicates window can not be larger then max age",
            ));
        }
        if self.duplicate_window > 0 && self.duplicate_window < MIN_WINDOW_NANOS {
            return Err(ApiError::invalid_config(
                "duplicates window needs to be >= 100ms",
            ));
        }
        if self.deny_purge && self.allow_rollup_hdrs {
            return Err(ApiError::invalid_config(
                "roll-ups require the purge permission",
            ));
        }
        if self.discard_new_per_subject {
            if self.discard != Discard::New {
                return Err(ApiError::invalid_config(
                    "discard new per subject requires discard new policy to be set",
                ));
            }
            if self.max_msgs_per_subject <= 0 {
                return Err(ApiError::invalid_config(
                    "discard new per subject requires max msgs per subject > 0",
                ));
            }
        }
        Ok(())
    }

    fn check_subjects(&mut self) -> Result<(), ApiError> {
        if self.subjects.is_empty() {
            if self.mirror.is_none() && self.sources.is_empty() {
                self.subjects.push(self.name.clone());
            }
        } else if self.mirror.is_some() {
            return Err(ApiError::mirror_with_subjects());
        }
        for (i, subject) in self.subjects.iter().enumerate() {
            if !is_valid_subject(subject.as_bytes()) {
                return Err(ApiError::invalid_config("invalid subject"));
            }
            if self.subjects[..i].contains(subject) {
                return Err(ApiError::invalid_config("duplicate subjects detected"));
            }
            if subject == ">" && !self.no_ack {
                return Err(ApiError::invalid_config(
                    "capturing all subjects requires no-ack to be true",
                ));
            }
            let js_api = is_subset(subject, "$JS.>") || is_subset(subject, "$JSC.>");
            if !self.no_ack && js_api && !is_subset(subject, "$JS.EVENT.>") {
                return Err(ApiError::invalid_config(
                    "subjects that overlap with jetstream api require no-ack to be true",
                ));
            }
            if !self.no_ack && is_subset(subject, "$SYS.>") && !is_subset(subject, "$SYS.ACCOUNT.>")
            {
                return Err(ApiError::invalid_config(
                    "subjects that overlap with system api require no-ack to be true",
                ));
            }
        }
        for a in &self.subjects {
            if let Some(b) = self.subjects.iter().find(|b| *b != a && collide(a, b)) {
                return Err(ApiError::invalid_config(format!(
                    "subject {a:?} overlaps with {b:?}"
                )));
            }
        }
        Ok(())
    }

    /// Checks that `self` may replace `old` (stream update); both normalized. nats-server
    /// refuses these as an invalid configuration (500, 10052).
    pub fn check_update(&self, old: &StreamConfig) -> Result<(), ApiError> {
        let refuse = |what: &str| Err(ApiError::invalid_config(what));
        if self.num_replicas != old.num_replicas && self.num_replicas > 1 {
            return Err(ApiError::replicas_not_supported());
        }
        if self.max_consumers != old.max_consumers {
            return refuse("stream configuration update can not change MaxConsumers");
        }
        if self.storage != old.storage {
            return refuse("stream configuration update can not change storage type");
        }
        // Limits and interest may change into each other; a work queue may not.
        if self.retention != old.retention
            && (self.retention == Retention::WorkQueue || old.retention == Retention::WorkQueue)
        {
            return refuse(
                "stream configuration update can not change retention policy to/from workqueue",
            );
        }
        if old.sealed && !self.sealed {
            return refuse("stream configuration update can not unseal a sealed stream");
        }
        if old.deny_delete && !self.deny_delete {
            return refuse("stream configuration update can not cancel deny message deletes");
        }
        if old.deny_purge && !self.deny_purge {
            return refuse("stream configuration update can not cancel deny purge");
        }
        if self.mirror != old.mirror {
            return Err(ApiError::mirror_not_updatable());
        }
        if self.first_seq != old.first_seq && self.first_seq != 0 {
            return Err(ApiError::stream_update(
                "stream configuration update can not change first sequence",
            ));
        }
        Ok(())
    }

    /// The limits the store enforces.
    pub fn limits(&self) -> Limits {
        let positive = |n: i64| u64::try_from(n).ok().filter(|&n| n > 0);
        Limits {
            max_msgs: positive(self.max_msgs),
            max_bytes: positive(self.max_bytes),
            max_age: positive(self.max_age).map(Duration::from_nanos),
            max_msgs_per_subject: positive(self.max_msgs_per_subject),
            max_msg_size: positive(self.max_msg_size),
            discard: match self.discard {
                Discard::Old => StoreDiscard::Old,
                Discard::New => StoreDiscard::New,
            },
            discard_new_per_subject: self.discard_new_per_subject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<StreamConfig, ApiError> {
        serde_json::from_str::<StreamConfig>(json)
            .expect("valid JSON")
            .normalize()
    }

    #[test]
    fn a_minimal_config_gets_nats_server_defaults() {
        let c = config(r#"{"name":"ORDERS"}"#).unwrap();
        assert_eq!(c.subjects, ["ORDERS"]);
        assert_eq!((c.max_msgs, c.max_bytes, c.max_msg_size), (-1, -1, -1));
        assert_eq!(c.duplicate_window, DEFAULT_DUPLICATE_WINDOW);
        assert_eq!(c.num_replicas, 1);
        assert_eq!(c.compression, "none");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["retention"], "limits");
        assert_eq!(json["storage"], "file");
        assert_eq!(json["consumer_limits"], serde_json::json!({}));
    }

    #[test]
    fn a_short_max_age_bounds_the_duplicate_window() {
        let c = config(r#"{"name":"S","max_age":1000000000}"#).unwrap();
        assert_eq!(c.duplicate_window, 1_000_000_000);
        let e = config(r#"{"name":"S","max_age":1000000000,"duplicate_window":2000000000}"#);
        assert_eq!(e.unwrap_err().err_code, 10052);
    }

    #[test]
    fn bad_names_and_subjects_are_refused() {
        assert_eq!(config(r#"{"name":"a.b"}"#).unwrap_err().err_code, 10052);
        assert_eq!(config(r#"{"name":"a/b"}"#).unwrap_err().err_code, 10128);
        let overlap = config(r#"{"name":"S","subjects":["a.*","a.b"]}"#).unwrap_err();
        assert_eq!(overlap.description, r#"subject "a.*" overlaps with "a.b""#);
        assert!(config(r#"{"name":"S","subjects":["a..b"]}"#).is_err());
        assert!(config(r#"{"name":"S","subjects":[">"]}"#).is_err());
    }
}
