//! Operator mode: which operators are trusted, which accounts they signed, and logging a user
//! in by the JWT in its CONNECT.
//!
//! A login succeeds, as on nats-server, when the user JWT is valid now and signed by its
//! account (or one of the account's signing keys), the account JWT was signed by a trusted
//! operator (or one of its signing keys) and has not expired, the user is not revoked, may
//! connect from the client's address, and signed this connection's nonce (unless the JWT is a
//! bearer token the account allows).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::jwt::{self, Claims, JwtError, SigningKey};
use crate::options::{
    AccountConfig, Export, ExportKind, Import, ImportKind, OperatorMode, Permissions, ResponseType,
};
use crate::proto::connect::ConnectInfo;

/// Trusted operators and the accounts loaded for them.
pub(crate) struct Trust {
    /// Operator keys that may sign accounts.
    keys: Vec<String>,
    /// Account claims by account public key (`resolver_preload`).
    accounts: HashMap<String, Claims<jwt::Account>>,
}

/// A user logged in by JWT.
#[derive(Debug)]
pub(crate) struct JwtLogin {
    /// The account's public key.
    pub account: String,
    /// The user's public key.
    pub user: String,
    /// From the user JWT, else the account's default permissions; `None` means anything.
    pub permissions: Option<Permissions>,
    /// When the user JWT expires, Unix seconds.
    pub expires: Option<i64>,
}

impl Trust {
    /// Decodes the configured operators and accounts; fails on any that do not decode.
    pub fn new(mode: &OperatorMode) -> Result<Trust, JwtError> {
        let mut keys = Vec::new();
        for token in &mode.operators {
            let op = jwt::decode::<jwt::Operator>(token)?;
            if !op.nats.strict_signing_key_usage {
                keys.push(op.sub.clone());
            }
            keys.extend(op.nats.signing_keys.iter().cloned());
        }
        let mut accounts = HashMap::new();
        for (key, token) in &mode.preload {
            accounts.insert(key.clone(), jwt::decode::<jwt::Account>(token)?);
        }
        Ok(Trust { keys, accounts })
    }

    /// The public key of every loaded account, with its connection limit (`limits.conn`;
    /// a JWT without one allows none, as on nats-server).
    pub fn account_limits(&self) -> impl Iterator<Item = (&str, Option<usize>)> {
        self.accounts
            .iter()
            .map(|(key, claims)| (key.as_str(), usize::try_from(claims.nats.limits.conn).ok()))
    }

    /// The trusted accounts whose JWT enables JetStream, with its limits, by public key.
    pub fn jetstream_accounts(&self) -> Vec<(&str, crate::options::AccountJetStreamLimits)> {
        let mut accounts: Vec<_> = self
            .accounts
            .iter()
            .filter(|(key, claims)| self.trusted(key, claims))
            .filter_map(|(key, claims)| Some((key.as_str(), claims.nats.jetstream()?)))
            .collect();
        accounts.sort_unstable_by_key(|(key, _)| *key);
        accounts
    }

    /// The exports and imports of every trusted account, by public key, in the form of the
    /// configuration file's. Exports that require an activation token are left out (with a
    /// warning): the broker does not check activation tokens, so nobody may import them.
    pub fn account_links(&self) -> Vec<AccountConfig> {
        let mut accounts: Vec<AccountConfig> = self
            .accounts
            .iter()
            .filter(|(key, claims)| self.trusted(key, claims))
            .map(|(key, claims)| AccountConfig {
                name: key.clone(),
                exports: claims
                    .nats
                    .exports
                    .iter()
                    .filter_map(|e| jwt_export(key, e))
                    .collect(),
                imports: claims
                    .nats
                    .imports
                    .iter()
                    .filter_map(|i| jwt_import(key, i))
                    .collect(),
                ..AccountConfig::default()
            })
            .collect();
        accounts.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        accounts
    }

