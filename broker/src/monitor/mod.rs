//! The monitoring port: `/healthz`, `/varz`, `/connz`, `/subsz` and `/jsz` (in `jsz.rs`) with
//! nats-server's field names, and `/metrics` in the Prometheus text format (`metrics.rs`).

mod jsz;
mod metrics;
mod streaming;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::client::Client;
use crate::server::{ServerState, BROKER_VERSION};

/// Most connections `/connz` lists when no `limit` is given, as nats-server.
const DEFAULT_CONNZ_LIMIT: usize = 1024;

/// Serves the monitoring endpoints until the server shuts down.
pub(crate) async fn serve(listener: TcpListener, state: Arc<ServerState>) -> anyhow::Result<()> {
    let shutdown = state.shutdown.clone();
    let app = Router::new()
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .route("/varz", get(varz))
        .route("/connz", get(connz))
        .route("/subsz", get(subsz))
        .route("/subscriptionsz", get(subsz))
        .route("/jsz", get(jsz::jsz))
        .route("/metrics", get(metrics::metrics))
        .route("/streaming/serverz", get(streaming::serverz))
        .route("/streaming/storez", get(streaming::storez))
        .route("/streaming/clientsz", get(streaming::clientsz))
        .route("/streaming/channelsz", get(streaming::channelsz))
        .with_state(state.clone());
    let stop = async move { shutdown.cancelled().await };
    match (&state.tls, state.opts.https_port.is_some()) {
        (Some(tls), true) => {
            let live = state.clone();
            let current = move || live.live().tls.as_ref().map(|t| t.https_acceptor());
            let listener = crate::tls::https_listener(
                listener,
                current,
                tls.settings.timeout,
                state.shutdown.clone(),
            );
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await?
        }
        _ => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await?
        }
    }
    Ok(())
}

async fn root() -> Json<Value> {
    Json(json!({ "endpoints": ["/healthz", "/varz", "/connz", "/subsz", "/jsz", "/metrics"] }))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// nats-server's duration style: `1h2m3s`, `4.5s`, `12ms`.
pub(crate) fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}s");
    out
}

pub(crate) fn since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

fn clients(state: &ServerState) -> Vec<Arc<Client>> {
    let mut all: Vec<_> = state.clients.lock().values().cloned().collect();
    all.sort_by_key(|c| c.id);
    all
}

async fn varz(State(state): State<Arc<ServerState>>) -> Json<Value> {
    let live = state.live();
    let o = &live.opts;
    let s = &state.stats;
    let mut v = json!({
        "server_id": state.info.server_id,
        "server_name": state.info.server_name,
        "version": state.info.version,
        "broker_version": BROKER_VERSION,
        "proto": state.info.proto,
        "go": state.info.go,
        "host": o.host,
        "port": state.info.port,
        "auth_required": live.info.auth_required,
        "max_connections": o.max_connections,
        "max_subscriptions": o.max_subscriptions,
        "ping_interval": o.ping_interval.as_nanos() as u64,
        "ping_max": o.ping_max,
        "http_host": o.http_host.clone().unwrap_or_else(|| o.host.clone()),
        "http_port": o.http_port.unwrap_or(0),
        "https_port": o.https_port.unwrap_or(0),
        "tls_timeout": o.tls.as_ref().map_or(crate::tls::DEFAULT_TLS_TIMEOUT, |t| t.timeout).as_secs_f64(),
        "auth_timeout": o.auth_timeout().as_secs_f64(),
        "max_control_line": o.max_control_line,
        "max_payload": o.max_payload,
        "max_pending": o.max_pending,
        "write_deadline": o.write_deadline.as_nanos() as u64,
        "cluster_id": o.cluster_id,
        "jetstream": { "config": if o.jetstream { json!({"store_dir": o.store_dir}) } else { Value::Null } },
        "start": rfc3339(state.started),
        "config_load_time": rfc3339(*state.config_loaded.lock()),
        "now": rfc3339(SystemTime::now()),
        "uptime": go_duration(since(state.started)),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "connections": state.clients.lock().len(),
        "total_connections": s.total_connections.load(Ordering::Relaxed),
        "subscriptions": state.accounts.subscription_count(),
        "in_msgs": s.in_msgs.load(Ordering::Relaxed),
        "out_msgs": s.out_msgs.load(Ordering::Relaxed),
        "in_bytes": s.in_bytes.load(Ordering::Relaxed),
        "out_bytes": s.out_bytes.load(Ordering::Relaxed),
        "slow_consumers": s.slow_consumers.load(Ordering::Relaxed),
    });
    if let Some(system) = &o.system_account {
        v["system_account"] = json!(system);
    }
    // As nats-server: present only when true, and as a reload left them.
    if live.info.tls_required {
        v["tls_required"] = json!(true);
    }
    if live.info.tls_verify {
        v["tls_verify"] = json!(true);
    }
    Json(v)
}

