//! `users: [...]` lists, in `authorization {}` and in accounts: password users and nkey users,
//! each with optional permissions.

use std::collections::HashMap;

use super::apply::{invalid, other, string};
use super::value::{Node, Value};
use super::ConfigError;
use crate::options::{Permissions, User, UserPass};

// users: [ { user: alice, password: secret }, { nkey: UABC... }, ... ]
pub(super) fn user_list(
    key: &str,
    node: &Node,
    permissions: &mut HashMap<String, Permissions>,
) -> Result<Vec<User>, ConfigError> {
    let Value::Array(items) = &node.value else {
        return Err(invalid(
            key,
            node,
            "expected a list: users = [ {user: u, password: p} ]",
        ));
    };
    let mut users = Vec::with_capacity(items.len());
    for item in items {
        let Value::Map(map) = &item.value else {
            return Err(invalid(
                key,
                item,
                "expected a block such as {user: u, password: p}",
            ));
        };
        let (mut user, mut pass, mut nkey, mut perms) = (None, None, None, None);
        for entry in &map.entries {
            let key = entry.key.to_ascii_lowercase();
            let (k, node) = (key.as_str(), &entry.node);
            match k {
                "user" | "username" => user = Some(string(k, node)?),
                "password" | "pass" => pass = Some(string(k, node)?),
                "permissions" => perms = Some(super::permissions::permissions(k, node)?),
                "nkey" => nkey = Some(user_nkey(k, node)?),
                _ => other(entry, &[], &mut Vec::new())?,
            }
        }
        let login = match (user, pass, nkey) {
            (Some(user), Some(pass), None) => User::Password(UserPass {
                user,
                pass: pass.into(),
            }),
            // As nats-server: a user without a password, meant for `verify_and_map`.
            (Some(user), None, None) => User::Password(UserPass {
                user,
                pass: String::new().into(),
            }),
            (None, None, Some(nkey)) => User::NKey(nkey),
            _ => {
                return Err(invalid(
                    key,
                    item,
                    "each user needs either a 'user' (with a 'password' unless TLS maps certificates to users), or an 'nkey'",
                ))
            }
        };
        if let Some(perms) = perms {
            permissions.insert(login.identity().to_string(), perms);
        }
        users.push(login);
    }
    Ok(users)
}

/// A user's public nkey: base32 with a checksum, starting with `U`.
fn user_nkey(key: &str, node: &Node) -> Result<String, ConfigError> {
    let text = string(key, node)?;
    match nkeys::from_public_key(&text) {
        Ok(_) if text.starts_with('U') => Ok(text),
        Ok(_) => Err(invalid(
            key,
            node,
            "expected a user nkey, which starts with 'U'",
        )),
        Err(e) => Err(invalid(key, node, format!("not a valid public nkey: {e}"))),
    }
}
