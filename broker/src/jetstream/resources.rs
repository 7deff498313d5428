//! The server's JetStream resources, `max_memory` and `max_storage`, set and enforced as
//! nats-server does:
//! - each is configured (`jetstream { max_memory_store, max_file_store }`) or else sized from
//!   the machine at start-up: 75% of the system's memory, 75% of the disk space available to
//!   the store directory (256 MiB and 1 TiB when the system does not say);
//! - a stream whose `max_bytes` (1 byte when it has none) would take the streams' reservations
//!   of its storage past the limit is refused: 10047 for files, 10028 for memory;
//! - a publish to a stream whose storage already holds more than the limit is refused with
//!   503 "insufficient resources" (10023). The message that crosses the limit is stored.
//!
//! Usage is counted by the stores themselves ([`UsageGauge`]), so a publish reads one number.

use std::path::Path;

use super::errors::ApiError;
use super::stream::Storage;
use crate::store::UsageGauge;

/// nats-server's `JetStreamMaxMemDefault`: memory storage when the system memory is unknown.
const MAX_MEMORY_FALLBACK: i64 = 256 * 1024 * 1024;
/// nats-server's `JetStreamMaxStoreDefault`: file storage when the free disk is unknown.
const MAX_STORAGE_FALLBACK: i64 = 1024 * 1024 * 1024 * 1024;

/// The server-wide limits and what the streams of every account use of them, and what one
/// account's streams use ([`Resources::for_account`]).
#[derive(Debug, Clone)]
pub struct Resources {
    /// Most bytes in memory streams (`max_memory` in `/jsz`).
    pub max_memory: i64,
    /// Most bytes in file streams (`max_storage` in `/jsz`).
    pub max_storage: i64,
    memory: UsageGauge,
    storage: UsageGauge,
    /// One account's share of `memory` and `storage`: its stores count here, and so there.
    account_memory: UsageGauge,
    account_storage: UsageGauge,
}

impl Resources {
    /// The configured limits, or those sized from the machine; `store_dir` is where file
    /// streams live (it need not exist yet). A negative limit counts as not configured, as
    /// on nats-server.
    pub fn new(store_dir: &Path, max_memory: Option<i64>, max_storage: Option<i64>) -> Resources {
        let configured = |n: Option<i64>| n.filter(|&n| n >= 0);
        let (memory, storage) = (UsageGauge::new(), UsageGauge::new());
        Resources {
            max_memory: configured(max_memory).unwrap_or_else(default_max_memory),
            max_storage: configured(max_storage).unwrap_or_else(|| default_max_storage(store_dir)),
            account_memory: memory.child(),
            account_storage: storage.child(),
            memory,
            storage,
        }
    }

    /// The same server-wide limits and usage, with a count of one account's own.
    pub fn for_account(&self) -> Resources {
        Resources {
            account_memory: self.memory.child(),
            account_storage: self.storage.child(),
            ..self.clone()
        }
    }

    /// Fixed limits, for tests.
    #[cfg(test)]
    pub fn fixed(max_memory: i64, max_storage: i64) -> Resources {
        Resources::new(Path::new("/"), Some(max_memory), Some(max_storage))
    }

    /// Where the stores of `storage` count their bytes: the account's gauge, which counts
    /// into the server's.
    pub fn gauge(&self, storage: Storage) -> UsageGauge {
        match storage {
            Storage::Memory => self.account_memory.clone(),
            Storage::File => self.account_storage.clone(),
        }
    }

    /// The bytes of `storage` that the account's streams hold.
    pub fn account_used(&self, storage: Storage) -> u64 {
        self.gauge(storage).get()
    }

    fn server_gauge(&self, storage: Storage) -> &UsageGauge {
        match storage {
            Storage::Memory => &self.memory,
            Storage::File => &self.storage,
        }
    }

    fn max(&self, storage: Storage) -> i64 {
        match storage {
            Storage::Memory => self.max_memory,
            Storage::File => self.max_storage,
        }
    }

    /// Whether streams of `storage` already hold more than the limit: publishes are refused.
    pub fn exceeded(&self, storage: Storage) -> bool {
        let used = i64::try_from(self.server_gauge(storage).get()).unwrap_or(i64::MAX);
        used > self.max(storage)
    }

    /// Refuses a stream of `storage` reserving `max_bytes` (negative: none) when `reserved`
    /// bytes are already reserved by streams of that storage.
    pub fn check_reservation(
        &self,
        storage: Storage,
        max_bytes: i64,
        reserved: i64,
    ) -> Result<(), ApiError> {
        let wanted = if max_bytes < 0 { 1 } else { max_bytes };
        if reserved.saturating_add(wanted) <= self.max(storage) {
            return Ok(());
        }
        Err(match storage {
            Storage::Memory => ApiError::memory_exceeded(),
            Storage::File => ApiError::storage_exceeded(),
        })
    }
}

/// 75% of the system's memory, as nats-server (which also honours `GOMEMLIMIT`, a Go setting).
fn default_max_memory() -> i64 {
    // SAFETY: sysinfo only writes into the struct it is given.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return MAX_MEMORY_FALLBACK;
    }
    let total = (info.totalram as u128) * u128::from(info.mem_unit.max(1));
    match i64::try_from(total) {
        Ok(total) if total > 0 => total / 4 * 3,
        _ => MAX_MEMORY_FALLBACK,
    }
}

/// 75% of the space available to unprivileged users on the file system of `dir` (of its
/// nearest existing ancestor, when it is not created yet), as nats-server.
fn default_max_storage(dir: &Path) -> i64 {
    let Some(existing) = dir.ancestors().find(|d| d.exists()) else {
        return MAX_STORAGE_FALLBACK;
    };
    let Ok(path) = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()) else {
        return MAX_STORAGE_FALLBACK;
    };
    // SAFETY: statfs reads a NUL-terminated path and only writes into the struct it is given.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut fs) } != 0 {
        return MAX_STORAGE_FALLBACK;
    }
    let available = (fs.f_bavail as u128) * (fs.f_bsize as u128);
    i64::try_from(available / 4 * 3).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_limits_win_and_negative_ones_are_sized_from_the_machine() {
        let r = Resources::new(Path::new("/"), Some(10), Some(0));
        assert_eq!((r.max_memory, r.max_storage), (10, 0));
        let r = Resources::new(Path::new("/no/such/dir/yet"), Some(-1), None);
        assert!(r.max_memory > 0 && r.max_storage > 0, "{r:?}");
    }

    #[test]
    fn publishes_stop_only_once_usage_is_past_the_limit() {
        let r = Resources::fixed(100, 100);
        let gauge = r.gauge(Storage::File);
        gauge.add(100);
        assert!(!r.exceeded(Storage::File), "reaching it is allowed");
        gauge.add(1);
        assert!(r.exceeded(Storage::File));
        assert!(!r.exceeded(Storage::Memory), "each storage counts alone");
    }

    #[test]
    fn reservations_count_max_bytes_or_one_byte() {
        let r = Resources::fixed(10, 100);
        assert!(r.check_reservation(Storage::File, 60, 40).is_ok());
        let refused = r.check_reservation(Storage::File, 61, 40).unwrap_err();
        assert_eq!((refused.code, refused.err_code), (500, 10047));
        assert!(r.check_reservation(Storage::File, -1, 99).is_ok());
        assert!(r.check_reservation(Storage::File, -1, 100).is_err());
        let refused = r.check_reservation(Storage::Memory, 11, 0).unwrap_err();
        assert_eq!(refused.err_code, 10028);
    }
}
