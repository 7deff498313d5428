//! The server's `jetstream` setting: on or off, or a block with the store, its limits and the
//! JetStream domain, in every form nats-server 2.10 reads.

use super::apply::{boolean, invalid, number, other, path, string, unsupported};
use super::value::{Entry, Map, Node, Value};
use super::ConfigError;
use crate::options::{AccountJetStreamLimits, Options};

/// JetStream settings without meaning on a single server, ignored with a warning: catch-up of
/// cluster peers, placement tags, the leaf-node extension hint and the API request queue.
const IGNORED_IN_JETSTREAM: &[&str] = &[
    "max_outstanding_catchup",
    "unique_tag",
    "extension_hint",
    "request_queue_limit",
];

/// Server-wide JetStream limits the broker does not enforce: duplicate windows are each
/// stream's own, and there are no replicated (HA) assets without a cluster.
const IGNORED_IN_JETSTREAM_LIMITS: &[&str] = &["duplicate_window", "max_ha_assets"];

/// The settings of encryption at rest, which the broker does not implement: a file that asks
/// for it is refused rather than stored in the clear.
const ENCRYPTION_KEYS: &[&str] = &[
    "key",
    "ek",
    "encryption_key",
    "prev_key",
    "prev_ek",
    "prev_encryption_key",
];

/// The ciphers nats-server knows (`cipher` alone, without a key, encrypts nothing).
const CIPHERS: &[&str] = &["chacha", "chachapoly", "aes"];

// jetstream: true | enabled | disabled | { store_dir: "/data", max_mem: 1G, domain: hub, ... }
pub(super) fn jetstream(
    node: &Node,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let map = match &node.value {
        Value::Map(map) => map,
        Value::Bool(on) => {
            opts.jetstream = *on;
            return Ok(());
        }
        _ => {
            opts.jetstream = enabled_word("jetstream", node)?;
            return Ok(());
        }
    };
    opts.jetstream = true;
    for entry in &map.entries {
        let key = entry.key.to_ascii_lowercase();
        let (k, node) = (key.as_str(), &entry.node);
        match k {
            "enabled" | "enable" => opts.jetstream = boolean(k, node)?,
            "store_dir" | "store" | "storedir" => opts.store_dir = Some(path(k, node)?),
            "sync_interval" | "sync" => opts.sync = sync_interval(k, node)?,
            "limits" => jetstream_limits(node, opts, warnings)?,
            "max_memory_store" | "max_mem_store" | "max_mem" => {
                opts.jetstream_max_memory = Some(storage_size(k, node)?);
            }
            "max_file_store" | "max_file" => {
                opts.jetstream_max_store = Some(storage_size(k, node)?)
            }
            "domain" => opts.jetstream_domain = domain(k, node)?,
            "cipher" => cipher(k, node)?,
            _ if ENCRYPTION_KEYS.contains(&k) => return Err(encryption_refused(entry)),
            _ => other(entry, IGNORED_IN_JETSTREAM, warnings)?,
        }
    }
    Ok(())
}

/// A store directory given both at the top level and in the `jetstream` block is refused, as
/// nats-server refuses it (the same key repeated at one level is not: the last one counts).
pub(super) fn check_store_dir(map: &Map) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &["store_dir", "storedir"];
    let named = |e: &&Entry, keys: &[&str]| keys.iter().any(|k| e.key.eq_ignore_ascii_case(k));
    if !map.entries.iter().any(|e| named(&e, KEYS)) {
        return Ok(());
    }
    let blocks = map.entries.iter().filter(|e| named(e, &["jetstream"]));
    for block in blocks {
        let Value::Map(inner) = &block.node.value else {
            continue;
        };
        let inner_keys = ["store", "store_dir", "storedir"];
        if let Some(entry) = inner.entries.iter().find(|e| named(e, &inner_keys)) {
            let message = "duplicate 'store_dir' configuration: also set at the top level";
            return Err(invalid(&entry.key, &entry.node, message));
        }
    }
    Ok(())
}

/// `enabled` / `disabled` (or `enable` / `disable`) written as a word or a quoted string; a
/// bare `true` or `on` is a boolean and never gets here.
pub(super) fn enabled_word(key: &str, node: &Node) -> Result<bool, ConfigError> {
    match node.text.to_ascii_lowercase().as_str() {
        "enabled" | "enable" => Ok(true),
        "disabled" | "disable" => Ok(false),
        _ => Err(invalid(
            key,
            node,
            format!(
                "expected enabled, disabled, true, false or a block, not '{}'",
                node.text
            ),
        )),
    }
}

fn encryption_refused(entry: &Entry) -> ConfigError {
    unsupported(
        entry,
        "encryption at rest is not supported: the broker would store the streams in the clear",
    )
}

// cipher: chacha | chachapoly | aes
fn cipher(key: &str, node: &Node) -> Result<(), ConfigError> {
    let text = string(key, node)?;
    if CIPHERS.contains(&text.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(invalid(
            key,
            node,
            format!("unknown cipher type \"{text}\": expected chacha or aes"),
        ))
    }
}

