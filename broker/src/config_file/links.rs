//! An account's `exports` and `imports`, as nats-server reads them:
//!
//! ```text
//! exports: [
//!   { stream: "orders.>" }                                   # any account may import it
//!   { service: "pricing.*", accounts: [SHOP], response_type: stream, response_threshold: "5s" }
//! ]
//! imports: [
//!   { stream: { account: ERP, subject: "orders.>" }, prefix: "erp" }   # or to: "erp.orders.>"
//!   { service: { account: ERP, subject: "pricing.*" }, to: "price.*" }
//! ]
//! ```
//!
//! Each entry is read here; whether an import is allowed by the exporter's exports is checked
//! once every account is read ([`check`]).

use std::time::Duration;

use super::apply::{boolean, duration, invalid, string};
use super::value::{Map, Node, Value};
use super::ConfigError;
use crate::options::{AccountConfig, Export, ExportKind, Import, ImportKind, ResponseType};
use crate::proto::subject::is_valid_subject;

use crate::links::DEFAULT_RESPONSE_THRESHOLD;

/// Reads `exports: [...]`.
pub(super) fn exports(key: &str, node: &Node) -> Result<Vec<Export>, ConfigError> {
    list(key, node)?.iter().map(|n| export(key, n)).collect()
}

/// Reads `imports: [...]`.
pub(super) fn imports(key: &str, node: &Node) -> Result<Vec<Import>, ConfigError> {
    list(key, node)?.iter().map(|n| import(key, n)).collect()
}

fn list<'a>(key: &str, node: &'a Node) -> Result<&'a [Node], ConfigError> {
    match &node.value {
        Value::Array(items) => Ok(items),
        _ => Err(invalid(key, node, "expected a list: [ { ... }, ... ]")),
    }
}

fn entries<'a>(key: &str, node: &'a Node, what: &str) -> Result<&'a Map, ConfigError> {
    match &node.value {
        Value::Map(map) => Ok(map),
        _ => Err(invalid(key, node, format!("expected a map: {what}"))),
    }
}

fn subject(key: &str, node: &Node) -> Result<String, ConfigError> {
    let s = string(key, node)?;
    if !is_valid_subject(s.as_bytes()) {
        return Err(invalid(key, node, format!("{s:?} is not a valid subject")));
    }
    Ok(s)
}

// { stream: "a.>" } or { service: "b.*", accounts: [...], response_type: ..., response_threshold: ... }
fn export(key: &str, node: &Node) -> Result<Export, ConfigError> {
    let map = entries(key, node, "{ stream: SUBJECT } or { service: SUBJECT }")?;
    let mut found: Option<(String, bool)> = None;
    let mut accounts = Vec::new();
    let mut response: Option<(ResponseType, &Node)> = None;
    let mut threshold: Option<(Duration, &Node)> = None;
    for entry in &map.entries {
        let (k, n) = (entry.key.to_ascii_lowercase(), &entry.node);
        match k.as_str() {
            "stream" | "service" => {
                if found.is_some() {
                    return Err(invalid(&k, n, "an export is either a stream or a service"));
                }
                found = Some((subject(&k, n)?, k == "service"));
            }
            "accounts" => {
                accounts = list(&k, n)?
                    .iter()
                    .map(|a| string(&k, a))
                    .collect::<Result<_, _>>()?
            }
            "response" | "response_type" => {
                let kind = match string(&k, n)?.to_ascii_lowercase().as_str() {
                    "singleton" => ResponseType::Singleton,
                    "stream" => ResponseType::Stream,
                    "chunked" => ResponseType::Chunked,
                    other => {
                        let message = format!(
                            "unknown response type {other:?}: singleton, stream or chunked"
                        );
                        return Err(invalid(&k, n, message));
                    }
                };
                response = Some((kind, n));
            }
            "threshold" | "response_threshold" => threshold = Some((duration(&k, n)?, n)),
            "allow_trace" | "account_token_position" | "advertise" => {}
            "latency" => {
                let message = "service latency tracking is not supported by this broker";
                return Err(invalid(&k, n, message));
            }
            _ => return Err(invalid(&k, n, "unknown field of an export")),
        }
    }
    let Some((subject, service)) = found else {
        return Err(invalid(key, node, "an export needs `stream` or `service`"));
    };
    let kind = if service {
        ExportKind::Service {
            response: response.map(|(r, _)| r).unwrap_or_default(),
            threshold: threshold.map_or(DEFAULT_RESPONSE_THRESHOLD, |(t, _)| t),
        }
    } else {
        if let Some(n) = response.map(|(_, n)| n).or(threshold.map(|(_, n)| n)) {
            return Err(invalid(
                key,
                n,
                "response settings apply to a service export only",
            ));
        }
        ExportKind::Stream
    };
    Ok(Export {
        subject,
        kind,
        accounts,
    })
}

