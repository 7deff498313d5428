//! Operator mode with legacy (version 1) JWTs, as older deployments' `resolver_preload` holds
//! them: a version 1 operator, version 1 accounts (one with a signing key) and version 1 users
//! log in, get their permissions and stay in their accounts. Every key and JWT is made here.

use anyhow::ensure;
use nkeys::KeyPair;
use serde_json::{json, Value};

use crate::creds::{claims_v1, encode_v1};
use crate::operator::{raw_login, raw_refused};
use crate::protocol::expect_ops;
use crate::raw::ServerOp;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![v1_operator_accounts_and_users_log_in_with_their_permissions]
}

/// Limits of a version 1 account, as `nsc` 1 wrote them: none.
fn v1_limits() -> Value {
    json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1})
}

/// A version 1 user of `account`, issued by `signer` (the account or one of its signing keys).
fn v1_user(signer: &KeyPair, account: &KeyPair, nats: Value) -> (KeyPair, String) {
    let user = KeyPair::new_user();
    let mut c = claims_v1("user", signer, &user.public_key(), nats);
    if signer.public_key() != account.public_key() {
        c["issuer_account"] = json!(account.public_key());
    }
    let jwt = encode_v1(signer, &c);
    (user, jwt)
}

fn v1_operator_accounts_and_users_log_in_with_their_permissions(t: &Target) -> anyhow::Result<()> {
    let operator = KeyPair::new_operator();
    let (a, b, a_signer) = (
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let op = claims_v1("operator", &operator, &operator.public_key(), json!({}));
    let mut config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n",
        encode_v1(&operator, &op)
    );
    for (account, signing_keys) in [(&a, vec![a_signer.public_key()]), (&b, vec![])] {
        let nats = json!({"limits": v1_limits(), "signing_keys": signing_keys});
        let claims = claims_v1("account", &operator, &account.public_key(), nats);
        let line = format!(
            "  {}: {}\n",
            account.public_key(),
            encode_v1(&operator, &claims)
        );
        config.push_str(&line);
    }
    config.push_str("}\n");
    let server = t.start_with_config(&config, &[])?;
    block_on(async move {
        let port = server.port();
        let perms = json!({"pub": {"allow": ["ok.>"]}, "sub": {"deny": ["secret"]}});
        let (key, jwt) = v1_user(&a, &a, perms);
        let mut limited = raw_login(port, &jwt, &key).await?;
        let (key, jwt) = v1_user(&a_signer, &a, json!({}));
        let mut same_account = raw_login(port, &jwt, &key).await?;
        let (key, jwt) = v1_user(&b, &b, json!({}));
        let mut other_account = raw_login(port, &jwt, &key).await?;
        same_account.send("SUB ok.> 1\r\n").await?;
        other_account.send("SUB ok.> 1\r\n").await?;
        same_account.ping_until_pong().await?;
        other_account.ping_until_pong().await?;
        limited
            .send("SUB secret 1\r\nPUB other 1\r\nx\r\nPUB ok.fine 1\r\ny\r\n")
            .await?;
        let ops = [
            ServerOp::err(r#"Permissions Violation for Subscription to "secret""#),
            ServerOp::err(r#"Permissions Violation for Publish to "other""#),
        ];
        expect_ops(
            limited.ping_until_pong().await?,
            &ops,
            "the v1 user's permissions",
        )?;
        let got = same_account.ping_until_pong().await?;
        expect_ops(got, &[ServerOp::msg("ok.fine", "1", b"y")], "same account")?;
        let got = other_account.ping_until_pong().await?;
        ensure!(got.is_empty(), "another account received {got:?}");
        // A v1 user signed by a key its account does not list is refused.
        let stranger = KeyPair::new_account();
        let (key, jwt) = v1_user(&stranger, &a, json!({}));
        raw_refused(port, &jwt, &key, "a v1 user of an unlisted signing key").await
    })
}
