//! Imports and exports between accounts: stream imports deliver an account's messages to
//! another under a mapped subject; service imports carry requests to the exporter and one
//! response (or, for `stream` exports, several) back to the requester.

use anyhow::{ensure, Context};

use serde_json::json;

use crate::creds::{user, Operator};
use crate::operator::raw_login;
use crate::protocol::expect_ops;
use crate::raw::{Msg, RawClient, ServerOp};
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        stream_imports_deliver_the_exporters_messages_under_the_mapped_subject,
        service_imports_carry_a_request_and_one_response_back,
        a_stream_export_carries_every_response_until_its_threshold_passes,
        a_service_import_nobody_answers_gets_no_responders,
        account_jwts_carry_imports_and_exports_and_imports_they_do_not_allow_are_left_out,
    ]
}

const CONFIG: &str = r#"
accounts {
  A: {
    users: [ {user: a, password: a} ]
    exports: [
      { stream: "news.>" }
      { stream: "private.>", accounts: [B] }
      { service: "help.>" }
      { service: "many", response_type: stream, response_threshold: "300ms" }
    ]
  }
  B: {
    users: [ {user: b, password: b} ]
    imports: [
      { stream: { account: A, subject: "news.>" } }
      { stream: { account: A, subject: "private.>" }, prefix: "from_a" }
      { service: { account: A, subject: "help.>" }, to: "ask.>" }
      { service: { account: A, subject: "many" } }
    ]
  }
  C: {
    users: [ {user: c, password: c} ]
    imports: [ { stream: { account: A, subject: "news.sports" }, to: "sports" } ]
  }
}
"#;

/// Connects as `who` (password = user name), with headers and "no responders".
async fn login(port: u16, who: &str) -> anyhow::Result<RawClient> {
    let options = format!(
        r#"{{"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"user":"{who}","pass":"{who}"}}"#
    );
    RawClient::connect_with(port, &options).await
}

fn msg(subject: &str, sid: &str, reply: Option<&str>, payload: &[u8]) -> ServerOp {
    ServerOp::Msg(Msg {
        subject: subject.into(),
        sid: sid.into(),
        reply: reply.map(Into::into),
        headers: None,
        payload: payload.into(),
    })
}

fn stream_imports_deliver_the_exporters_messages_under_the_mapped_subject(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config(CONFIG, &[])?;
    block_on(async move {
        let port = server.port();
        let mut a = login(port, "a").await?;
        let mut b = login(port, "b").await?;
        let mut c = login(port, "c").await?;
        a.send("SUB news.> 1\r\n").await?;
        b.send("SUB news.> 1\r\nSUB from_a.private.> 2\r\nSUB private.> 3\r\n")
            .await?;
        c.send("SUB sports 1\r\nSUB news.> 2\r\nSUB from_a.> 3\r\n")
            .await?;
        for client in [&mut a, &mut b, &mut c] {
            client.ping_until_pong().await?;
        }
        a.send("PUB news.sports r 1\r\ns\r\nPUB private.x 1\r\np\r\nPUB other 1\r\no\r\n")
            .await?;
        expect_ops(
            a.ping_until_pong().await?,
            &[msg("news.sports", "1", Some("r"), b"s")],
            "a, its own message",
        )?;
        let to_b = [
            msg("news.sports", "1", Some("r"), b"s"),
            msg("from_a.private.x", "2", None, b"p"),
        ];
        expect_ops(b.ping_until_pong().await?, &to_b, "b, both imports")?;
        let to_c = [msg("sports", "1", Some("r"), b"s")];
        expect_ops(
            c.ping_until_pong().await?,
            &to_c,
            "c, the one subject mapped",
        )?;
        // The other way round nothing flows: B's own news stay in B.
        b.send("PUB news.local 1\r\nl\r\n").await?;
        let own = [msg("news.local", "1", None, b"l")];
        expect_ops(b.ping_until_pong().await?, &own, "b, its own message")?;
        expect_ops(a.ping_until_pong().await?, &[], "a, a message of B")
    })
}

