//! NATS JWTs: decoding and signature checks for operator, account and user claims, of version 2
//! and of the legacy version 1 that nats-server 2.10 still accepts.
//!
//! A JWT is `header.claims.signature`, each part base64url without padding. The header says
//! `{"typ":"JWT","alg":"ed25519-nkey"}` (`ed25519` in version 1); the claims are JSON whose
//! `iss` is the public nkey that signed them with Ed25519, and whose `nats` object carries what
//! the kind grants. Version 2 names its kind in `nats.type` (with `nats.version: 2`) and signs
//! `header.claims`; version 1 names it in a top-level `type`, keeps a user's `issuer_account` at
//! the top level too, and signs the claims part alone. A version 1 account has no JetStream
//! limits (version 1 had none), so JetStream is off for it, as on nats-server. [`decode`] checks the form, the signature, the kind and the key
//! types; [`Claims::check_time`] checks `exp` and `nbf`; who may issue what (operator → account
//! → user) is decided by the caller (`trust`).

mod claims;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod v1_tests;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use nkeys::{KeyPair, KeyPairType};
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub(crate) use claims::{
    Account, JwtExport, JwtImport, Operator, SigningKey, SubjectRules, User, UserPermissions,
};

/// Why a JWT was not accepted; the text goes to the debug log and config errors.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("malformed jwt: {0}")]
    Malformed(String),
    /// The header is not `typ: JWT`, `alg: ed25519-nkey`.
    #[error("unsupported jwt header: {0}")]
    Header(String),
    /// Claims of no known version (no `type`, no `nats.version`), or newer than version 2.
    #[error("unsupported jwt version {0}: versions 1 and 2 are supported")]
    Version(u64),
    /// The claims are of another kind than expected.
    #[error("expected {expected} claims, found {found:?}")]
    WrongKind {
        /// The kind asked for.
        expected: &'static str,
        /// The `nats.type` found.
        found: String,
    },
    /// `iss` or `sub` is not a public nkey of the kind the claims need.
    #[error("{field} {key:?} is not a valid public {kind} nkey")]
    Key {
        /// `iss` or `sub`.
        field: &'static str,
        /// The key as written.
        key: String,
        /// The kind of key expected.
        kind: &'static str,
    },
    /// The signature is not the issuer's over `header.claims`.
    #[error("signature verification failed")]
    Signature,
    /// `exp` has passed.
    #[error("jwt has expired")]
    Expired,
    /// `nbf` is still to come.
    #[error("jwt is not yet valid")]
    NotYetValid,
}

/// The registered claims every NATS JWT has, and its kind's own claims in `nats`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Claims<N> {
    /// Issued at, Unix seconds.
    #[serde(default)]
    pub iat: i64,
    /// The public nkey that signed it.
    pub iss: String,
    /// The public nkey it describes.
    pub sub: String,
    /// Expires at, Unix seconds; 0 means never.
    #[serde(default)]
    pub exp: i64,
    /// Not valid before, Unix seconds; 0 means always.
    #[serde(default)]
    pub nbf: i64,
    /// The kind's own claims.
    pub nats: N,
}

impl<N> Claims<N> {
    /// Checks `exp` and `nbf` against `now` (Unix seconds), as nats-server: a JWT expires when
    /// `now` is past `exp`.
    pub fn check_time(&self, now: i64) -> Result<(), JwtError> {
        if self.exp > 0 && now > self.exp {
            return Err(JwtError::Expired);
        }
        if self.nbf > 0 && now < self.nbf {
            return Err(JwtError::NotYetValid);
        }
        Ok(())
    }
}

/// One kind of claims: its `nats.type` and which nkeys may be its subject and issuer.
pub(crate) trait Kind: DeserializeOwned {
    /// The `nats.type` value.
    const TYPE: &'static str;
    /// The kind of key `sub` must be.
    const SUBJECT: KeyPairType;
    /// The kind of key `iss` must be.
    const ISSUER: KeyPairType;
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    typ: String,
    #[serde(default)]
    alg: String,
}

/// The kind and version of any claims: a top-level `type` (version 1), or `nats.type` and
/// `nats.version`.
#[derive(Deserialize)]
struct Identity {
    #[serde(default, rename = "type")]
    v1_kind: String,
    #[serde(default)]
    nats: IdentityFields,
}

impl Identity {
    fn version(&self) -> u64 {
        if self.v1_kind.is_empty() {
            self.nats.version
        } else {
            1
        }
    }

