//! Consumer endpoints: create (three subject forms), info, delete, names, list.

use std::sync::Arc;

use serde_json::{json, Value};

use super::info;
use super::{expect_empty, parse_body, Outcome, Paged, Request, LIST_PAGE, NAMES_PAGE};
use crate::jetstream::consumer::state::AckState;
use crate::jetstream::consumer::{Consumer, ConsumerConfig, DeliverPolicy};
use crate::jetstream::errors::ApiError;
use crate::jetstream::persist::{self, ConsumerMeta};
use crate::jetstream::stream::{Retention, Stream, StreamConfig};
use crate::jetstream::subjects::collide;
use crate::jetstream::time::{now_nanos, parse};
use crate::jetstream::JetStream;

/// The body of a create request.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct CreateRequest {
    stream_name: String,
    config: Option<ConsumerConfig>,
    action: String,
}

/// `$JS.API.CONSUMER.CREATE.<stream>[.<name>[.<filter>]]` and
/// `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>`.
pub(crate) fn create(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let tokens: Vec<&str> = req.subject.split('.').collect();
    let durable_form = tokens.get(3) == Some(&"DURABLE");
    let (stream_name, name, filter) = if durable_form {
        (tokens[5], Some(tokens[6]), None)
    } else {
        let filter = (tokens.len() > 6).then(|| tokens[6..].join("."));
        (tokens[4], tokens.get(5).copied(), filter)
    };
    let body: CreateRequest = parse_body(&req.payload)?;
    if body.stream_name != stream_name {
        return Err(ApiError::stream_mismatch());
    }
    if name.is_some_and(|n| n.contains('/') || n.contains('\\')) {
        return Err(ApiError::consumer_name_path_separators());
    }
    let mut config = body.config.ok_or_else(ApiError::consumer_config_required)?;
    match (durable_form, name) {
        (true, Some(name)) => {
            if config.durable_name.is_empty() {
                return Err(ApiError::durable_name_not_set());
            }
            if config.durable_name != name {
                return Err(ApiError::durable_name_not_match_subject());
            }
        }
        (false, Some(name)) => {
            if !config.durable_name.is_empty() && config.durable_name != name {
                return Err(ApiError::durable_name_not_match_subject());
            }
            config.name = name.to_string();
        }
        (_, None) => {
            if !config.durable_name.is_empty() {
                return Err(ApiError::new_ephemeral_with_durable());
            }
        }
    }
    if let Some(filter) = &filter {
        if !config.filter_subjects.is_empty() {
            return Err(ApiError::multiple_filters_not_allowed());
        }
        if &config.filter_subject != filter {
            return Err(ApiError::filter_subject_mismatch());
        }
    }
    if config.num_replicas > 1 {
        return Err(ApiError::replicas_not_supported());
    }
    let stream = js.lookup(stream_name)?;
    add(js, &stream, config, &body.action)
}

