//! Authentication: token, user/password, a users list and nkeys, from flags and from a config
//! file.

use anyhow::{bail, ensure};
use async_nats::{ConnectErrorKind, ConnectOptions};

use crate::protocol::expect_ops;
use crate::raw::{RawClient, ServerOp, WAIT};
use crate::{block_on, scenarios, within, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        info_advertises_auth_required_only_when_auth_is_on,
        token_from_the_auth_flag_admits_only_the_right_token,
        token_from_the_config_file_admits_only_the_right_token,
        user_and_password_from_flags_admit_only_the_right_pair,
        user_and_password_from_the_config_file_admit_only_the_right_pair,
        users_list_admits_each_listed_user_with_their_own_password,
        async_nats_authenticates_and_reports_authorization_violation,
        commands_before_connect_are_an_authorization_violation_when_auth_is_on,
        client_that_never_sends_connect_is_closed_with_authentication_timeout,
        nkey_user_logs_in_by_signing_the_nonce_and_a_stranger_is_refused,
        permissions_refuse_publishes_and_subscriptions_and_filter_wildcard_deliveries,
        a_permissions_violation_is_logged_with_the_user_and_the_subject,
    ]
}

const VIOLATION: &str = "Authorization Violation";

/// Expects `CONNECT <options>` to be accepted: a PING gets only a PONG.
pub(crate) async fn accepted(port: u16, options: &str) -> anyhow::Result<()> {
    let mut c = RawClient::connect(port).await?;
    c.send(format!("CONNECT {options}\r\n")).await?;
    let ops = c
        .ping_until_pong()
        .await
        .map_err(|e| e.context(format!("CONNECT {options}")))?;
    ensure!(
        ops.is_empty(),
        "CONNECT {options} was answered with {ops:?}"
    );
    Ok(())
}

/// Expects `CONNECT <options>` to get `-ERR 'Authorization Violation'` and a close.
pub(crate) async fn rejected(port: u16, options: &str) -> anyhow::Result<()> {
    let mut c = RawClient::connect(port).await?;
    c.send(format!("CONNECT {options}\r\nPING\r\n")).await?;
    c.expect_err_and_close(VIOLATION)
        .await
        .map_err(|e| e.context(format!("CONNECT {options}")))
}

fn info_advertises_auth_required_only_when_auth_is_on(t: &Target) -> anyhow::Result<()> {
    let open = t.shared()?.port();
    let guarded = t.start(&["--auth", "tok"])?;
    block_on(async move {
        let info = RawClient::connect(guarded.port()).await?.info;
        ensure!(info["auth_required"] == true, "with auth: {info}");
        let info = RawClient::connect(open).await?.info;
        let auth = &info["auth_required"];
        ensure!(auth.is_null() || auth == false, "without auth: {info}");
        Ok(())
    })
}

