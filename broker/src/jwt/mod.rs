//! NATS JWTs (version 2): decoding and signature checks for operator, account and user claims.
//!
//! A JWT is `header.claims.signature`, each part base64url without padding. The header says
//! `{"typ":"JWT","alg":"ed25519-nkey"}`; the claims are JSON whose `iss` is the public nkey
//! that signed `header.claims` with Ed25519, and whose `nats` object carries the kind (`type`)
//! and what that kind grants. [`decode`] checks the form, the signature, the kind and the key
//! types; [`Claims::check_time`] checks `exp` and `nbf`; who may issue what (operator → account
//! → user) is decided by the caller (`trust`).

mod claims;
#[cfg(test)]
pub(crate) mod tests;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use nkeys::{KeyPair, KeyPairType};
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub(crate) use claims::{Account, Operator, SigningKey, SubjectRules, User, UserPermissions};

/// Why a JWT was not accepted; the text goes to the debug log and config errors.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("malformed jwt: {0}")]
    Malformed(String),
    /// The header is not `typ: JWT`, `alg: ed25519-nkey`.
    #[error("unsupported jwt header: {0}")]
    Header(String),
    /// A version 1 JWT, or one newer than version 2.
    #[error("unsupported jwt version {0}: only version 2 is supported")]
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

/// The `nats.type` and `nats.version` of any claims.
#[derive(Deserialize)]
struct Identity {
    #[serde(default)]
    nats: IdentityFields,
}

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
    if identity.nats.version != 2 {
        return Err(JwtError::Version(identity.nats.version));
    }
    if identity.nats.kind != N::TYPE {
        return Err(JwtError::WrongKind {
            expected: N::TYPE,
            found: identity.nats.kind,
        });
    }
    let claims: Claims<N> = json(body, "claims")?;
    let issuer = public_key("iss", &claims.iss, N::ISSUER)?;
    public_key("sub", &claims.sub, N::SUBJECT)?;
    let sig = base64url(sig, "signature")?;
    let signed = &token[..header.len() + 1 + body.len()];
    issuer
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| JwtError::Signature)?;
    Ok(claims)
}

fn check_header(header: &Header) -> Result<(), JwtError> {
    if !header.typ.eq_ignore_ascii_case("JWT") {
        return Err(JwtError::Header(format!("type {:?}", header.typ)));
    }
    match header.alg.to_ascii_lowercase().as_str() {
        "ed25519-nkey" => Ok(()),
        "ed25519" => Err(JwtError::Version(1)),
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
