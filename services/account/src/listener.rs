//! The `TransactionCreated` listener of queue group `account-service`, shared by every replica
//! (see `docs/ordering.md`): duplicate → ack; next → apply (or reject) with the outbox row in
//! one database transaction, then ack; gap → held in-process while its predecessor commits
//! (see [`GAP_HOLD`]), then NAK with a short growing delay, and parked (see [`crate::parked`])
//! once it stayed open too long or too many gaps are open; a number already
//! consumed by another transaction → conflict; poison (undecodable, invalid, or for an account
//! the service does not have) → `+TERM` and a dead-letter row. Each delivery handled also
//! publishes a decision note (see [`common_events::observe`]) unless notes are switched off.
//! With fault injection on (see [`crate::faults`]), an armed fault is played between the
//! decision and the commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common_events::observe::{DecisionKind, DecisionNotes};
use common_events::topology::DEFAULT_CONCURRENCY;
use common_events::{AccountId, AccountOpened, Envelope, TransactionCreated};
use service_kit::batch::{Batcher, OnFailure};
use service_kit::log_limit::LogLimiter;
use service_kit::sequence::wait_before_retry;
use service_kit::{Listener, MessageContext, Outcome, UndecodableMessage};

use crate::conflict::Conflict;
use crate::faults::{FaultKind, Faults, Injected};
use crate::ordering::{decide, AccountState, Decision, GapPolicy, OpenGaps, Verdict};
use crate::parked::Parked;
use crate::store::{Publish, Record, Store};

/// How long a message waits before a retry after a database error.
const RETRY_AFTER_ERROR: Duration = Duration::from_millis(500);
/// How long a message waits when another replica changed the account first.
const RETRY_AFTER_RACE: Duration = Duration::from_millis(5);
/// How long a handler holds a gap in-process, waiting for its predecessor (committed by a
/// sibling handler or another replica), before handing it back with a NAK. The broker delivers
/// an account's transactions in number order, so a predecessor is nearly always in flight when
/// its successor arrives, and commits within a batch or a few: holding costs one handler slot
/// for that long, where a NAK would cost a redelivery delay, and under load a chain of them.
const GAP_HOLD: Duration = Duration::from_secs(1);
/// How often a held gap re-reads the account (another replica's commit sends no notification;
/// this process's commits wake it at once).
const GAP_POLL: Duration = Duration::from_millis(10);

/// The most records written in one database transaction.
const RECORD_BATCH: usize = 64;

/// Records decided transactions in batches; each answer is whether the record changed the
/// account (false: another replica got there first).
type Recorder = Batcher<Record, bool>;

fn recorder(store: Store) -> Recorder {
    // Recording is safe to repeat (a record whose number was taken changes nothing), so one
    // record the database refuses must not fail the others.
    Batcher::spawn(
        "record",
        RECORD_BATCH,
        OnFailure::RetryEachAlone,
        move |records: Vec<Record>| {
            let store = store.clone();
            async move { store.record_batch(&records).await }
        },
    )
}

/// Parks gap messages in batches; each answer is whether it was new.
type Parker = Batcher<Parked, bool>;

fn parker(store: Store) -> Parker {
    // Parking is safe to repeat (a row parked before is not parked twice).
    Batcher::spawn(
        "park",
        RECORD_BATCH,
        OnFailure::RetryEachAlone,
        move |items: Vec<Parked>| {
            let store = store.clone();
            async move { store.park_batch(&items).await }
        },
    )
}

/// Log lines a flood of bad messages could repeat: one per kind every few seconds.
#[derive(Default)]
struct Logs {
    poison: LogLimiter,
    parked: LogLimiter,
    conflict: LogLimiter,
}

/// Applies `TransactionCreated` events to the account projection.
pub struct TransactionsListener {
    store: Store,
    recorder: Recorder,
    parker: Parker,
    gaps: OpenGaps,
    logs: Logs,
    emit_events: bool,
    notes: Option<DecisionNotes>,
    faults: Option<Faults>,
    holds: Holds,
}

