//! Configuration reload of authentication: users, passwords, tokens, nkeys, accounts and
//! permissions, for new connections and for the clients already logged in.

use anyhow::{ensure, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;

use crate::raw::{RawClient, ServerOp};
use crate::reload::{logged, login, signal_reload, RELOADED, USERS_BEFORE, VIOLATION};
use crate::{block_on, scenarios, with_log, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        reload_changes_users_for_new_and_existing_clients,
        sighup_gives_existing_clients_their_new_permissions,
        reload_of_a_token_or_of_new_auth_disconnects_clients_that_no_longer_log_in,
        reload_moving_a_user_to_another_account_closes_its_clients,
        reload_of_nkey_users_checks_each_client_again,
        every_reload_checks_logins_again,
    ]
}

const USERS_AFTER: &str = "authorization { users: [\n  {user: a, password: pa2}\n  \
                           {user: c, password: pc}\n  {user: d, password: pd}\n] }\n";

/// Expects a new connection as `user` to be refused.
async fn refused(port: u16, user: &str, pass: &str) -> anyhow::Result<()> {
    let mut c = RawClient::connect(port).await?;
    c.send(format!("CONNECT {}\r\nPING\r\n", login(user, pass)))
        .await?;
    c.expect_err_and_close(VIOLATION)
        .await
        .with_context(|| format!("logging in as {user}:{pass}"))
}

fn reload_changes_users_for_new_and_existing_clients(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config(USERS_BEFORE, &[])?;
    let port = server.port();
    let result = block_on(async {
        let mut old_pass = RawClient::connect_with(port, &login("a", "pa")).await?;
        let mut removed = RawClient::connect_with(port, &login("b", "pb")).await?;
        let mut kept = RawClient::connect_with(port, &login("d", "pd")).await?;
        server.rewrite_config(USERS_AFTER)?;
        signal_reload(&server)?;
        // As nats-server: the client of a user who is gone is closed without a word, one whose
        // password no longer logs in is told.
        let said = removed
            .until_closed()
            .await
            .context("the client of the removed user")?;
        ensure!(said.is_empty(), "the removed user's client got {said:?}");
        old_pass
            .expect_err_and_close(VIOLATION)
            .await
            .context("the client whose password changed")?;
        kept.expect_still_open()
            .await
            .context("the client of an unchanged user")?;
        refused(port, "a", "pa").await?;
        refused(port, "b", "pb").await?;
        RawClient::connect_with(port, &login("a", "pa2"))
            .await
            .context("the new password")?;
        RawClient::connect_with(port, &login("c", "pc"))
            .await
            .context("the new user")?;
        Ok(())
    });
    with_log(&server, result)
}

fn sighup_gives_existing_clients_their_new_permissions(t: &Target) -> anyhow::Result<()> {
    let before = "authorization { users: [{user: a, password: pa}] }\n";
    let after = "authorization { users: [{user: a, password: pa, permissions: {\n  \
                 publish: {deny: [\"foo.x\"]}\n  subscribe: {allow: [\"foo.>\"]}\n}}] }\n";
    let mut server = t.start_with_config(before, &[])?;
    let port = server.port();
    let result = block_on(async {
        let mut c = RawClient::connect_with(port, &login("a", "pa")).await?;
        c.send("SUB foo.a 1\r\nSUB bar.b 2\r\n").await?;
        c.expect_still_open().await?;
        server.rewrite_config(after)?;
        server.signal(libc::SIGHUP)?;
        let lost = ServerOp::err("Permissions Violation for Subscription to \"bar.b\" (sid \"2\")");
        let first = c.expect().await.context("the lost subscription's error")?;
        ensure!(first == lost, "expected {lost:?}, got {first:?}");
        c.send("PUB foo.x 1\r\nx\r\nPUB bar.b 1\r\nb\r\nPUB foo.a 1\r\na\r\n")
            .await?;
        let ops = c.ping_until_pong().await?;
        let want = [
            ServerOp::err("Permissions Violation for Publish to \"foo.x\""),
            ServerOp::msg("foo.a", "1", b"a"),
        ];
        ensure!(ops == want, "after the reload got {ops:?}, not {want:?}");
        Ok(())
    });
    with_log(&server, result)
}

