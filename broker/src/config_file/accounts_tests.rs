//! Accounts, `no_auth_user` and operator mode in the configuration file.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::json;

use super::tests::{error, load};
use crate::jwt::tests::{claims, encode};
use crate::options::{Auth, User, UserPass};

const NKEY_USER: &str = "UAFHG6FUD2UU4SDFVAFUL5LDFO2XM4WYM76UNXTPJYJK7EEMYRBHT2VE";

#[test]
fn accounts_hold_their_users_permissions_and_defaults() {
    let opts = load(&format!(
        "accounts {{\n A {{ users: [ {{user: a, password: pa, permissions: {{publish: x}}}}, {{nkey: {NKEY_USER}}} ]\n default_permissions: {{ subscribe: {{ deny: hidden }} }}\n jetstream: enabled }}\n B: {{}}\n}}\nauthorization {{ users: [ {{user: g, password: pg}} ] }}"
    ))
    .unwrap();
    let [a, b] = opts.accounts.as_slice() else {
        panic!("two accounts: {:?}", opts.accounts)
    };
    assert_eq!((a.name.as_str(), b.name.as_str()), ("A", "B"));
    let pa = User::Password(UserPass {
        user: "a".into(),
        pass: "pa".into(),
    });
    assert_eq!(a.users, [pa, User::NKey(NKEY_USER.into())]);
    assert!(a.jetstream && !b.jetstream);
    assert_eq!(
        a.default_permissions.as_ref().unwrap().subscribe.deny,
        ["hidden"]
    );
    assert_eq!(opts.user_permissions["a"].publish.allow, ["x"]);
    assert!(matches!(&opts.auth, Auth::Users(users) if users.len() == 1));
    assert!(opts.auth_required() && opts.needs_nonce());
}

#[test]
fn a_list_of_account_names_declares_empty_accounts() {
    let opts = load("accounts: [ A, B ]").unwrap();
    assert_eq!(opts.accounts.len(), 2);
    assert!(
        !opts.auth_required(),
        "accounts without users ask for no auth"
    );
}

#[test]
fn reserved_repeated_and_unsupported_account_settings_are_refused() {
    let reserved = error("accounts { $G { } }");
    assert!(reserved.contains("reserved"), "{reserved}");
    let twice = error("accounts: [ A, A ]");
    assert!(twice.contains("declared twice"), "{twice}");
    let user_twice = error(
        "accounts { A { users: [ {user: u, password: p} ] } }\nauthorization { users: [ {user: u, password: q} ] }",
    );
    assert!(
        user_twice.contains("\"u\" is declared twice"),
        "{user_twice}"
    );
    let mappings = error("accounts { A { mappings: { a: b } } }");
    assert!(mappings.contains("not supported"), "{mappings}");
    let token =
        error("authorization { token: t }\naccounts { A { users: [ {user: u, password: p} ] } }");
    assert!(token.contains("token"), "{token}");
    let unknown = error("accounts { A { colour: blue } }");
    assert!(unknown.contains("unknown setting 'colour'"), "{unknown}");
}

#[test]
fn no_auth_user_must_be_a_declared_user() {
    let opts =
        load("no_auth_user: u\naccounts { A { users: [ {user: u, password: p} ] } }").unwrap();
    assert_eq!(opts.no_auth_user.as_deref(), Some("u"));
    let missing = error("no_auth_user: v\naccounts { A { users: [ {user: u, password: p} ] } }");
    assert!(missing.contains("\"v\" is not declared"), "{missing}");
}

/// A self-signed operator JWT naming `system` as its system account.
fn operator_jwt(operator: &KeyPair, system: &str) -> String {
    let nats = json!({ "system_account": system });
    encode(
        operator,
        &claims("operator", operator, &operator.public_key(), nats),
    )
}

#[test]
fn operator_mode_needs_a_memory_resolver_and_takes_the_operators_system_account() {
    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account().public_key();
    let jwt = operator_jwt(&operator, &system);
    let opts = load(&format!(
        "operator: {jwt}\nresolver: MEMORY\nresolver_preload: {{}}"
    ))
    .unwrap();
    let mode = opts.operator.as_ref().expect("operator mode");
    assert_eq!(mode.operators, std::slice::from_ref(&jwt));
    assert_eq!(opts.system_account.as_deref(), Some(system.as_str()));
    assert!(opts.auth_required() && opts.needs_nonce());
    let no_resolver = error(&format!("operator: {jwt}"));
    assert!(no_resolver.contains("resolver"), "{no_resolver}");
    let url = error(&format!(
        "operator: {jwt}\nresolver: URL(http://x/jwt/v1/accounts/)"
    ));
    assert!(url.contains("only the MEMORY resolver"), "{url}");
    let users = error(&format!(
        "operator: {jwt}\nresolver: MEMORY\nauthorization {{ user: u, password: p }}"
    ));
    assert!(users.contains("operators do not allow users"), "{users}");
    let other = KeyPair::new_account().public_key();
    let mismatch = error(&format!(
        "operator: {jwt}\nresolver: MEM\nsystem_account: {other}"
    ));
    assert!(mismatch.contains("must be identical"), "{mismatch}");
}

#[test]
fn bad_operator_and_account_jwts_are_refused() {
    let operator = KeyPair::new_operator();
    let jwt = operator_jwt(&operator, "");
    let (signed, _) = jwt.rsplit_once('.').unwrap();
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
    let bad = error(&format!("operator: {tampered}\nresolver: MEMORY"));
    assert!(bad.contains("not a valid operator jwt"), "{bad}");
    let missing = error("operator: /nonexistent/op.jwt\nresolver: MEMORY");
    assert!(missing.contains("cannot read"), "{missing}");
    let account = KeyPair::new_account().public_key();
    let preload = error(&format!(
        "operator: {jwt}\nresolver: MEMORY\nresolver_preload: {{ {account}: {jwt} }}"
    ));
    assert!(preload.contains("invalid account jwt"), "{preload}");
}