async fn connz(
    State(state): State<Arc<ServerState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let subs = q
        .get("subs")
        .is_some_and(|v| v == "1" || v == "true" || v == "detail");
    let auth = q.get("auth").is_some_and(|v| v == "1" || v == "true");
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CONNZ_LIMIT);
    let all = clients(&state);
    let list: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| conn_info(c, subs, auth))
        .collect();
    Json(json!({
        "server_id": state.info.server_id,
        "now": rfc3339(SystemTime::now()),
        "num_connections": list.len(),
        "total": all.len(),
        "offset": offset,
        "limit": limit,
        "connections": list,
    }))
}

fn conn_info(c: &Client, with_subs: bool, with_auth: bool) -> Value {
    let meta = c.meta.lock().clone();
    let (out_msgs, out_bytes) = c.out_counts();
    let last =
        SystemTime::UNIX_EPOCH + Duration::from_nanos(c.last_activity.load(Ordering::Relaxed));
    let sub_subjects: Vec<String> = c
        .subs
        .lock()
        .values()
        .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
        .collect();
    let mut v = json!({
        "cid": c.id,
        "kind": "Client",
        "type": "nats",
        "ip": c.addr.ip().to_string(),
        "port": c.addr.port(),
        "start": rfc3339(c.started),
        "last_activity": rfc3339(last),
        "uptime": go_duration(since(c.started)),
        "idle": go_duration(since(last)),
        "pending_bytes": c.pending_bytes(),
        "in_msgs": c.in_msgs.load(Ordering::Relaxed),
        "out_msgs": out_msgs,
        "in_bytes": c.in_bytes.load(Ordering::Relaxed),
        "out_bytes": out_bytes,
        "subscriptions": sub_subjects.len(),
        "name": meta.name,
        "lang": meta.lang,
        "version": meta.version,
    });
    if let Some(tls) = c.tls() {
        v["tls_version"] = json!(tls.version);
        v["tls_cipher_suite"] = json!(tls.cipher);
        // As nats-server: the client's certificates only with `auth=1`.
        if with_auth && !tls.peer_certs.is_empty() {
            v["tls_peer_certs"] = tls
                .peer_certs
                .iter()
                .map(|p| {
                    json!({
                        "subject": p.display_subject,
                        "spki_sha256": crate::tls::hex(&p.spki_sha256),
                        "cert_sha256": crate::tls::hex(&p.cert_sha256),
                    })
                })
                .collect();
        }
        if tls.first {
            v["tls_first"] = json!(true);
        }
    }
    if with_subs {
        v["subscriptions_list"] = json!(sub_subjects);
    }
    if with_auth {
        // As nats-server: the account only when it is not the global one.
        let account = c.account();
        if !meta.user.is_empty() {
            v["authorized_user"] = json!(meta.user);
        }
        if !account.is_global() {
            v["account"] = json!(account.name);
        }
    }
    v
}

async fn subsz(
    State(state): State<Arc<ServerState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let mut v = json!({
        "server_id": state.info.server_id,
        "now": rfc3339(SystemTime::now()),
        "num_subscriptions": state.accounts.subscription_count(),
    });
    if q.get("subs").is_some_and(|v| v == "1" || v == "true") {
        let list: Vec<Value> = clients(&state)
            .iter()
            .flat_map(|c| {
                c.subs
                    .lock()
                    .values()
                    .map(|s| {
                        json!({
                            "subject": String::from_utf8_lossy(&s.subject),
                            "qgroup": s.queue.as_deref().map(String::from_utf8_lossy),
                            "sid": String::from_utf8_lossy(&s.sid),
                            "msgs": s.delivered.load(Ordering::Relaxed),
                            "max": s.max.load(Ordering::Relaxed),
                            "cid": c.id,
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        v["total"] = json!(list.len());
        v["subscriptions_list"] = json!(list);
    }
    Json(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_nats_server() {
        assert_eq!(go_duration(Duration::from_millis(12)), "12ms");
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
    }
}