    fn kind(self) -> String {
        if self.v1_kind.is_empty() {
            self.nats.kind
        } else {
            self.v1_kind
        }
    }
}

/// What version 1 kept in `nats.limits` of an account: anything else there (JetStream limits
/// came with version 2) is not read from a version 1 account.
const V1_ACCOUNT_LIMITS: &[&str] = &[
    "subs",
    "data",
    "payload",
    "imports",
    "exports",
    "wildcards",
    "conn",
    "leaf",
    "disallow_bearer",
];

#[derive(Default, Deserialize)]
struct IdentityFields {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    version: u64,
}

/// Decodes `token` as claims of kind `N` and checks its signature and key types (not its
/// times: see [`Claims::check_time`]).
pub(crate) fn decode<N: Kind>(token: &str) -> Result<Claims<N>, JwtError> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three parts".into()));
    };
    check_header(&json::<Header>(header, "header")?)?;
    let identity: Identity = json(body, "claims")?;
    let version = identity.version();
    if version != 1 && version != 2 {
        return Err(JwtError::Version(version));
    }
    let kind = identity.kind();
    if kind != N::TYPE {
        return Err(JwtError::WrongKind {
            expected: N::TYPE,
            found: kind,
        });
    }
    let claims: Claims<N> = if version == 1 {
        let value: serde_json::Value = json(body, "claims")?;
        serde_json::from_value(from_v1(value))
            .map_err(|e| JwtError::Malformed(format!("claims: {e}")))?
    } else {
        json(body, "claims")?
    };
    let issuer = public_key("iss", &claims.iss, N::ISSUER)?;
    public_key("sub", &claims.sub, N::SUBJECT)?;
    let sig = base64url(sig, "signature")?;
    let signed = match version {
        1 => body,
        _ => &token[..header.len() + 1 + body.len()],
    };
    issuer
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| JwtError::Signature)?;
    Ok(claims)
}

/// Version 1 claims in version 2's shape: a user's top-level `issuer_account` moves into
/// `nats`, and an account's `nats.limits` keeps only what version 1 had.
fn from_v1(mut claims: serde_json::Value) -> serde_json::Value {
    let issuer_account = claims
        .as_object_mut()
        .and_then(|c| c.remove("issuer_account"));
    let kind = claims["type"].as_str().unwrap_or_default().to_string();
    let Some(nats) = claims.get_mut("nats").and_then(|n| n.as_object_mut()) else {
        return claims;
    };
    if let Some(account) = issuer_account.filter(|_| kind == "user") {
        nats.insert("issuer_account".into(), account);
    }
    if kind == "account" {
        if let Some(limits) = nats.get_mut("limits").and_then(|l| l.as_object_mut()) {
            limits.retain(|k, _| V1_ACCOUNT_LIMITS.contains(&k.as_str()));
        }
    }
    claims
}

fn check_header(header: &Header) -> Result<(), JwtError> {
    if !header.typ.eq_ignore_ascii_case("JWT") {
        return Err(JwtError::Header(format!("type {:?}", header.typ)));
    }
    // Either algorithm name goes with either version, as in nats-server's JWT library.
    match header.alg.to_ascii_lowercase().as_str() {
        "ed25519-nkey" | "ed25519" => Ok(()),
        _ => Err(JwtError::Header(format!("algorithm {:?}", header.alg))),
    }
}

fn base64url(part: &str, what: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .or_else(|_| URL_SAFE.decode(part))
        .map_err(|e| JwtError::Malformed(format!("{what} is not base64url: {e}")))
}

fn json<T: DeserializeOwned>(part: &str, what: &str) -> Result<T, JwtError> {
    serde_json::from_slice(&base64url(part, what)?)
        .map_err(|e| JwtError::Malformed(format!("{what}: {e}")))
}

/// `key` as a public nkey of kind `kind`.
pub(crate) fn public_key(
    field: &'static str,
    key: &str,
    kind: KeyPairType,
) -> Result<KeyPair, JwtError> {
    KeyPair::from_public_key(key)
        .ok()
        .filter(|pair| pair.key_pair_type() == kind)
        .ok_or_else(|| JwtError::Key {
            field,
            key: key.to_string(),
            kind: key_kind(kind),
        })
}

fn key_kind(kind: KeyPairType) -> &'static str {
    match kind {
        KeyPairType::Operator => "operator",
        KeyPairType::Account => "account",
        KeyPairType::User => "user",
        _ => "other",
    }
}