/// The responder `a` subscribes to `service`; the requester `b` publishes "q" to `request`'s
/// subject with reply `_INBOX.b.<request's number>`. Returns the request the responder got:
/// its subject and reply, and the account the `Nats-Request-Info` header names.
async fn ask(
    a: &mut RawClient,
    b: &mut RawClient,
    service: &str,
    request: &str,
) -> anyhow::Result<(String, String, String)> {
    a.send(format!("SUB {service} 1\r\n")).await?;
    a.ping_until_pong().await?;
    let (subject, n) = request.split_once(' ').context("subject and number")?;
    b.send(format!(
        "SUB _INBOX.b.> 9\r\nPUB {subject} _INBOX.b.{n} 1\r\nq\r\n"
    ))
    .await?;
    b.ping_until_pong().await?;
    let ops = a.ping_until_pong().await?;
    let [ServerOp::Msg(m)] = ops.as_slice() else {
        anyhow::bail!("expected one request, got {ops:?}");
    };
    let reply = m.reply.clone().context("the request has a reply subject")?;
    let headers = String::from_utf8_lossy(m.headers.as_deref().unwrap_or_default()).to_string();
    let info = headers
        .lines()
        .find_map(|l| l.strip_prefix("Nats-Request-Info:"))
        .with_context(|| format!("no Nats-Request-Info in {headers:?}"))?;
    let info: serde_json::Value = serde_json::from_str(info.trim())?;
    let account = info["acc"].as_str().unwrap_or_default().to_string();
    ensure!(m.payload == b"q", "{m:?}");
    Ok((m.subject.clone(), reply, account))
}

fn service_imports_carry_a_request_and_one_response_back(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config(CONFIG, &[])?;
    block_on(async move {
        let port = server.port();
        let (mut a, mut b) = (login(port, "a").await?, login(port, "b").await?);
        let (subject, reply, account) = ask(&mut a, &mut b, "help.>", "ask.me 1").await?;
        ensure!(subject == "help.me", "the exporter's subject: {subject}");
        ensure!(
            reply.starts_with("_R_."),
            "a reply subject of the server's: {reply}"
        );
        ensure!(account == "B", "the requesting account: {account}");
        a.send(format!("PUB {reply} 2\r\nr1\r\nPUB {reply} 2\r\nr2\r\n"))
            .await?;
        a.ping_until_pong().await?;
        let got = [msg("_INBOX.b.1", "9", None, b"r1")];
        expect_ops(b.ping_until_pong().await?, &got, "b, one response only")?;
        // The reply subject is the server's, not the requester's, and B cannot use it.
        b.send(format!("PUB {reply} 1\r\nx\r\n")).await?;
        expect_ops(
            b.ping_until_pong().await?,
            &[],
            "b, publishing to the reply",
        )
    })
}

fn a_stream_export_carries_every_response_until_its_threshold_passes(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config(CONFIG, &[])?;
    block_on(async move {
        let port = server.port();
        let (mut a, mut b) = (login(port, "a").await?, login(port, "b").await?);
        let (subject, reply, _) = ask(&mut a, &mut b, "many", "many 2").await?;
        ensure!(subject == "many", "{subject}");
        for part in ["p1", "p2", "p3"] {
            a.send(format!("PUB {reply} 2\r\n{part}\r\n")).await?;
        }
        a.ping_until_pong().await?;
        let got = [
            msg("_INBOX.b.2", "9", None, b"p1"),
            msg("_INBOX.b.2", "9", None, b"p2"),
            msg("_INBOX.b.2", "9", None, b"p3"),
        ];
        expect_ops(b.ping_until_pong().await?, &got, "b, every response")?;
        // Well past the 300ms threshold, the route back is gone.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        a.send(format!("PUB {reply} 4\r\nlate\r\n")).await?;
        a.ping_until_pong().await?;
        expect_ops(b.ping_until_pong().await?, &[], "b, after the threshold")
    })
}

