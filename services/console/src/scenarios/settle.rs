//! Settling: waiting, bounded, until the account service has consumed every number and handled
//! every delivery, so that nothing changes the balance after the verdict.

use std::time::Duration;

use async_nats::jetstream;
use common_events::AccountId;

use super::account::read_account;
use super::env::POLL;
use super::notes::NoteCollector;
use super::{Plan, ScenarioEnv, ScenarioError};

/// How long an account that reached its last number must stay unchanged to count as settled
/// when nothing else confirms it.
pub(super) const QUIET: Duration = Duration::from_secs(2);

/// What the account service ended with, and what shows it is done (`None`: it did not settle).
pub(super) struct Settled {
    pub(super) balance: i64,
    pub(super) last: u64,
    pub(super) evidence: Option<&'static str>,
}

/// What [`settle`] waits for.
pub(super) struct Settle<'a> {
    pub(super) plan: &'a Plan,
    /// The stream sequence of the last publish.
    pub(super) last_sequence: u64,
    /// For a stalled handler: it must have noted its decision, or this instant passed (without
    /// notes).
    pub(super) faulted: Option<tokio::time::Instant>,
    /// When to give up.
    pub(super) deadline: tokio::time::Instant,
}

/// Polls the account until it reached the plan's last number and every delivery is known to be
/// handled, so a late duplicate cannot change it after the verdict: the service's decision notes
/// say so (one final decision per delivery); or, when the service publishes none, its
/// consumer's ack floor passed the last publish (a message handed back and not redelivered yet
/// can look acknowledged, so notes come first); or, when neither says so, the account did not
/// change for [`QUIET`]. A stalled handler (slow, frozen, holding) must also have woken and
/// decided: its note (which names its fault) says so, or, without notes, the stall and
/// [`QUIET`] have passed. Gives up at the deadline.
pub(super) async fn settle(
    env: &ScenarioEnv,
    stream: &jetstream::stream::Stream,
    notes: &NoteCollector,
    account: AccountId,
    wait: &Settle<'_>,
) -> Result<Settled, ScenarioError> {
    let durable = super::ACCOUNT_CONSUMER;
    let mut since: Option<((i64, u64), tokio::time::Instant)> = None;
    loop {
        let (balance, last) = read_account(env, account).await?.unwrap_or((0, 0));
        let now = tokio::time::Instant::now();
        let woke = wait
            .faulted
            .is_none_or(|fallback| notes.faulted() > 0 || now >= fallback);
        if last >= wait.plan.last_number() && woke {
            let stable = match since {
                Some((seen, at)) if seen == (balance, last) => now.duration_since(at),
                _ => {
                    since = Some(((balance, last), now));
                    Duration::ZERO
                }
            };
            let evidence = evidence(notes, stream, durable, wait, stable).await;
            if let Some(evidence) = evidence {
                return Ok(Settled {
                    balance,
                    last,
                    evidence: Some(evidence),
                });
            }
        }
        if now >= wait.deadline {
            return Ok(Settled {
                balance,
                last,
                evidence: None,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What shows the account service handled every delivery, if anything does yet: its decision
/// notes, its consumer's ack floor, or `stable` reaching [`QUIET`].
async fn evidence(
    notes: &NoteCollector,
    stream: &jetstream::stream::Stream,
    durable: &str,
    wait: &Settle<'_>,
    stable: Duration,
) -> Option<&'static str> {
    let acked = || async {
        stream.consumer_info(durable).await.is_ok_and(|info| {
            info.ack_floor.stream_sequence >= wait.last_sequence
                || (info.num_ack_pending == 0
                    && info.num_pending == 0
                    && info.delivered.stream_sequence >= wait.last_sequence)
        })
    };
    if notes.final_decisions() >= wait.plan.service_decisions() {
        Some("the service's decision notes account for every delivery")
    } else if !notes.any() && acked().await {
        Some("its consumer acknowledged every delivery")
    } else if stable >= QUIET {
        Some("no change for 2 s (neither decision notes nor the ack floor confirm it)")
    } else {
        None
    }
}
