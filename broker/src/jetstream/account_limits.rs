//! An account's own JetStream limits (its config block or account JWT), enforced where and as
//! nats-server enforces them:
//! - a stream config (create and update) must set `max_bytes` when the account requires it
//!   (10113) and keep it within the account's per-stream cap of its storage (10122);
//! - a new stream must leave the account below `max_streams` (10027), set no `max_consumers`
//!   above the account's (10026), and fit its `max_bytes` (1 byte when none) beside the other
//!   streams' reservations within the account's `max_memory` / `max_storage` (10028 / 10047);
//! - a publish that would take what the account's streams of that storage hold past its
//!   `max_memory` / `max_storage`, or past the per-stream cap (which nats-server compares with
//!   the account's whole usage), is refused with 400 10002;
//! - a stream update reserves what its `max_bytes` grows by ([`JetStream::check_update_reservation`]);
//! - consumers: see `api/consumers.rs` (`max_consumers` per stream) and the consumer config
//!   (`max_ack_pending` default and ceiling).

use super::errors::ApiError;
use super::stream::{Storage, StreamConfig};
use super::JetStream;
use crate::options::AccountJetStreamLimits;

/// The account's per-stream byte cap for `storage`, when it has one.
fn stream_cap(limits: &AccountJetStreamLimits, storage: Storage) -> Option<i64> {
    let cap = match storage {
        Storage::Memory => limits.memory_max_stream_bytes,
        Storage::File => limits.storage_max_stream_bytes,
    };
    (cap > 0).then_some(cap)
}

/// The account's limit on what its streams of `storage` hold, when it has one.
fn storage_limit(limits: &AccountJetStreamLimits, storage: Storage) -> Option<i64> {
    let max = match storage {
        Storage::Memory => limits.max_memory,
        Storage::File => limits.max_storage,
    };
    (max >= 0).then_some(max)
}

/// `max_bytes` against the account's rules, for a stream being created or updated.
pub(crate) fn check_stream_config(
    limits: &AccountJetStreamLimits,
    config: &StreamConfig,
) -> Result<(), ApiError> {
    if limits.max_bytes_required && config.max_bytes <= 0 {
        return Err(ApiError::stream_max_bytes_required());
    }
    match stream_cap(limits, config.storage) {
        Some(cap) if config.max_bytes > cap => Err(ApiError::stream_max_stream_bytes_exceeded()),
        _ => Ok(()),
    }
}

/// A new stream beside `streams` others, whose `max_bytes` of the same storage add up to
/// `reserved`.
pub(crate) fn check_new_stream(
    limits: &AccountJetStreamLimits,
    config: &StreamConfig,
    streams: usize,
    reserved: i64,
) -> Result<(), ApiError> {
    if limits.max_streams > 0 && streams as i64 >= limits.max_streams {
        return Err(ApiError::max_streams());
    }
    let wanted = if config.max_bytes < 0 {
        1
    } else {
        config.max_bytes
    };
    check_reservation(limits, config, wanted, reserved)
}

/// A stream update from `old` to `new`: only what `max_bytes` grows by is reserved, beside the
/// other streams' reservations and the stream's old `max_bytes` (`others` is what the other
/// streams of its storage reserve).
pub(crate) fn check_update(
    limits: &AccountJetStreamLimits,
    old: &StreamConfig,
    new: &StreamConfig,
    others: i64,
) -> Result<(), ApiError> {
    let growth = new.max_bytes.saturating_sub(old.max_bytes).max(0);
    check_reservation(limits, new, growth, others.saturating_add(old.max_bytes))
}

/// The account's `max_consumers` against the stream's, and `wanted` more bytes beside
/// `reserved` against its storage limit.
fn check_reservation(
    limits: &AccountJetStreamLimits,
    config: &StreamConfig,
    wanted: i64,
    reserved: i64,
) -> Result<(), ApiError> {
    if config.max_consumers > 0
        && limits.max_consumers > 0
        && config.max_consumers > limits.max_consumers
    {
        return Err(ApiError::max_consumers());
    }
    match storage_limit(limits, config.storage) {
        Some(max) if reserved.saturating_add(wanted) > max => Err(match config.storage {
            Storage::Memory => ApiError::memory_exceeded(),
            Storage::File => ApiError::storage_exceeded(),
        }),
        _ => Ok(()),
    }
}

/// Whether a message of `size` bytes fits beside the `used` bytes the account's streams of
/// `storage` hold.
pub(crate) fn admits(
    limits: &AccountJetStreamLimits,
    storage: Storage,
    used: u64,
    size: u64,
) -> bool {
    let total = i64::try_from(used.saturating_add(size)).unwrap_or(i64::MAX);
    let within = |cap: Option<i64>| cap.is_none_or(|cap| total <= cap);
    within(stream_cap(limits, storage)) && within(storage_limit(limits, storage))
}

/// Whether the account has any limit a publish to `storage` must be checked against.
pub(crate) fn limits_publishes(limits: &AccountJetStreamLimits, storage: Storage) -> bool {
    stream_cap(limits, storage).is_some() || storage_limit(limits, storage).is_some()
}

/// The `reserved_memory` / `reserved_storage` of the account info: the streams' `max_bytes`
/// added up as nats-server 2.10 does on a single server, a stream without `max_bytes` (-1)
/// included, in unsigned 64-bit arithmetic that wraps.
pub(crate) fn reported_reservation(max_bytes: impl Iterator<Item = i64>) -> u64 {
    max_bytes.fold(0u64, |sum, n| sum.wrapping_add(n as u64))
}

