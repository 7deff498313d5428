//! Mapping a parsed file onto [`Options`]: which keys mean what, and what each value must be.

use std::path::PathBuf;
use std::time::Duration;

use super::value::{classify, parse_duration, parse_size, Entry, Map, Node, Value};
use super::ConfigError;
use crate::options::{Auth, Options, User, UserPass};

/// Top-level settings nats-server knows that change nothing a client of this broker relies
/// on (logging details, profiling), so a file written for nats-server still
/// loads: they are ignored with a warning.
const IGNORED: &[&str] = &[
    "client_advertise",
    "connect_error_reports",
    "disable_sublist_cache",
    "logfile_max_num",
    "logfile_size_limit",
    "log_size_limit",
    "logtime_utc",
    "max_closed_clients",
    "max_traced_msg_len",
    "no_sublist_cache",
    "prof_port",
    "reconnect_error_reports",
    "remote_syslog",
    "syslog",
];

/// Applies every top-level entry of `map` onto `opts`, in file order (a repeated key: the last
/// wins), collecting warnings about ignored settings.
pub(super) fn apply(
    map: &Map,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    map.entries
        .iter()
        .try_for_each(|entry| top_level(entry, opts, warnings))?;
    super::accounts::check(map, opts)?;
    super::jetstream::check_store_dir(map)?;
    super::operator::check(map, opts)
}

fn top_level(
    entry: &Entry,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let key = entry.key.to_ascii_lowercase();
    let (k, node) = (key.as_str(), &entry.node);
    match k {
        "listen" => listen(k, node, &mut opts.host, &mut opts.port)?,
        "host" | "net" => opts.host = string(k, node)?,
        "port" => opts.port = port(k, node)?,
        "http_port" | "monitor_port" => opts.http_port = http_port(k, node)?,
        "http" => http(k, node, opts)?,
        "server_name" => opts.server_name = Some(string(k, node)?),
        "max_payload" => opts.max_payload = number(k, node)?,
        "max_control_line" => opts.max_control_line = number(k, node)?,
        "max_connections" | "max_conn" => opts.max_connections = number(k, node)?,
        "max_pending" => opts.max_pending = number(k, node)?,
        "max_subscriptions" | "max_subs" => opts.max_subscriptions = number(k, node)?,
        "write_deadline" => opts.write_deadline = duration(k, node)?,
        "ping_interval" => opts.ping_interval = duration(k, node)?,
        "lame_duck_duration" => opts.lame_duck_duration = duration(k, node)?,
        "lame_duck_grace_period" => opts.lame_duck_grace_period = duration(k, node)?,
        "ping_max" => opts.ping_max = number(k, node)?,
        "debug" => opts.debug = boolean(k, node)?,
        "trace" => opts.trace = boolean(k, node)?,
        "trace_verbose" => opts.trace |= boolean(k, node)?,
        "logtime" => opts.log_time = boolean(k, node)?,
        "log_file" | "logfile" => opts.log_file = Some(path(k, node)?),
        "pid_file" | "pidfile" => opts.pid_file = Some(path(k, node)?),
        "ports_file_dir" => opts.ports_file_dir = Some(path(k, node)?),
        "jetstream" => super::jetstream::jetstream(node, opts, warnings)?,
        "store_dir" | "storedir" => opts.store_dir = Some(path(k, node)?),
        "authorization" => authorization(k, node, opts)?,
        "accounts" => super::accounts::accounts(k, node, opts, warnings)?,
        "no_auth_user" => opts.no_auth_user = Some(string(k, node)?),
        "system_account" | "system" => opts.system_account = Some(string(k, node)?),
        "operator" | "operators" | "root" | "roots" | "root_operator" | "root_operators" => {
            super::operator::operators(k, node, opts)?
        }
        "resolver" | "account_resolver" | "accounts_resolver" => {
            super::operator::resolver(entry, opts)?
        }
        "resolver_preload" => super::operator::preload(k, node, opts)?,
        "tls" => opts.tls = Some(super::tls::tls(entry)?),
        "allow_non_tls" => opts.allow_non_tls = boolean(k, node)?,
        "https_port" => opts.https_port = http_port(k, node)?,
        "https" => https(k, node, opts)?,
        _ => return other(entry, IGNORED, warnings),
    }
    Ok(())
}

