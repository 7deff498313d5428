//! Rate-limited logging for lines one bad producer can repeat thousands of times a second (a
//! flood of poison or parked messages): at most one line per interval, and that line says how
//! many were left out since the last one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The interval most limiters use: one line per kind of trouble every ten seconds.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Lets one log line through per interval and counts the ones it holds back.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(LOG_INTERVAL)
    }
}

impl LogLimiter {
    /// A limiter letting one line through every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)` when this line should be logged, `n` being how many were held back since the
    /// last one logged; `None` when it should be left out.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due = state
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            state.last = Some(now);
            Some(std::mem::take(&mut state.suppressed))
        } else {
            state.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_next_counts_the_ones_left_out() {
        let limiter = LogLimiter::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limiter.allow_at(start), Some(0));
        for i in 1..=99 {
            assert_eq!(
                limiter.allow_at(start + Duration::from_millis(i * 10)),
                None
            );
        }
        assert_eq!(limiter.allow_at(start + Duration::from_secs(10)), Some(99));
        assert_eq!(limiter.allow_at(start + Duration::from_secs(11)), None);
        assert_eq!(limiter.allow_at(start + Duration::from_secs(20)), Some(1));
    }
}
