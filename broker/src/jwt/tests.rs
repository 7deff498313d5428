use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

use super::*;

/// Signs `claims` (a JSON object) as `issuer`, with the version 2 header.
pub(crate) fn encode(issuer: &KeyPair, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let sig = issuer.sign(signed.as_bytes()).expect("signing");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Claims of `kind` about `subject`, issued by `issuer`, with these `nats` fields.
pub(crate) fn claims(kind: &str, issuer: &KeyPair, subject: &str, mut nats: Value) -> Value {
    nats["type"] = json!(kind);
    nats["version"] = json!(2);
    json!({
        "jti": "TESTJTI",
        "iat": 1_700_000_000,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": "test",
        "nats": nats,
    })
}

fn user_token(account: &KeyPair, user: &KeyPair) -> String {
    encode(
        account,
        &claims("user", account, &user.public_key(), json!({})),
    )
}

#[test]
fn a_user_jwt_signed_by_its_account_decodes() {
    let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
    let mut c = claims("user", &account, &user.public_key(), json!({}));
    c["nats"]["pub"] = json!({"allow": ["orders.>"]});
    c["nats"]["src"] = json!("10.0.0.0/8, 127.0.0.1/32");
    let decoded = decode::<User>(&encode(&account, &c)).unwrap();
    assert_eq!(decoded.iss, account.public_key());
    assert_eq!(decoded.sub, user.public_key());
    assert_eq!(decoded.nats.permissions.publish.allow, ["orders.>"]);
    assert_eq!(decoded.nats.src, ["10.0.0.0/8", "127.0.0.1/32"]);
    assert_eq!(decoded.nats.subs, -1, "limits default to none");
}

#[test]
fn a_tampered_jwt_fails_its_signature() {
    let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
    let token = user_token(&account, &user);
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let mut c = claims("user", &account, &user.public_key(), json!({}));
    c["nats"]["pub"] = json!({"allow": [">"]});
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    assert_eq!(
        decode::<User>(&parts.join(".")).err(),
        Some(JwtError::Signature)
    );
    let mut sig = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(2).unwrap())
        .unwrap();
    sig[0] ^= 1;
    let (signed, _) = token.rsplit_once('.').unwrap();
    let flipped = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(decode::<User>(&flipped).err(), Some(JwtError::Signature));
}

#[test]
fn a_jwt_signed_by_another_key_than_its_issuer_fails() {
    let (account, user, other) = (
        KeyPair::new_account(),
        KeyPair::new_user(),
        KeyPair::new_account(),
    );
    let c = claims("user", &account, &user.public_key(), json!({}));
    assert_eq!(
        decode::<User>(&encode(&other, &c)).err(),
        Some(JwtError::Signature)
    );
}

#[test]
fn the_kind_and_the_key_types_must_match() {
    let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
    let token = user_token(&account, &user);
    assert!(matches!(
        decode::<Account>(&token),
        Err(JwtError::WrongKind {
            expected: "account",
            ..
        })
    ));
    // A user key cannot issue users.
    let c = claims("user", &user, &user.public_key(), json!({}));
    assert!(matches!(
        decode::<User>(&encode(&user, &c)),
        Err(JwtError::Key { field: "iss", .. })
    ));
    let c = claims("user", &account, &account.public_key(), json!({}));
    assert!(matches!(
        decode::<User>(&encode(&account, &c)),
        Err(JwtError::Key { field: "sub", .. })
    ));
}

#[test]
fn malformed_tokens_and_unknown_versions_are_refused() {
    for bad in ["", "a.b", "a.b.c.d", "!!!.e30.e30", "e30.e30.e30"] {
        assert!(decode::<User>(bad).is_err(), "{bad:?}");
    }
    let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
    for (version, expected) in [(json!(3), 3), (json!(0), 0)] {
        let mut c = claims("user", &account, &user.public_key(), json!({}));
        c["nats"]["version"] = version;
        let token = encode(&account, &c);
        assert_eq!(
            decode::<User>(&token).err(),
            Some(JwtError::Version(expected))
        );
    }
}

#[test]
fn expiry_and_not_before_are_checked_against_now() {
    let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
    let mut c = claims("user", &account, &user.public_key(), json!({}));
    c["exp"] = json!(1_000);
    c["nbf"] = json!(500);
    let decoded = decode::<User>(&encode(&account, &c)).unwrap();
    assert_eq!(decoded.check_time(400), Err(JwtError::NotYetValid));
    assert_eq!(decoded.check_time(500), Ok(()));
    assert_eq!(decoded.check_time(1_000), Ok(()));
    assert_eq!(decoded.check_time(1_001), Err(JwtError::Expired));
}