impl JetStream {
    /// What the other streams of `config`'s storage reserve: their `max_bytes`, where set.
    pub(super) fn reserved_by_others(&self, config: &StreamConfig) -> i64 {
        self.streams
            .read()
            .values()
            .filter(|s| s.name != config.name)
            .map(|s| s.config())
            .filter(|c| c.storage == config.storage)
            .map(|c| c.max_bytes.max(0))
            .sum()
    }

    /// A stream update's new reservation, against the account's limits and the server's:
    /// only what `max_bytes` grows by is added to what is reserved, as nats-server does.
    pub fn check_update_reservation(
        &self,
        old: &StreamConfig,
        new: &StreamConfig,
    ) -> Result<(), ApiError> {
        let others = self.reserved_by_others(new);
        check_update(&self.ctx.config.account, old, new, others)?;
        let growth = new.max_bytes.saturating_sub(old.max_bytes).max(0);
        let resources = &self.ctx.config.resources;
        resources.check_reservation(new.storage, growth, others + old.max_bytes.max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AccountJetStreamLimits {
        AccountJetStreamLimits {
            max_memory: 500,
            max_storage: 1000,
            max_streams: 2,
            max_consumers: 3,
            max_ack_pending: 50,
            memory_max_stream_bytes: 300,
            storage_max_stream_bytes: -1,
            max_bytes_required: false,
            tiered: false,
        }
    }

    fn stream(storage: Storage, max_bytes: i64) -> StreamConfig {
        let mut config: StreamConfig = serde_json::from_value(serde_json::json!({
            "name": "S", "subjects": ["s"]
        }))
        .unwrap();
        config.storage = storage;
        config.max_bytes = max_bytes;
        config
    }

    #[test]
    fn stream_configs_need_max_bytes_when_required_and_within_the_cap() {
        let mut l = limits();
        assert!(check_stream_config(&l, &stream(Storage::Memory, 300)).is_ok());
        let over = check_stream_config(&l, &stream(Storage::Memory, 301));
        assert_eq!(over.unwrap_err().err_code, 10122);
        assert!(check_stream_config(&l, &stream(Storage::File, 1 << 40)).is_ok());
        l.max_bytes_required = true;
        let none = check_stream_config(&l, &stream(Storage::File, -1));
        assert_eq!(none.unwrap_err().err_code, 10113);
    }

    #[test]
    fn new_streams_count_and_reserve_against_the_account() {
        let l = limits();
        assert!(check_new_stream(&l, &stream(Storage::File, -1), 1, 999).is_ok());
        let full = check_new_stream(&l, &stream(Storage::File, -1), 1, 1000);
        assert_eq!(full.unwrap_err().err_code, 10047);
        let mem = check_new_stream(&l, &stream(Storage::Memory, 501), 0, 0);
        assert_eq!(mem.unwrap_err().err_code, 10028);
        let many = check_new_stream(&l, &stream(Storage::File, 1), 2, 0);
        assert_eq!(many.unwrap_err().err_code, 10027);
        let mut consumers = stream(Storage::File, 1);
        consumers.max_consumers = 4;
        let err = check_new_stream(&l, &consumers, 0, 0).unwrap_err();
        assert_eq!(err.err_code, 10026);
        let none = AccountJetStreamLimits::default();
        assert!(check_new_stream(&none, &consumers, 1000, i64::MAX).is_ok());
    }

    #[test]
    fn an_update_reserves_only_what_max_bytes_grows_by() {
        let l = limits();
        let (old, grown) = (stream(Storage::File, 400), stream(Storage::File, 600));
        assert!(
            check_update(&l, &old, &grown, 400).is_ok(),
            "400 + 400 + 200"
        );
        let err = check_update(&l, &old, &grown, 401).unwrap_err();
        assert_eq!(err.err_code, 10047);
        let shrunk = stream(Storage::File, 100);
        assert!(
            check_update(&l, &old, &shrunk, 600).is_ok(),
            "shrinking reserves nothing"
        );
        let mut more = stream(Storage::File, 400);
        more.max_consumers = 4;
        assert_eq!(
            check_update(&l, &old, &more, 0).unwrap_err().err_code,
            10026
        );
    }

    #[test]
    fn publishes_stop_before_the_usage_would_pass_a_limit() {
        let l = limits();
        assert!(admits(&l, Storage::File, 900, 100));
        assert!(!admits(&l, Storage::File, 900, 101));
        assert!(
            admits(&l, Storage::Memory, 200, 100),
            "the 300 byte cap is reached, not passed"
        );
        assert!(!admits(&l, Storage::Memory, 200, 101));
        assert!(limits_publishes(&l, Storage::File));
        let none = AccountJetStreamLimits::default();
        assert!(!limits_publishes(&none, Storage::File));
        assert!(admits(&none, Storage::File, u64::MAX, 1));
    }

    #[test]
    fn the_reported_reservation_wraps_as_nats_server_reports_it() {
        assert_eq!(reported_reservation([1000, -1].into_iter()), 999);
        assert_eq!(reported_reservation([-1].into_iter()), u64::MAX);
        assert_eq!(reported_reservation(std::iter::empty()), 0);
    }
}
