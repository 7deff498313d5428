//! The faults armed on one replica: validating and arming them, listing, clearing, and taking
//! the one a delivery fires (once); they expire after [`FAULT_TTL`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common_events::AccountId;
use serde::{Deserialize, Serialize};
use service_kit::Outcome;

use crate::error::ApiError;

/// The most faults armed at once on one replica.
pub const MAX_FAULTS: usize = 64;

/// How long an armed fault waits for its delivery before it is dropped.
pub const FAULT_TTL: Duration = Duration::from_secs(300);

/// The longest `delay_ms` a slow or frozen handler may be given.
pub const MAX_DELAY_MS: u64 = 300_000;

/// The highest `on_delivery`.
pub const MAX_ON_DELIVERY: i64 = 1000;

/// What a fault does to the handler of the delivery it fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Sleeps `delay_ms`, progress acks going on.
    Slow,
    /// Aborts the process before committing.
    Crash,
    /// Stops its progress acks and sleeps `delay_ms`.
    Freeze,
    /// Commits, then fails before acknowledging: the message is handed back (`-NAK`) instead.
    FailBeforeAck,
}

impl FaultKind {
    /// `slow`, `crash`, `freeze` or `fail_before_ack`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Slow => "slow",
            FaultKind::Crash => "crash",
            FaultKind::Freeze => "freeze",
            FaultKind::FailBeforeAck => "fail_before_ack",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            FaultKind::Slow,
            FaultKind::Crash,
            FaultKind::Freeze,
            FaultKind::FailBeforeAck,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }

    /// Whether it sleeps `delay_ms` (slow, freeze); the others take none.
    fn stalls(self) -> bool {
        matches!(self, FaultKind::Slow | FaultKind::Freeze)
    }
}

/// A fault the listener is to play now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injected {
    /// What it does.
    pub kind: FaultKind,
    /// How long a slow or frozen handler sleeps.
    pub delay: Duration,
}

impl Injected {
    /// For decision notes and logs: `slow 12000 ms`, `freeze 12000 ms`, `crash`,
    /// `fail_before_ack`.
    pub fn describe(&self) -> String {
        match self.kind {
            kind if kind.stalls() => format!("{} {} ms", kind.as_str(), self.delay.as_millis()),
            kind => kind.as_str().to_owned(),
        }
    }

    /// The outcome a handler that played this fault gives the runner, instead of `outcome`:
    /// after a `fail_before_ack` an acknowledgement becomes a hand-back (`-NAK`, redelivered at
    /// once), as if the handler failed between its commit and its ack; other faults change
    /// nothing.
    pub fn after_commit(&self, outcome: Outcome) -> Outcome {
        match (self.kind, outcome) {
            (FaultKind::FailBeforeAck, Outcome::Ack) => Outcome::Retry(Duration::ZERO),
            (_, outcome) => outcome,
        }
    }
}

/// An armed fault, as `/faults` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// Its number on this replica.
    pub id: u64,
    /// The account whose deliveries it waits for.
    pub account_id: AccountId,
    /// What it does.
    pub fault: FaultKind,
    /// How long a slow or frozen handler sleeps (0 for the others).
    pub delay_ms: u64,
    /// The delivery count it fires on.
    pub on_delivery: i64,
    /// How long until it expires.
    pub expires_in_ms: u64,
}

/// `id` (trimmed) as an account id, or why it is not one.
pub(super) fn parse_account_id(id: &str) -> Result<AccountId, String> {
    id.trim()
        .parse()
        .map_err(|_| format!("account_id must be an account id (a UUID), not {id:?}"))
}

#[derive(Clone, Debug)]
struct Armed {
    id: u64,
    account_id: AccountId,
    kind: FaultKind,
    delay_ms: u64,
    on_delivery: i64,
    expires_at: Instant,
}

