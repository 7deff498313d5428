//! `permissions { publish: ..., subscribe: ... }` of a user, and `default_permissions`.
//!
//! Each of `publish` and `subscribe` is a subject, a list of subjects (both meaning "allow only
//! these"), or a block `{ allow: ..., deny: ... }`.

use super::apply::{invalid, string, unsupported};
use super::value::{Node, Value};
use super::ConfigError;
use crate::options::{Permissions, SubjectRules};
use crate::proto::subject::is_valid_subject;

/// Reads a `permissions` block.
pub(super) fn permissions(key: &str, node: &Node) -> Result<Permissions, ConfigError> {
    let Value::Map(map) = &node.value else {
        return Err(invalid(
            key,
            node,
            "expected a block: permissions { publish: ..., subscribe: ... }",
        ));
    };
    let mut perms = Permissions::default();
    for entry in &map.entries {
        let k = entry.key.to_ascii_lowercase();
        match k.as_str() {
            "publish" | "pub" => perms.publish = rules(&k, &entry.node)?,
            "subscribe" | "sub" => perms.subscribe = rules(&k, &entry.node)?,
            _ => {
                return Err(unsupported(
                    entry,
                    "only 'publish' and 'subscribe' are supported",
                ))
            }
        }
    }
    Ok(perms)
}

fn rules(key: &str, node: &Node) -> Result<SubjectRules, ConfigError> {
    match &node.value {
        Value::Map(map) => {
            let mut rules = SubjectRules::default();
            for entry in &map.entries {
                let k = entry.key.to_ascii_lowercase();
                match k.as_str() {
                    "allow" => rules.allow = subjects(&k, &entry.node)?,
                    "deny" => rules.deny = subjects(&k, &entry.node)?,
                    _ => return Err(unsupported(entry, "only 'allow' and 'deny' are supported")),
                }
            }
            Ok(rules)
        }
        _ => Ok(SubjectRules {
            allow: subjects(key, node)?,
            deny: Vec::new(),
        }),
    }
}

fn subjects(key: &str, node: &Node) -> Result<Vec<String>, ConfigError> {
    let items: Vec<&Node> = match &node.value {
        Value::Array(items) => items.iter().collect(),
        _ => vec![node],
    };
    items
        .into_iter()
        .map(|item| {
            let subject = string(key, item)?;
            if is_valid_subject(subject.as_bytes()) {
                Ok(subject)
            } else {
                Err(invalid(
                    key,
                    item,
                    format!("'{subject}' is not a valid subject"),
                ))
            }
        })
        .collect()
}