// { stream: { account: A, subject: S }, prefix: P | to: T } or
// { service: { account: A, subject: S }, to: T, share: true }
fn import(key: &str, node: &Node) -> Result<Import, ConfigError> {
    let map = entries(
        key,
        node,
        "{ stream: { account, subject } } or { service: { ... } }",
    )?;
    let mut found: Option<(String, String, bool)> = None;
    let mut to: Option<(String, &Node)> = None;
    let mut prefix: Option<(String, &Node)> = None;
    let mut share = false;
    for entry in &map.entries {
        let (k, n) = (entry.key.to_ascii_lowercase(), &entry.node);
        match k.as_str() {
            "stream" | "service" => {
                if found.is_some() {
                    return Err(invalid(&k, n, "an import is either a stream or a service"));
                }
                let (account, subject) = origin(&k, n)?;
                found = Some((account, subject, k == "service"));
            }
            "to" => to = Some((subject(&k, n)?, n)),
            "prefix" => prefix = Some((subject(&k, n)?, n)),
            "share" => share = boolean(&k, n)?,
            "allow_trace" => {}
            _ => return Err(invalid(&k, n, "unknown field of an import")),
        }
    }
    let Some((account, subject, service)) = found else {
        return Err(invalid(key, node, "an import needs `stream` or `service`"));
    };
    let kind = if service {
        if let Some((_, n)) = prefix {
            return Err(invalid(
                "prefix",
                n,
                "a service import takes `to`, not `prefix`",
            ));
        }
        ImportKind::Service {
            to: to.map(|(t, _)| t),
            share,
        }
    } else {
        let to = match (to, prefix) {
            (Some(_), Some((_, n))) => {
                let message = "a stream import takes `prefix` or `to`, not both";
                return Err(invalid("prefix", n, message));
            }
            (Some((t, _)), None) => Some(t),
            (None, Some((p, n))) => {
                if p.split('.').any(|t| t == "*" || t == ">") {
                    return Err(invalid("prefix", n, "a prefix cannot hold wildcards"));
                }
                Some(format!("{p}.{subject}"))
            }
            (None, None) => None,
        };
        ImportKind::Stream { to }
    };
    Ok(Import {
        account,
        subject,
        kind,
    })
}

// { account: A, subject: S }
fn origin(key: &str, node: &Node) -> Result<(String, String), ConfigError> {
    let map = entries(key, node, "{ account: NAME, subject: SUBJECT }")?;
    let (mut account, mut subj) = (None, None);
    for entry in &map.entries {
        let (k, n) = (entry.key.to_ascii_lowercase(), &entry.node);
        match k.as_str() {
            "account" => account = Some(string(&k, n)?),
            "subject" => subj = Some(subject(&k, n)?),
            _ => return Err(invalid(&k, n, "expected `account` and `subject`")),
        }
    }
    match (account, subj) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => Err(invalid(key, node, "expected an account name and a subject")),
    }
}

/// Once every account is read: each import names a declared account whose exports allow it
/// (see [`crate::links::check_import`]); the first that does not stops the start.
pub(super) fn check(accounts: &[AccountConfig]) -> Result<(), String> {
    for export in accounts.iter().flat_map(|a| &a.exports) {
        if let Some(name) = export
            .accounts
            .iter()
            .find(|n| !accounts.iter().any(|a| &a.name == *n))
        {
            return Err(format!(
                "{name:?} account not defined for export {:?}",
                export.subject
            ));
        }
    }
    for importer in accounts {
        for import in &importer.imports {
            crate::links::check_import(accounts, &importer.name, import)?;
        }
    }
    Ok(())
}
