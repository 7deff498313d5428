//! Lame duck mode (SIGUSR2, as nats-server): stop accepting, tell clients with an INFO carrying
//! `"ldm": true` so they move elsewhere, wait `lame_duck_grace_period`, then close the clients
//! one by one spread over the rest of `lame_duck_duration`, then shut down as usual.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::client::CloseReason;
use crate::proto::server_op;
use crate::server::ServerState;

/// The longest pause between two closes, so a few clients are not spread over minutes.
const MAX_CLOSE_INTERVAL: Duration = Duration::from_secs(1);

/// Runs lame duck mode to its end; returns early if `shutdown` completes meanwhile.
pub(crate) async fn run<F: Future<Output = ()>>(
    state: &Arc<ServerState>,
    mut shutdown: Pin<&mut F>,
) {
    let clients: Vec<_> = state.clients.lock().values().cloned().collect();
    tracing::info!("Entering lame duck mode, stop accepting new clients");
    if clients.is_empty() {
        return;
    }
    let mut info = state.live().info.clone();
    info.ldm = true;
    for client in &clients {
        // Only clients that understand asynchronous INFO (protocol 1) are told. The INFO names
        // the client as the first one did: some clients (the nats crate) insist on client_id.
        if client.protocol.load(Ordering::Relaxed) >= 1 {
            info.client_id = client.id;
            info.client_ip = client.addr.ip().to_string();
            client.queue_proto(|out| server_op::write_info(out, &info));
            client.flush_soon();
        }
    }
    let opts = &state.opts;
    tokio::select! {
        _ = tokio::time::sleep(opts.lame_duck_grace_period) => {}
        _ = shutdown.as_mut() => return,
    }
    tracing::info!("Closing existing clients");
    let spread = opts
        .lame_duck_duration
        .saturating_sub(opts.lame_duck_grace_period);
    let spread = if spread.is_zero() {
        Duration::from_secs(1)
    } else {
        spread
    };
    let interval = (spread / clients.len() as u32).min(MAX_CLOSE_INTERVAL);
    for (i, client) in clients.iter().enumerate() {
        client.close(CloseReason::ServerShutdown);
        if i + 1 < clients.len() {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.as_mut() => return,
            }
        }
    }
}
