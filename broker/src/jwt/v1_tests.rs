//! Version 1 JWTs, signed here with fresh nkeys in the legacy form: the kind in a top-level
//! `type`, no `nats.version`, the `ed25519` header and a signature over the claims part alone.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

use super::*;

/// The header version 1 JWTs carry.
const V1_HEADER: &[u8] = br#"{"typ":"JWT","alg":"ed25519"}"#;

/// Signs `claims` as `issuer` the version 1 way: the signature covers the claims part only.
pub(crate) fn encode_v1(issuer: &KeyPair, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(V1_HEADER);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = issuer.sign(body.as_bytes()).expect("signing");
    format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Version 1 claims of `kind` about `subject`, issued by `issuer`, with these `nats` fields.
pub(crate) fn claims_v1(kind: &str, issuer: &KeyPair, subject: &str, nats: Value) -> Value {
    json!({
        "jti": "V1JTI",
        "iat": 1_600_000_000,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": "legacy",
        "type": kind,
        "nats": nats,
    })
}

#[test]
fn a_v1_operator_decodes_with_its_signing_keys_and_system_account() {
    let (operator, signer, system) = (
        KeyPair::new_operator(),
        KeyPair::new_operator(),
        KeyPair::new_account(),
    );
    let nats = json!({"signing_keys": [signer.public_key()],
        "system_account": system.public_key()});
    let c = claims_v1("operator", &operator, &operator.public_key(), nats);
    let decoded = decode::<Operator>(&encode_v1(&operator, &c)).unwrap();
    assert_eq!(decoded.sub, operator.public_key());
    assert_eq!(decoded.nats.signing_keys, [signer.public_key()]);
    assert_eq!(decoded.nats.system_account, system.public_key());
}

#[test]
fn a_v1_account_keeps_its_connection_limits_and_revocations() {
    let (operator, account, signer) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let nats = json!({
        "limits": {"conn": 7, "subs": -1, "data": -1, "payload": -1, "disallow_bearer": true},
        "signing_keys": [signer.public_key()],
        "revocations": {"UABC": 12},
    });
    let c = claims_v1("account", &operator, &account.public_key(), nats);
    let decoded = decode::<Account>(&encode_v1(&operator, &c)).unwrap();
    assert_eq!(decoded.nats.limits.conn, 7);
    assert!(decoded.nats.limits.disallow_bearer);
    assert_eq!(decoded.nats.signing_keys[0].key(), signer.public_key());
    assert_eq!(decoded.nats.revocations.get("UABC"), Some(&12));
}

#[test]
fn a_v1_user_takes_its_issuer_account_from_the_top_level() {
    let (account, signer, user) = (
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_user(),
    );
    let nats = json!({"pub": {"allow": ["orders.>"]}, "sub": {"deny": ["admin.>"]}});
    let mut c = claims_v1("user", &signer, &user.public_key(), nats);
    c["issuer_account"] = json!(account.public_key());
    let decoded = decode::<User>(&encode_v1(&signer, &c)).unwrap();
    assert_eq!(decoded.iss, signer.public_key());
    assert_eq!(decoded.nats.issuer_account, account.public_key());
    assert_eq!(decoded.nats.permissions.publish.allow, ["orders.>"]);
    assert_eq!(decoded.nats.permissions.subscribe.deny, ["admin.>"]);
    assert_eq!(decoded.nats.subs, -1, "limits default to none");
}

#[test]
fn a_v1_jwt_is_checked_like_any_other() {
    let (account, user, other) = (
        KeyPair::new_account(),
        KeyPair::new_user(),
        KeyPair::new_account(),
    );
    let c = claims_v1("user", &account, &user.public_key(), json!({}));
    // Signed by another key than its issuer.
    assert_eq!(
        decode::<User>(&encode_v1(&other, &c)).err(),
        Some(JwtError::Signature)
    );
    // Signed over header and claims, the version 2 way: not a version 1 signature.
    let header = URL_SAFE_NO_PAD.encode(V1_HEADER);
    let body = URL_SAFE_NO_PAD.encode(c.to_string());
    let sig = account.sign(format!("{header}.{body}").as_bytes()).unwrap();
    let token = format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(decode::<User>(&token).err(), Some(JwtError::Signature));
    // Its kind must be the one asked for.
    let token = encode_v1(&account, &c);
    assert!(matches!(
        decode::<Account>(&token),
        Err(JwtError::WrongKind { expected: "account", found }) if found == "user"
    ));
}

#[test]
fn version_2_claims_under_the_version_1_header_still_decode() {
    let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
    let c = super::tests::claims("user", &account, &user.public_key(), json!({}));
    let header = URL_SAFE_NO_PAD.encode(V1_HEADER);
    let body = URL_SAFE_NO_PAD.encode(c.to_string());
    let sig = account.sign(format!("{header}.{body}").as_bytes()).unwrap();
    let token = format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(decode::<User>(&token).unwrap().sub, user.public_key());
}

#[test]
fn account_jetstream_limits_come_from_the_plain_limits_or_the_r1_tier() {
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let decode_with = |limits: Value| {
        let c = super::tests::claims(
            "account",
            &operator,
            &account.public_key(),
            json!({"limits": limits}),
        );
        decode::<Account>(&super::tests::encode(&operator, &c))
            .unwrap()
            .nats
    };
    let plain = decode_with(json!({"conn": -1, "mem_storage": -1, "disk_storage": 1000,
        "streams": 2, "consumer": -1, "max_ack_pending": 0, "disk_max_stream_bytes": 600}));
    let js = plain.jetstream().expect("JetStream on");
    assert_eq!(
        (js.max_memory, js.max_storage, js.max_streams),
        (-1, 1000, 2)
    );
    assert_eq!((js.max_ack_pending, js.storage_max_stream_bytes), (-1, 600));
    let tiered = decode_with(json!({"tiered_limits": {"R1": {"mem_storage": 100, "consumer": 1}}}));
    assert_eq!(tiered.jetstream().map(|l| l.max_memory), Some(100));
    assert!(decode_with(json!({"conn": -1})).jetstream().is_none());
}