/// A key this level does not set: a warning if harmless, nothing if it is a variable, else an
/// error.
pub(super) fn other(
    entry: &Entry,
    ignored: &[&str],
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if ignored.contains(&entry.key.to_ascii_lowercase().as_str()) {
        warnings.push(format!(
            "config file {}: ignoring '{}': this broker does not implement it",
            entry.key_at, entry.key
        ));
        Ok(())
    } else if entry.used_as_variable {
        Ok(())
    } else {
        Err(ConfigError::UnknownSetting {
            at: entry.key_at.clone(),
            key: entry.key.clone(),
        })
    }
}

pub(super) fn unsupported(entry: &Entry, message: &str) -> ConfigError {
    ConfigError::Unsupported {
        at: entry.key_at.clone(),
        key: entry.key.clone(),
        message: message.to_string(),
    }
}

pub(super) fn invalid(key: &str, node: &Node, message: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        at: node.at.clone(),
        key: key.to_string(),
        message: message.into(),
    }
}

/// Any scalar as written: `password: 1234` is the string "1234".
pub(super) fn string(key: &str, node: &Node) -> Result<String, ConfigError> {
    match node.value {
        Value::Array(_) | Value::Map(_) => Err(invalid(key, node, "expected a string")),
        _ => Ok(node.text.clone()),
    }
}

pub(super) fn path(key: &str, node: &Node) -> Result<PathBuf, ConfigError> {
    string(key, node).map(PathBuf::from)
}

pub(super) fn boolean(key: &str, node: &Node) -> Result<bool, ConfigError> {
    match classify(&node.text) {
        Value::Bool(b) => Ok(b),
        _ => Err(invalid(key, node, "expected true or false")),
    }
}

/// A non-negative integer that fits `T`, with an optional size suffix (`1MB`), quoted or not.
pub(super) fn number<T: TryFrom<i64>>(key: &str, node: &Node) -> Result<T, ConfigError> {
    let n = match node.value {
        Value::Integer(n) => Some(n),
        Value::String(_) => parse_size(&node.text),
        _ => None,
    };
    let n = n.ok_or_else(|| invalid(key, node, "expected a number such as 1024 or 1MB"))?;
    if n < 0 {
        return Err(invalid(
            key,
            node,
            format!("'{}' must not be negative", node.text),
        ));
    }
    T::try_from(n).map_err(|_| invalid(key, node, format!("'{}' is too large", node.text)))
}

/// A duration: `"2m"`, `"1h30m"`, `500ms`, or a number of seconds (`10`, `0.5`); never zero.
pub(super) fn duration(key: &str, node: &Node) -> Result<Duration, ConfigError> {
    let parsed = match node.value {
        Value::Float(f) => Duration::try_from_secs_f64(f)
            .map_err(|_| format!("'{}' is not a valid number of seconds", node.text)),
        Value::Integer(_) | Value::String(_) => parse_duration(&node.text),
        _ => Err("expected a duration such as \"5s\" or \"2m\"".to_string()),
    };
    match parsed {
        Ok(d) if d.is_zero() => Err(invalid(key, node, "must be greater than zero")),
        Ok(d) => Ok(d),
        Err(message) => Err(invalid(key, node, message)),
    }
}

/// A port number, with -1 meaning any free port (stored as 0).
fn to_port(n: i64) -> Option<u16> {
    if n == -1 {
        Some(0)
    } else {
        u16::try_from(n).ok()
    }
}

const PORT_RANGE: &str = "expected a port from 0 to 65535, or -1 for a random one";

fn port(key: &str, node: &Node) -> Result<u16, ConfigError> {
    let n = match node.value {
        Value::Integer(n) => Some(n),
        Value::String(_) => node.text.trim().parse().ok(),
        _ => None,
    };
    n.and_then(to_port)
        .ok_or_else(|| invalid(key, node, PORT_RANGE))
}

/// The monitoring port: 0 turns monitoring off, as nats-server.
fn http_port(key: &str, node: &Node) -> Result<Option<u16>, ConfigError> {
    port(key, node).map(|p| (p != 0 || node.text.starts_with('-')).then_some(p))
}