/// Creates, returns or updates a consumer of `stream` as `action` ("", "create", "update")
/// allows; returns its info.
fn add(js: &JetStream, stream: &Arc<Stream>, config: ConsumerConfig, action: &str) -> Outcome {
    let stream_config = stream.config();
    let mut config = config.normalize(
        &stream_config,
        &js.ctx.config.limits,
        &js.ctx.config.account,
    )?;
    let name = match (&config.durable_name, &config.name) {
        (d, _) if !d.is_empty() => d.clone(),
        (_, n) if !n.is_empty() => n.clone(),
        _ => ephemeral_name(),
    };
    if config.durable_name.is_empty() && config.inactive_threshold == 0 {
        config.inactive_threshold =
            crate::jetstream::context::DEFAULT_INACTIVE_THRESHOLD.as_nanos() as i64;
    }
    // config.name stays as given: the legacy DURABLE.CREATE form leaves it empty on
    // nats-server too.
    let existing = stream.consumers.read().get(&name).cloned();
    if let Some(existing) = existing {
        let old = existing.config();
        if config.name.is_empty() {
            config.name = old.name.clone();
        }
        if old == config {
            return Ok(info::consumer(&existing));
        }
        if action == "create" {
            return Err(ApiError::consumer_already_exists());
        }
        check_update(js, &old, &config)?;
        existing.reconfigure(config);
        if let Some(dir) = &existing.dir {
            let meta = ConsumerMeta {
                name: name.clone(),
                config: existing.config(),
                created: existing.created,
            };
            persist::write_consumer_meta(dir, &meta)
                .map_err(|e| ApiError::consumer_create(format!("{e:#}")))?;
        }
        return Ok(info::consumer(&existing));
    }
    if action == "update" {
        return Err(ApiError::consumer_does_not_exist());
    }
    check_limits(
        stream,
        &stream_config,
        &config,
        js.ctx.config.account.max_consumers,
    )?;
    let dir = (config.is_durable() && !config.mem_storage)
        .then(|| stream.dir.as_ref().map(|d| persist::consumer_dir(d, &name)))
        .flatten();
    let created = now_nanos();
    if let Some(dir) = &dir {
        let meta = ConsumerMeta {
            name: name.clone(),
            config: config.clone(),
            created,
        };
        persist::write_consumer_meta(dir, &meta)
            .map_err(|e| ApiError::consumer_create(format!("{e:#}")))?;
    }
    let state = start_state(stream, &config);
    let consumer = Consumer::new(stream, name.clone(), config, state, created, dir);
    js.join_consumer(stream, &consumer);
    // The info is taken before the consumer starts, as nats-server does: it shows what is
    // pending at creation even if deliveries overtake the reply (the legacy `nats` crate's KV
    // listing stops at once on a `num_pending` of 0).
    let info = info::consumer(&consumer);
    consumer.start();
    Ok(info)
}

/// What may not change in an update, in nats-server's words.
fn check_update(
    js: &JetStream,
    old: &ConsumerConfig,
    new: &ConsumerConfig,
) -> Result<(), ApiError> {
    let refuse = |what: &str| Err(ApiError::consumer_create(what.to_string()));
    if old.deliver_policy != new.deliver_policy {
        return refuse("deliver policy can not be updated");
    }
    if old.opt_start_seq != new.opt_start_seq {
        return refuse("start sequence can not be updated");
    }
    if old.opt_start_time != new.opt_start_time {
        return refuse("start time can not be updated");
    }
    if old.ack_policy != new.ack_policy {
        return refuse("ack policy can not be updated");
    }
    if old.replay_policy != new.replay_policy {
        return refuse("replay policy can not be updated");
    }
    if old.idle_heartbeat != new.idle_heartbeat {
        return refuse("heart beats can not be updated");
    }
    if old.flow_control != new.flow_control {
        return refuse("flow control can not be updated");
    }
    if old.is_push() != new.is_push() {
        return refuse(if old.is_push() {
            "can not update push consumer to pull based"
        } else {
            "can not update pull consumer to push based"
        });
    }
    // A push consumer moves to another deliver subject only while nobody listens on its own.
    if old.deliver_subject != new.deliver_subject && js.ctx.has_interest(&old.deliver_subject, None)
    {
        return Err(ApiError::consumer_name_exist());
    }
    if old.max_waiting != new.max_waiting {
        return refuse("max waiting can not be updated");
    }
    Ok(())
}

/// max_consumers (the stream's, or the account's where that is lower or the stream has none:
/// nats-server holds each stream to the account's) and the work queue rules.
fn check_limits(
    stream: &Stream,
    sc: &StreamConfig,
    config: &ConsumerConfig,
    account_max: i64,
) -> Result<(), ApiError> {
    let consumers = stream.consumers.read();
    let mut max = sc.max_consumers;
    if max <= 0 || (account_max > 0 && account_max < max) {
        max = account_max;
    }
    if max > 0 && consumers.len() as i64 >= max {
        return Err(ApiError::max_consumers());
    }
    if sc.retention != Retention::WorkQueue {
        return Ok(());
    }
    // As nats-server: an unfiltered consumer must be the only one; a filtered one must not
    // overlap any other (an unfiltered other overlaps everything).
    let filters = config.filters();
    if filters.is_empty() && !consumers.is_empty() {
        return Err(ApiError::wq_multiple_unfiltered());
    }
    for other in consumers.values() {
        let theirs = other.config().filters();
        if theirs.is_empty() || filters.iter().any(|f| theirs.iter().any(|t| collide(f, t))) {
            return Err(ApiError::wq_not_unique());
        }
    }
    Ok(())
}