/// The handler slots gaps may hold at once (see [`GAP_HOLD`]): three quarters of the listener's
/// concurrency, so that the rest (at least one) is always free for the predecessors they wait
/// for (a redelivered one, say). A gap that finds no slot free is handed back at once.
struct Holds {
    held: Arc<AtomicUsize>,
    limit: usize,
}

/// A taken hold slot, given back on drop.
struct Hold(Arc<AtomicUsize>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Holds {
    fn new(concurrency: usize) -> Self {
        Self {
            held: Arc::default(),
            limit: concurrency.saturating_sub((concurrency / 4).max(1)),
        }
    }

    fn take(&self) -> Option<Hold> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.limit).then_some(held + 1)
            })
            .ok()
            .map(|_| Hold(Arc::clone(&self.held)))
    }
}

/// What one delivery came to: the outcome for the runner and the note for people.
struct Handled {
    outcome: Outcome,
    decision: DecisionKind,
    last_transaction_number: Option<u64>,
    detail: Option<String>,
    fault: Option<String>,
}

impl Handled {
    fn new(outcome: Outcome, decision: DecisionKind) -> Self {
        Self {
            outcome,
            decision,
            last_transaction_number: None,
            detail: None,
            fault: None,
        }
    }

    fn after(mut self, state: AccountState) -> Self {
        self.last_transaction_number = Some(state.last_transaction_number);
        self
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl TransactionsListener {
    /// The live listener: every applied or rejected transaction emits its event; every
    /// delivery handled publishes a decision note when `notes` is set.
    pub fn live(store: Store, notes: Option<DecisionNotes>) -> Self {
        Self {
            recorder: recorder(store.clone()),
            parker: parker(store.clone()),
            gaps: OpenGaps::default(),
            logs: Logs::default(),
            store,
            emit_events: true,
            notes,
            faults: None,
            holds: Holds::new(DEFAULT_CONCURRENCY),
        }
    }

    /// Sizes the gap holds for a listener running `concurrency` handlers at once (see [`Holds`]).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.holds = Holds::new(concurrency);
        self
    }

    /// Parks gaps by `policy` (the default is [`GapPolicy::default`]).
    pub fn with_gap_policy(mut self, policy: GapPolicy) -> Self {
        self.gaps = OpenGaps::new(policy);
        self
    }

    /// Plays the faults armed in `faults` (fault injection; `None` plays none).
    pub fn with_faults(mut self, faults: Option<Faults>) -> Self {
        self.faults = faults;
        self
    }

    /// The rebuild listener: the stream already holds the outcomes, so none are emitted (and
    /// no decision notes either).
    pub fn rebuild(store: Store) -> Self {
        Self {
            emit_events: false,
            ..Self::live(store, None)
        }
    }

    /// The account's state once `event` is not ahead of it, or as it is when a gap could not
    /// take a hold slot or held it for [`GAP_HOLD`]; `None` when the account does not exist.
    async fn state_in_turn(
        &self,
        event: &TransactionCreated,
    ) -> Result<Option<AccountState>, sqlx::Error> {
        let mut hold = None;
        let mut deadline = tokio::time::Instant::now();
        loop {
            let progressed = self.store.progress().notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            let Some(state) = self.store.state(event.account_id).await? else {
                return Ok(None);
            };
            let ahead = event.number.get() > state.last_transaction_number + 1;
            if !ahead {
                return Ok(Some(state));
            }
            if hold.is_none() {
                let Some(taken) = self.holds.take() else {
                    return Ok(Some(state));
                };
                hold = Some(taken);
                deadline += GAP_HOLD;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Some(state));
            }
            tokio::select! {
                _ = progressed => {}
                _ = tokio::time::sleep(GAP_POLL) => {}
            }
        }
    }

    async fn poison(&self, subject: &str, sequence: u64, payload: &[u8], reason: &str) -> Handled {
        if let Some(suppressed) = self.logs.poison.allow() {
            tracing::error!(%reason, suppressed, "invalid event; dead-lettering and terminating it");
        }
        let stored = self
            .store
            .dead_letter(subject, sequence, payload, reason)
            .await;
        match stored {
            Ok(()) => Handled::new(Outcome::Reject(reason.to_owned()), DecisionKind::Poison)
                .detail(reason),
            Err(err) => {
                tracing::warn!(error = %err, "cannot store the dead letter; retrying");
                Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                    .detail(format!("{reason}; storing the dead letter failed: {err}"))
            }
        }
    }