/// `host:port`, `[ipv6]:port`, `:port`, or a bare port.
fn listen(key: &str, node: &Node, host: &mut String, port: &mut u16) -> Result<(), ConfigError> {
    const EXPECTED: &str = "expected host:port, such as 0.0.0.0:4222";
    let (h, p) = match &node.value {
        Value::Integer(_) => (None, self::port(key, node)?),
        Value::String(s) => {
            let (h, p) = s
                .rsplit_once(':')
                .ok_or_else(|| invalid(key, node, EXPECTED))?;
            let p = p.parse().ok().and_then(to_port);
            let h = h
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(h);
            (Some(h), p.ok_or_else(|| invalid(key, node, PORT_RANGE))?)
        }
        _ => return Err(invalid(key, node, EXPECTED)),
    };
    if let Some(h) = h.filter(|h| !h.is_empty()) {
        *host = h.to_string();
    }
    *port = p;
    Ok(())
}

fn http(key: &str, node: &Node, opts: &mut Options) -> Result<(), ConfigError> {
    opts.http_port = monitor_listen(key, node, opts)?;
    Ok(())
}

/// `host:port` of the monitoring port (HTTP or HTTPS): sets the host, returns the port (`None`
/// for 0, which turns monitoring off).
fn monitor_listen(key: &str, node: &Node, opts: &mut Options) -> Result<Option<u16>, ConfigError> {
    let mut host = opts.http_host.clone().unwrap_or_default();
    let mut port = 0;
    listen(key, node, &mut host, &mut port)?;
    opts.http_host = (!host.is_empty()).then_some(host);
    let random = node.text.ends_with(":-1") || node.text == "-1";
    Ok((port != 0 || random).then_some(port))
}

// https: "host:port", the monitoring port over HTTPS.
fn https(key: &str, node: &Node, opts: &mut Options) -> Result<(), ConfigError> {
    opts.https_port = monitor_listen(key, node, opts)?;
    Ok(())
}

// authorization { token: t } | { user: u, password: p } | { users: [{user: u, password: p}] }
// and optionally timeout: 2 (seconds)
fn authorization(key: &str, node: &Node, opts: &mut Options) -> Result<(), ConfigError> {
    let Value::Map(map) = &node.value else {
        return Err(invalid(
            key,
            node,
            "expected a block: authorization { ... }",
        ));
    };
    let (mut token, mut user, mut pass, mut users) = (None, None, None, None);
    for entry in &map.entries {
        let key = entry.key.to_ascii_lowercase();
        let (k, node) = (key.as_str(), &entry.node);
        match k {
            "token" => token = Some(string(k, node)?),
            "user" | "username" => user = Some(string(k, node)?),
            "password" | "pass" => pass = Some(string(k, node)?),
            "users" => {
                users = Some(super::users::user_list(
                    k,
                    node,
                    &mut opts.user_permissions,
                )?)
            }
            "timeout" => opts.auth_timeout = Some(duration(k, node)?),
            "default_permissions" => {
                opts.default_permissions = Some(super::permissions::permissions(k, node)?)
            }
            "permissions" => {
                return Err(unsupported(
                    entry,
                    "give each user its own, or use default_permissions",
                ))
            }
            "nkeys" | "auth_callout" => {
                return Err(unsupported(
                    entry,
                    "only tokens and passwords are supported",
                ))
            }
            _ => other(entry, &[], &mut Vec::new())?,
        }
    }
    opts.auth = match (token, user, pass, users) {
        (None, None, None, None) => Auth::None,
        (Some(token), None, None, None) => Auth::Token(token.into()),
        (None, Some(user), Some(pass), None) => Auth::Users(vec![User::Password(UserPass {
            user,
            pass: pass.into(),
        })]),
        (None, None, None, Some(users)) => Auth::Users(users),
        (Some(_), ..) => return Err(invalid(key, node, "a token cannot be combined with users")),
        (None, _, _, Some(_)) => {
            return Err(invalid(
                key,
                node,
                "use either 'user'/'password' or 'users', not both",
            ))
        }
        (None, ..) => return Err(invalid(key, node, "'user' and 'password' go together")),
    };
    Ok(())
}
