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
