//! `/jsz`: JetStream's configuration and usage, with nats-server's fields for a single server
//! (no clustering, so no `meta_cluster` and no raft groups).
//!
//! Query options, as nats-server's: `accounts`, `streams`, `consumers`, `config` (booleans in
//! Go's spelling: `1`, `t`, `true`, `0`, `f`, `false`, …), `acc=<account>`, `offset`, `limit`;
//! `leader-only`, `raft` and `stream-leader-only` are accepted (a single server leads
//! everything). Every account with JetStream is counted and, when asked, listed by name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::rfc3339;
use crate::jetstream::api::info::{self, StreamInfoRequest};
use crate::jetstream::usage::Usage;
use crate::jetstream::{JetStream, JetStreamConfig, JetStreams};
use crate::server::ServerState;
use crate::store::SyncPolicy;

/// nats-server's `sync_interval` when none is configured (2 minutes), in nanoseconds.
const DEFAULT_SYNC_INTERVAL: u64 = 120_000_000_000;
/// Most accounts listed when no `limit` is given, as nats-server.
const DEFAULT_LIMIT: i64 = 1024;

/// What the query asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct JszOptions {
    accounts: bool,
    streams: bool,
    consumers: bool,
    config: bool,
    account: String,
    offset: i64,
    limit: i64,
}

impl JszOptions {
    /// Parses the query; the error is nats-server's 400 text.
    fn parse(q: &HashMap<String, String>) -> Result<JszOptions, String> {
        let flag = |name: &str| q.get(name).map_or(Ok(false), |v| go_bool(name, v));
        let int = |name: &str| q.get(name).map_or(Ok(0), |v| go_int(name, v));
        for ignored in ["leader-only", "raft", "stream-leader-only"] {
            flag(ignored)?;
        }
        let mut o = JszOptions {
            accounts: flag("accounts")?,
            streams: flag("streams")?,
            consumers: flag("consumers")?,
            config: flag("config")?,
            account: q.get("acc").cloned().unwrap_or_default(),
            offset: int("offset")?,
            limit: int("limit")?,
        };
        if o.limit == 0 {
            o.limit = DEFAULT_LIMIT;
        }
        o.streams |= o.consumers;
        o.accounts |= o.streams && o.account.is_empty();
        Ok(o)
    }

    /// Whether the account `name`, at `index` in name order, is listed in `account_details`.
    fn lists(&self, name: &str, index: usize) -> bool {
        if !self.account.is_empty() {
            return self.account == name;
        }
        let index = index as i64;
        self.accounts && index >= self.offset.max(0) && index < self.offset.max(0) + self.limit
    }
}

/// Go's `strconv.ParseBool`, with nats-server's error text.
fn go_bool(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "" => Ok(false),
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "Error decoding boolean for '{name}': strconv.ParseBool: parsing {value:?}: invalid syntax"
        )),
    }
}

/// Go's `strconv.Atoi`, with nats-server's error text.
fn go_int(name: &str, value: &str) -> Result<i64, String> {
    if value.is_empty() {
        return Ok(0);
    }
    value.parse().map_err(|_| {
        format!("Error decoding int for '{name}': strconv.Atoi: parsing {value:?}: invalid syntax")
    })
}

/// `GET /jsz`.
pub(super) async fn jsz(
    State(state): State<Arc<ServerState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let opts = match JszOptions::parse(&q) {
        Ok(opts) => opts,
        Err(text) => return (StatusCode::BAD_REQUEST, text).into_response(),
    };
    let Some(js) = state.jetstream.get() else {
        return Json(disabled(&state)).into_response();
    };
    Json(enabled(&state, js, &opts)).into_response()
}

/// nats-server's answer without JetStream: zeros, and `disabled`.
fn disabled(state: &ServerState) -> Value {
    let mut v = totals(state, &Usage::default(), 0);
    v["disabled"] = json!(true);
    v["config"] = json!({"max_memory": 0, "max_storage": 0});
    v
}

fn enabled(state: &ServerState, all: &JetStreams, opts: &JszOptions) -> Value {
    let accounts: Vec<(&Arc<JetStream>, Usage)> = all.iter().map(|js| (js, js.usage())).collect();
    let mut details = Vec::new();
    for (index, (js, usage)) in accounts.iter().enumerate() {
        if opts.lists(&js.ctx.account.name, index) {
            details.push(account_detail(js, usage, opts));
        }
    }
    let mut total = Usage::default();
    let count = accounts.len();
    for (_, usage) in accounts {
        total.add(usage);
    }
    let mut v = totals(state, &total, count);
    v["config"] = config(all.config());
    if !details.is_empty() {
        v["account_details"] = json!(details);
    }
    v
}

/// The top level that every answer has.
fn totals(state: &ServerState, usage: &Usage, accounts: usize) -> Value {
    json!({
        "server_id": state.info.server_id,
        "now": rfc3339(SystemTime::now()),
        "memory": usage.memory,
        "storage": usage.storage,
        "reserved_memory": 0,
        "reserved_storage": 0,
        "accounts": accounts,
        "ha_assets": 0,
        "api": {"total": usage.api_total, "errors": usage.api_errors},
        "streams": usage.streams.len(),
        "consumers": usage.consumers(),
        "messages": usage.messages(),
        "bytes": usage.bytes(),
    })
}