impl Armed {
    /// The fault `request` asks for, armed at `now` (its id is set when it is registered).
    fn validate(request: &ArmRequest, now: Instant) -> Result<Self, ArmError> {
        let account_id = parse_account_id(&request.account_id).map_err(ArmError::Invalid)?;
        let kind = FaultKind::parse(request.fault.trim()).ok_or_else(|| {
            ArmError::Invalid(format!(
                "fault must be \"slow\", \"crash\", \"freeze\" or \"fail_before_ack\", not {:?}",
                request.fault
            ))
        })?;
        let delay_ms = match (kind, request.delay_ms) {
            (kind, None | Some(0)) if !kind.stalls() => 0,
            (kind, Some(_)) if !kind.stalls() => {
                return Err(ArmError::Invalid(format!(
                    "delay_ms is for slow and freeze faults; a {} fault has none",
                    kind.as_str()
                )))
            }
            (_, Some(delay)) if (1..=MAX_DELAY_MS).contains(&delay) => delay,
            _ => {
                return Err(ArmError::Invalid(format!(
                    "a {} fault needs delay_ms between 1 and {MAX_DELAY_MS}",
                    kind.as_str()
                )))
            }
        };
        let on_delivery = request.on_delivery.unwrap_or(1);
        if !(1..=MAX_ON_DELIVERY).contains(&on_delivery) {
            return Err(ArmError::Invalid(format!(
                "on_delivery must be between 1 (the first delivery) and {MAX_ON_DELIVERY}"
            )));
        }
        Ok(Self {
            id: 0,
            account_id,
            kind,
            delay_ms,
            on_delivery,
            expires_at: now + FAULT_TTL,
        })
    }

    fn view(&self, now: Instant) -> Fault {
        Fault {
            id: self.id,
            account_id: self.account_id,
            fault: self.kind,
            delay_ms: self.delay_ms,
            on_delivery: self.on_delivery,
            expires_in_ms: u64::try_from(
                self.expires_at.saturating_duration_since(now).as_millis(),
            )
            .unwrap_or(u64::MAX),
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    armed: Vec<Armed>,
}

impl Registry {
    fn prune(&mut self, now: Instant) {
        self.armed.retain(|fault| fault.expires_at > now);
    }
}

/// The body of `POST /faults`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmRequest {
    /// The account (a UUID).
    pub account_id: String,
    /// `slow`, `crash`, `freeze` or `fail_before_ack`.
    pub fault: String,
    /// How long a slow or frozen handler sleeps: 1 to [`MAX_DELAY_MS`]; not for the others.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// The delivery count to fire on: 1 (the default) to [`MAX_ON_DELIVERY`].
    #[serde(default)]
    pub on_delivery: Option<i64>,
}

/// Why a fault was not armed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArmError {
    /// A value is wrong (422).
    #[error("{0}")]
    Invalid(String),
    /// [`MAX_FAULTS`] are armed already (409).
    #[error(
        "{MAX_FAULTS} faults are armed already (the limit): clear them with DELETE /faults or \
         wait for them to expire ({} s after arming)",
        FAULT_TTL.as_secs()
    )]
    Full,
}

impl From<ArmError> for ApiError {
    fn from(err: ArmError) -> Self {
        match err {
            ArmError::Invalid(message) => ApiError::Invalid(message),
            ArmError::Full => crate::error::too_many_faults(err.to_string()),
        }
    }
}

/// The faults armed on this replica; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<Mutex<Registry>>);

impl Faults {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Validates `request` and arms it.
    pub fn arm(&self, request: ArmRequest) -> Result<Fault, ArmError> {
        self.arm_at(request, Instant::now())
    }

    fn arm_at(&self, request: ArmRequest, now: Instant) -> Result<Fault, ArmError> {
        let mut armed = Armed::validate(&request, now)?;
        let mut registry = self.registry();
        registry.prune(now);
        if registry.armed.len() >= MAX_FAULTS {
            return Err(ArmError::Full);
        }
        registry.next_id += 1;
        armed.id = registry.next_id;
        let view = armed.view(now);
        registry.armed.push(armed);
        Ok(view)
    }

    /// The faults armed now.
    pub fn list(&self) -> Vec<Fault> {
        let now = Instant::now();
        let mut registry = self.registry();
        registry.prune(now);
        registry.armed.iter().map(|fault| fault.view(now)).collect()
    }

    /// Drops the faults of `account` (every fault when `None`); how many there were.
    pub fn clear(&self, account: Option<AccountId>) -> usize {
        let mut registry = self.registry();
        let before = registry.armed.len();
        registry
            .armed
            .retain(|fault| account.is_some_and(|account| fault.account_id != account));
        before - registry.armed.len()
    }

    /// The fault armed for this delivery of `account`'s message, removed (it fires once).
    pub fn take(&self, account: AccountId, delivered: i64) -> Option<Injected> {
        self.take_at(account, delivered, Instant::now())
    }

