//! Operator mode: users log in with a JWT that their account signed, accounts are JWTs that a
//! trusted operator signed, and each account is a subject space of its own. Every key and JWT
//! is made here, at test time ([`crate::creds`]).

use anyhow::{bail, ensure};
use async_nats::{ConnectErrorKind, ConnectOptions};
use futures_util::StreamExt;
use nkeys::KeyPair;
use serde_json::json;

use crate::creds::{jwt_connect, unix_now, user, Operator};
use crate::protocol::expect_ops;
use crate::raw::{RawClient, ServerOp, WAIT};
use crate::{block_on, scenarios, within, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        jwt_users_log_in_to_their_accounts_which_stay_isolated,
        jwt_logins_are_refused_when_expired_tampered_or_of_an_unknown_account,
        user_jwt_permissions_refuse_publishes_and_subscriptions,
        a_connection_is_closed_when_its_user_jwt_expires,
        an_account_jwt_limits_its_active_connections_and_none_without_limits,
    ]
}

const VIOLATION: &str = "Authorization Violation";

/// Logs in over a raw socket with `jwt`, signing the nonce with `key`.
pub(crate) async fn raw_login(port: u16, jwt: &str, key: &KeyPair) -> anyhow::Result<RawClient> {
    let mut c = RawClient::connect(port).await?;
    let options = jwt_connect(jwt, key, &c.info);
    c.send(format!("CONNECT {options}\r\n")).await?;
    let before = c.ping_until_pong().await?;
    ensure!(
        before.is_empty(),
        "a JWT login was answered with {before:?}"
    );
    Ok(c)
}

/// Expects a raw login with `jwt` (nonce signed by `key`) to be refused with `error`.
async fn raw_refused_with(
    port: u16,
    jwt: &str,
    key: &KeyPair,
    error: &str,
    what: &str,
) -> anyhow::Result<()> {
    let mut c = RawClient::connect(port).await?;
    let options = jwt_connect(jwt, key, &c.info);
    c.send(format!("CONNECT {options}\r\nPING\r\n")).await?;
    c.expect_err_and_close(error)
        .await
        .map_err(|e| e.context(what.to_string()))
}

/// Expects a raw login to be refused as an authorization violation.
pub(crate) async fn raw_refused(
    port: u16,
    jwt: &str,
    key: &KeyPair,
    what: &str,
) -> anyhow::Result<()> {
    raw_refused_with(port, jwt, key, VIOLATION, what).await
}

fn jwt_users_log_in_to_their_accounts_which_stay_isolated(t: &Target) -> anyhow::Result<()> {
    let op = Operator::with_accounts(2);
    let server = t.start_with_config(&op.config(), &[])?;
    block_on(async move {
        let (key, jwt) = user(&op.accounts[0], json!({}), json!({}));
        let seed = key.seed()?;
        let options = ConnectOptions::with_jwt(jwt, move |nonce| {
            let pair = KeyPair::from_seed(&seed);
            async move {
                let pair = pair.map_err(async_nats::AuthError::new)?;
                pair.sign(&nonce).map_err(async_nats::AuthError::new)
            }
        });
        let client = within(WAIT, "a JWT connect", options.connect(server.client_url())).await??;
        let mut own = client.subscribe("iso").await?;
        client.flush().await?;
        let (peer_key, peer_jwt) = user(&op.accounts[0], json!({}), json!({}));
        let mut peer = raw_login(server.port(), &peer_jwt, &peer_key).await?;
        let (other_key, other_jwt) = user(&op.accounts[1], json!({}), json!({}));
        let mut other = raw_login(server.port(), &other_jwt, &other_key).await?;
        for c in [&mut peer, &mut other] {
            c.send("SUB iso 1\r\n").await?;
            c.ping_until_pong().await?;
        }
        client.publish("iso", "hi".into()).await?;
        client.flush().await?;
        let got = within(WAIT, "the own account's message", own.next()).await?;
        ensure!(
            got.is_some_and(|m| m.payload == "hi"),
            "async-nats got no message"
        );
        let hi = [ServerOp::msg("iso", "1", b"hi")];
        expect_ops(
            peer.ping_until_pong().await?,
            &hi,
            "a user of the same account",
        )?;
        expect_ops(
            other.ping_until_pong().await?,
            &[],
            "a user of another account",
        )
    })
}

