//! The `nats` part of operator, account and user claims: the fields the broker acts on.
//! Fields it does not act on (most limits, for one) are left out and so ignored.

use std::collections::HashMap;

use nkeys::KeyPairType;
use serde::{Deserialize, Deserializer};

use super::Kind;

/// An operator: the root of trust, self-signed.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Operator {
    /// Other keys that may sign account JWTs for this operator.
    pub signing_keys: Vec<String>,
    /// The account (public key) the operator designates as the system account.
    pub system_account: String,
    /// Only the signing keys, not the operator key itself, may sign accounts.
    pub strict_signing_key_usage: bool,
}

impl Kind for Operator {
    const TYPE: &'static str = "operator";
    const SUBJECT: KeyPairType = KeyPairType::Operator;
    const ISSUER: KeyPairType = KeyPairType::Operator;
}

/// An account: an isolated subject space, signed by an operator.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Account {
    /// Keys besides the account's own that may sign its users.
    pub signing_keys: Vec<SigningKey>,
    /// Users (or `*`, all) whose JWTs issued at or before the time given are revoked.
    pub revocations: HashMap<String, i64>,
    /// The account's limits; the broker acts on `conn` and `disallow_bearer`.
    pub limits: AccountLimits,
    /// Permissions of users whose JWT has none.
    pub default_permissions: UserPermissions,
    /// What the account offers other accounts.
    pub exports: Vec<JwtExport>,
    /// What the account takes from other accounts.
    pub imports: Vec<JwtImport>,
}

/// One export of an account JWT.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct JwtExport {
    pub subject: String,
    /// `stream` or `service`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `Singleton` (the default), `Stream` or `Chunked`.
    pub response_type: String,
    /// Nanoseconds; 0 for the default.
    pub response_threshold: i64,
    /// Importers need an activation token the exporter signed.
    pub token_req: bool,
}

/// One import of an account JWT.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct JwtImport {
    /// The exporting account's public key.
    pub account: String,
    /// The subject as the exporter has it.
    pub subject: String,
    /// Where it lands here (JWT version 2).
    pub local_subject: String,
    /// The older form: a stream import's prefix, a service import's local subject.
    pub to: String,
    /// `stream` or `service`.
    #[serde(rename = "type")]
    pub kind: String,
    /// An activation token, for an export that requires one.
    pub token: String,
    pub share: bool,
}

impl Kind for Account {
    const TYPE: &'static str = "account";
    const SUBJECT: KeyPairType = KeyPairType::Account;
    const ISSUER: KeyPairType = KeyPairType::Operator;
}

/// The limits of an account the broker applies.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AccountLimits {
    /// Most clients connected at once; -1 means no limit, and a missing value 0 (as
    /// nats-server reads it).
    pub conn: i64,
    /// Users may not log in with bearer tokens (JWTs without a signed nonce).
    pub disallow_bearer: bool,
    /// The account's JetStream limits; JetStream is on for it when either storage is not 0.
    #[serde(flatten)]
    pub jetstream: JetStreamLimits,
    /// JetStream limits by replica tier (`R1`, `R3`); a single server uses `R1`'s.
    pub tiered_limits: HashMap<String, JetStreamLimits>,
}

/// An account JWT's JetStream limits, as `nsc` writes them (-1 is no limit; 0 storage is no
/// JetStream).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct JetStreamLimits {
    /// Bytes in memory streams.
    pub mem_storage: i64,
    /// Bytes in file streams.
    pub disk_storage: i64,
    /// Streams.
    pub streams: i64,
    /// Consumers (of each stream, as nats-server counts them).
    pub consumer: i64,
    /// A consumer's largest and default `max_ack_pending`.
    pub max_ack_pending: i64,
    /// Largest `max_bytes` of a memory stream.
    pub mem_max_stream_bytes: i64,
    /// Largest `max_bytes` of a file stream.
    pub disk_max_stream_bytes: i64,
    /// Every stream must set `max_bytes`.
    pub max_bytes_required: bool,
}

