//! `accounts { NAME { users: [...], default_permissions: {...}, jetstream: enabled } }` (or a
//! list of names, `accounts: [A, B]`), and the checks that tie accounts, users and
//! `no_auth_user` together once the whole file is read.

use std::collections::HashSet;

use super::apply::{invalid, other, unsupported};
use super::value::{Entry, Map, Node, Value};
use super::ConfigError;
use crate::accounts::GLOBAL_ACCOUNT;
use crate::options::{AccountConfig, Auth, Options};

/// Settings of an account block the broker ignores with a warning.
const IGNORED_IN_ACCOUNT: &[&str] = &["nkey"];

/// Reads the `accounts` setting.
pub(super) fn accounts(
    key: &str,
    node: &Node,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    match &node.value {
        Value::Array(names) => {
            for name in names {
                let name = super::apply::string(key, name)?;
                add(key, node, opts, AccountConfig::new(name))?;
            }
        }
        Value::Map(map) => {
            for entry in map.entries.iter().filter(|e| !e.used_as_variable) {
                let account = account(entry, opts, warnings)?;
                add(key, &entry.node, opts, account)?;
            }
        }
        _ => {
            return Err(invalid(
                key,
                node,
                "expected a block: accounts { NAME { ... } }",
            ))
        }
    }
    Ok(())
}

fn add(
    key: &str,
    node: &Node,
    opts: &mut Options,
    account: AccountConfig,
) -> Result<(), ConfigError> {
    if account.name == GLOBAL_ACCOUNT {
        return Err(invalid(
            key,
            node,
            format!("{GLOBAL_ACCOUNT:?} is a reserved account"),
        ));
    }
    if opts.accounts.iter().any(|a| a.name == account.name) {
        let message = format!("account {:?} is declared twice", account.name);
        return Err(invalid(key, node, message));
    }
    opts.accounts.push(account);
    Ok(())
}

// NAME { users: [...], default_permissions: {...}, jetstream: enabled }
fn account(
    entry: &Entry,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<AccountConfig, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        let message = "expected a block: NAME { users: [...] }";
        return Err(invalid(&entry.key, &entry.node, message));
    };
    let mut account = AccountConfig::new(entry.key.clone());
    for entry in &map.entries {
        let key = entry.key.to_ascii_lowercase();
        let (k, node) = (key.as_str(), &entry.node);
        match k {
            "users" => {
                account.users = super::users::user_list(k, node, &mut opts.user_permissions)?
            }
            "default_permissions" => {
                account.default_permissions = Some(super::permissions::permissions(k, node)?)
            }
            "jetstream" => {
                let limits = super::jetstream::account_jetstream(k, node)?;
                account.jetstream = limits.is_some();
                account.jetstream_limits = limits.unwrap_or_default();
            }
            "exports" => account.exports = super::links::exports(k, node)?,
            "imports" => account.imports = super::links::imports(k, node)?,
            "mappings" | "maps" => {
                return Err(unsupported(entry, "subject mappings are not supported"));
            }
            "limits" => return Err(unsupported(entry, "account limits are not supported")),
            _ => other(entry, IGNORED_IN_ACCOUNT, warnings)?,
        }
    }
    Ok(account)
}

impl AccountConfig {
    fn new(name: String) -> AccountConfig {
        AccountConfig {
            name,
            ..AccountConfig::default()
        }
    }
}

/// Checks, once every setting is read: no user is declared twice, account users are not mixed
/// with a token, and `no_auth_user` names a declared user.
pub(super) fn check(map: &Map, opts: &Options) -> Result<(), ConfigError> {
    let global = match &opts.auth {
        Auth::Users(users) => users.as_slice(),
        _ => &[],
    };
    let in_accounts = opts.accounts.iter().flat_map(|a| &a.users);
    let mut seen = HashSet::new();
    for user in global.iter().chain(in_accounts.clone()) {
        if !seen.insert(user.identity()) {
            let message = format!("user {:?} is declared twice", user.identity());
            return Err(at_setting(map, &["accounts", "authorization"], message));
        }
    }
    if matches!(opts.auth, Auth::Token(_)) && in_accounts.clone().next().is_some() {
        let message = "a token cannot be combined with users in accounts";
        return Err(at_setting(map, &["accounts"], message));
    }
    super::links::check(&opts.accounts).map_err(|m| at_setting(map, &["accounts"], m))?;
    match &opts.no_auth_user {
        Some(name) if !seen.contains(name.as_str()) => {
            let message = format!("user {name:?} is not declared in authorization or accounts");
            Err(at_setting(map, &["no_auth_user"], message))
        }
        _ => Ok(()),
    }
}

/// An invalid-value error at the last top-level entry named one of `keys` (else at the first
/// entry of the file).
pub(super) fn at_setting(map: &Map, keys: &[&str], message: impl Into<String>) -> ConfigError {
    let named = |e: &&Entry| keys.iter().any(|k| e.key.eq_ignore_ascii_case(k));
    let entry = map.entries.iter().rev().find(named);
    match entry.or(map.entries.first()) {
        Some(entry) => invalid(&entry.key, &entry.node, message),
        // An empty file sets nothing that could disagree.
        None => ConfigError::Syntax {
            at: super::Location {
                file: std::path::Path::new("").into(),
                line: 1,
                column: 1,
            },
            message: message.into(),
        },
    }
}
