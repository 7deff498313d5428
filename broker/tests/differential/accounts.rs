//! Accounts of the configuration file: each is a subject space of its own; users are placed in
//! theirs by their credentials, or by `no_auth_user`.

use anyhow::ensure;
use serde_json::Value;

use crate::http::get_json;
use crate::protocol::expect_ops;
use crate::raw::{RawClient, ServerOp};
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        accounts_isolate_subjects_and_users_of_one_account_share_them,
        a_user_without_permissions_gets_its_accounts_default_permissions,
        no_auth_user_places_clients_without_credentials_in_its_account,
        connz_with_auth_names_the_account_of_each_connection,
    ]
}

const ACCOUNTS_CONFIG: &str = r#"
accounts {
  A: {
    users: [ {user: a1, password: a1}, {user: a2, password: a2} ]
    default_permissions: { publish: { deny: "a.forbidden" } }
  }
  B: { users: [ {user: b, password: b} ] }
}
authorization { users: [ {user: g, password: g} ] }
"#;

/// Connects as `who` (password = user name), quietly.
async fn login(port: u16, who: &str) -> anyhow::Result<RawClient> {
    let options = format!(r#"{{"verbose":false,"pedantic":false,"user":"{who}","pass":"{who}"}}"#);
    RawClient::connect_with(port, &options).await
}

fn accounts_isolate_subjects_and_users_of_one_account_share_them(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config(ACCOUNTS_CONFIG, &[])?;
    block_on(async move {
        let port = server.port();
        let mut clients = Vec::new();
        for who in ["a1", "a2", "b", "g"] {
            let mut c = login(port, who).await?;
            c.send("SUB shared 1\r\n").await?;
            c.ping_until_pong().await?;
            clients.push(c);
        }
        let [a1, a2, b, g] = clients.as_mut_slice() else {
            unreachable!("four clients")
        };
        a1.send("PUB shared 4\r\nfrom\r\n").await?;
        let got = [ServerOp::msg("shared", "1", b"from")];
        expect_ops(a1.ping_until_pong().await?, &got, "a1, its own message")?;
        expect_ops(a2.ping_until_pong().await?, &got, "a2, same account")?;
        expect_ops(b.ping_until_pong().await?, &[], "b, another account")?;
        expect_ops(g.ping_until_pong().await?, &[], "g, the global account")?;
        g.send("PUB shared 1\r\ng\r\n").await?;
        let own = [ServerOp::msg("shared", "1", b"g")];
        expect_ops(g.ping_until_pong().await?, &own, "g, its own message")?;
        expect_ops(a1.ping_until_pong().await?, &[], "a1, a global message")?;
        expect_ops(b.ping_until_pong().await?, &[], "b, a global message")
    })
}

fn a_user_without_permissions_gets_its_accounts_default_permissions(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config(ACCOUNTS_CONFIG, &[])?;
    block_on(async move {
        let mut a1 = login(server.port(), "a1").await?;
        a1.send("SUB a.> 1\r\nPUB a.forbidden 1\r\nx\r\nPUB a.open 1\r\ny\r\n")
            .await?;
        let ops = [
            ServerOp::err(r#"Permissions Violation for Publish to "a.forbidden""#),
            ServerOp::msg("a.open", "1", b"y"),
        ];
        expect_ops(a1.ping_until_pong().await?, &ops, "publishing as a1")?;
        let mut b = login(server.port(), "b").await?;
        b.send("SUB a.> 1\r\nPUB a.forbidden 1\r\nz\r\n").await?;
        let ops = [ServerOp::msg("a.forbidden", "1", b"z")];
        expect_ops(b.ping_until_pong().await?, &ops, "b, of another account")
    })
}

fn no_auth_user_places_clients_without_credentials_in_its_account(
    t: &Target,
) -> anyhow::Result<()> {
    let config = format!("no_auth_user: b\n{ACCOUNTS_CONFIG}");
    let server = t.start_with_config(&config, &[])?;
    block_on(async move {
        let port = server.port();
        let mut anonymous = RawClient::quiet(port).await?;
        anonymous.send("SUB shared 1\r\n").await?;
        anonymous.ping_until_pong().await?;
        let mut b = login(port, "b").await?;
        b.send("PUB shared 1\r\nb\r\n").await?;
        b.ping_until_pong().await?;
        let got = [ServerOp::msg("shared", "1", b"b")];
        expect_ops(
            anonymous.ping_until_pong().await?,
            &got,
            "the anonymous client",
        )?;
        let wrong = r#"{"verbose":false,"user":"b","pass":"wrong"}"#;
        let mut refused = RawClient::connect(port).await?;
        refused.send(format!("CONNECT {wrong}\r\nPING\r\n")).await?;
        refused
            .expect_err_and_close("Authorization Violation")
            .await
    })
}

fn connz_with_auth_names_the_account_of_each_connection(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config(ACCOUNTS_CONFIG, &[])?;
    block_on(async move {
        let _a1 = login(server.port(), "a1").await?;
        let _g = login(server.port(), "g").await?;
        let connz = get_json(server.http_port(), "/connz?auth=1").await?;
        let conns = connz["connections"].as_array().cloned().unwrap_or_default();
        let find = |user: &str| conns.iter().find(|c| c["authorized_user"] == user).cloned();
        let a1 = find("a1").unwrap_or(Value::Null);
        ensure!(a1["account"] == "A", "a1 in /connz?auth=1: {connz}");
        let g = find("g").unwrap_or(Value::Null);
        ensure!(
            g.is_object() && g["account"].is_null(),
            "g in /connz?auth=1: {connz}"
        );
        let plain = get_json(server.http_port(), "/connz").await?;
        ensure!(
            plain["connections"][0]["account"].is_null(),
            "/connz without auth=1: {plain}"
        );
        Ok(())
    })
}
