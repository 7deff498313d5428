//! The JSON of `STREAM.INFO`, `CONSUMER.INFO` and `$JS.API.INFO`, with nats-server's fields.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::jetstream::account_limits;
use crate::jetstream::consumer::state::SeqPair;
use crate::jetstream::consumer::Consumer;
use crate::jetstream::stream::{Storage, Stream};
use crate::jetstream::time::{format, now_nanos};
use crate::jetstream::JetStream;

/// What `STREAM.INFO` may add to the state.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct StreamInfoRequest {
    /// List the subjects matching this filter, with counts.
    pub subjects_filter: String,
    /// List the deleted sequences.
    pub deleted_details: bool,
    /// Where the subject list starts, when there are more than [`MAX_SUBJECT_DETAILS`].
    #[serde(deserialize_with = "super::go_offset")]
    pub offset: usize,
    /// Whether the reply carries the paging members (`STREAM.INFO` only).
    #[serde(skip)]
    pub paged: bool,
}

/// The most subjects one `STREAM.INFO` reply lists (nats-server's `JSMaxSubjectDetails`).
pub(crate) const MAX_SUBJECT_DETAILS: usize = 100_000;

/// A stream's info as `STREAM.UPDATE` and `STREAM.LIST` send it (and `STREAM.CREATE`, less
/// the `domain`): without the `cluster` member, which nats-server on a single server puts only
/// in `STREAM.INFO` (and the monitor's `/jsz`).
pub(crate) fn stream_reply(js: &JetStream, stream: &Stream) -> Value {
    let mut info = self::stream(js, stream, &StreamInfoRequest::default());
    if let Some(map) = info.as_object_mut() {
        map.remove("cluster");
    }
    info
}

/// A stream's info, as `STREAM.INFO` sends it.
pub(crate) fn stream(js: &JetStream, stream: &Stream, req: &StreamInfoRequest) -> Value {
    let inner = stream.inner.lock();
    let st = inner.store.state();
    let mut state = Map::new();
    state.insert("messages".into(), json!(st.msgs));
    state.insert("bytes".into(), json!(st.bytes));
    state.insert("first_seq".into(), json!(st.first_seq));
    state.insert("first_ts".into(), json!(format(st.first_ts)));
    state.insert("last_seq".into(), json!(st.last_seq));
    state.insert("last_ts".into(), json!(format(st.last_ts)));
    // Paging of the subject list: zeros unless subjects were asked for and some match.
    let (mut total, mut offset, mut limit) = (0, 0, 0);
    if !req.subjects_filter.is_empty() {
        let all = inner.store.subjects_state(Some(&req.subjects_filter));
        if !all.is_empty() {
            (total, offset, limit) = (all.len(), req.offset, MAX_SUBJECT_DETAILS);
            let subjects: Map<String, Value> = all
                .into_iter()
                .skip(offset)
                .take(MAX_SUBJECT_DETAILS)
                .map(|(s, n)| (s, json!(n.msgs)))
                .collect();
            if !subjects.is_empty() {
                state.insert("subjects".into(), Value::Object(subjects));
            }
        }
    }
    if st.num_deleted > 0 {
        state.insert("num_deleted".into(), json!(st.num_deleted));
        if req.deleted_details {
            let deleted: Vec<u64> = (st.first_seq..=st.last_seq)
                .filter(|s| matches!(inner.store.get(*s), Ok(None)))
                .collect();
            state.insert("deleted".into(), json!(deleted));
        }
    }
    if st.num_subjects > 0 {
        state.insert("num_subjects".into(), json!(st.num_subjects));
    }
    state.insert(
        "consumer_count".into(),
        json!(stream.consumers.read().len()),
    );
    let mut info = json!({
        "config": inner.config,
        "created": format(stream.created),
        "state": state,
        "cluster": {"leader": js.ctx.server_name},
        "ts": format(now_nanos()),
    });
    if let Some(domain) = &js.ctx.config.domain {
        info["domain"] = json!(domain);
    }
    if req.paged {
        info["total"] = json!(total);
        info["offset"] = json!(offset);
        info["limit"] = json!(limit);
    }
    drop(inner);
    add_origins(&mut info, stream);
    info
}