    async fn handle(
        &self,
        envelope: &Envelope<TransactionCreated>,
        ctx: &MessageContext,
    ) -> Handled {
        let event = &envelope.data;
        let state = match self.state_in_turn(event).await {
            Ok(Some(state)) => state,
            Ok(None) => return self.unknown_account(envelope, ctx).await,
            Err(err) => {
                tracing::warn!(error = %err, "reading the account failed; retrying");
                return Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                    .detail(format!("reading the account: {err}"));
            }
        };
        let verdict = match decide(state, event) {
            Decision::Duplicate => return self.seen_before(envelope, ctx, state).await,
            Decision::Gap { expected } => {
                // An account with parked transactions waits for the same missing number:
                // its other gaps join them at once.
                let parked_with_others = self.store.parking().has_parked(event.account_id);
                if self.gaps.should_park(ctx.stream_sequence, Instant::now()) || parked_with_others
                {
                    return self.park(event, ctx, state, expected).await;
                }
                tracing::debug!(expected, number = %event.number, "gap; handing it back");
                let retry = Outcome::Retry(wait_before_retry(ctx.delivered));
                return Handled::new(retry, DecisionKind::Gap)
                    .after(state)
                    .detail(format!("expected {expected}"));
            }
            Decision::Decided(verdict) => verdict,
        };
        let decided = match &verdict {
            Verdict::Applied { .. } => Handled::new(Outcome::Ack, DecisionKind::Applied),
            Verdict::Rejected { reason } => {
                Handled::new(Outcome::Ack, DecisionKind::Rejected).detail(reason)
            }
        };
        let fault = self.inject(event, ctx).await;
        let record = Record {
            event: event.clone(),
            verdict,
            state,
            publish: self.publish(ctx),
        };
        let mut handled = match self.recorder.submit(record).await.ok() {
            Some(true) => {
                self.gaps.closed(ctx.stream_sequence);
                if self.store.parking().has_parked(event.account_id) {
                    self.unpark_soon(event.account_id);
                }
                decided
            }
            Some(false) => Handled::new(Outcome::Retry(RETRY_AFTER_RACE), DecisionKind::Race)
                .detail("another replica changed the account first"),
            None => Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                .detail("recording the decision failed"),
        };
        if let Some(fault) = fault {
            handled.fault = Some(fault.describe());
            handled.outcome = fault.after_commit(handled.outcome);
        }
        handled.after(state)
    }

    /// An event for an account this service does not have: the account service opens every
    /// account itself, so no later delivery will find it either. Dead-lettered, not retried.
    async fn unknown_account(
        &self,
        envelope: &Envelope<TransactionCreated>,
        ctx: &MessageContext,
    ) -> Handled {
        let payload = serde_json::to_vec(envelope).unwrap_or_default();
        let reason = format!("unknown account {}", envelope.data.account_id);
        let mut handled = self
            .poison(&ctx.subject, ctx.stream_sequence, &payload, &reason)
            .await;
        if matches!(handled.outcome, Outcome::Reject(_)) {
            self.gaps.closed(ctx.stream_sequence);
            let stats = self.store.parking();
            stats.unknown_account.fetch_add(1, Ordering::Relaxed);
            handled.decision = DecisionKind::UnknownAccount;
        }
        handled
    }

