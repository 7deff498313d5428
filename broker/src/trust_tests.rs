use std::net::{IpAddr, Ipv4Addr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

use super::*;
use crate::jwt::tests::{claims, encode};

const NOW: i64 = 1_800_000_000;
const NONCE: &str = "abcdefghijklmno";
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An operator, one account it signed, and the means to log users in.
struct World {
    operator: KeyPair,
    account: KeyPair,
    account_nats: Value,
}

impl World {
    fn new() -> World {
        World {
            operator: KeyPair::new_operator(),
            account: KeyPair::new_account(),
            account_nats: json!({}),
        }
    }

    fn trust(&self) -> Trust {
        let op = claims(
            "operator",
            &self.operator,
            &self.operator.public_key(),
            json!({}),
        );
        let acc = claims(
            "account",
            &self.operator,
            &self.account.public_key(),
            self.account_nats.clone(),
        );
        let mode = OperatorMode {
            operators: vec![encode(&self.operator, &op)],
            memory_resolver: true,
            preload: vec![(self.account.public_key(), encode(&self.operator, &acc))],
        };
        Trust::new(&mode).unwrap()
    }

    /// A user JWT issued by `signer` for `user`, with these `nats` fields.
    fn user_jwt(&self, signer: &KeyPair, user: &KeyPair, nats: Value) -> Value {
        claims("user", signer, &user.public_key(), nats)
    }

    fn login(&self, signer: &KeyPair, user: &KeyPair, c: &Value) -> Result<JwtLogin, String> {
        let sig = URL_SAFE_NO_PAD.encode(user.sign(NONCE.as_bytes()).unwrap());
        let connect = ConnectInfo {
            jwt: Some(encode(signer, c)),
            sig: Some(sig),
            ..ConnectInfo::default()
        };
        self.trust().login(&connect, NONCE, LOCAL, NOW)
    }
}

#[test]
fn a_user_signed_by_a_trusted_account_logs_in_to_it() {
    let w = World::new();
    let user = KeyPair::new_user();
    let mut c = w.user_jwt(&w.account, &user, json!({"sub": {"deny": ["secret"]}}));
    c["exp"] = json!(NOW + 60);
    let login = w.login(&w.account, &user, &c).unwrap();
    assert_eq!(login.account, w.account.public_key());
    assert_eq!(login.user, user.public_key());
    assert_eq!(login.expires, Some(NOW + 60));
    let perms = login.permissions.unwrap();
    assert_eq!(perms.subscribe.deny, ["secret"]);
}

#[test]
fn a_wrong_nonce_signature_or_none_is_refused() {
    let w = World::new();
    let (user, stranger) = (KeyPair::new_user(), KeyPair::new_user());
    let c = w.user_jwt(&w.account, &user, json!({}));
    assert!(w.login(&w.account, &stranger, &c).is_err());
    let connect = ConnectInfo {
        jwt: Some(encode(&w.account, &c)),
        ..ConnectInfo::default()
    };
    assert!(w.trust().login(&connect, NONCE, LOCAL, NOW).is_err());
    assert!(w
        .trust()
        .login(&ConnectInfo::default(), NONCE, LOCAL, NOW)
        .is_err());
}

#[test]
fn an_expired_user_or_account_is_refused() {
    let mut w = World::new();
    let user = KeyPair::new_user();
    let mut c = w.user_jwt(&w.account, &user, json!({}));
    c["exp"] = json!(NOW - 1);
    assert!(w
        .login(&w.account, &user, &c)
        .unwrap_err()
        .contains("expired"));
    w.account_nats = json!({});
    let c = w.user_jwt(&w.account, &user, json!({}));
    let mut trust = w.trust();
    trust.accounts.values_mut().for_each(|a| a.exp = NOW - 1);
    let sig = URL_SAFE_NO_PAD.encode(user.sign(NONCE.as_bytes()).unwrap());
    let connect = ConnectInfo {
        jwt: Some(encode(&w.account, &c)),
        sig: Some(sig),
        ..ConnectInfo::default()
    };
    let err = trust.login(&connect, NONCE, LOCAL, NOW).unwrap_err();
    assert!(err.contains("account jwt"), "{err}");
}

#[test]
fn an_account_of_an_untrusted_operator_or_an_unknown_issuer_is_refused() {
    let w = World::new();
    let mut trust = w.trust();
    trust.keys = vec![KeyPair::new_operator().public_key()];
    assert_eq!(trust.untrusted_accounts(), [w.account.public_key()]);
    let user = KeyPair::new_user();
    let other_account = KeyPair::new_account();
    let c = w.user_jwt(&other_account, &user, json!({}));
    assert!(w
        .login(&other_account, &user, &c)
        .unwrap_err()
        .contains("not known"));
}

#[test]
fn signing_keys_sign_users_and_scoped_ones_impose_their_template() {
    let mut w = World::new();
    let (plain, scoped) = (KeyPair::new_account(), KeyPair::new_account());
    w.account_nats = json!({"signing_keys": [plain.public_key(), {
        "kind": "user_scope", "key": scoped.public_key(),
        "template": {"pub": {"allow": ["only.this"]}}
    }]});
    let user = KeyPair::new_user();
    let mut c = w.user_jwt(&plain, &user, json!({}));
    c["nats"]["issuer_account"] = json!(w.account.public_key());
    assert!(w.login(&plain, &user, &c).unwrap().permissions.is_none());
    let mut c = w.user_jwt(&scoped, &user, json!({}));
    c["nats"]["issuer_account"] = json!(w.account.public_key());
    let login = w.login(&scoped, &user, &c).unwrap();
    assert_eq!(login.permissions.unwrap().publish.allow, ["only.this"]);
    c["nats"]["pub"] = json!({"allow": [">"]});
    assert!(
        w.login(&scoped, &user, &c).is_err(),
        "scoped users carry no permissions"
    );
}

#[test]
fn revoked_users_bearer_tokens_and_source_networks_follow_the_account_and_user() {
    let mut w = World::new();
    let user = KeyPair::new_user();
    w.account_nats =
        json!({"revocations": {user.public_key(): NOW}, "limits": {"disallow_bearer": true}});
    let c = w.user_jwt(&w.account, &user, json!({}));
    assert!(w
        .login(&w.account, &user, &c)
        .unwrap_err()
        .contains("revoked"));
    let c = w.user_jwt(
        &w.account,
        &KeyPair::new_user(),
        json!({"bearer_token": true}),
    );
    assert!(w
        .login(&w.account, &user, &c)
        .unwrap_err()
        .contains("bearer"));
    let other = KeyPair::new_user();
    let c = w.user_jwt(&w.account, &other, json!({"src": ["10.0.0.0/8"]}));
    assert!(w
        .login(&w.account, &other, &c)
        .unwrap_err()
        .contains("source"));
    let c = w.user_jwt(&w.account, &other, json!({"src": "10.0.0.0/8,127.0.0.0/8"}));
    assert!(w.login(&w.account, &other, &c).is_ok());
}

#[test]
fn cidrs_match_by_prefix() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(cidr_contains("10.1.0.0/16", ip("10.1.2.3")));
    assert!(!cidr_contains("10.1.0.0/16", ip("10.2.0.1")));
    assert!(cidr_contains("0.0.0.0/0", ip("192.168.1.1")));
    assert!(cidr_contains("127.0.0.1", ip("::ffff:127.0.0.1")));
    assert!(cidr_contains("::1/128", ip("::1")));
    assert!(!cidr_contains("::1/129", ip("::1")));
    assert!(!cidr_contains("garbage", ip("::1")));
}

