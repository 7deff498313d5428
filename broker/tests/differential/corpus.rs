//! The checked-in corpus of malformed input (`broker/tests/corpus/malformed`), replayed against
//! each server: every file must get the answer nats-server gives (recorded in
//! `malformed.expected`), and connections that did nothing wrong must carry on unaffected.

use anyhow::{bail, Context};

use crate::raw::{RawClient, ServerOp, QUIET};
use crate::{block_on, scenarios, with_log, Scenario, Target};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/malformed");
const EXPECTED: &str = include_str!("../corpus/malformed.expected");

pub fn scenarios() -> Vec<Scenario> {
    scenarios![malformed_corpus_gets_the_answers_nats_server_gives]
}

/// One line of `malformed.expected`: `<file>: <closed|open> <op> | <op> ...`.
fn expectations() -> anyhow::Result<Vec<(String, String)>> {
    let mut all = Vec::new();
    for line in EXPECTED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (file, outcome) = line
            .split_once(": ")
            .with_context(|| format!("bad line {line:?}"))?;
        all.push((file.to_string(), outcome.trim_end().to_string()));
    }
    let files = std::fs::read_dir(CORPUS)
        .context("reading the corpus directory")?
        .count();
    if files != all.len() {
        bail!(
            "{files} corpus files but {} expectations: record the new ones",
            all.len()
        );
    }
    Ok(all)
}

fn describe(op: &ServerOp) -> String {
    match op {
        ServerOp::Msg(m) if m.headers.is_some() => "HMSG".into(),
        ServerOp::Msg(_) => "MSG".into(),
        other => format!("{other:?}"),
    }
}

/// Sends the file's bytes right after INFO, then PING; reports what came back.
async fn replay(port: u16, bytes: &[u8]) -> anyhow::Result<String> {
    let mut client = RawClient::connect(port).await?;
    client.send(bytes).await?;
    // The server may already have closed the connection; then this write fails, which is fine.
    let _ = client.send("PING\r\n").await;
    let mut ops = Vec::new();
    let closed = loop {
        match client.next_op().await {
            Ok(Some(ServerOp::Pong)) => break false,
            Ok(Some(op)) => ops.push(describe(&op)),
            Ok(None) => break true,
            Err(e) if format!("{e:#}").contains("os error") => break true,
            Err(e) => return Err(e),
        }
    };
    let state = if closed { "closed" } else { "open" };
    Ok(format!("{state} {}", ops.join(" | "))
        .trim_end()
        .to_string())
}

fn malformed_corpus_gets_the_answers_nats_server_gives(t: &Target) -> anyhow::Result<()> {
    let server = t.shared()?;
    let port = server.port();
    let result = block_on(async move {
        let mut bystander = RawClient::connect_with(port, QUIET).await?;
        bystander.send("SUB corpus.bystander 1\r\n").await?;
        bystander.ping_until_pong().await?;
        let mut wrong = Vec::new();
        for (file, expected) in expectations()? {
            let bytes = std::fs::read(format!("{CORPUS}/{file}")).with_context(|| file.clone())?;
            let got = replay(port, &bytes)
                .await
                .with_context(|| format!("replaying {file}"))?;
            if got != expected {
                wrong.push(format!("{file}: expected {expected:?}, got {got:?}"));
            }
        }
        let mut publisher = RawClient::connect_with(port, QUIET).await?;
        publisher.send("PUB corpus.bystander 2\r\nok\r\n").await?;
        publisher.ping_until_pong().await?;
        let got = bystander
            .expect()
            .await
            .context("the bystander's message")?;
        if got != ServerOp::msg("corpus.bystander", "1", b"ok") {
            wrong.push(format!("the bystander got {got:?} instead of its message"));
        }
        bystander.expect_still_open().await?;
        if !wrong.is_empty() {
            bail!("{} answers differ:\n{}", wrong.len(), wrong.join("\n"));
        }
        Ok(())
    });
    with_log(server, result)
}
