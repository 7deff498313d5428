//! Group commit: callers submit items and wait; one task takes whatever is queued (up to a
//! limit) and handles it as one batch, typically one database transaction, then answers each
//! caller. On SQLite, where writers take turns, this turns many small transactions into few.

use std::fmt::Display;
use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Why a batch gave an item no output: the batch failed as a whole (its error is logged once,
/// with the batcher's name), or the batching task has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the batch it was written in failed")]
pub struct BatchFailed;

/// What a batcher does when a batch of several items fails as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Every item of it fails ([`BatchFailed`]). For writes that must not run twice: a failed
    /// commit may have committed.
    FailAll,
    /// Each item is handled again on its own, so one bad item does not fail the others. For
    /// writes that are safe to repeat.
    RetryEachAlone,
}

type Answer<O> = oneshot::Sender<Result<O, BatchFailed>>;

/// A cheap-to-clone handle to a batching task; the task ends when every handle is dropped.
/// Every batcher answers an item the same way: its output, or [`BatchFailed`].
pub struct Batcher<I, O> {
    queue: mpsc::Sender<(I, Answer<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I: Clone + Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the task. `handle` gets up to `max` items and returns one output per item, in
    /// order, or an error for the whole batch, which `on_failure` decides about. `name` is
    /// for the log.
    pub fn spawn<F, Fut, E>(
        name: &'static str,
        max: usize,
        on_failure: OnFailure,
        handle: F,
    ) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, E>> + Send,
        E: Display + Send,
    {
        let max = max.max(1);
        let (queue, mut requests) = mpsc::channel::<(I, Answer<O>)>(max * 4);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max);
            while requests.recv_many(&mut batch, max).await > 0 {
                let (items, answers): (Vec<I>, Vec<_>) = batch.drain(..).unzip();
                let count = items.len();
                let alone =
                    (on_failure == OnFailure::RetryEachAlone && count > 1).then(|| items.clone());
                let outputs = match (handle(items).await, alone) {
                    (Ok(outputs), _) => outputs.into_iter().map(Ok).collect(),
                    (Err(err), None) => {
                        tracing::warn!(batcher = name, error = %err, count, "a batch failed");
                        (0..count).map(|_| Err(BatchFailed)).collect()
                    }
                    (Err(err), Some(items)) => {
                        tracing::warn!(batcher = name, error = %err, count, "a batch failed; handling each item alone");
                        let mut outputs = Vec::with_capacity(count);
                        for item in items {
                            outputs.push(match handle(vec![item]).await {
                                Ok(mut one) if one.len() == 1 => Ok(one.remove(0)),
                                Ok(_) => Err(BatchFailed),
                                Err(err) => {
                                    tracing::warn!(batcher = name, error = %err, "an item failed");
                                    Err(BatchFailed)
                                }
                            });
                        }
                        outputs
                    }
                };
                for (answer, output) in answers.into_iter().zip(outputs) {
                    let _ = answer.send(output);
                }
            }
        });
        Self { queue }
    }

    /// Submits `item` and waits for its output.
    pub async fn submit(&self, item: I) -> Result<O, BatchFailed> {
        let (answer, output) = oneshot::channel();
        self.queue
            .send((item, answer))
            .await
            .map_err(|_| BatchFailed)?;
        output.await.unwrap_or(Err(BatchFailed))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn what_queues_during_a_batch_goes_in_the_next_one_up_to_the_limit_each_answered_in_turn()
    {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let first_running = Arc::new(Notify::new());
        let release_first = Arc::new(Notify::new());
        let batcher = {
            let (sizes, running, release) =
                (sizes.clone(), first_running.clone(), release_first.clone());
            Batcher::spawn("test", 3, OnFailure::FailAll, move |items: Vec<u32>| {
                let (sizes, running, release) = (sizes.clone(), running.clone(), release.clone());
                async move {
                    let first = sizes.lock().unwrap().is_empty();
                    sizes.lock().unwrap().push(items.len());
                    if first {
                        running.notify_one();
                        release.notified().await;
                    }
                    Ok::<_, String>(items.into_iter().map(|n| n * 10).collect())
                }
            })
        };
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.submit(1).await }
        });
        first_running.notified().await;
        // Five more queue while the first batch is held: they go as 3, then 2.
        let rest: Vec<_> = (2..=6)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(n).await })
            })
            .collect();
        while batcher.queue.capacity() > batcher.queue.max_capacity() - 5 {
            tokio::task::yield_now().await;
        }
        release_first.notify_one();
        assert_eq!(first.await.unwrap(), Ok(10));
        let mut answers = Vec::new();
        for handle in rest {
            answers.push(handle.await.unwrap());
        }
        assert_eq!(answers, [2, 3, 4, 5, 6].map(|n| Ok(n * 10)));
        assert_eq!(*sizes.lock().unwrap(), [1, 3, 2]);
    }

    /// Fails any batch holding an odd number; answers n * 10.
    async fn odd_fails(items: Vec<u32>) -> Result<Vec<u32>, String> {
        match items.iter().find(|n| *n % 2 == 1) {
            Some(odd) => Err(format!("{odd} is odd")),
            None => Ok(items.into_iter().map(|n| n * 10).collect()),
        }
    }

    async fn submit_together(
        batcher: &Batcher<u32, u32>,
        items: &[u32],
    ) -> Vec<Result<u32, BatchFailed>> {
        let handles: Vec<_> = items
            .iter()
            .map(|n| {
                let (batcher, n) = (batcher.clone(), *n);
                tokio::spawn(async move { batcher.submit(n).await })
            })
            .collect();
        let mut answers = Vec::new();
        for handle in handles {
            answers.push(handle.await.unwrap());
        }
        answers
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_batch_fails_every_item_or_retries_each_alone_as_asked() {
        // On one thread the submits all queue before the task takes them: one batch of four.
        let fail_all = Batcher::spawn("test", 8, OnFailure::FailAll, odd_fails);
        let answers = submit_together(&fail_all, &[2, 3, 4, 6]).await;
        assert_eq!(answers, [Err(BatchFailed); 4]);
        let alone = Batcher::spawn("test", 8, OnFailure::RetryEachAlone, odd_fails);
        let answers = submit_together(&alone, &[2, 3, 4, 6]).await;
        assert_eq!(answers, [Ok(20), Err(BatchFailed), Ok(40), Ok(60)]);
    }

    #[tokio::test]
    async fn a_batch_that_panics_fails_its_items_and_the_ones_after() {
        let batcher = Batcher::spawn(
            "test",
            4,
            OnFailure::FailAll,
            |items: Vec<u32>| async move {
                assert!(items.is_empty(), "the handler fails");
                Ok::<Vec<u32>, String>(Vec::new())
            },
        );
        assert_eq!(batcher.submit(1).await, Err(BatchFailed));
        assert_eq!(
            batcher.submit(2).await,
            Err(BatchFailed),
            "nothing runs batches any more"
        );
    }
}