// domain: hub (a name without '.', '*', '>' or whitespace; empty means none)
fn domain(key: &str, node: &Node) -> Result<Option<String>, ConfigError> {
    let text = string(key, node)?;
    if text.is_empty() {
        return Ok(None);
    }
    if text
        .chars()
        .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
    {
        let message = "invalid domain name: may not contain ., * or > or whitespace";
        return Err(invalid(key, node, message));
    }
    Ok(Some(text))
}

// limits { max_request_batch: 100, max_ack_pending: 1000, duplicate_window: 2m, max_ha_assets: 0 }
fn jetstream_limits(
    node: &Node,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let Value::Map(map) = &node.value else {
        return Err(invalid("limits", node, "expected a block"));
    };
    let limits = &mut opts.jetstream_limits;
    for entry in &map.entries {
        let key = entry.key.to_ascii_lowercase();
        let (k, node) = (key.as_str(), &entry.node);
        match k {
            "max_request_batch" => limits.max_request_batch = number(k, node)?,
            "max_ack_pending" => limits.max_ack_pending = number(k, node)?,
            _ => other(entry, IGNORED_IN_JETSTREAM_LIMITS, warnings)?,
        }
    }
    Ok(())
}

/// A storage size: a bare number with or without a unit (`1073741824`, `10GB`, `1G`, `512MB`),
/// or, as nats-server reads quoted sizes, a string of digits and one of `K`, `M`, `G`, `T`
/// (`"1G"`; `"1GB"` and `"512"` are refused, and `""` is 0). A negative size means "size it
/// from the machine".
pub(super) fn storage_size(key: &str, node: &Node) -> Result<i64, ConfigError> {
    const QUOTED: &str =
        "expected a size such as 10GB or \"1G\" (in quotes: a number followed by K, M, G or T)";
    let n = match &node.value {
        Value::Integer(n) => Some(*n),
        Value::String(s) if s.is_empty() => Some(0),
        Value::String(s) => quoted_size(s),
        _ => {
            return Err(invalid(
                key,
                node,
                "expected a size such as 10GB or 1073741824",
            ))
        }
    };
    n.ok_or_else(|| invalid(key, node, QUOTED))
}

fn quoted_size(text: &str) -> Option<i64> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let shift = match unit {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    let n: i64 = digits.parse().ok()?;
    n.checked_mul(1 << shift)
}

// sync_interval: always | <duration>, as nats-server (and never, as --sync)
fn sync_interval(key: &str, node: &Node) -> Result<crate::store::SyncPolicy, ConfigError> {
    use crate::store::SyncPolicy;
    match node.text.to_ascii_lowercase().as_str() {
        "always" => Ok(SyncPolicy::Always),
        "never" => Ok(SyncPolicy::Never),
        _ => match super::apply::duration(key, node)? {
            d if d.is_zero() => Err(invalid(key, node, "expected always, never or a duration")),
            d => Ok(SyncPolicy::Interval(d)),
        },
    }
}

// An account's jetstream: enabled | disabled | true | false | { max_mem: 1G, max_file: 10G,
// max_streams: 10, max_consumers: 100, max_ack_pending: 1000, mem_max_stream_bytes: 1M,
// disk_max_stream_bytes: 1G, max_bytes_required: true }: the limits, or None for disabled.
pub(super) fn account_jetstream(
    key: &str,
    node: &Node,
) -> Result<Option<AccountJetStreamLimits>, ConfigError> {
    let on = match &node.value {
        Value::Map(map) => return account_limits(map).map(Some),
        Value::Bool(on) => *on,
        _ => enabled_word(key, node)?,
    };
    Ok(on.then(AccountJetStreamLimits::default))
}

fn account_limits(map: &super::value::Map) -> Result<AccountJetStreamLimits, ConfigError> {
    let mut limits = AccountJetStreamLimits::default();
    for entry in &map.entries {
        let key = entry.key.to_ascii_lowercase();
        let (k, node) = (key.as_str(), &entry.node);
        let target = match k {
            "max_memory" | "max_mem" | "mem" | "memory" => &mut limits.max_memory,
            "max_store" | "max_file" | "max_disk" | "store" | "disk" => &mut limits.max_storage,
            "max_streams" | "streams" => &mut limits.max_streams,
            "max_consumers" | "consumers" => &mut limits.max_consumers,
            "max_ack_pending" => &mut limits.max_ack_pending,
            "mem_max_stream_bytes" | "memory_max_stream_bytes" => {
                &mut limits.memory_max_stream_bytes
            }
            "disk_max_stream_bytes" | "store_max_stream_bytes" => {
                &mut limits.storage_max_stream_bytes
            }
            "max_bytes_required" | "max_stream_bytes" | "max_bytes" => {
                limits.max_bytes_required = boolean(k, node)?;
                continue;
            }
            _ => {
                other(entry, &[], &mut Vec::new())?;
                continue;
            }
        };
        // nats-server takes only numbers here (with a size unit when bare), never strings.
        *target = match node.value {
            Value::Integer(n) => n,
            _ => return Err(invalid(k, node, "expected a number such as 1024 or 1GB")),
        };
    }
    Ok(limits)
}