/// Where a new consumer starts, from its deliver policy.
pub(crate) fn start_state(stream: &Stream, config: &ConsumerConfig) -> AckState {
    let inner = stream.inner.lock();
    let store = &inner.store;
    let st = store.state();
    let filters = config.filters();
    let last_matching = || -> u64 {
        if filters.is_empty() {
            return st.last_seq;
        }
        filters
            .iter()
            .filter_map(|f| store.get_last_by_subject(f).ok().flatten())
            .map(|m| m.seq)
            .max()
            .unwrap_or(st.last_seq + 1)
    };
    match config.deliver_policy {
        DeliverPolicy::All => AckState::starting_at(st.first_seq.max(1)),
        DeliverPolicy::New => AckState::starting_at(st.last_seq + 1),
        DeliverPolicy::Last => AckState::starting_at(last_matching().max(1)),
        DeliverPolicy::ByStartSequence => AckState::starting_at(config.opt_start_seq),
        DeliverPolicy::ByStartTime => {
            let at = config
                .opt_start_time
                .as_deref()
                .and_then(parse)
                .unwrap_or(0);
            let mut seq = st.first_seq.max(1);
            while let Ok(Some(m)) = store.get_next(seq, None) {
                if m.timestamp >= at {
                    break;
                }
                seq = m.seq + 1;
            }
            AckState::starting_at(seq)
        }
        DeliverPolicy::LastPerSubject => {
            let mut seqs: Vec<u64> = if filters.is_empty() {
                store
                    .subjects_state(None)
                    .values()
                    .map(|s| s.last)
                    .collect()
            } else {
                filters
                    .iter()
                    .flat_map(|f| store.subjects_state(Some(f)).into_values().map(|s| s.last))
                    .collect()
            };
            seqs.sort_unstable();
            let mut state = AckState::starting_at(seqs.first().copied().unwrap_or(st.last_seq + 1));
            state.start_list = seqs;
            state.start_list_end = st.last_seq;
            state
        }
    }
}

fn ephemeral_name() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect()
}

/// `$JS.API.CONSUMER.INFO.<stream>.<consumer>`
pub(crate) fn info(js: &Arc<JetStream>, req: &Request) -> Outcome {
    expect_empty(&req.payload)?;
    let stream = js.lookup(req.token(4))?;
    let consumer = stream
        .consumers
        .read()
        .get(req.token(5))
        .cloned()
        .ok_or_else(ApiError::consumer_not_found)?;
    Ok(info::consumer(&consumer))
}

/// `$JS.API.CONSUMER.DELETE.<stream>.<consumer>`
pub(crate) fn delete(js: &Arc<JetStream>, req: &Request) -> Outcome {
    expect_empty(&req.payload)?;
    let stream = js.lookup(req.token(4))?;
    if !remove(&stream, req.token(5)) {
        return Err(ApiError::consumer_not_found());
    }
    Ok(json!({"success": true}))
}

/// Deletes a consumer of `stream`; false when there is none of that name.
pub(crate) fn remove(stream: &Arc<Stream>, name: &str) -> bool {
    let Some(consumer) = stream.consumers.write().remove(name) else {
        return false;
    };
    consumer.delete();
    if stream.config().retention == Retention::Interest {
        stream.remove_unwanted();
    }
    true
}

/// `$JS.API.CONSUMER.NAMES.<stream>`
pub(crate) fn names(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let stream = js.lookup(req.token(4))?;
    let paged: Paged = parse_body(&req.payload)?;
    let all: Vec<String> = stream.consumers.read().keys().cloned().collect();
    let offset = paged.offset_within(all.len());
    let page: Vec<String> = all.iter().skip(offset).take(NAMES_PAGE).cloned().collect();
    Ok(json!({"total": all.len(), "offset": offset, "limit": NAMES_PAGE, "consumers": page}))
}

/// `$JS.API.CONSUMER.LIST.<stream>`
pub(crate) fn list(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let stream = js.lookup(req.token(4))?;
    let paged: Paged = parse_body(&req.payload)?;
    let all: Vec<Arc<Consumer>> = stream.consumers.read().values().cloned().collect();
    let offset = paged.offset_within(all.len());
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(LIST_PAGE)
        .map(|c| info::consumer(c))
        .collect();
    Ok(json!({"total": all.len(), "offset": offset, "limit": LIST_PAGE, "consumers": page}))
}
