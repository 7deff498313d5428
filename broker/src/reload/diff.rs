//! Which settings a reload changes, and whether nats-server 2.10 would accept the change.
//!
//! The settings are compared in the order of nats-server's options, so that of several refused
//! changes the same one is reported, with nats-server's wording (`config reload not supported
//! for <Field>: old=<old>, new=<new>`, values as Go prints them). Accepted changes come back as
//! the `Reloaded: ...` lines to log, plus what must be done about them.

use std::fmt::Display;
use std::time::Duration;

use crate::monitor::go_duration;
use crate::options::{Auth, Export, Import, Options};

/// nats-server's system account when none is configured.
const DEFAULT_SYSTEM_ACCOUNT: &str = "$SYS";

/// What an accepted reload changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// One `Reloaded: ...` line per changed setting, for the log.
    pub lines: Vec<String>,
    /// Users, tokens, accounts or permissions changed: logins are checked again.
    pub auth: bool,
    /// The log level, file or timestamps changed.
    pub logging: bool,
    /// `tls {}` or `allow_non_tls` changed: new connections get the new TLS.
    pub tls: bool,
    /// `max_connections` changed: clients over the new limit are closed.
    pub max_connections: bool,
    /// The pid file moved.
    pub pid_file: bool,
    /// The ports file directory moved.
    pub ports_file_dir: bool,
}

fn refused(field: &str, old: impl Display, new: impl Display) -> String {
    format!("config reload not supported for {field}: old={old}, new={new}")
}