fn reload_of_a_token_or_of_new_auth_disconnects_clients_that_no_longer_log_in(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config("authorization { token: first }\n", &[])?;
    let port = server.port();
    let token = |t: &str| format!(r#"{{"verbose":false,"pedantic":false,"auth_token":"{t}"}}"#);
    let result = block_on(async {
        let mut old = RawClient::connect_with(port, &token("first")).await?;
        server.rewrite_config("authorization { token: second }\n")?;
        signal_reload(&server)?;
        old.expect_err_and_close(VIOLATION)
            .await
            .context("the client of the old token")?;
        RawClient::connect_with(port, &token("second"))
            .await
            .context("the new token")?;
        // From no auth at all to users: an anonymous client no longer logs in.
        server.rewrite_config("max_payload: 1000\n")?;
        signal_reload(&server)?;
        logged(&server, RELOADED, 2).await?;
        let mut anonymous = RawClient::quiet(port).await?;
        server.rewrite_config(USERS_BEFORE)?;
        signal_reload(&server)?;
        anonymous
            .expect_err_and_close(VIOLATION)
            .await
            .context("an anonymous client once users are required")?;
        let fresh = RawClient::connect(port).await?;
        ensure!(fresh.info["auth_required"] == true, "{}", fresh.info);
        Ok(())
    });
    with_log(&server, result)
}

fn reload_moving_a_user_to_another_account_closes_its_clients(t: &Target) -> anyhow::Result<()> {
    let accounts = |a: &str, b: &str| {
        format!("accounts {{\n  A {{ users: [{a}] }}\n  B {{ users: [{b}] }}\n}}\n",)
    };
    let (moving, staying) = ("{user: m, password: pm}", "{user: s, password: ps}");
    let before = accounts(&format!("{moving}, {staying}"), "{user: x, password: px}");
    let after = accounts(staying, &format!("{moving}, {{user: x, password: px}}"));
    let server = t.start_with_config(&before, &[])?;
    let port = server.port();
    let result = block_on(async {
        let mut moved = RawClient::connect_with(port, &login("m", "pm")).await?;
        let mut stays = RawClient::connect_with(port, &login("s", "ps")).await?;
        server.rewrite_config(&after)?;
        signal_reload(&server)?;
        let said = moved
            .until_closed()
            .await
            .context("the client of the user that moved")?;
        ensure!(said.is_empty(), "the moved user's client got {said:?}");
        stays.expect_still_open().await?;
        // Logged in again, the user is in its new account, with x.
        let mut again = RawClient::connect_with(port, &login("m", "pm")).await?;
        let mut x = RawClient::connect_with(port, &login("x", "px")).await?;
        x.send("SUB moved 1\r\n").await?;
        x.expect_still_open().await?;
        again.send("PUB moved 2\r\nhi\r\n").await?;
        again.expect_still_open().await?;
        let ops = x.ping_until_pong().await?;
        ensure!(ops == [ServerOp::msg("moved", "1", b"hi")], "x got {ops:?}");
        Ok(())
    });
    with_log(&server, result)
}

/// CONNECT options logging in as the nkey `key`, signing the nonce of the server's INFO.
fn nkey_login(key: &KeyPair, info: &serde_json::Value) -> anyhow::Result<String> {
    let nonce = info["nonce"].as_str().context("INFO without a nonce")?;
    let sig = URL_SAFE_NO_PAD.encode(key.sign(nonce.as_bytes())?);
    Ok(serde_json::json!({
        "verbose": false, "pedantic": false, "nkey": key.public_key(), "sig": sig
    })
    .to_string())
}

/// Logs in as `key` with a raw client.
async fn nkey_client(port: u16, key: &KeyPair) -> anyhow::Result<RawClient> {
    let mut c = RawClient::connect(port).await?;
    let connect = nkey_login(key, &c.info)?;
    c.send(format!("CONNECT {connect}\r\n")).await?;
    c.expect_still_open().await.context("an nkey login")?;
    Ok(c)
}

/// The signature each client sent stays good for its own nonce, so a kept nkey user stays
/// logged in (with its new permissions) while a removed one is closed.
fn reload_of_nkey_users_checks_each_client_again(t: &Target) -> anyhow::Result<()> {
    let (kept, removed) = (KeyPair::new_user(), KeyPair::new_user());
    let before = format!(
        "authorization {{ users: [ {{nkey: {}}}, {{nkey: {}}} ] }}\n",
        kept.public_key(),
        removed.public_key()
    );
    let after = format!(
        "authorization {{ users: [ {{nkey: {}, permissions: {{subscribe: \"ok.>\"}}}} ] }}\n",
        kept.public_key()
    );
    let server = t.start_with_config(&before, &[])?;
    let port = server.port();
    let result = block_on(async {
        let mut stays = nkey_client(port, &kept).await?;
        let mut goes = nkey_client(port, &removed).await?;
        stays.send("SUB ok.a 1\r\nSUB no 2\r\n").await?;
        stays.expect_still_open().await?;
        server.rewrite_config(&after)?;
        signal_reload(&server)?;
        let said = goes
            .until_closed()
            .await
            .context("the removed nkey's client")?;
        ensure!(said.is_empty(), "the removed nkey's client got {said:?}");
        let lost = ServerOp::err("Permissions Violation for Subscription to \"no\" (sid \"2\")");
        let first = stays.expect().await.context("the kept nkey's client")?;
        ensure!(first == lost, "expected {lost:?}, got {first:?}");
        stays.expect_still_open().await?;
        logged(&server, RELOADED, 1).await?;
        let mut again = RawClient::connect(port).await?;
        let connect = nkey_login(&removed, &again.info)?;
        again.send(format!("CONNECT {connect}\r\nPING\r\n")).await?;
        again.expect_err_and_close(VIOLATION).await
    });
    with_log(&server, result)
}

/// A client may send a user name to a server without users (it is ignored). nats-server
/// checks every login again on every reload, whatever changed: it looks that user up, finds
/// none, and closes the client without a word. An anonymous client stays.
fn every_reload_checks_logins_again(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config("max_payload: 1000\n", &[])?;
    let port = server.port();
    let result = block_on(async {
        let mut named = RawClient::connect_with(port, &login("x", "y")).await?;
        let mut anonymous = RawClient::quiet(port).await?;
        server.rewrite_config("max_payload: 2000\n")?;
        signal_reload(&server)?;
        let said = named
            .until_closed()
            .await
            .context("a named client after a limits reload")?;
        ensure!(said.is_empty(), "the named client got {said:?}");
        logged(&server, RELOADED, 1).await?;
        anonymous
            .expect_still_open()
            .await
            .context("an anonymous client after the reload")
    });
    with_log(&server, result)
}