impl Account {
    /// The account's JetStream limits as nats-server 2.10 takes them from the JWT, or `None`
    /// when the JWT does not enable JetStream: the plain limits when either storage is not 0,
    /// else the `R1` tier (the only one a single server uses).
    pub fn jetstream(&self) -> Option<crate::options::AccountJetStreamLimits> {
        let plain = &self.limits.jetstream;
        let tiered = plain.mem_storage == 0 && plain.disk_storage == 0;
        let limits = match tiered {
            false => plain,
            true => self.limits.tiered_limits.get("R1")?,
        };
        // The byte caps and max_ack_pending: anything but a positive value is no limit.
        let unlimited = |n: i64| if n > 0 { n } else { -1 };
        Some(crate::options::AccountJetStreamLimits {
            max_memory: limits.mem_storage,
            max_storage: limits.disk_storage,
            max_streams: limits.streams,
            max_consumers: limits.consumer,
            max_ack_pending: unlimited(limits.max_ack_pending),
            memory_max_stream_bytes: unlimited(limits.mem_max_stream_bytes),
            storage_max_stream_bytes: unlimited(limits.disk_max_stream_bytes),
            max_bytes_required: limits.max_bytes_required,
            tiered,
        })
    }
}

/// An account signing key: a plain key, or a scoped one whose users get `template`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum SigningKey {
    /// Signs users that carry their own permissions.
    Plain(String),
    /// Signs users that carry none: they get the template's.
    Scoped {
        /// The public key.
        key: String,
        /// What every user it signs may do.
        #[serde(default)]
        template: Box<User>,
    },
}

impl SigningKey {
    /// The public key.
    pub fn key(&self) -> &str {
        match self {
            SigningKey::Plain(key) | SigningKey::Scoped { key, .. } => key,
        }
    }
}

/// A user: what it may publish and subscribe to, and how and whence it may connect.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct User {
    /// Publish and subscribe permissions.
    #[serde(flatten)]
    pub permissions: UserPermissions,
    /// Networks (CIDR) the user may connect from; empty means anywhere.
    #[serde(deserialize_with = "cidr_list")]
    pub src: Vec<String>,
    /// Times of day the user may connect; empty means always.
    pub times: Vec<serde_json::Value>,
    /// Most subscriptions, bytes and payload size; -1 means no limit.
    pub subs: i64,
    /// See `subs`.
    pub data: i64,
    /// See `subs`.
    pub payload: i64,
    /// Logs in without signing the nonce.
    pub bearer_token: bool,
    /// Connection types the user may use (`STANDARD`, `WEBSOCKET`, ...); empty means any.
    pub allowed_connection_types: Vec<String>,
    /// The account, when a signing key of it (rather than the account key) issued the JWT.
    pub issuer_account: String,
}

impl Default for User {
    fn default() -> Self {
        User {
            permissions: UserPermissions::default(),
            src: Vec::new(),
            times: Vec::new(),
            subs: -1,
            data: -1,
            payload: -1,
            bearer_token: false,
            allowed_connection_types: Vec::new(),
            issuer_account: String::new(),
        }
    }
}

impl User {
    /// Whether the JWT sets no permissions and no limits, as a scoped signing key requires.
    pub fn is_unrestricted(&self) -> bool {
        let unlimited = |n: i64| n == -1 || n == 0;
        self.permissions.is_empty()
            && self.src.is_empty()
            && self.times.is_empty()
            && !self.bearer_token
            && self.allowed_connection_types.is_empty()
            && unlimited(self.subs)
            && unlimited(self.data)
            && unlimited(self.payload)
    }
}

impl Kind for User {
    const TYPE: &'static str = "user";
    const SUBJECT: KeyPairType = KeyPairType::User;
    const ISSUER: KeyPairType = KeyPairType::Account;
}

/// `pub` and `sub` rules, and `resp` (responses to requests received).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UserPermissions {
    /// Subjects the user may publish to.
    #[serde(rename = "pub")]
    pub publish: SubjectRules,
    /// Subjects the user may subscribe to.
    #[serde(rename = "sub")]
    pub subscribe: SubjectRules,
    /// Permission to reply to requests received; not supported (see `trust`).
    pub resp: Option<serde_json::Value>,
}

impl UserPermissions {
    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && self.resp.is_none()
    }
}

/// Allow and deny lists of subjects.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SubjectRules {
    /// When not empty, only these.
    pub allow: Vec<String>,
    /// Never these.
    pub deny: Vec<String>,
}

impl SubjectRules {
    /// Neither list has an entry.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// `src`: a list of CIDRs, or (older JWTs) one comma-separated string.
fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Form>::deserialize(d)? {
        None => Vec::new(),
        Some(Form::List(list)) => list,
        Some(Form::Text(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}