    /// Accounts whose JWT no trusted operator signed, or whose key differs from its subject:
    /// nobody can log in to them.
    pub fn untrusted_accounts(&self) -> Vec<&str> {
        let mut bad: Vec<&str> = self
            .accounts
            .iter()
            .filter(|(key, claims)| !self.trusted(key, claims))
            .map(|(key, _)| key.as_str())
            .collect();
        bad.sort_unstable();
        bad
    }

    fn trusted(&self, key: &str, claims: &Claims<jwt::Account>) -> bool {
        claims.sub == key && self.keys.contains(&claims.iss)
    }

    /// Logs in the user whose JWT is in `connect`; `now` is Unix seconds.
    pub fn login(
        &self,
        connect: &ConnectInfo,
        nonce: &str,
        ip: IpAddr,
        now: i64,
    ) -> Result<JwtLogin, String> {
        let token = connect.jwt.as_deref().ok_or("a user jwt is required")?;
        let user = jwt::decode::<jwt::User>(token).map_err(|e| format!("user jwt: {e}"))?;
        user.check_time(now).map_err(|e| format!("user jwt: {e}"))?;
        let account_key = match user.nats.issuer_account.as_str() {
            "" => &user.iss,
            key => key,
        };
        let account = self
            .accounts
            .get(account_key)
            .ok_or_else(|| format!("account {account_key} is not known"))?;
        if !self.trusted(account_key, account) {
            return Err(format!(
                "account {account_key} is not signed by a trusted operator"
            ));
        }
        account
            .check_time(now)
            .map_err(|e| format!("account jwt: {e}"))?;
        let scope = issuer_scope(account, &user.iss)?;
        let rights = match scope {
            Some(template) if user.nats.is_unrestricted() => template,
            Some(_) => return Err("a scoped signing key's users carry no permissions".into()),
            None => &user.nats,
        };
        check_user(account, &user, rights, connect, nonce, ip)?;
        Ok(JwtLogin {
            account: account_key.to_string(),
            user: user.sub.clone(),
            permissions: permissions(&rights.permissions)
                .or_else(|| permissions(&account.nats.default_permissions)),
            expires: (user.exp > 0).then_some(user.exp),
        })
    }
}

/// Whether `issuer` may sign the account's users: `Ok(Some(template))` for a scoped signing key.
fn issuer_scope<'a>(
    account: &'a Claims<jwt::Account>,
    issuer: &str,
) -> Result<Option<&'a jwt::User>, String> {
    if issuer == account.sub {
        return Ok(None);
    }
    match account.nats.signing_keys.iter().find(|k| k.key() == issuer) {
        Some(SigningKey::Plain(_)) => Ok(None),
        Some(SigningKey::Scoped { template, .. }) => Ok(Some(template)),
        None => Err(format!(
            "user jwt issuer {issuer} is not a key of the account"
        )),
    }
}

/// The checks of one login beyond the signatures: bearer, connection type, nonce, revocation,
/// source address and connect times.
fn check_user(
    account: &Claims<jwt::Account>,
    user: &Claims<jwt::User>,
    rights: &jwt::User,
    connect: &ConnectInfo,
    nonce: &str,
    ip: IpAddr,
) -> Result<(), String> {
    if rights.bearer_token && account.nats.limits.disallow_bearer {
        return Err("the account does not allow bearer tokens".into());
    }
    let types = &rights.allowed_connection_types;
    if !types.is_empty() && !types.iter().any(|t| t.eq_ignore_ascii_case("STANDARD")) {
        return Err("connection type not allowed".into());
    }
    if !rights.bearer_token && !crate::auth::signed(&user.sub, nonce, connect.sig.as_deref()) {
        return Err("the nonce signature is missing or wrong".into());
    }
    let revoked = |key: &str| {
        account
            .nats
            .revocations
            .get(key)
            .is_some_and(|&at| user.iat <= at)
    };
    if revoked(&user.sub) || revoked("*") {
        return Err("user authentication revoked".into());
    }
    if !rights.src.is_empty() && !rights.src.iter().any(|c| cidr_contains(c, ip)) {
        return Err(format!("source address {ip} not allowed"));
    }
    if !rights.times.is_empty() {
        return Err("connect time windows are not supported".into());
    }
    Ok(())
}