    /// A number at or below the account's last: a duplicate when the ledger has this
    /// transaction under it, a conflict when it has another.
    async fn seen_before(
        &self,
        envelope: &Envelope<TransactionCreated>,
        ctx: &MessageContext,
        state: AccountState,
    ) -> Handled {
        let event = &envelope.data;
        self.gaps.closed(ctx.stream_sequence);
        let recorded = match self
            .store
            .recorded_transaction(event.account_id, event.number.get())
            .await
        {
            Ok(recorded) => recorded,
            Err(err) => {
                tracing::warn!(error = %err, "reading the ledger failed; retrying");
                return Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                    .detail(format!("reading the ledger: {err}"));
            }
        };
        let recorded = match recorded {
            Some(recorded) if recorded != event.transaction_id.to_string() => recorded,
            _ => return Handled::new(Outcome::Ack, DecisionKind::Duplicate).after(state),
        };
        let conflict = Conflict {
            event,
            recorded: &recorded,
            subject: &ctx.subject,
            stream_sequence: ctx.stream_sequence,
            publish: self.publish(ctx),
        };
        let reason = conflict.reason();
        match self.store.record_conflict(&conflict).await {
            Ok(_) => {
                if let Some(suppressed) = self.logs.conflict.allow() {
                    tracing::error!(%reason, transaction = %event.transaction_id, suppressed, "conflict: dead-lettered and rejected");
                }
                Handled::new(Outcome::Reject(reason.clone()), DecisionKind::Conflict)
                    .after(state)
                    .detail(reason)
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot store the conflict; retrying");
                Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                    .detail(format!("{reason}; storing it failed: {err}"))
            }
        }
    }

    /// Takes a gap off the broker into the parked table (see [`crate::parked`]).
    async fn park(
        &self,
        event: &TransactionCreated,
        ctx: &MessageContext,
        state: AccountState,
        expected: u64,
    ) -> Handled {
        let parked = Parked {
            event: event.clone(),
            publish: self.publish(ctx),
            subject: ctx.subject.clone(),
            stream_sequence: ctx.stream_sequence,
        };
        if self.parker.submit(parked).await.is_err() {
            return Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                .after(state)
                .detail("parking failed");
        }
        self.gaps.closed(ctx.stream_sequence);
        let policy = self.gaps.policy();
        if let Some(suppressed) = self.logs.parked.allow() {
            tracing::warn!(account = %event.account_id, number = %event.number, expected, open_gaps = self.gaps.open(), park_after = ?policy.park_after, suppressed, "a gap stayed open too long, or too many are open; parked it until its predecessor arrives");
        }
        // The predecessor may have been recorded while this was being parked.
        self.unpark_soon(event.account_id);
        let detail = format!("expected {expected}; parked until it arrives");
        Handled::new(Outcome::Reject(detail.clone()), DecisionKind::Parked)
            .after(state)
            .detail(detail)
    }

    /// Applies the account's parked transactions whose turn has come, in the background.
    /// Whether recording a verdict publishes its outcome event: in the live service, continuing
    /// the delivery's trace; not in a rebuild.
    fn publish(&self, ctx: &MessageContext) -> Publish {
        if self.emit_events {
            Publish::Outcome(ctx.trace)
        } else {
            Publish::Nothing
        }
    }

    fn unpark_soon(&self, account: AccountId) {
        let (store, emit) = (self.store.clone(), self.emit_events);
        tokio::spawn(async move {
            if let Err(err) = store.unpark(account, emit).await {
                tracing::warn!(%account, error = %err, "unparking failed; the sweep tries again");
            }
        });
    }

    /// Plays the fault armed for this delivery, if any (fault injection): between the decision
    /// and the commit, a slow handler sleeps (its progress acks go on), a frozen one stops its
    /// progress acks and sleeps, and a crash aborts the process; a `fail_before_ack` acts after
    /// the commit ([`Injected::after_commit`]).
    async fn inject(&self, event: &TransactionCreated, ctx: &MessageContext) -> Option<Injected> {
        let fault = self
            .faults
            .as_ref()?
            .take(event.account_id, ctx.delivered)?;
        let (account, number, delivered) = (event.account_id, event.number.get(), ctx.delivered);
        match fault.kind {
            FaultKind::Crash => {
                tracing::error!(%account, number, delivered, "fault injection: aborting the process before committing");
                std::process::abort();
            }
            FaultKind::Slow => {
                tracing::warn!(%account, number, delivered, delay_ms = fault.delay.as_millis() as u64, "fault injection: a slow handler (progress acks go on)");
            }
            FaultKind::Freeze => {
                ctx.progress.stop();
                tracing::warn!(%account, number, delivered, delay_ms = fault.delay.as_millis() as u64, "fault injection: a frozen handler (no progress acks)");
            }
            FaultKind::FailBeforeAck => {
                tracing::warn!(%account, number, delivered, "fault injection: failing after the commit, before the ack (handed back)");
            }
        }
        tokio::time::sleep(fault.delay).await;
        Some(fault)
    }

