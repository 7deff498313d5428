//! Decision notes: every `TransactionCreated` delivery the listener handles publishes one note
//! on `observe.decisions.account-service`, naming the replica and saying what was decided.

use std::time::Duration;

use common_events::observe::{DecisionKind, DecisionNote, DECISIONS_ALL};
use common_events::AccountId;
use futures_util::StreamExt;
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{spawn_app_with, Tx, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(each_delivery_publishes_a_decision_note_naming_the_replica),
    scenario!(decision_notes_can_be_switched_off),
];

const REPLICA: &str = "replica-under-test";

/// Notes as they arrive on `observe.decisions.>`.
struct Notes(async_nats::Subscriber);

impl Notes {
    async fn subscribe(nats_url: &str) -> anyhow::Result<(async_nats::Client, Self)> {
        let client = async_nats::connect(nats_url).await?;
        let subscriber = client.subscribe(DECISIONS_ALL).await?;
        client.flush().await?;
        Ok((client, Self(subscriber)))
    }

    /// The next note that `wanted` accepts (others are skipped: redeliveries of a gap, say).
    async fn next(
        &mut self,
        what: &str,
        wanted: impl Fn(&DecisionNote) -> bool,
    ) -> anyhow::Result<DecisionNote> {
        let deadline = tokio::time::Instant::now() + BOUND;
        let mut seen = Vec::new();
        loop {
            let message = tokio::time::timeout_at(deadline, self.0.next()).await;
            let Ok(Some(message)) = message else {
                anyhow::bail!("no note for {what} within {BOUND:?}; saw {seen:#?}");
            };
            assert_eq!(
                message.subject.as_str(),
                "observe.decisions.account-service"
            );
            let note: DecisionNote = serde_json::from_slice(&message.payload)?;
            if wanted(&note) {
                return Ok(note);
            }
            seen.push(note);
        }
    }
}

fn about(tx: &Tx, decision: DecisionKind) -> impl Fn(&DecisionNote) -> bool {
    let id = tx.id;
    move |note| note.transaction_id == Some(id) && note.decision == decision
}

/// The fields every note about `tx` carries.
fn check(note: &DecisionNote, tx: &Tx, last: u64) {
    assert_eq!(note.service, "account-service");
    assert_eq!(note.replica, REPLICA);
    assert_eq!(note.subject, "transactions.created");
    assert!(note.stream_sequence > 0, "{note:?}");
    assert!(note.delivered >= 1, "{note:?}");
    assert_eq!(note.account_id, Some(tx.account));
    assert_eq!(note.number, Some(tx.number));
    assert_eq!(note.last_transaction_number, Some(last), "{note:?}");
    let age = chrono::Utc::now().timestamp_millis() - note.at_ms;
    assert!((0..60_000).contains(&age), "at_ms is {age} ms ago");
}

async fn each_delivery_publishes_a_decision_note_naming_the_replica(
    t: Target,
) -> anyhow::Result<()> {
    let flag = format!("--replica-id={REPLICA}");
    let app = spawn_app_with(&t, &[&flag]).await?;
    let (_client, mut notes) = Notes::subscribe(&app.broker.url()).await?;
    let account = app.open("a").await?;

    // Next: applied.
    let first = Tx::deposit(account, 1, 100);
    app.created(&first).await?;
    let applied = notes
        .next("the first deposit", about(&first, DecisionKind::Applied))
        .await?;
    check(&applied, &first, 0);
    assert_eq!((applied.delivered, applied.detail.as_deref()), (1, None));

    // The same transaction again: a duplicate, with the account at 1.
    app.created(&first).await?;
    let duplicate = notes
        .next("the duplicate", about(&first, DecisionKind::Duplicate))
        .await?;
    check(&duplicate, &first, 1);
    assert!(duplicate.stream_sequence > applied.stream_sequence);

    // 3 before 2: a gap expecting 2; then 2 (refused: too large) and 3 applied after it.
    let third = Tx::deposit(account, 3, 30);
    app.created(&third).await?;
    let gap = notes
        .next("the gap", about(&third, DecisionKind::Gap))
        .await?;
    check(&gap, &third, 1);
    assert_eq!(gap.detail.as_deref(), Some("expected 2"));
    let second = Tx::withdrawal(account, 2, 500);
    app.created(&second).await?;
    let rejected = notes
        .next(
            "the refused withdrawal",
            about(&second, DecisionKind::Rejected),
        )
        .await?;
    check(&rejected, &second, 1);
    let reason = rejected.detail.clone().unwrap_or_default();
    assert!(reason.contains("insufficient funds"), "{reason}");
    let late = notes
        .next("the third, in turn", about(&third, DecisionKind::Applied))
        .await?;
    check(&late, &third, 2);
    assert!(late.delivered >= 2, "applied at a redelivery: {late:?}");
    assert_eq!(late.stream_sequence, gap.stream_sequence);

    // An account nobody opened.
    let stranger = Tx::deposit(AccountId::new(), 1, 5);
    app.created(&stranger).await?;
    let unknown = notes
        .next(
            "the unknown account",
            about(&stranger, DecisionKind::UnknownAccount),
        )
        .await?;
    assert_eq!(unknown.account_id, Some(stranger.account));
    assert_eq!(unknown.last_transaction_number, None);
    // A payload that does not decode: poison, with only the delivery known.
    let ack = app
        .js
        .publish("transactions.created", "not an event".into())
        .await?;
    let sequence = ack.await?.sequence;
    let undecodable = notes
        .next("the undecodable payload", |n| n.stream_sequence == sequence)
        .await?;
    assert_eq!(undecodable.decision, DecisionKind::Poison);
    assert_eq!((undecodable.account_id, undecodable.number), (None, None));
    assert!(undecodable.detail.is_some());
    assert_eq!(undecodable.replica, REPLICA);

    let (_, metrics) = app.get("/metrics").await?;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("decision_notes_total{result=\"sent\"}"),
        "{metrics}"
    );
    Ok(())
}

async fn decision_notes_can_be_switched_off(t: Target) -> anyhow::Result<()> {
    let app = spawn_app_with(&t, &["--decision-notes=false"]).await?;
    let (client, mut notes) = Notes::subscribe(&app.broker.url()).await?;
    let account = app.open("a").await?;
    app.created(&Tx::deposit(account, 1, 10)).await?;
    until_eq("the deposit applied", BOUND, (10, 1), || {
        app.balance(account)
    })
    .await?;
    client.flush().await?;
    let quiet = tokio::time::timeout(Duration::from_millis(500), notes.0.next()).await;
    assert!(quiet.is_err(), "a note arrived: {quiet:?}");
    Ok(())
}
