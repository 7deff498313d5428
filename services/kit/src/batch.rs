//! Group commit: callers submit items and wait; one task takes whatever is queued (up to a
//! limit) and handles it as one batch, typically one database transaction, then answers each
//! caller. On SQLite, where writers take turns, this turns many small transactions into few.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// A cheap-to-clone handle to a batching task; the task ends when every handle is dropped.
pub struct Batcher<I, O> {
    queue: mpsc::Sender<(I, oneshot::Sender<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the task. `handle` gets up to `max` items and must return one output per item,
    /// in order.
    pub fn spawn<F, Fut>(max: usize, handle: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<O>> + Send,
    {
        let max = max.max(1);
        let (queue, mut requests) = mpsc::channel::<(I, oneshot::Sender<O>)>(max * 4);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max);
            while requests.recv_many(&mut batch, max).await > 0 {
                let (items, answers): (Vec<I>, Vec<_>) = batch.drain(..).unzip();
                let outputs = handle(items).await;
                for (answer, output) in answers.into_iter().zip(outputs) {
                    let _ = answer.send(output);
                }
            }
        });
        Self { queue }
    }

    /// Submits `item` and waits for its output; `None` if the task has stopped.
    pub async fn submit(&self, item: I) -> Option<O> {
        let (answer, output) = oneshot::channel();
        self.queue.send((item, answer)).await.ok()?;
        output.await.ok()
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
            Batcher::spawn(3, move |items: Vec<u32>| {
                let (sizes, running, release) = (sizes.clone(), running.clone(), release.clone());
                async move {
                    let first = sizes.lock().unwrap().is_empty();
                    sizes.lock().unwrap().push(items.len());
                    if first {
                        running.notify_one();
                        release.notified().await;
                    }
                    items.into_iter().map(|n| n * 10).collect()
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
        assert_eq!(first.await.unwrap(), Some(10));
        let mut answers = Vec::new();
        for handle in rest {
            answers.push(handle.await.unwrap());
        }
        assert_eq!(answers, [2, 3, 4, 5, 6].map(|n| Some(n * 10)));
        assert_eq!(*sizes.lock().unwrap(), [1, 3, 2]);
    }

    #[tokio::test]
    async fn a_batch_that_panics_answers_none_and_the_task_stops() {
        let batcher = Batcher::spawn(4, |items: Vec<u32>| async move {
            assert!(items.is_empty(), "the handler fails");
            Vec::<u32>::new()
        });
        assert_eq!(batcher.submit(1).await, None);
        assert_eq!(
            batcher.submit(2).await,
            None,
            "nothing runs batches any more"
        );
    }
}