    /// Publishes the note of one delivery (subject, stream sequence, delivery count), when
    /// notes are on.
    fn note(
        &self,
        (subject, sequence, delivered): (&str, u64, i64),
        event: Option<&TransactionCreated>,
        handled: &Handled,
        progress_acks: Option<u64>,
    ) {
        let Some(notes) = &self.notes else { return };
        let mut note = notes.note(subject, sequence, delivered, handled.decision);
        if let Some(event) = event {
            note.account_id = Some(event.account_id);
            note.transaction_id = Some(event.transaction_id);
            note.number = Some(event.number.get());
        }
        note.last_transaction_number = handled.last_transaction_number;
        note.detail.clone_from(&handled.detail);
        note.fault.clone_from(&handled.fault);
        note.progress_acks = progress_acks;
        notes.publish(&note);
    }
}

impl Listener for TransactionsListener {
    type Event = TransactionCreated;

    fn name(&self) -> &'static str {
        "transactions-created"
    }

    async fn on_message(
        &self,
        envelope: Envelope<TransactionCreated>,
        ctx: MessageContext,
    ) -> Outcome {
        let handled = self.handle(&envelope, &ctx).await;
        ctx.decision.record(handled.decision.as_str());
        let delivery = (ctx.subject.as_str(), ctx.stream_sequence, ctx.delivered);
        let progress_acks = Some(ctx.progress.sent()).filter(|sent| *sent > 0);
        self.note(delivery, Some(&envelope.data), &handled, progress_acks);
        handled.outcome
    }

    async fn on_undecodable(&self, message: UndecodableMessage) {
        let stored = self
            .store
            .dead_letter(
                &message.subject,
                message.stream_sequence,
                &message.payload,
                &message.error,
            )
            .await;
        if let Err(err) = stored {
            tracing::error!(error = %err, "cannot store the dead letter of an undecodable message");
        }
        // The runner terminates it whatever happened to the dead letter.
        let handled = Handled::new(Outcome::Reject(message.error.clone()), DecisionKind::Poison)
            .detail(&message.error);
        let delivery = (
            message.subject.as_str(),
            message.stream_sequence,
            message.delivered,
        );
        self.note(delivery, None, &handled, None);
    }
}

/// Restores accounts from `AccountOpened` during a rebuild.
pub struct AccountsProjector(pub Store);

impl Listener for AccountsProjector {
    type Event = AccountOpened;

    fn name(&self) -> &'static str {
        "accounts-opened"
    }

    async fn on_message(&self, envelope: Envelope<AccountOpened>, _: MessageContext) -> Outcome {
        match self.0.restore(&envelope).await {
            Ok(()) => Outcome::Ack,
            Err(err) => {
                tracing::warn!(error = %err, "restoring the account failed; retrying");
                Outcome::Retry(RETRY_AFTER_ERROR)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_hold_at_most_three_quarters_of_the_handlers_and_give_slots_back() {
        let holds = Holds::new(32);
        let taken: Vec<Hold> = std::iter::from_fn(|| holds.take()).take(100).collect();
        assert_eq!(taken.len(), 24, "a quarter stays free for predecessors");
        drop(taken);
        assert_eq!(holds.held.load(Ordering::Acquire), 0);
        assert!(holds.take().is_some());
        let one = Holds::new(1);
        assert!(
            one.take().is_none(),
            "a lone handler never holds: it would wait on itself"
        );
        let two = Holds::new(2);
        let held: Vec<Hold> = std::iter::from_fn(|| two.take()).take(5).collect();
        assert_eq!(held.len(), 1);
    }
}
