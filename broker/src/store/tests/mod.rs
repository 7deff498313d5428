//! Store tests, written once and run over both backends (`memory::…` and `file::…`), plus the
//! file store's own: recovery, torn tails, and a property test against a model.

mod disk_full;
mod file;
mod limits;
mod model;
mod ops;
mod property;
mod purge;
mod timestamps;
mod torn_tail;

use std::path::PathBuf;

use tempfile::TempDir;

use super::{FileConfig, Limits, Store, StoredMsg};

/// The file store settings of the tests: small segments, so that they cross boundaries.
pub(super) fn config() -> FileConfig {
    FileConfig {
        segment_size: 4096,
        ..FileConfig::default()
    }
}

/// Which backend a shared test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Memory,
    File,
}

/// A store under test, with the directory of a file store so it can be reopened.
pub(super) struct Fixture {
    pub store: Store,
    pub dir: Option<TempDir>,
    pub config: FileConfig,
    clock: i64,
}

impl Fixture {
    /// A fresh store with small segments, so tests cross segment boundaries.
    pub fn new(backend: Backend, limits: Limits) -> Fixture {
        Fixture::with_config(backend, limits, config())
    }

    pub fn with_config(backend: Backend, limits: Limits, config: FileConfig) -> Fixture {
        let (store, dir) = match backend {
            Backend::Memory => (Store::memory(limits), None),
            Backend::File => {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = Store::open_file(dir.path(), config, limits).expect("open");
                (store, Some(dir))
            }
        };
        Fixture {
            store,
            dir,
            config,
            clock: 1_000,
        }
    }

    /// The stream directory of a file store.
    pub fn path(&self) -> PathBuf {
        self.dir
            .as_ref()
            .expect("a file store")
            .path()
            .to_path_buf()
    }

    /// Closes and opens a file store again (nothing for memory); checks nothing was lost.
    pub fn reopen(&mut self) {
        let Some(dir) = &self.dir else { return };
        let before = self.store.state();
        let limits = self.store.limits().clone();
        self.store.sync().expect("sync");
        self.store = Store::open_file(dir.path(), self.config, limits).expect("reopen");
        assert_eq!(self.store.state(), before, "state survives reopen");
    }

    /// Appends a payload without headers at the next tick of the test clock.
    pub fn put(&mut self, subject: &str, payload: &[u8]) -> u64 {
        self.clock += 1;
        self.store
            .append(subject, None, payload, self.clock)
            .expect("append")
    }

    /// The test clock's last tick.
    pub fn now(&self) -> i64 {
        self.clock
    }

    /// Moves the test clock.
    pub fn advance(&mut self, nanos: i64) {
        self.clock += nanos;
    }

    /// The message at `seq`, which must exist.
    pub fn msg(&self, seq: u64) -> StoredMsg {
        self.store.get(seq).expect("get").expect("message present")
    }

    /// The sequences stored, in order.
    pub fn seqs(&self) -> Vec<u64> {
        let mut seqs = Vec::new();
        let mut next = 0;
        while let Some(m) = self.store.get_next(next, None).expect("get_next") {
            seqs.push(m.seq);
            next = m.seq + 1;
        }
        seqs
    }
}

/// Runs each listed `fn name(backend: Backend)` as `memory::name` and `file::name`.
macro_rules! over_both_backends {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $name() { super::$module::$name(super::Backend::Memory) } )*
        }
        mod file_backend {
            $( #[test] fn $name() { super::$module::$name(super::Backend::File) } )*
        }
    };
}

over_both_backends!(
    ops::sequences_start_at_one_and_messages_read_back,
    ops::empty_headers_are_stored_as_none,
    ops::subjects_nats_server_stores_are_kept_and_only_unroutable_ones_refused,
    ops::last_by_subject_follows_appends_and_deletes,
    ops::next_by_subject_honours_wildcards,
    ops::interior_deletes_leave_gaps_and_first_deletes_move_first_seq,
    ops::deleting_everything_empties_the_stream_but_keeps_last_seq,
    ops::subjects_state_counts_per_subject_with_filters,
    ops::num_pending_counts_from_a_sequence_with_filters,
    ops::bytes_count_subject_headers_and_payload_plus_overhead,
    ops::a_new_store_is_empty_at_sequence_zero,
    limits::max_msgs_with_discard_old_evicts_the_oldest,
    limits::max_msgs_with_discard_new_refuses_and_names_the_limit,
    limits::max_bytes_with_discard_old_evicts_until_under,
    limits::max_bytes_with_discard_new_refuses_on_reaching_the_limit,
    limits::per_subject_limit_evicts_that_subjects_oldest_even_with_discard_new,
    limits::discard_new_per_subject_refuses_at_the_subject_limit,
    limits::discard_new_lets_a_replacing_message_past_max_msgs,
    limits::max_msg_size_refuses_large_headers_plus_payload,
    limits::expire_removes_messages_older_than_max_age_and_says_when_next,
    limits::expire_stops_at_the_first_young_message,
    limits::shrinking_limits_enforces_them_at_once,
    purge::purge_all_moves_first_seq_and_keeps_last_seq,
    purge::purge_up_to_a_sequence_is_exclusive,
    purge::purge_past_the_end_moves_the_next_sequence,
    purge::purge_keep_leaves_the_newest,
    purge::purge_by_subject_filter_with_keep_and_sequence,
    purge::purge_with_both_sequence_and_keep_is_refused,
    purge::sequences_are_never_reused_after_purge,
    timestamps::expiry_crosses_segments_and_survives_reopen,
    timestamps::expiry_stops_at_a_young_message_even_when_later_ones_are_old,
    timestamps::first_ts_follows_every_removal_from_the_front,
);