    fn take_at(&self, account: AccountId, delivered: i64, now: Instant) -> Option<Injected> {
        let mut registry = self.registry();
        registry.prune(now);
        let index = registry
            .armed
            .iter()
            .position(|fault| fault.account_id == account && fault.on_delivery == delivered)?;
        let armed = registry.armed.remove(index);
        Some(Injected {
            kind: armed.kind,
            delay: Duration::from_millis(armed.delay_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(account: &str, fault: &str, delay_ms: Option<u64>) -> ArmRequest {
        ArmRequest {
            account_id: account.to_owned(),
            fault: fault.to_owned(),
            delay_ms,
            on_delivery: None,
        }
    }

    fn account() -> AccountId {
        AccountId::new()
    }

    #[test]
    fn a_fault_fires_once_on_its_delivery_of_its_account_only() {
        let faults = Faults::default();
        let (mine, other) = (account(), account());
        faults
            .arm(request(&mine.to_string(), "freeze", Some(12_000)))
            .unwrap();
        assert_eq!(faults.take(other, 1), None, "another account");
        assert_eq!(faults.take(mine, 2), None, "a redelivery passes");
        let fired = faults.take(mine, 1).unwrap();
        assert_eq!(fired.kind, FaultKind::Freeze);
        assert_eq!(fired.describe(), "freeze 12000 ms");
        assert_eq!(faults.take(mine, 1), None, "it fired once");
        assert!(faults.list().is_empty());
    }

    #[test]
    fn fail_before_ack_turns_the_ack_after_the_commit_into_a_hand_back() {
        let faults = Faults::default();
        let mine = account();
        faults
            .arm(request(&mine.to_string(), "fail_before_ack", None))
            .unwrap();
        let fired = faults.take(mine, 1).unwrap();
        assert_eq!(
            (fired.kind, fired.delay, fired.describe()),
            (
                FaultKind::FailBeforeAck,
                Duration::ZERO,
                "fail_before_ack".to_owned()
            )
        );
        assert_eq!(
            fired.after_commit(Outcome::Ack),
            Outcome::Retry(Duration::ZERO)
        );
        let race = Outcome::Retry(Duration::from_millis(5));
        assert_eq!(
            fired.after_commit(race.clone()),
            race,
            "only an ack is lost"
        );
        let slow = Injected {
            kind: FaultKind::Slow,
            delay: Duration::from_millis(10),
        };
        assert_eq!(slow.after_commit(Outcome::Ack), Outcome::Ack);
    }

    #[test]
    fn faults_expire_after_the_ttl() {
        let faults = Faults::default();
        let mine = account();
        let start = Instant::now();
        let mut crash = request(&mine.to_string(), "crash", None);
        crash.on_delivery = Some(3);
        faults.arm_at(crash, start).unwrap();
        let later = start + FAULT_TTL + Duration::from_millis(1);
        assert_eq!(faults.take_at(mine, 3, later), None);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn at_most_max_faults_are_armed_and_clearing_makes_room() {
        let faults = Faults::default();
        let first = account();
        for _ in 0..MAX_FAULTS {
            faults
                .arm(request(&first.to_string(), "slow", Some(10)))
                .unwrap();
        }
        let other = account();
        let full = faults.arm(request(&other.to_string(), "crash", None));
        assert_eq!(full, Err(ArmError::Full));
        assert!(ArmError::Full
            .to_string()
            .starts_with("64 faults are armed already"));
        assert_eq!(faults.clear(Some(other)), 0);
        assert_eq!(faults.clear(Some(first)), MAX_FAULTS);
        faults
            .arm(request(&other.to_string(), "crash", None))
            .unwrap();
        assert_eq!(faults.clear(None), 1);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let faults = Faults::default();
        let id = account().to_string();
        for (bad, reason) in [
            (request("nope", "slow", Some(1)), "account_id must be"),
            (request(&id, "explode", None), "fault must be"),
            (
                request(&id, "slow", None),
                "needs delay_ms between 1 and 300000",
            ),
            (request(&id, "freeze", Some(0)), "needs delay_ms"),
            (
                request(&id, "slow", Some(MAX_DELAY_MS + 1)),
                "needs delay_ms",
            ),
            (request(&id, "crash", Some(5)), "a crash fault has none"),
            (
                request(&id, "fail_before_ack", Some(5)),
                "a fail_before_ack fault has none",
            ),
            (
                ArmRequest {
                    on_delivery: Some(0),
                    ..request(&id, "crash", None)
                },
                "on_delivery must be between 1",
            ),
        ] {
            match faults.arm(bad.clone()) {
                Err(ArmError::Invalid(message)) => {
                    assert!(message.contains(reason), "{bad:?}: {message}")
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(faults.list().is_empty());
    }
}
