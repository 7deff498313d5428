//! `GET /api/events`: the timeline as server-sent events.
//!
//! - `event: entry`, `id: <n>`, `data: <Entry as JSON>`: first the kept history (the last
//!   entries, oldest first), then live ones. A reconnecting browser sends `Last-Event-ID` and
//!   gets only what came after it.
//! - `event: skipped`, `data: {"skipped": N}`: this browser was too slow, N entries went by
//!   without it; it continues from the newest. The console never queues more than the
//!   broadcast channel's capacity for anyone.
//! - a comment every 15 s keeps proxies from closing an idle stream.
//!
//! The stream ends when the console shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::Stream;
use serde_json::json;

use crate::app::AppState;
use crate::timeline::{Follower, Item};

/// The SSE handler.
pub async fn events(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok());
    let follower = state.timeline.follow(after);
    let stream = items(follower, state.shutdown.clone());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The follower's items as SSE events, until the timeline or the console goes away.
fn items(
    follower: Follower,
    shutdown: tokio_util::sync::CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(follower, move |mut follower| {
        let shutdown = shutdown.clone();
        async move {
            let item = tokio::select! {
                _ = shutdown.cancelled() => None,
                item = follower.next() => item,
            }?;
            Some((Ok(to_event(&item)), follower))
        }
    })
}

/// One item as an SSE event.
pub fn to_event(item: &Item) -> Event {
    match item {
        Item::Entry(entry) => Event::default()
            .event("entry")
            .id(entry.id.to_string())
            .json_data(entry.as_ref())
            .unwrap_or_else(|_| Event::default().event("entry").data("{}")),
        Item::Skipped(skipped) => Event::default()
            .event("skipped")
            .data(json!({"skipped": skipped}).to_string()),
    }
}