fn a_service_import_nobody_answers_gets_no_responders(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config(CONFIG, &[])?;
    block_on(async move {
        let mut b = login(server.port(), "b").await?;
        b.send("SUB _INBOX.b.> 9\r\nPUB ask.nobody _INBOX.b.3 1\r\nq\r\n")
            .await?;
        let ops = b.ping_until_pong().await?;
        let [ServerOp::Msg(m)] = ops.as_slice() else {
            anyhow::bail!("expected one status message, got {ops:?}");
        };
        let headers = String::from_utf8_lossy(m.headers.as_deref().unwrap_or_default());
        ensure!(
            m.subject == "_INBOX.b.3" && headers.starts_with("NATS/1.0 503"),
            "{m:?}"
        );
        Ok(())
    })
}

fn account_jwts_carry_imports_and_exports_and_imports_they_do_not_allow_are_left_out(
    t: &Target,
) -> anyhow::Result<()> {
    // The third account is the system account, which nats-server needs for JetStream.
    let mut op = Operator::with_accounts(3);
    let exporter = op.accounts[0].public_key();
    op.extra = vec![
        json!({"exports": [
            {"name": "news", "subject": "news.>", "type": "stream"},
            {"name": "help", "subject": "help", "type": "service"},
            {"name": "secret", "subject": "secret", "type": "stream", "token_req": true},
        ]}),
        json!({"imports": [
            {"name": "news", "account": exporter, "subject": "news.>", "local_subject": "a.news.>", "type": "stream"},
            {"name": "help", "account": exporter, "subject": "help", "local_subject": "ask", "type": "service"},
            {"name": "secret", "account": exporter, "subject": "secret", "type": "stream"},
            {"name": "stray", "account": exporter, "subject": "stray", "type": "stream"},
        ]}),
    ];
    // One connection each, and JetStream: the broker's own subscriptions in the accounts
    // (JetStream's, the imports') take none of it.
    op.limits["conn"] = json!(1);
    op.limits["mem_storage"] = json!(-1);
    op.limits["disk_storage"] = json!(-1);
    let mut system_limits = op.limits.clone();
    system_limits["mem_storage"] = json!(0);
    system_limits["disk_storage"] = json!(0);
    op.extra.push(json!({ "limits": system_limits }));
    let dir = crate::jetstream::accounts::store()?;
    let args = crate::jetstream::jetstream_args(dir.path())?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let config = format!(
        "{}system_account: {}\n",
        op.config(),
        op.accounts[2].public_key()
    );
    let server = t.start_with_config(&config, &args)?;
    block_on(async move {
        let port = server.port();
        let (a_key, a_jwt) = user(&op.accounts[0], json!({}), json!({}));
        let (b_key, b_jwt) = user(&op.accounts[1], json!({}), json!({}));
        let mut a = raw_login(port, &a_jwt, &a_key).await?;
        let mut b = raw_login(port, &b_jwt, &b_key).await?;
        a.send("SUB help 1\r\n").await?;
        b.send("SUB a.news.> 1\r\nSUB secret 2\r\nSUB stray 3\r\nSUB _INBOX.> 9\r\n")
            .await?;
        a.ping_until_pong().await?;
        b.ping_until_pong().await?;
        a.send("PUB news.x 1\r\nn\r\nPUB secret 1\r\ns\r\nPUB stray 1\r\nx\r\n")
            .await?;
        a.ping_until_pong().await?;
        let news = [msg("a.news.x", "1", None, b"n")];
        expect_ops(
            b.ping_until_pong().await?,
            &news,
            "b, the allowed stream only",
        )?;
        b.send("PUB ask _INBOX.1 1\r\nq\r\n").await?;
        b.ping_until_pong().await?;
        let ops = a.ping_until_pong().await?;
        let [ServerOp::Msg(request)] = ops.as_slice() else {
            anyhow::bail!("expected the request, got {ops:?}");
        };
        ensure!(
            request.subject == "help" && request.payload == b"q",
            "{request:?}"
        );
        let reply = request.reply.clone().context("a reply subject")?;
        a.send(format!("PUB {reply} 1\r\nr\r\n")).await?;
        a.ping_until_pong().await?;
        let response = [msg("_INBOX.1", "9", None, b"r")];
        expect_ops(b.ping_until_pong().await?, &response, "b, the response")
    })
}