#[test]
fn jwt_imports_and_exports_read_as_nats_server_reads_them() {
    let import = |kind: &str, local: &str, to: &str, token: &str| jwt::JwtImport {
        account: "A".into(),
        subject: "x.>".into(),
        local_subject: local.into(),
        to: to.into(),
        kind: kind.into(),
        token: token.into(),
        share: false,
    };
    let mapped = jwt_import("B", &import("stream", "y.>", "", "")).unwrap();
    assert_eq!(
        mapped.kind,
        ImportKind::Stream {
            to: Some("y.>".into())
        }
    );
    let prefixed = jwt_import("B", &import("stream", "", "p", "")).unwrap();
    assert_eq!(
        prefixed.kind,
        ImportKind::Stream {
            to: Some("p.x.>".into())
        }
    );
    let service = jwt_import("B", &import("service", "", "ask.>", "")).unwrap();
    assert_eq!(
        service.kind,
        ImportKind::Service {
            to: Some("ask.>".into()),
            share: false
        }
    );
    assert!(jwt_import("B", &import("stream", "", "", "an.activation.jwt")).is_none());
    assert!(jwt_import("B", &import("colour", "", "", "")).is_none());
    let export = |kind: &str, response: &str, threshold: i64, token_req: bool| jwt::JwtExport {
        subject: "s".into(),
        kind: kind.into(),
        response_type: response.into(),
        response_threshold: threshold,
        token_req,
    };
    let service = jwt_export("A", &export("service", "Stream", 5_000_000_000, false)).unwrap();
    assert_eq!(
        service.kind,
        ExportKind::Service {
            response: ResponseType::Stream,
            threshold: std::time::Duration::from_secs(5)
        }
    );
    let default = jwt_export("A", &export("service", "", 0, false)).unwrap();
    assert_eq!(
        default.kind,
        ExportKind::Service {
            response: ResponseType::Singleton,
            threshold: crate::links::DEFAULT_RESPONSE_THRESHOLD
        }
    );
    assert!(
        jwt_export("A", &export("stream", "", 0, true)).is_none(),
        "token required"
    );
}