/// A mirror's `mirror` and a sourcing stream's `sources`.
fn add_origins(info: &mut Value, stream: &Stream) {
    let origins = stream.origins.lock();
    match origins.first() {
        Some(o) if o.mirror => info["mirror"] = o.info(),
        Some(_) => info["sources"] = origins.iter().map(|o| o.info()).collect(),
        None => {}
    }
}

/// A consumer's info.
pub(crate) fn consumer(consumer: &Consumer) -> Value {
    let s = consumer.snapshot();
    // `last_active` is left out until there was such activity, as nats-server does.
    let pair = |p: SeqPair, last: i64| {
        let mut pair = json!({"consumer_seq": p.consumer_seq, "stream_seq": p.stream_seq});
        if last > 0 {
            pair["last_active"] = json!(format(last));
        }
        pair
    };
    let mut info = json!({
        "stream_name": consumer.stream_name,
        "name": consumer.name,
        "created": format(consumer.created),
        "config": s.config,
        "delivered": pair(s.delivered, s.last_delivered),
        "ack_floor": pair(s.ack_floor, s.last_acked),
        "num_ack_pending": s.num_ack_pending,
        "num_redelivered": s.num_redelivered,
        "num_waiting": s.num_waiting,
        "num_pending": s.num_pending,
        "ts": format(now_nanos()),
    });
    if s.push_bound {
        info["push_bound"] = json!(true);
    }
    info
}

/// `$JS.API.INFO`: usage and limits of the account.
pub(crate) fn account(js: &Arc<JetStream>) -> Value {
    let streams = js.streams.read();
    let (mut memory, mut storage, mut consumers) = (0u64, 0u64, 0usize);
    let (mut reserved_memory, mut reserved_storage) = (Vec::new(), Vec::new());
    for s in streams.values() {
        let inner = s.inner.lock();
        let bytes = inner.store.state().bytes;
        match inner.config.storage {
            Storage::Memory => {
                memory += bytes;
                reserved_memory.push(inner.config.max_bytes);
            }
            Storage::File => {
                storage += bytes;
                reserved_storage.push(inner.config.max_bytes);
            }
        }
        consumers += s.consumers.read().len();
    }
    let cfg = &js.ctx.config;
    let limits = &cfg.account;
    let limits_json = json!({
        "max_memory": limits.max_memory,
        "max_storage": limits.max_storage,
        "max_streams": limits.max_streams,
        "max_consumers": limits.max_consumers,
        "max_ack_pending": limits.max_ack_pending,
        "memory_max_stream_bytes": limits.memory_max_stream_bytes,
        "storage_max_stream_bytes": limits.storage_max_stream_bytes,
        "max_bytes_required": limits.max_bytes_required,
    });
    // The usage part, at the top and in a tier.
    let usage = |reserved_memory: u64, reserved_storage: u64, limits: Value| {
        json!({
            "memory": memory,
            "storage": storage,
            "reserved_memory": reserved_memory,
            "reserved_storage": reserved_storage,
            "streams": streams.len(),
            "consumers": consumers,
            "limits": limits,
        })
    };
    let reserved = |all: &[i64]| account_limits::reported_reservation(all.iter().copied());
    let mut info = usage(
        reserved(&reserved_memory),
        reserved(&reserved_storage),
        limits_json.clone(),
    );
    info["api"] = json!({
        "total": js.api_total.load(Ordering::Relaxed),
        "errors": js.api_errors.load(Ordering::Relaxed),
    });
    if limits.tiered {
        // nats-server: empty top-level limits, and the tier's own usage and limits, whose
        // reservations count only streams with a max_bytes.
        let positive = |all: &[i64]| -> u64 { all.iter().filter(|&&n| n > 0).sum::<i64>() as u64 };
        info["limits"] = json!({
            "max_memory": 0, "max_storage": 0, "max_streams": 0, "max_consumers": 0,
            "max_ack_pending": 0, "memory_max_stream_bytes": 0, "storage_max_stream_bytes": 0,
            "max_bytes_required": false,
        });
        let tier = usage(
            positive(&reserved_memory),
            positive(&reserved_storage),
            limits_json,
        );
        info["tiers"] = json!({ "R1": tier });
    }
    if let Some(domain) = &cfg.domain {
        info["domain"] = json!(domain);
    }
    info
}