fn jwt_logins_are_refused_when_expired_tampered_or_of_an_unknown_account(
    t: &Target,
) -> anyhow::Result<()> {
    let op = Operator::with_accounts(1);
    let server = t.start_with_config(&op.config(), &[])?;
    block_on(async move {
        let port = server.port();
        let info = RawClient::connect(port).await?.info;
        ensure!(info["auth_required"] == true, "INFO: {info}");
        ensure!(
            info["nonce"].as_str().is_some_and(|n| !n.is_empty()),
            "INFO: {info}"
        );
        let account = &op.accounts[0];
        let (key, expired) = user(account, json!({}), json!({"exp": unix_now() - 10}));
        raw_refused(port, &expired, &key, "an expired user jwt").await?;
        let (key, good) = user(account, json!({}), json!({}));
        raw_refused(
            port,
            &good,
            &KeyPair::new_user(),
            "a nonce signed by another key",
        )
        .await?;
        let (signed, _) = good.rsplit_once('.').unwrap_or_default();
        let tampered = format!("{signed}.{}", "A".repeat(86));
        raw_refused(port, &tampered, &key, "a tampered user jwt").await?;
        let stranger = KeyPair::new_account();
        let (key, unknown) = user(&stranger, json!({}), json!({}));
        raw_refused(port, &unknown, &key, "a user of an unknown account").await?;
        let mut plain = RawClient::connect(port).await?;
        plain
            .send("CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}\r\nPING\r\n")
            .await?;
        plain.expect_err_and_close(VIOLATION).await?;
        let bad = ConnectOptions::with_user_and_password("u".into(), "p".into());
        match within(WAIT, "a refused connect", bad.connect(server.client_url())).await? {
            Ok(_) => bail!("async-nats connected without a JWT"),
            Err(err) => ensure!(
                err.kind() == ConnectErrorKind::AuthorizationViolation,
                "a connect without a JWT gave {err} ({:?})",
                err.kind()
            ),
        }
        Ok(())
    })
}

fn user_jwt_permissions_refuse_publishes_and_subscriptions(t: &Target) -> anyhow::Result<()> {
    let op = Operator::with_accounts(1);
    let server = t.start_with_config(&op.config(), &[])?;
    block_on(async move {
        let perms = json!({"pub": {"allow": ["ok.>"]}, "sub": {"deny": ["secret"]}});
        let (key, jwt) = user(&op.accounts[0], perms, json!({}));
        let mut c = raw_login(server.port(), &jwt, &key).await?;
        c.send("SUB secret 1\r\nSUB ok.* 2\r\nPUB other 1\r\nx\r\nPUB ok.fine 1\r\ny\r\n")
            .await?;
        let ops = [
            ServerOp::err(r#"Permissions Violation for Subscription to "secret""#),
            ServerOp::err(r#"Permissions Violation for Publish to "other""#),
            ServerOp::msg("ok.fine", "2", b"y"),
        ];
        expect_ops(
            c.ping_until_pong().await?,
            &ops,
            "a user with JWT permissions",
        )
    })
}

fn a_connection_is_closed_when_its_user_jwt_expires(t: &Target) -> anyhow::Result<()> {
    let op = Operator::with_accounts(1);
    let server = t.start_with_config(&op.config(), &[])?;
    block_on(async move {
        let (key, jwt) = user(&op.accounts[0], json!({}), json!({"exp": unix_now() + 2}));
        let mut c = raw_login(server.port(), &jwt, &key).await?;
        let ops = c.until_closed().await?;
        ensure!(
            ops == [ServerOp::err("User Authentication Expired")],
            "expected -ERR 'User Authentication Expired' then close, got {ops:?}"
        );
        Ok(())
    })
}

fn an_account_jwt_limits_its_active_connections_and_none_without_limits(
    t: &Target,
) -> anyhow::Result<()> {
    let mut op = Operator::with_accounts(1);
    op.limits["conn"] = json!(1);
    let server = t.start_with_config(&op.config(), &[])?;
    let mut unlimited = Operator::with_accounts(1);
    unlimited.limits = serde_json::Value::Null;
    let closed = t.start_with_config(&unlimited.config(), &[])?;
    block_on(async move {
        const FULL: &str = "maximum account active connections exceeded";
        let (key, jwt) = user(&op.accounts[0], json!({}), json!({}));
        let first = raw_login(server.port(), &jwt, &key).await?;
        raw_refused_with(server.port(), &jwt, &key, FULL, "a second client").await?;
        drop(first);
        // An account JWT without limits allows no connections (and no subscriptions: now and
        // then nats-server sends that second -ERR too before the close).
        let (key, jwt) = user(&unlimited.accounts[0], json!({}), json!({}));
        let mut c = RawClient::connect(closed.port()).await?;
        let options = jwt_connect(&jwt, &key, &c.info);
        c.send(format!("CONNECT {options}\r\nPING\r\n")).await?;
        let ops = c.until_closed().await?;
        let subs = ServerOp::err("maximum subscriptions exceeded");
        ensure!(
            ops.first() == Some(&ServerOp::err(FULL)) && ops[1..].iter().all(|op| *op == subs),
            "an account without limits: expected -ERR '{FULL}' then close, got {ops:?}"
        );
        Ok(())
    })
}