fn permissions(p: &jwt::UserPermissions) -> Option<Permissions> {
    let rules = |r: &jwt::SubjectRules| crate::options::SubjectRules {
        allow: r.allow.clone(),
        deny: r.deny.clone(),
    };
    (!p.publish.is_empty() || !p.subscribe.is_empty()).then(|| Permissions {
        publish: rules(&p.publish),
        subscribe: rules(&p.subscribe),
    })
}

/// Whether `ip` is in `cidr` (`10.0.0.0/8`, `::1/128`, or a bare address).
fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (net, bits) = match cidr.trim().split_once('/') {
        Some((net, bits)) => (net, bits.parse::<u32>().ok()),
        None => (cidr.trim(), None),
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net.parse::<IpAddr>(), ip) {
        (Ok(IpAddr::V4(net)), IpAddr::V4(ip)) => prefix_eq(
            u32::from(net).into(),
            u32::from(ip).into(),
            bits.unwrap_or(32),
            32,
        ),
        (Ok(IpAddr::V6(net)), IpAddr::V6(ip)) => {
            prefix_eq(net.into(), ip.into(), bits.unwrap_or(128), 128)
        }
        _ => false,
    }
}

/// Whether the first `bits` of two `width`-bit numbers are equal.
fn prefix_eq(a: u128, b: u128, bits: u32, width: u32) -> bool {
    if bits > width {
        return false;
    }
    let shift = width - bits;
    shift >= width || (a >> shift) == (b >> shift)
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;

/// An account JWT's export as the configuration file's; `None` (with a warning) for one the
/// broker cannot serve.
fn jwt_export(account: &str, e: &jwt::JwtExport) -> Option<Export> {
    if e.token_req {
        tracing::warn!(
            "account {account}: export {:?} requires activation tokens, which this broker does \
             not support; nobody can import it",
            e.subject
        );
        return None;
    }
    let kind = match e.kind.to_ascii_lowercase().as_str() {
        "stream" => ExportKind::Stream,
        "service" => ExportKind::Service {
            response: match e.response_type.to_ascii_lowercase().as_str() {
                "stream" => ResponseType::Stream,
                "chunked" => ResponseType::Chunked,
                _ => ResponseType::Singleton,
            },
            threshold: u64::try_from(e.response_threshold)
                .ok()
                .filter(|ns| *ns > 0)
                .map_or(
                    crate::links::DEFAULT_RESPONSE_THRESHOLD,
                    std::time::Duration::from_nanos,
                ),
        },
        other => {
            tracing::warn!(
                "account {account}: export {:?} of unknown type {other:?}",
                e.subject
            );
            return None;
        }
    };
    Some(Export {
        subject: e.subject.clone(),
        kind,
        accounts: Vec::new(),
    })
}

/// An account JWT's import as the configuration file's, as nats-server reads it: a
/// `local_subject` maps the subject; without one, the older `to` is a stream's prefix or a
/// service's local subject.
fn jwt_import(account: &str, i: &jwt::JwtImport) -> Option<Import> {
    if !i.token.is_empty() {
        tracing::warn!(
            "account {account}: import {:?} carries an activation token, which this broker does \
             not check; it is left out",
            i.subject
        );
        return None;
    }
    let local = (!i.local_subject.is_empty()).then(|| i.local_subject.clone());
    let older = (!i.to.is_empty()).then(|| i.to.clone());
    let kind = match i.kind.to_ascii_lowercase().as_str() {
        "stream" => ImportKind::Stream {
            to: local.or(older.map(|prefix| format!("{prefix}.{}", i.subject))),
        },
        "service" => ImportKind::Service {
            to: local.or(older),
            share: i.share,
        },
        other => {
            tracing::warn!(
                "account {account}: import {:?} of unknown type {other:?}",
                i.subject
            );
            return None;
        }
    };
    Some(Import {
        account: i.account.clone(),
        subject: i.subject.clone(),
        kind,
    })
}
