//! Bounded waits: poll a condition until it holds or a deadline passes, then fail with a message
//! that says what was awaited and what was last seen.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use anyhow::bail;

/// How often [`eventually`] polls.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Ok(Some(value))`, for at most `bound`. `Ok(None)` means "not
/// yet"; an error ends the wait at once. On timeout the error names `what`.
pub async fn eventually<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {bound:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `read` until its value equals `expected`, for at most `bound`; on timeout the error shows
/// the last value seen.
pub async fn until_eq<T, F, Fut>(
    what: &str,
    bound: Duration,
    expected: T,
    mut read: F,
) -> anyhow::Result<()>
where
    T: PartialEq + Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let seen = read().await?;
        if seen == expected {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {bound:?} waiting for {what}: expected {expected:?}, last saw {seen:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `GET <base_url>/readyz` until it answers 200, for at most `bound`; on timeout the
/// error shows the last answer (a service starts serving `/readyz` with 503 while it connects).
pub async fn ready(http: &reqwest::Client, base_url: &str, bound: Duration) -> anyhow::Result<()> {
    let url = format!("{base_url}/readyz");
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let seen = match http.get(&url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                format!("{status} {}", response.text().await.unwrap_or_default())
            }
            Err(err) => format!("no answer: {err}"),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {bound:?} waiting for {url} to answer 200; last saw {seen}");
        }
        tokio::time::sleep(POLL).await;
    }
}
