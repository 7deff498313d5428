//! Background work of a stream: group commit (one fsync acknowledges every publish that
//! arrived meanwhile) and maintenance (max_age expiry, periodic fsync).

use std::sync::Arc;
use std::time::Duration;

use super::ingest::store_error;
use super::Stream;
use crate::jetstream::errors::ApiError;
use crate::jetstream::time::now_nanos;
use crate::store::{StoreError, SyncPolicy};

/// How often the maintenance task syncs a file stream when the policy gives no interval: the
/// messages published without a reply subject (fire and forget) are on disk within this.
const BACKGROUND_SYNC: Duration = Duration::from_secs(1);
/// Longest the maintenance task sleeps when nothing is due.
const IDLE_CHECK: Duration = Duration::from_secs(60);

/// Group commit: waits for PubAcks to be queued, syncs once for all of them, sends them.
pub(super) async fn run(stream: Arc<Stream>) {
    loop {
        tokio::select! {
            _ = stream.commit_wake.notified() => {}
            _ = stream.closed.cancelled() => return,
        }
        loop {
            let (handle, acks) = {
                let mut inner = stream.inner.lock();
                if inner.awaiting_sync.is_empty() {
                    break;
                }
                let mut handle = inner.store.prepare_sync();
                if matches!(&handle, Err(e) if e.is_storage_full()) {
                    // The rewind took back what was not written; what was (the buffer is
                    // written out as it fills) is in the file and still needs its fsync.
                    handle = inner.store.prepare_sync();
                }
                // The PubAcks of messages taken back, by this or any earlier rewind, are
                // refusals before they are taken: none of them can say "stored".
                inner.forget_rewound();
                (handle, std::mem::take(&mut inner.awaiting_sync))
            };
            let synced = match handle {
                Ok(handle) => tokio::task::spawn_blocking(move || handle.sync())
                    .await
                    .unwrap_or_else(|e| {
                        Err(crate::store::StoreError::Io {
                            path: Default::default(),
                            source: std::io::Error::other(e.to_string()),
                        })
                    }),
                Err(e) => Err(e),
            };
            if synced.as_ref().is_err_and(|e| !e.is_storage_full()) {
                // The written pages may be lost: the stream refuses writes until reopened.
                stream.inner.lock().store.fail();
            }
            answer(&stream, acks, synced);
        }
    }
}

/// A PubAck waiting for the fsync that makes its message durable.
#[derive(Debug)]
pub(super) struct AwaitingAck {
    /// The publisher's reply subject.
    pub reply: String,
    /// The PubAck.
    pub body: Vec<u8>,
    /// Whether it acknowledges a message (stored, a duplicate) rather than refuses one.
    pub acknowledges: bool,
    /// The sequence it says is stored (stored, or a duplicate of it); a rewind that takes
    /// that message back turns it into a refusal ([`refuse_taken_back`]).
    pub stored: Option<u64>,
}

/// Turns the waiting PubAcks of messages a full disk took back (sequences from `from` on)
/// into `refusal`; the others stay as they are.
pub(super) fn refuse_taken_back(acks: &mut [AwaitingAck], from: u64, refusal: &[u8]) {
    for ack in acks
        .iter_mut()
        .filter(|a| a.stored.is_some_and(|s| s >= from))
    {
        ack.body = refusal.to_vec();
        ack.acknowledges = false;
        ack.stored = None;
    }
}

/// Sends the PubAcks that waited for a sync, as its outcome allows:
/// - synced: each as it is, but those whose message a full disk took back since they were
///   queued, which were made refusals (503 10077 with the disk's error, as nats-server);
/// - the disk was full (a write; the caller retries the sync after the rewind, so this is
///   only when that failed too): each publisher hears that its message was not stored;
/// - any other failure (an fsync's, whatever its errno): no PubAck, the publisher retries,
///   and the duplicate window keeps that from storing twice what did reach the disk.
///
/// Refusals go out in every case.
pub(super) fn answer(stream: &Stream, mut acks: Vec<AwaitingAck>, synced: Result<(), StoreError>) {
    // A rewind not yet looked at (close() after a delete or purge found the disk full) must
    // not let a PubAck say "stored" for a message it took back.
    if let Some(rewound) = stream.inner.lock().forget_rewound() {
        let refusal = stream.error_ack(store_error(rewound.error()));
        refuse_taken_back(&mut acks, rewound.from, &refusal);
    }
    let refusal = match &synced {
        Ok(()) => None,
        Err(e) if e.is_storage_full() => Some(stream.error_ack(ApiError::store_failed(e))),
        Err(e) => {
            let withheld = acks.iter().filter(|a| a.acknowledges).count();
            tracing::error!(stream = %stream.name, "fsync failed, {withheld} PubAcks withheld: {e}");
            None
        }
    };
    for ack in acks {
        match (&synced, &refusal) {
            (Err(_), Some(refusal)) if ack.acknowledges => stream.ctx.reply(&ack.reply, refusal),
            (Err(_), None) if ack.acknowledges => {}
            _ => stream.ctx.reply(&ack.reply, &ack.body),
        }
    }
}

/// Expires messages past max_age and syncs file streams in the background.
pub(super) async fn maintain(stream: Arc<Stream>) {
    let interval = match stream.ctx.config.sync {
        SyncPolicy::Interval(d) => Some(d),
        SyncPolicy::Always => Some(BACKGROUND_SYNC),
        SyncPolicy::Never => None,
    };
    let mut next_sync = interval.map(|d| tokio::time::Instant::now() + d);
    loop {
        let next_expiry = expire(&stream);
        let now = tokio::time::Instant::now();
        let mut wake = now + IDLE_CHECK;
        if let Some(at) = next_expiry {
            wake = wake.min(at);
        }
        if let Some(at) = next_sync {
            wake = wake.min(at);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = stream.maintenance_wake.notified() => {}
            _ = stream.closed.cancelled() => return,
        }
        if let (Some(at), Some(every)) = (next_sync, interval) {
            if tokio::time::Instant::now() >= at {
                background_sync(&stream).await;
                next_sync = Some(tokio::time::Instant::now() + every);
            }
        }
    }
}

/// Removes expired messages; returns when the next one expires.
fn expire(stream: &Stream) -> Option<tokio::time::Instant> {
    let mut inner = stream.inner.lock();
    inner.store.limits().max_age?;
    let now = now_nanos();
    let expired = inner.store.expire(now);
    // Expiry writes too: on a full disk it may have taken back messages not yet written.
    inner.forget_rewound();
    let expired = match expired {
        Ok(expired) => expired,
        Err(e) => {
            tracing::error!(stream = %stream.name, "max_age expiry: {e}");
            return Some(tokio::time::Instant::now() + Duration::from_secs(1));
        }
    };
    drop(inner);
    if expired.removed > 0 {
        stream.notify_removed();
    }
    let due = expired.next_due?;
    let wait = Duration::from_nanos(u64::try_from(due.saturating_sub(now)).unwrap_or(0));
    Some(tokio::time::Instant::now() + wait)
}

async fn background_sync(stream: &Arc<Stream>) {
    let handle = stream.inner.lock().store.prepare_sync();
    let result = match handle {
        Ok(handle) => tokio::task::spawn_blocking(move || handle.sync())
            .await
            .unwrap_or(Ok(())),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!(stream = %stream.name, "background fsync: {e}");
        let mut inner = stream.inner.lock();
        if !e.is_storage_full() {
            // The written pages may be lost: the stream refuses writes until reopened.
            inner.store.fail();
        }
        inner.forget_rewound();
    }
}
