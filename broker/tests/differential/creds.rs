//! Keys and JWTs made at test time for operator-mode scenarios: a tiny JWT encoder (version 2,
//! Ed25519 over nkeys) and an operator with accounts, written out as a server config.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Signs `claims` as `issuer`: `header.claims.signature`, each part base64url.
pub fn encode(issuer: &KeyPair, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let sig = issuer.sign(signed.as_bytes()).expect("an nkey signs");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Signs `claims` as `issuer` the legacy (version 1) way: the `ed25519` header, and a signature
/// over the claims part alone.
pub fn encode_v1(issuer: &KeyPair, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = issuer.sign(body.as_bytes()).expect("an nkey signs");
    format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Version 1 claims: the kind in a top-level `type`, no `nats.version`.
pub fn claims_v1(kind: &str, issuer: &KeyPair, subject: &str, nats: Value) -> Value {
    let mut c = claims(kind, issuer, subject, nats);
    if let Some(nats) = c["nats"].as_object_mut() {
        nats.remove("type");
        nats.remove("version");
    }
    c["type"] = json!(kind);
    c
}

/// Claims of `kind` about `subject` issued by `issuer`, with `nats` as the kind's own fields.
pub fn claims(kind: &str, issuer: &KeyPair, subject: &str, mut nats: Value) -> Value {
    nats["type"] = json!(kind);
    nats["version"] = json!(2);
    json!({
        "jti": format!("{:016X}", fastrand::u64(..)),
        "iat": unix_now(),
        "iss": issuer.public_key(),
        "sub": subject,
        "name": kind,
        "nats": nats,
    })
}

/// An operator and the accounts it signed.
pub struct Operator {
    pub key: KeyPair,
    pub accounts: Vec<KeyPair>,
    /// The accounts' `limits` (as `nsc` writes them: none); `Value::Null` leaves them out.
    pub limits: Value,
    /// More `nats` fields of each account's JWT, by the account's index (exports, imports).
    pub extra: Vec<Value>,
}

impl Operator {
    /// An operator with `n` accounts.
    pub fn with_accounts(n: usize) -> Operator {
        Operator {
            key: KeyPair::new_operator(),
            accounts: (0..n).map(|_| KeyPair::new_account()).collect(),
            limits: json!({
                "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                "wildcards": true, "conn": -1, "leaf": -1,
            }),
            extra: Vec::new(),
        }
    }

    /// A server config trusting this operator, with every account preloaded.
    pub fn config(&self) -> String {
        let op = claims("operator", &self.key, &self.key.public_key(), json!({}));
        let mut text = format!(
            "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n",
            encode(&self.key, &op)
        );
        for (i, account) in self.accounts.iter().enumerate() {
            let mut nats = json!({});
            if !self.limits.is_null() {
                nats["limits"] = self.limits.clone();
            }
            if let (Some(nats), Some(Value::Object(extra))) =
                (nats.as_object_mut(), self.extra.get(i))
            {
                nats.extend(extra.clone());
            }
            let acc = claims("account", &self.key, &account.public_key(), nats);
            let line = format!("  {}: {}\n", account.public_key(), encode(&self.key, &acc));
            text.push_str(&line);
        }
        text.push_str("}\n");
        text
    }
}

/// A user key and its JWT, issued by `account` with `nats` fields (permissions and the like)
/// and the registered claims in `extra` (such as `exp`). Limits are none (-1), as `nsc` writes
/// them: nats-server reads a missing limit as 0.
pub fn user(account: &KeyPair, mut nats: Value, extra: Value) -> (KeyPair, String) {
    let user = KeyPair::new_user();
    for limit in ["subs", "data", "payload"] {
        if nats.get(limit).is_none() {
            nats[limit] = json!(-1);
        }
    }
    let mut c = claims("user", account, &user.public_key(), nats);
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    let jwt = encode(account, &c);
    (user, jwt)
}

/// The CONNECT options logging in with `jwt`, signing the `nonce` of the server's INFO with
/// `key`.
pub fn jwt_connect(jwt: &str, key: &KeyPair, info: &Value) -> String {
    let nonce = info["nonce"].as_str().unwrap_or_default();
    let sig = URL_SAFE_NO_PAD.encode(key.sign(nonce.as_bytes()).expect("an nkey signs"));
    json!({"verbose": false, "pedantic": false, "jwt": jwt, "sig": sig}).to_string()
}
