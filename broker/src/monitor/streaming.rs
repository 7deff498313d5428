//! NATS Streaming's monitoring endpoints, with its field names: `/streaming/serverz`,
//! `/streaming/storez`, `/streaming/clientsz` and `/streaming/channelsz` (`?subs=1` adds the
//! subscriptions, `?channel=<name>` one channel, `offset` and `limit` page the lists). Without
//! `-cid` they answer 404, as a server without streaming has none of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{go_duration, rfc3339, since};
use crate::jetstream::api::info::{self, StreamInfoRequest};
use crate::server::{ServerState, BROKER_VERSION};
use crate::stan::server::{Stan, Sub};

/// Most entries a list holds when no `limit` is given, as NATS Streaming.
const DEFAULT_LIMIT: usize = 1024;

type Params = Query<HashMap<String, String>>;

/// The answer without `-cid`.
fn not_running() -> Response {
    (
        StatusCode::NOT_FOUND,
        "NATS Streaming is not running (no -cid)",
    )
        .into_response()
}

/// A channel's stream state: messages, bytes, first and last sequence.
fn channel_state(state: &ServerState, stream: &str) -> (u64, u64, u64, u64) {
    let found = state.jetstream.get().and_then(|all| {
        let js = all.get(crate::accounts::GLOBAL_ACCOUNT)?;
        let s = js.streams.read().get(stream).cloned()?;
        Some(info::stream(js, &s, &StreamInfoRequest::default())["state"].clone())
    });
    let n = |v: &Option<Value>, key: &str| v.as_ref().and_then(|v| v[key].as_u64()).unwrap_or(0);
    (
        n(&found, "messages"),
        n(&found, "bytes"),
        n(&found, "first_seq"),
        n(&found, "last_seq"),
    )
}

/// How many channels there are, and the messages and bytes they hold.
fn totals(state: &ServerState, stan: &Stan) -> (usize, u64, u64) {
    let streams: Vec<String> = stan
        .channels
        .lock()
        .values()
        .map(|c| c.stream.clone())
        .collect();
    streams
        .iter()
        .fold((streams.len(), 0, 0), |(n, msgs, bytes), stream| {
            let (m, b, _, _) = channel_state(state, stream);
            (n, msgs + m, bytes + b)
        })
}

fn header(stan: &Stan, state: &ServerState) -> Value {
    json!({
        "cluster_id": stan.cluster_id,
        "server_id": state.info.server_id,
        "now": rfc3339(SystemTime::now()),
    })
}

fn page(q: &HashMap<String, String>) -> (usize, usize) {
    let offset = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_LIMIT);
    (offset, limit)
}

fn wants_subs(q: &HashMap<String, String>) -> bool {
    q.get("subs").is_some_and(|v| v == "1" || v == "true")
}

fn subscription(sub: &Sub) -> Value {
    let mut v = json!({
        "client_id": sub.client_id,
        "inbox": sub.inbox,
        "ack_inbox": sub.ack_inbox,
        "is_durable": sub.durable.is_some() || sub.queue.as_deref().is_some_and(|q| q.contains(':')),
        "is_offline": false,
        "max_inflight": sub.max_inflight,
        "ack_wait": sub.ack_wait_secs,
        "last_sent": sub.stats.last_sent.load(Ordering::Relaxed),
        "pending_count": sub.stats.pending.load(Ordering::Relaxed),
        "is_stalled": sub.stats.pending.load(Ordering::Relaxed) >= sub.max_inflight,
    });
    if let Some(d) = &sub.durable {
        v["durable_name"] = json!(d);
    }
    if let Some(q) = &sub.queue {
        v["queue_name"] = json!(q);
    }
    v
}

pub(super) async fn serverz(State(state): State<Arc<ServerState>>) -> Response {
    let Some(stan) = state.stan.get() else {
        return not_running();
    };
    let (channels, msgs, bytes) = totals(&state, stan);
    let mut v = header(stan, &state);
    let fields = json!({
        "version": BROKER_VERSION,
        "go": state.info.go,
        "state": "STANDALONE",
        "start_time": rfc3339(stan.started),
        "uptime": go_duration(since(stan.started)),
        "clients": stan.clients.lock().len(),
        "subscriptions": stan.subs.lock().len(),
        "channels": channels,
        "total_msgs": msgs,
        "total_bytes": bytes,
        "in_msgs": stan.in_msgs.load(Ordering::Relaxed),
        "in_bytes": stan.in_bytes.load(Ordering::Relaxed),
        "out_msgs": stan.out.msgs.load(Ordering::Relaxed),
        "out_bytes": stan.out.bytes.load(Ordering::Relaxed),
    });
    merge(&mut v, fields);
    Json(v).into_response()
}