/// JetStream's configuration as nats-server reports it: the server's limits (configured or
/// sized from the machine), `store_dir` the `jetstream` directory inside the one given;
/// `--sync always` reads `sync_always` (with nats-server's default interval),
/// `--sync interval=<d>` reads `sync_interval`, `--sync never` neither.
fn config(cfg: &JetStreamConfig) -> Value {
    let mut v = json!({
        "max_memory": cfg.resources.max_memory,
        "max_storage": cfg.resources.max_storage,
        "store_dir": cfg.store_dir.join("jetstream"),
    });
    match cfg.sync {
        SyncPolicy::Always => {
            v["sync_interval"] = json!(DEFAULT_SYNC_INTERVAL);
            v["sync_always"] = json!(true);
        }
        SyncPolicy::Interval(d) => v["sync_interval"] = json!(nanos(d)),
        SyncPolicy::Never => {}
    }
    v
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// An account limit as `/jsz` reports it: read as unsigned, and 0 for limits of a tier (which
/// nats-server does not report there).
fn reserved_limit(limits: &crate::options::AccountJetStreamLimits, limit: i64) -> u64 {
    if limits.tiered {
        0
    } else {
        limit as u64
    }
}

/// The account's usage and, when asked, its streams (and their consumers, and configurations).
/// Its reserved sizes are its limits read as unsigned, as nats-server prints them (no limit, -1,
/// reads 18446744073709551615).
fn account_detail(js: &JetStream, usage: &Usage, opts: &JszOptions) -> Value {
    let cfg = &js.ctx.config;
    let mut v = json!({
        "name": js.ctx.account.name,
        "id": js.ctx.account.name,
        "memory": usage.memory,
        "storage": usage.storage,
        "reserved_memory": reserved_limit(&cfg.account, cfg.account.max_memory),
        "reserved_storage": reserved_limit(&cfg.account, cfg.account.max_storage),
        "accounts": 0,
        "ha_assets": 0,
        "api": {"total": usage.api_total, "errors": usage.api_errors},
    });
    if opts.streams {
        let streams: Vec<_> = js.streams.read().values().cloned().collect();
        let details: Vec<Value> = streams.iter().map(|s| stream_detail(js, s, opts)).collect();
        if !details.is_empty() {
            v["stream_detail"] = json!(details);
        }
    }
    v
}

/// A stream's entry: its info without `ts`, its `config` only with `config=true`, and its
/// consumers' info with `consumers=true`.
fn stream_detail(
    js: &JetStream,
    stream: &crate::jetstream::stream::Stream,
    o: &JszOptions,
) -> Value {
    let info = info::stream(js, stream, &StreamInfoRequest::default());
    let mut v = json!({
        "name": stream.name,
        "created": info["created"],
        "cluster": info["cluster"],
        "state": info["state"],
    });
    if o.config {
        v["config"] = info["config"].clone();
    }
    if o.consumers {
        let consumers: Vec<_> = stream.consumers.read().values().cloned().collect();
        let details: Vec<Value> = consumers
            .iter()
            .map(|c| {
                let mut ci = info::consumer(c);
                if let Some(fields) = ci.as_object_mut() {
                    if !o.config {
                        fields.remove("config");
                    }
                }
                ci
            })
            .collect();
        if !details.is_empty() {
            v["consumer_detail"] = json!(details);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn consumers_imply_streams_and_streams_imply_accounts() {
        let o = JszOptions::parse(&query(&[("consumers", "1")])).unwrap();
        assert!(o.streams && o.accounts && o.lists("$G", 0));
        let o = JszOptions::parse(&query(&[("streams", "true"), ("acc", "other")])).unwrap();
        assert!(o.streams && !o.accounts && !o.lists("$G", 0) && o.lists("other", 1));
        let o = JszOptions::parse(&query(&[("acc", "$G")])).unwrap();
        assert!(o.lists("$G", 0));
        assert!(!JszOptions::parse(&query(&[])).unwrap().lists("$G", 0));
    }

    #[test]
    fn offset_and_limit_page_the_accounts() {
        let o = JszOptions::parse(&query(&[("accounts", "t"), ("offset", "1")])).unwrap();
        assert!(!o.lists("A", 0) && o.lists("B", 1));
        let o = JszOptions::parse(&query(&[("accounts", "t"), ("limit", "1")])).unwrap();
        assert!(o.lists("A", 0) && !o.lists("B", 1));
        let o = JszOptions::parse(&query(&[("accounts", "t"), ("limit", "0")])).unwrap();
        assert_eq!(o.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn bad_values_get_nats_server_error_text() {
        assert_eq!(
            JszOptions::parse(&query(&[("accounts", "maybe")])).unwrap_err(),
            "Error decoding boolean for 'accounts': strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert_eq!(
            JszOptions::parse(&query(&[("offset", "x")])).unwrap_err(),
            "Error decoding int for 'offset': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert!(JszOptions::parse(&query(&[("raft", "nope")])).is_err());
    }
}
