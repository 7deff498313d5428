//! Server PINGs: a client that never answers is closed as stale; one that answers stays.

use anyhow::bail;

use crate::raw::{RawClient, ServerOp};
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![client_that_never_answers_pings_is_closed_as_stale_while_one_that_answers_stays]
}

/// PINGs every 200 ms, and two unanswered PINGs make a connection stale.
const FAST_PINGS: &str = "ping_interval: \"200ms\"\nping_max: 2\n";

fn client_that_never_answers_pings_is_closed_as_stale_while_one_that_answers_stays(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config(FAST_PINGS, &[])?;
    block_on(async move {
        let mut mute = RawClient::quiet(server.port()).await?;
        mute.answer_pings = false;
        let mut alive = RawClient::quiet(server.port()).await?;
        alive.answer_pings = false;
        let answering = async {
            let mut answered = 0;
            loop {
                match alive.expect().await {
                    Ok(ServerOp::Ping) => {
                        alive.send("PONG\r\n").await?;
                        answered += 1;
                    }
                    Ok(other) => bail!("the answering client got {other:?}"),
                    Err(err) => return Err(err.context(format!("after {answered} PINGs"))),
                }
            }
        };
        let ops = tokio::select! {
            ops = mute.until_closed() => ops?,
            failed = answering => return failed.map_err(|e| e.context("the answering client")),
        };
        let expected = [
            ServerOp::Ping,
            ServerOp::Ping,
            ServerOp::err("Stale Connection"),
        ];
        if ops != expected {
            bail!("the mute client: expected {expected:?} then close, got {ops:?}");
        }
        alive.answer_pings = true;
        alive.expect_still_open().await
    })
}