pub(super) async fn storez(State(state): State<Arc<ServerState>>) -> Response {
    let Some(stan) = state.stan.get() else {
        return not_running();
    };
    let s = &stan.settings;
    let (_, msgs, bytes) = totals(&state, stan);
    let mut v = header(stan, &state);
    merge(
        &mut v,
        json!({
            "type": match state.opts.store_type {
                crate::options::StoreType::File => "FILE",
                crate::options::StoreType::Memory => "MEMORY",
            },
            "limits": {
                "max_channels": s.max_channels,
                "max_msgs": s.max_msgs,
                "max_bytes": s.max_bytes,
                "max_age": s.max_age.as_nanos() as u64,
                "max_subscriptions": s.max_subs,
                "max_inactivity": 0,
            },
            "total_msgs": msgs,
            "total_bytes": bytes,
        }),
    );
    Json(v).into_response()
}

pub(super) async fn clientsz(State(state): State<Arc<ServerState>>, Query(q): Params) -> Response {
    let Some(stan) = state.stan.get() else {
        return not_running();
    };
    let (offset, limit) = page(&q);
    let subs: Vec<Arc<Sub>> = stan.subs.lock().values().cloned().collect();
    let clients: Vec<_> = stan.clients.lock().values().cloned().collect();
    let total = clients.len();
    let listed: Vec<Value> = clients
        .iter()
        .filter(|c| q.get("client").is_none_or(|id| *id == c.id))
        .skip(offset)
        .take(limit)
        .map(|c| {
            let mine: Vec<&Arc<Sub>> = subs.iter().filter(|s| s.client_id == c.id).collect();
            let mut v = json!({ "id": c.id, "hb_inbox": c.hb_inbox, "subs_count": mine.len() });
            if wants_subs(&q) && !mine.is_empty() {
                let mut by_channel: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
                for s in mine {
                    by_channel
                        .entry(&s.channel)
                        .or_default()
                        .push(subscription(s));
                }
                v["subscriptions"] = json!(by_channel);
            }
            v
        })
        .collect();
    if let Some(id) = q.get("client") {
        return match listed.into_iter().next() {
            Some(one) => Json(one).into_response(),
            None => (StatusCode::NOT_FOUND, format!("client {id} not found")).into_response(),
        };
    }
    let mut v = header(stan, &state);
    merge(
        &mut v,
        json!({ "offset": offset, "limit": limit, "count": listed.len(), "total": total, "clients": listed }),
    );
    Json(v).into_response()
}

pub(super) async fn channelsz(State(state): State<Arc<ServerState>>, Query(q): Params) -> Response {
    let Some(stan) = state.stan.get() else {
        return not_running();
    };
    let (offset, limit) = page(&q);
    let channels: Vec<(String, String)> = stan
        .channels
        .lock()
        .iter()
        .map(|(name, c)| (name.clone(), c.stream.clone()))
        .collect();
    let subs: Vec<Arc<Sub>> = stan.subs.lock().values().cloned().collect();
    let detail = |name: &str, stream: &str| {
        let (msgs, bytes, first, last) = channel_state(&state, stream);
        let mine: Vec<&Arc<Sub>> = subs.iter().filter(|s| s.channel == name).collect();
        let mut v = json!({
            "name": name, "msgs": msgs, "bytes": bytes, "first_seq": first, "last_seq": last,
            "subs_count": mine.len(),
        });
        if wants_subs(&q) && !mine.is_empty() {
            v["subscriptions"] = json!(mine.iter().map(|s| subscription(s)).collect::<Vec<_>>());
        }
        v
    };
    if let Some(name) = q.get("channel") {
        return match channels.iter().find(|(n, _)| n == name) {
            Some((n, s)) => Json(detail(n, s)).into_response(),
            None => (StatusCode::NOT_FOUND, format!("channel {name} not found")).into_response(),
        };
    }
    let total = channels.len();
    let listed: Vec<&(String, String)> = channels.iter().skip(offset).take(limit).collect();
    let mut v = header(stan, &state);
    merge(
        &mut v,
        json!({ "offset": offset, "limit": limit, "count": listed.len(), "total": total }),
    );
    if wants_subs(&q) {
        v["channels"] = json!(listed.iter().map(|(n, s)| detail(n, s)).collect::<Vec<_>>());
    } else {
        v["names"] = json!(listed.iter().map(|(n, _)| n).collect::<Vec<_>>());
    }
    Json(v).into_response()
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}