/// Checks a token-protected server: the right token only.
pub(crate) async fn check_token(port: u16, token: &str) -> anyhow::Result<()> {
    accepted(
        port,
        &format!(r#"{{"verbose":false,"auth_token":"{token}"}}"#),
    )
    .await?;
    rejected(port, r#"{"verbose":false,"auth_token":"wrong"}"#).await?;
    rejected(port, r#"{"verbose":false}"#).await?;
    rejected(
        port,
        &format!(r#"{{"verbose":false,"user":"{token}","pass":"{token}"}}"#),
    )
    .await
}

fn token_from_the_auth_flag_admits_only_the_right_token(t: &Target) -> anyhow::Result<()> {
    let server = t.start(&["--auth", "fl4g-t0ken"])?;
    block_on(check_token(server.port(), "fl4g-t0ken"))
}

fn token_from_the_config_file_admits_only_the_right_token(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config("authorization {\n  token: \"c0nf-t0ken\"\n}\n", &[])?;
    block_on(check_token(server.port(), "c0nf-t0ken"))
}

/// Checks a server with exactly this user/password pair.
pub(crate) async fn check_user(port: u16, user: &str, pass: &str) -> anyhow::Result<()> {
    let login = |u: &str, p: &str| format!(r#"{{"verbose":false,"user":"{u}","pass":"{p}"}}"#);
    accepted(port, &login(user, pass)).await?;
    rejected(port, &login(user, "wrong")).await?;
    rejected(port, &login("nobody", pass)).await?;
    rejected(port, r#"{"verbose":false}"#).await
}

fn user_and_password_from_flags_admit_only_the_right_pair(t: &Target) -> anyhow::Result<()> {
    let server = t.start(&["--user", "flaguser", "--pass", "flagpass"])?;
    block_on(check_user(server.port(), "flaguser", "flagpass"))
}

fn user_and_password_from_the_config_file_admit_only_the_right_pair(
    t: &Target,
) -> anyhow::Result<()> {
    let config = "authorization {\n  user: confuser\n  password: \"conf pass\"\n}\n";
    let server = t.start_with_config(config, &[])?;
    block_on(check_user(server.port(), "confuser", "conf pass"))
}

const USERS_CONFIG: &str = r#"
authorization {
  users = [
    { user: alice, password: "alice-pw" }
    { user: bob, password: "bob-pw" }
  ]
}
"#;

fn users_list_admits_each_listed_user_with_their_own_password(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config(USERS_CONFIG, &[])?;
    block_on(async move {
        let port = server.port();
        check_user(port, "alice", "alice-pw").await?;
        check_user(port, "bob", "bob-pw").await?;
        rejected(port, r#"{"verbose":false,"user":"alice","pass":"bob-pw"}"#).await
    })
}

fn async_nats_authenticates_and_reports_authorization_violation(t: &Target) -> anyhow::Result<()> {
    let token_server = t.start(&["--auth", "async-t0k"])?;
    let user_server = t.start_with_config(USERS_CONFIG, &[])?;
    block_on(async move {
        let good = ConnectOptions::with_token("async-t0k".into());
        let client = within(WAIT, "connect", good.connect(token_server.client_url())).await??;
        client.flush().await?;
        let good = ConnectOptions::with_user_and_password("bob".into(), "bob-pw".into());
        let client = within(WAIT, "connect", good.connect(user_server.client_url())).await??;
        client.flush().await?;
        let bad = [
            (
                ConnectOptions::with_token("nope".into()),
                token_server.client_url(),
            ),
            (
                ConnectOptions::with_user_and_password("bob".into(), "alice-pw".into()),
                user_server.client_url(),
            ),
        ];
        for (options, url) in bad {
            match within(WAIT, "a refused connect", options.connect(url)).await? {
                Ok(_) => bail!("async-nats connected with bad credentials"),
                Err(err) => ensure!(
                    err.kind() == ConnectErrorKind::AuthorizationViolation,
                    "bad credentials gave {err} ({:?})",
                    err.kind()
                ),
            }
        }
        Ok(())
    })
}

fn commands_before_connect_are_an_authorization_violation_when_auth_is_on(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start(&["--auth", "tok"])?;
    block_on(async move {
        for command in ["PING\r\n", "SUB foo 1\r\n", "PUB foo 2\r\nhi\r\n"] {
            let mut c = RawClient::connect(server.port()).await?;
            c.send(command).await?;
            c.expect_err_and_close(VIOLATION)
                .await
                .map_err(|e| e.context(format!("{command:?} before CONNECT")))?;
        }
        Ok(())
    })
}

fn client_that_never_sends_connect_is_closed_with_authentication_timeout(
    t: &Target,
) -> anyhow::Result<()> {
    let config = "authorization {\n  token: \"slow\"\n  timeout: 0.5\n}\n";
    let server = t.start_with_config(config, &[])?;
    block_on(async move {
        let mut c = RawClient::connect(server.port()).await?;
        let started = tokio::time::Instant::now();
        let ops = c.until_closed().await?;
        ensure!(
            ops == [ServerOp::err("Authentication Timeout")],
            "expected -ERR 'Authentication Timeout' then close, got {ops:?} after {:?}",
            started.elapsed()
        );
        Ok(())
    })
}

fn nkey_user_logs_in_by_signing_the_nonce_and_a_stranger_is_refused(
    t: &Target,
) -> anyhow::Result<()> {
    let user = nkeys::KeyPair::new_user();
    let config = format!(
        "authorization {{ users: [ {{nkey: {}}}, {{user: pw, password: pw-pass}} ] }}\n",
        user.public_key()
    );
    let server = t.start_with_config(&config, &[])?;
    block_on(async move {
        let raw = RawClient::connect(server.port()).await?;
        let nonce = raw.info["nonce"].as_str().unwrap_or_default();
        ensure!(!nonce.is_empty(), "INFO without a nonce: {}", raw.info);
        ensure!(raw.info["auth_required"] == true, "INFO: {}", raw.info);
        let seed = user.seed()?;
        let good = ConnectOptions::with_nkey(seed);
        let client = within(WAIT, "an nkey connect", good.connect(server.client_url())).await??;
        client.flush().await?;
        let password = ConnectOptions::with_user_and_password("pw".into(), "pw-pass".into());
        let client = within(
            WAIT,
            "a password connect",
            password.connect(server.client_url()),
        )
        .await??;
        client.flush().await?;
        let stranger = ConnectOptions::with_nkey(nkeys::KeyPair::new_user().seed()?);
        match within(
            WAIT,
            "a stranger's connect",
            stranger.connect(server.client_url()),
        )
        .await?
        {
            Ok(_) => bail!("an unknown nkey was let in"),
            Err(err) => ensure!(
                err.kind() == ConnectErrorKind::AuthorizationViolation,
                "an unknown nkey gave {err} ({:?})",
                err.kind()
            ),
        }
        Ok(())
    })
}

const PERMISSIONS_CONFIG: &str = r#"
authorization {
  default_permissions: { publish: { deny: "forbidden.>" } }
  users = [
    { user: a, password: a, permissions: {
        publish: { allow: ["ok.>"], deny: "ok.secret" }
        subscribe: { deny: ["hidden", "ok.secret"] }
    } }
    { user: b, password: b }
  ]
}
"#;

/// An operator sees who was refused what in the server's log (nats-server: `Publish Violation -
/// User "a", Subject "other"`; the broker words it its own way with the same facts).
fn a_permissions_violation_is_logged_with_the_user_and_the_subject(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config(PERMISSIONS_CONFIG, &[])?;
    let port = server.port();
    block_on(async move {
        let a = r#"{"verbose":false,"pedantic":false,"user":"a","pass":"a"}"#;
        let mut a = RawClient::connect_with(port, a).await?;
        a.send("PUB not.allowed.subject 1\r\nx\r\nSUB hidden 1\r\n")
            .await?;
        a.ping_until_pong().await?;
        Ok::<_, anyhow::Error>(())
    })?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = server.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("violation"))
            .collect();
        let names = |subject: &str| {
            lines.iter().any(|l| {
                let user = l.contains(r#"User "a""#) || l.contains("user=a ");
                l.contains(subject) && user && l.contains("ublish")
            })
        };
        let subscription = lines
            .iter()
            .any(|l| l.contains("hidden") && l.to_ascii_lowercase().contains("subscription"));
        if names("not.allowed.subject") && subscription {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no violation lines naming the user and subjects; log:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn permissions_refuse_publishes_and_subscriptions_and_filter_wildcard_deliveries(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config(PERMISSIONS_CONFIG, &[])?;
    block_on(async move {
        let port = server.port();
        let quiet = |who: &str| {
            format!(r#"{{"verbose":false,"pedantic":false,"user":"{who}","pass":"{who}"}}"#)
        };
        let mut a = RawClient::connect_with(port, &quiet("a")).await?;
        let mut b = RawClient::connect_with(port, &quiet("b")).await?;
        a.send("SUB ok.* 1\r\nSUB hidden 2\r\nSUB hidden q 3\r\n")
            .await?;
        let refused = [
            ServerOp::err(r#"Permissions Violation for Subscription to "hidden""#),
            ServerOp::err(r#"Permissions Violation for Subscription to "hidden" using queue "q""#),
        ];
        expect_ops(a.ping_until_pong().await?, &refused, "subscribing")?;
        a.send("PUB other 1\r\nx\r\nPUB ok.secret 1\r\ny\r\nPUB ok.mine 1\r\nz\r\n")
            .await?;
        let published = [
            ServerOp::err(r#"Permissions Violation for Publish to "other""#),
            ServerOp::err(r#"Permissions Violation for Publish to "ok.secret""#),
            ServerOp::msg("ok.mine", "1", b"z"),
        ];
        expect_ops(a.ping_until_pong().await?, &published, "publishing as a")?;
        b.send("PUB ok.secret 1\r\ns\r\nPUB forbidden.x 1\r\nf\r\nPUB ok.open 1\r\no\r\n")
            .await?;
        let denied = [ServerOp::err(
            r#"Permissions Violation for Publish to "forbidden.x""#,
        )];
        expect_ops(b.ping_until_pong().await?, &denied, "publishing as b")?;
        let delivered = [ServerOp::msg("ok.open", "1", b"o")];
        expect_ops(
            a.ping_until_pong().await?,
            &delivered,
            "a's wildcard subscription",
        )
    })
}
