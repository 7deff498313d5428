//! Operator mode settings: `operator` (a JWT, inline or in a file), `resolver: MEMORY` and
//! `resolver_preload { ACCOUNT_KEY: JWT }`, and how they combine with `system_account`.

use super::accounts::at_setting;
use super::apply::{invalid, string, unsupported};
use super::value::{Entry, Map, Node, Value};
use super::ConfigError;
use crate::jwt;
use crate::options::{Auth, OperatorMode, Options};

/// Reads `operator`: one JWT or file name, or a list of them.
pub(super) fn operators(key: &str, node: &Node, opts: &mut Options) -> Result<(), ConfigError> {
    let items: Vec<&Node> = match &node.value {
        Value::Array(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut tokens = Vec::with_capacity(items.len());
    for item in items {
        let text = string(key, item)?;
        let token = read_jwt(&text).map_err(|e| invalid(key, item, e))?;
        jwt::decode::<jwt::Operator>(&token)
            .map_err(|e| invalid(key, item, format!("not a valid operator jwt: {e}")))?;
        tokens.push(token);
    }
    opts.operator.get_or_insert_with(Default::default).operators = tokens;
    Ok(())
}

/// The JWT in the file named `text`, or `text` itself when it is an inline JWT. A file may be
/// decorated as `nsc` writes it (`-----BEGIN ... JWT-----` lines around the token).
fn read_jwt(text: &str) -> Result<String, String> {
    match std::fs::read_to_string(text) {
        Ok(contents) => undecorate(&contents).ok_or_else(|| format!("no jwt in file {text}")),
        Err(_) if text.starts_with("eyJ") => Ok(text.to_string()),
        Err(e) => Err(format!("cannot read {text}: {e}")),
    }
}

/// The first line that looks like a JWT.
fn undecorate(contents: &str) -> Option<String> {
    contents
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("eyJ"))
        .map(String::from)
}

// resolver: MEMORY | MEM | { type: MEMORY } (URL and directory resolvers are refused)
pub(super) fn resolver(entry: &Entry, opts: &mut Options) -> Result<(), ConfigError> {
    let kind = match &entry.node.value {
        Value::Map(map) => map
            .entries
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case("type"))
            .map(|e| e.node.text.clone())
            .unwrap_or_default(),
        _ => entry.node.text.clone(),
    };
    match kind.trim().to_ascii_uppercase().as_str() {
        "MEM" | "MEMORY" => {
            opts.operator
                .get_or_insert_with(Default::default)
                .memory_resolver = true;
            Ok(())
        }
        _ => Err(unsupported(
            entry,
            "only the MEMORY resolver (with resolver_preload) is supported",
        )),
    }
}

// resolver_preload { ACCOUNT_PUBLIC_KEY: ACCOUNT_JWT, ... }
pub(super) fn preload(key: &str, node: &Node, opts: &mut Options) -> Result<(), ConfigError> {
    let Value::Map(map) = &node.value else {
        let message = "expected a block of account public key: account jwt";
        return Err(invalid(key, node, message));
    };
    let mut accounts = Vec::with_capacity(map.entries.len());
    for entry in &map.entries {
        let token = string(&entry.key, &entry.node)?;
        jwt::decode::<jwt::Account>(&token)
            .map_err(|e| invalid(&entry.key, &entry.node, format!("invalid account jwt: {e}")))?;
        accounts.push((entry.key.clone(), token));
    }
    opts.operator.get_or_insert_with(Default::default).preload = accounts;
    Ok(())
}

/// Checks, once every setting is read, that operator mode is complete and alone, and takes the
/// system account from the operator when the file names none.
pub(super) fn check(map: &Map, opts: &mut Options) -> Result<(), ConfigError> {
    let Some(mode) = &opts.operator else {
        return Ok(());
    };
    let fail = |keys: &[&str], message: &str| Err(at_setting(map, keys, message));
    if mode.operators.is_empty() {
        return fail(
            &["resolver", "resolver_preload"],
            "an account resolver needs an operator",
        );
    }
    if !mode.memory_resolver {
        return fail(
            &["operator"],
            "operators require an account resolver: add resolver: MEMORY",
        );
    }
    if !opts.accounts.is_empty() {
        return fail(
            &["accounts"],
            "operators do not allow accounts to be configured directly",
        );
    }
    if opts.auth != Auth::None {
        let message = "operators do not allow users or tokens to be configured directly";
        return fail(&["authorization"], message);
    }
    let from_operator = system_account(mode);
    match (&opts.system_account, from_operator) {
        (Some(ours), Some(theirs)) if *ours != theirs => fail(
            &["system_account", "system"],
            "system_account in config and operator jwt must be identical",
        ),
        (None, from_operator) => {
            opts.system_account = from_operator;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The system account the first operator names, if any.
fn system_account(mode: &OperatorMode) -> Option<String> {
    let first = mode.operators.first()?;
    let op = jwt::decode::<jwt::Operator>(first).ok()?;
    Some(op.nats.system_account).filter(|s| !s.is_empty())
}