fn or_empty(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

fn path_or_empty(value: &Option<std::path::PathBuf>) -> String {
    value
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Seconds as Go prints a float64: `2`, `0.5`.
fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Compares the running options with a reload's; `new` takes the running port when it asks
/// for any free one, as nats-server. `Err` is the refusal, and nothing must be applied.
pub(crate) fn diff(old: &Options, new: &mut Options) -> Result<Changes, String> {
    let mut c = Changes::default();
    if new.port == 0 {
        new.port = old.port;
    }
    if new.server_name != old.server_name {
        return Err(refused(
            "ServerName",
            or_empty(&old.server_name),
            or_empty(&new.server_name),
        ));
    }
    if new.host != old.host {
        return Err(refused("Host", &old.host, &new.host));
    }
    if new.port != old.port {
        return Err(refused("Port", old.port, new.port));
    }
    if new.trace != old.trace {
        c.logging = true;
        c.lines.push(format!("trace = {}", new.trace));
    }
    if new.debug != old.debug {
        c.logging = true;
        c.lines.push(format!("debug = {}", new.debug));
    }
    if new.log_time != old.log_time {
        c.logging = true;
        c.lines.push(format!("logtime = {}", new.log_time));
    }
    if new.max_connections != old.max_connections {
        c.max_connections = true;
        c.lines
            .push(format!("max_connections = {}", new.max_connections));
    }
    if new.max_subscriptions != old.max_subscriptions {
        return Err(refused(
            "MaxSubs",
            old.max_subscriptions,
            new.max_subscriptions,
        ));
    }
    auth(old, new, &mut c)?;
    if new.ping_interval != old.ping_interval {
        c.lines.push(format!(
            "ping_interval = {}",
            go_duration(new.ping_interval)
        ));
    }
    if new.ping_max != old.ping_max {
        c.lines.push(format!("ping_max = {}", new.ping_max));
    }
    if new.http_host != old.http_host {
        return Err(refused(
            "HTTPHost",
            or_empty(&old.http_host),
            or_empty(&new.http_host),
        ));
    }
    if new.http_port != old.http_port {
        return Err(refused(
            "HTTPPort",
            old.http_port.unwrap_or(0),
            new.http_port.unwrap_or(0),
        ));
    }
    if new.https_port != old.https_port {
        return Err(refused(
            "HTTPSPort",
            old.https_port.unwrap_or(0),
            new.https_port.unwrap_or(0),
        ));
    }
    if new.tls != old.tls || new.allow_non_tls != old.allow_non_tls {
        c.tls = true;
        c.lines.push(format!(
            "tls = {}",
            if new.tls.is_some() {
                "enabled"
            } else {
                "disabled"
            }
        ));
    }
    if new.auth_timeout() != old.auth_timeout() {
        c.lines.push(format!(
            "authorization timeout = {}",
            seconds(new.auth_timeout())
        ));
    }
    if new.max_control_line != old.max_control_line {
        c.lines
            .push(format!("max_control_line = {}", new.max_control_line));
    }
    if new.max_payload != old.max_payload {
        c.lines.push(format!("max_payload = {}", new.max_payload));
    }
    if new.max_pending != old.max_pending {
        return Err(refused("MaxPending", old.max_pending, new.max_pending));
    }
    jetstream(old, new)?;
    if new.pid_file != old.pid_file {
        c.pid_file = true;
        c.lines
            .push(format!("pid_file = {}", path_or_empty(&new.pid_file)));
    }
    if new.ports_file_dir != old.ports_file_dir {
        c.ports_file_dir = true;
        c.lines.push(format!(
            "ports_file_dir = {}",
            path_or_empty(&new.ports_file_dir)
        ));
    }
    if new.log_file != old.log_file {
        c.logging = true;
        c.lines
            .push(format!("log_file = {}", path_or_empty(&new.log_file)));
    }
    if new.write_deadline != old.write_deadline {
        c.lines.push(format!(
            "write_deadline = {}",
            go_duration(new.write_deadline)
        ));
    }
    if new.lame_duck_duration != old.lame_duck_duration {
        return Err(refused(
            "LameDuckDuration",
            go_duration(old.lame_duck_duration),
            go_duration(new.lame_duck_duration),
        ));
    }
    if new.lame_duck_grace_period != old.lame_duck_grace_period {
        return Err(refused(
            "LameDuckGracePeriod",
            go_duration(old.lame_duck_grace_period),
            go_duration(new.lame_duck_grace_period),
        ));
    }
    if new.operator != old.operator {
        // nats-server reloads a memory resolver's preloads; the broker keeps the JWTs of
        // start-up (its own wording: nats-server prints pointers here).
        return Err(
            "config reload not supported for operator mode (TrustedOperators or \
                    resolver_preload): restart to apply"
                .to_string(),
        );
    }
    // Settings of the broker's own flags, which a config file cannot set.
    let own = [
        ("ping_timeout", new.ping_timeout != old.ping_timeout),
        ("store_type", new.store_type != old.store_type),
        (
            "redeliver_on_disconnect",
            new.redeliver_on_disconnect != old.redeliver_on_disconnect,
        ),
        ("cluster_id", new.cluster_id != old.cluster_id),
        ("stan", new.stan != old.stan),
    ];
    if let Some((name, _)) = own.iter().find(|(_, changed)| *changed) {
        return Err(format!("config reload not supported for {name}"));
    }
    Ok(c)
}

/// Users, tokens, accounts and permissions, which nats-server reloads, and the two settings
/// around them it does not (`no_auth_user`, `system_account`).
fn auth(old: &Options, new: &Options, c: &mut Changes) -> Result<(), String> {
    fn links(o: &Options) -> Vec<(&String, &Vec<Import>, &Vec<Export>)> {
        o.accounts
            .iter()
            .filter(|a| !a.imports.is_empty() || !a.exports.is_empty())
            .map(|a| (&a.name, &a.imports, &a.exports))
            .collect()
    }
    if links(new) != links(old) {
        return Err(
            "config reload not supported for account imports and exports: restart to apply"
                .to_string(),
        );
    }
    if new.accounts != old.accounts {
        c.auth = true;
        c.lines.push("accounts".to_string());
    }
    if new.no_auth_user != old.no_auth_user {
        // Dropping it is accepted only along with its user, as nats-server.
        let still_a_user = old.no_auth_user.as_deref().is_some_and(|name| {
            matches!(&new.auth, Auth::Users(users) if users.iter().any(|u| u.identity() == name))
        });
        if new.no_auth_user.is_some() || still_a_user {
            return Err(refused(
                "NoAuthUser",
                or_empty(&old.no_auth_user),
                or_empty(&new.no_auth_user),
            ));
        }
        c.auth = true;
    }
    if new.system_account != old.system_account {
        let old_name = old
            .system_account
            .as_deref()
            .unwrap_or(DEFAULT_SYSTEM_ACCOUNT);
        let new_name = or_empty(&new.system_account);
        if old_name != DEFAULT_SYSTEM_ACCOUNT || !new_name.is_empty() {
            return Err(refused("SystemAccount", old_name, new_name));
        }
    }
    if new.auth != old.auth {
        c.auth = true;
        c.lines.push(match &new.auth {
            Auth::Token(_) => "authorization token".to_string(),
            _ => "authorization users".to_string(),
        });
    }
    let permissions_changed = new.user_permissions != old.user_permissions
        || new.default_permissions != old.default_permissions;
    if permissions_changed && new.auth == old.auth {
        c.auth = true;
        c.lines.push("authorization users".to_string());
    }
    Ok(())
}

/// JetStream: nats-server enables and disables it on reload; the broker refuses that. Its
/// store directory and limits are refused as nats-server refuses them.
fn jetstream(old: &Options, new: &Options) -> Result<(), String> {
    if new.jetstream != old.jetstream {
        return Err(refused("JetStream", old.jetstream, new.jetstream));
    }
    if old.jetstream {
        resources(old, new)?;
    }
    if new.jetstream_limits != old.jetstream_limits {
        let show = |l: &crate::options::JetStreamLimits| {
            format!("{{{} {} 0 0s}}", l.max_request_batch, l.max_ack_pending)
        };
        return Err(refused(
            "JetStreamLimits",
            show(&old.jetstream_limits),
            show(&new.jetstream_limits),
        ));
    }
    if old.jetstream && new.store_dir != old.store_dir {
        return Err(if new.store_dir.is_none() {
            "config reload not supported for jetstream storage dir"
        } else {
            "config reload not supported for jetstream storage directory"
        }
        .to_string());
    }
    if new.sync != old.sync {
        return Err(format!(
            "config reload not supported for sync: old={:?}, new={:?}",
            old.sync, new.sync
        ));
    }
    Ok(())
}

/// JetStream's memory and store limits: set ones cannot change, nor unset ones become set.
fn resources(old: &Options, new: &Options) -> Result<(), String> {
    let limit = |v: Option<i64>| v.unwrap_or(-1);
    let memory = (
        limit(old.jetstream_max_memory),
        limit(new.jetstream_max_memory),
    );
    let store = (
        limit(old.jetstream_max_store),
        limit(new.jetstream_max_store),
    );
    for (old_limit, new_limit) in [memory, store] {
        if old_limit == new_limit {
            continue;
        }
        return Err(if old_limit == -1 && new_limit != -1 {
            "config reload not supported for jetstream dynamic max memory and store"
        } else if new_limit == -1 {
            "config reload not supported for jetstream max memory and max store"
        } else {
            "config reload not supported for jetstream max memory and store"
        }
        .to_string());
    }
    Ok(())
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
