//! Retrying a start-up step (connecting to the database or the broker) with exponential
//! backoff and jitter, until it succeeds, fails for good, or a deadline passes.
//!
//! Each failed attempt is logged at WARN with its number, the error and the delay before the
//! next one. Delays start at [`Backoff::INITIAL`] and double up to [`Backoff::MAX`]; each is
//! drawn between half and all of that nominal value ("equal jitter"), so replicas started
//! together do not knock on the broker in step.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Exponentially growing delays with jitter.
#[derive(Clone, Debug)]
pub struct Backoff {
    nominal: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Self::INITIAL, Self::MAX)
    }
}

impl Backoff {
    /// The first nominal delay.
    pub const INITIAL: Duration = Duration::from_millis(100);
    /// The largest nominal delay.
    pub const MAX: Duration = Duration::from_secs(5);

    /// Delays from `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            nominal: initial.min(max),
            max,
        }
    }

    /// The next delay: between half and all of the nominal delay, whole milliseconds. The
    /// nominal delay then doubles, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = u64::try_from(self.nominal.as_millis()).unwrap_or(u64::MAX);
        self.nominal = (self.nominal * 2).min(self.max);
        let half = nominal / 2;
        Duration::from_millis(half + fastrand::u64(0..=nominal - half))
    }
}

/// How an attempt failed.
#[derive(Debug)]
pub enum Failure<E> {
    /// Perhaps not next time (refused, timed out, not ready yet): try again.
    Transient(E),
    /// Never going to work as configured (a malformed URL, a bad password, a migration that
    /// does not match the database): stop now.
    Fatal(E),
}

/// Why [`retry`] stopped without a result.
#[derive(Debug)]
pub enum Stop<E> {
    /// An attempt failed for good.
    Fatal(E),
    /// The deadline passed; `last` is the last attempt's error, `None` when that attempt was
    /// still running at the deadline.
    Deadline {
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        last: Option<E>,
    },
}

/// How long one attempt may run before it counts as failed (a host that drops packets makes
/// connects hang for minutes otherwise).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The least time an attempt gets, even close to the deadline.
const LEAST_ATTEMPT_TIME: Duration = Duration::from_secs(1);

/// Runs `attempt` until it succeeds, fails fatally, or `deadline` passes (`None`: never). Waits
/// between attempts follow [`Backoff::default`], the last one shortened to end at the deadline,
/// so that one attempt is made right at the deadline. `what` names the step in the logs ("the
/// database at postgres://db/accounts").
///
/// Cancel it by dropping the future (every await point is a clean place to stop).
pub async fn retry<T, E, F, Fut>(
    what: &str,
    deadline: Option<Instant>,
    mut attempt: F,
) -> Result<T, Stop<E>>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    let mut backoff = Backoff::default();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let began = Instant::now();
        let bound = match deadline {
            Some(deadline) => {
                let least = Instant::now() + LEAST_ATTEMPT_TIME;
                (Instant::now() + ATTEMPT_TIMEOUT).min(deadline.max(least))
            }
            None => Instant::now() + ATTEMPT_TIMEOUT,
        };
        let error = match tokio::time::timeout_at(bound, attempt()).await {
            Ok(Ok(value)) => {
                if attempts > 1 {
                    tracing::info!(attempts, "{what}: connected");
                }
                return Ok(value);
            }
            Ok(Err(Failure::Fatal(error))) => return Err(Stop::Fatal(error)),
            Ok(Err(Failure::Transient(error))) => Some(error),
            Err(_elapsed) => None,
        };
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Err(Stop::Deadline {
                attempts,
                last: error,
            });
        }
        let delay = backoff.next_delay();
        let delay = match deadline {
            // The last wait ends at the deadline (rounded up to whole milliseconds).
            Some(deadline) => {
                let left = (deadline - now).as_micros().div_ceil(1000);
                delay.min(Duration::from_millis(
                    u64::try_from(left).unwrap_or(u64::MAX),
                ))
            }
            None => delay,
        };
        let shown = error.as_ref().map_or_else(
            || format!("no answer within {:?}", bound - began),
            ToString::to_string,
        );
        tracing::warn!(
            attempt = attempts,
            error = %shown,
            retry_in = ?delay,
            "{what}: not reachable yet; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_double_from_100_ms_to_5_s_with_jitter_between_half_and_all() {
        let mut backoff = Backoff::default();
        let nominal = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for nominal in nominal {
            let delay = backoff.next_delay().as_millis() as u64;
            assert!(
                (nominal / 2..=nominal).contains(&delay),
                "{delay} ms for a nominal {nominal} ms"
            );
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let delays: std::collections::BTreeSet<Duration> = (0..50)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay())
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_until_success() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, Stop<String>> = retry("the thing", None, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n < 4 {
                Err(Failure::Transient(format!("refused {n}")))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(result.ok(), Some(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fatal_failure_stops_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Stop<&str>> = retry("the thing", None, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Fatal("bad url"))
        })
        .await;
        assert!(matches!(result, Err(Stop::Fatal("bad url"))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_the_retries_with_the_last_error_and_one_attempt_at_the_deadline() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1);
        let times = std::sync::Mutex::new(Vec::new());
        let result: Result<(), Stop<&str>> = retry("the thing", Some(deadline), || async {
            times.lock().unwrap().push(Instant::now() - start);
            Err(Failure::Transient("refused"))
        })
        .await;
        let Err(Stop::Deadline { attempts, last }) = result else {
            panic!("expected the deadline");
        };
        let times = times.into_inner().unwrap();
        assert_eq!(attempts as usize, times.len());
        assert_eq!(last, Some("refused"));
        assert_eq!(*times.last().unwrap(), Duration::from_secs(1));
        assert!(times.len() >= 4, "{times:?}");
        assert!(Instant::now() - start <= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_hangs_is_cut_off_at_the_deadline() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(3);
        let result: Result<(), Stop<&str>> = retry("the thing", Some(deadline), || async {
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
        assert!(matches!(
            result,
            Err(Stop::Deadline {
                attempts: 1,
                last: None
            })
        ));
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
    }
}
