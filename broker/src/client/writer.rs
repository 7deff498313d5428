//! The writing side of a connection: drains the outbound buffer to the socket, one batch at a
//! time, each batch bounded by the write deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Client, CloseReason};

/// A spare buffer bigger than this is given back to the allocator after a flush.
const KEEP_CAPACITY: usize = 1024 * 1024;
/// How long the last flush of a closing connection may take.
const CLOSING_FLUSH: Duration = Duration::from_secs(1);

/// Writes until the client closes, then flushes what is left (unless it was a slow consumer).
pub(super) async fn run<W: AsyncWrite + Unpin>(
    client: Arc<Client>,
    mut socket: W,
    deadline: Duration,
) {
    let mut batch = Vec::new();
    let mut closing = false;
    loop {
        if !closing {
            tokio::select! {
                biased;
                _ = client.wake_writer.notified() => {}
                _ = client.closed.cancelled() => closing = true,
            }
        }
        if closing && is_slow_consumer(&client) {
            break;
        }
        {
            let mut out = client.out.lock();
            std::mem::swap(&mut out.buf, &mut batch);
            out.in_flight = batch.len();
        }
        if batch.is_empty() {
            if closing {
                break;
            }
            continue;
        }
        let bound = if closing {
            deadline.min(CLOSING_FLUSH)
        } else {
            deadline
        };
        match tokio::time::timeout(bound, write_batch(&client, &mut socket, &batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                client.close(CloseReason::WriteError);
                break;
            }
            Err(_) => {
                client.close(CloseReason::SlowConsumerWriteDeadline);
                break;
            }
        }
        batch.clear();
        if batch.capacity() > KEEP_CAPACITY {
            batch = Vec::new();
        }
        client.out.lock().in_flight = 0;
    }
    client.out.lock().in_flight = 0;
    let _ = tokio::time::timeout(CLOSING_FLUSH, socket.shutdown()).await;
}

/// Writes `batch`, counting down the client's pending bytes as the socket takes them.
async fn write_batch<W: AsyncWrite + Unpin>(
    client: &Client,
    socket: &mut W,
    batch: &[u8],
) -> std::io::Result<()> {
    let mut written = 0;
    while written < batch.len() {
        let n = socket.write(&batch[written..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written += n;
        client.out.lock().in_flight = batch.len() - written;
        client.drained.notify_waiters();
    }
    // A TLS stream may hold the last records until flushed; for plain TCP this is a no-op.
    socket.flush().await
}

fn is_slow_consumer(client: &Client) -> bool {
    matches!(
        client.close_reason(),
        Some(CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline)
    )
}
