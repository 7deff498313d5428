//! Deciding when to PING a client and when to give up on it as stale.
//!
//! Two modes. nats-server's: a PING every `ping_interval`, and the client is stale when
//! `ping_max` PINGs are outstanding at the next tick. NATS Streaming's (`-hbt` sets
//! `ping_timeout`): each PING must be answered within `ping_timeout`, and `ping_max` misses in a
//! row make the client stale. In both, a client that spoke since the last tick is not pinged.

use std::time::Duration;

use tokio::time::Instant;

/// What the connection should do now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Action {
    Nothing,
    SendPing,
    Stale,
}

pub(super) struct Liveness {
    max: u32,
    timeout: Option<Duration>,
    /// PINGs outstanding (nats-server mode) or missed in a row (timeout mode).
    count: u32,
    pong_due: Option<Instant>,
    active: bool,
}

impl Liveness {
    pub fn new(max: u32, timeout: Option<Duration>) -> Liveness {
        Liveness {
            max,
            timeout,
            count: 0,
            pong_due: None,
            active: false,
        }
    }

    /// The client sent something.
    pub fn on_activity(&mut self) {
        self.active = true;
    }

    /// The client answered a PING.
    pub fn on_pong(&mut self) {
        self.count = 0;
        self.pong_due = None;
    }

    /// When an unanswered PING counts as missed, in timeout mode.
    pub fn pong_due(&self) -> Option<Instant> {
        self.pong_due
    }

    /// The ping interval elapsed.
    pub fn on_tick(&mut self, now: Instant) -> Action {
        if std::mem::take(&mut self.active) && self.count == 0 {
            return Action::Nothing;
        }
        match self.timeout {
            None if self.count >= self.max => Action::Stale,
            None => {
                self.count += 1;
                Action::SendPing
            }
            Some(_) if self.pong_due.is_some() => Action::Nothing,
            Some(timeout) => {
                self.pong_due = Some(now + timeout);
                Action::SendPing
            }
        }
    }

    /// `pong_due` passed without a PONG.
    pub fn on_pong_overdue(&mut self) -> Action {
        self.pong_due = None;
        self.count += 1;
        if self.count >= self.max {
            Action::Stale
        } else {
            Action::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_client_is_stale_after_ping_max_outstanding_pings() {
        let mut l = Liveness::new(2, None);
        let now = Instant::now();
        assert_eq!(l.on_tick(now), Action::SendPing);
        assert_eq!(l.on_tick(now), Action::SendPing);
        assert_eq!(l.on_tick(now), Action::Stale);
    }

    #[test]
    fn a_pong_clears_outstanding_pings() {
        let mut l = Liveness::new(2, None);
        let now = Instant::now();
        l.on_tick(now);
        l.on_tick(now);
        l.on_pong();
        assert_eq!(l.on_tick(now), Action::SendPing);
    }

    #[test]
    fn a_client_that_spoke_is_not_pinged() {
        let mut l = Liveness::new(1, None);
        l.on_activity();
        assert_eq!(l.on_tick(Instant::now()), Action::Nothing);
        assert_eq!(l.on_tick(Instant::now()), Action::SendPing);
    }

    #[test]
    fn with_a_timeout_missed_pongs_in_a_row_make_the_client_stale() {
        let mut l = Liveness::new(2, Some(Duration::from_secs(5)));
        let now = Instant::now();
        assert_eq!(l.on_tick(now), Action::SendPing);
        assert_eq!(l.pong_due(), Some(now + Duration::from_secs(5)));
        assert_eq!(l.on_tick(now), Action::Nothing, "one PING at a time");
        assert_eq!(l.on_pong_overdue(), Action::Nothing);
        assert_eq!(l.on_tick(now), Action::SendPing);
        assert_eq!(l.on_pong_overdue(), Action::Stale);
    }

    #[test]
    fn with_a_timeout_an_answer_resets_the_misses() {
        let mut l = Liveness::new(2, Some(Duration::from_secs(1)));
        let now = Instant::now();
        l.on_tick(now);
        assert_eq!(l.on_pong_overdue(), Action::Nothing);
        l.on_tick(now);
        l.on_pong();
        assert_eq!(l.pong_due(), None);
        l.on_tick(now);
        assert_eq!(l.on_pong_overdue(), Action::Nothing);
    }
}
