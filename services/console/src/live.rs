//! `GET /api/live`: the timeline over a WebSocket, what the page uses.
//!
//! Browsers open at most six HTTP/1.1 connections per host, and an event stream holds one for
//! as long as the page is open, so a seventh tab of the console would wait for ever (and its
//! other requests with it). WebSockets do not count against that limit. The items are the
//! same as on [`crate::sse`], one JSON text frame each:
//!
//! - `{"kind": "entry", "entry": {…}}`: first the kept history, then live entries;
//!   `?after=<id>` resumes after an entry this page already has;
//! - `{"kind": "skipped", "skipped": N}`: the page was too slow and N entries went by without
//!   it; it continues from the newest. A page that stops reading makes the socket's writes
//!   wait, never the console's memory grow: what it misses meanwhile is counted, not queued.
//!
//! The console pings every [`PING_EVERY`] so that a vanished peer is noticed, and the
//! connection closes when the console shuts down.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::timeline::{Follower, Item};

/// How often the console pings an idle page.
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// Where a page resumes.
#[derive(Debug, Default, Deserialize)]
pub struct Resume {
    /// The id of the last entry the page has.
    after: Option<u64>,
}

/// The WebSocket handler.
pub async fn live(
    State(state): State<AppState>,
    Query(resume): Query<Resume>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let follower = state.timeline.follow(resume.after);
    let shutdown = state.shutdown.clone();
    upgrade.on_upgrade(move |socket| serve(socket, follower, shutdown))
}

/// Sends the follower's items until the page goes away or the console stops.
async fn serve(
    mut socket: WebSocket,
    mut follower: Follower,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ping.tick() => Message::Ping(Vec::new().into()),
            incoming = socket.recv() => match incoming {
                // The page sends nothing but pongs and its close.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            item = follower.next() => match item {
                Some(item) => Message::Text(frame(&item).into()),
                None => break,
            },
        };
        if socket.send(message).await.is_err() {
            return;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// One item as a JSON text frame.
pub fn frame(item: &Item) -> String {
    match item {
        Item::Entry(entry) => json!({"kind": "entry", "entry": entry.as_ref()}).to_string(),
        Item::Skipped(skipped) => json!({"kind": "skipped", "skipped": skipped}).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_marker_is_a_frame_of_its_own() {
        let text = frame(&Item::Skipped(7));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, json!({"kind": "skipped", "skipped": 7}));
    }
}
