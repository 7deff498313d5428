//! Mirrors and sources on one server: the checks of a configuration against the streams it
//! names, and the task per origin that reads the origin's store from where the stream left off
//! and follows what is stored there next. It never holds two streams' locks at once.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::api::msgs::DirectGet;
use super::context::Context;
use super::errors::ApiError;
use super::stream::sourced::Origin;
use super::stream::{Stream, StreamConfig, StreamSource};
use super::subjects::collide;
use super::JetStream;
use crate::client::{InternalSink, Subscription};

/// A mirror with `mirror_direct` answers direct gets for its origin once it lags by fewer
/// messages than this (nats-server's threshold).
pub(crate) const DIRECT_GET_CAUGHT_UP: u64 = 10;

/// How often a follower confirms its origin is there (nats-server's source heartbeat), and
/// how often it looks again for an origin that does not exist.
pub(crate) const SOURCE_HEARTBEAT: Duration = Duration::from_secs(1);

impl JetStream {
    /// The checks of a mirror or sources against the streams they name, as nats-server makes
    /// them: message sizes, cycles; a mirror inherits its origin's `allow_direct` as
    /// `mirror_direct`.
    pub fn check_origins(&self, config: &mut StreamConfig) -> Result<(), ApiError> {
        let streams = self.streams.read();
        let lookup = |name: &str| streams.get(name).map(|s| s.config());
        let too_small = |origin: &StreamConfig| {
            config.max_msg_size > 0
                && origin.max_msg_size > 0
                && config.max_msg_size < origin.max_msg_size
        };
        if let Some(mirror) = config.mirror.as_ref().filter(|m| m.external.is_none()) {
            if let Some(origin) = lookup(&mirror.name) {
                if too_small(&origin) {
                    return Err(ApiError::mirror_max_msg_size());
                }
                config.mirror_direct = origin.allow_direct;
            }
        }
        for source in config.sources.iter().filter(|s| s.external.is_none()) {
            if lookup(&source.name).is_some_and(|origin| too_small(&origin)) {
                return Err(ApiError::source_max_msg_size());
            }
        }
        // Cycles: following sources and mirrors from this stream must not come back to a
        // stream already seen (for sources, only when the subjects could meet).
        let mut to_visit = vec![config.clone()];
        let mut visited = BTreeSet::new();
        while let Some(current) = to_visit.pop() {
            visited.insert(current.name.clone());
            for source in current.sources.iter().filter(|s| s.external.is_none()) {
                if visited.contains(&source.name) {
                    let f = &source.filter_subject;
                    if f.is_empty() || current.subjects.iter().any(|s| collide(s, f)) {
                        return Err(ApiError::invalid_config("detected cycle"));
                    }
                } else if let Some(next) = lookup(&source.name) {
                    to_visit.push(next);
                }
            }
            if let Some(mirror) = current.mirror.as_ref().filter(|m| m.external.is_none()) {
                if visited.contains(&mirror.name) {
                    return Err(ApiError::invalid_config("detected cycle"));
                }
                if let Some(next) = lookup(&mirror.name) {
                    to_visit.push(next);
                }
            }
        }
        Ok(())
    }

    /// Starts following the stream's mirror or sources, and stops following those its
    /// configuration no longer has (after an update).
    pub fn follow_origins(self: &Arc<Self>, stream: &Arc<Stream>) {
        let config = stream.config();
        let wanted: Vec<(super::stream::StreamSource, bool)> = match config.mirror {
            Some(mirror) => vec![(mirror, true)],
            None => config.sources.into_iter().map(|s| (s, false)).collect(),
        };
        let mut origins = stream.origins.lock();
        origins.retain(|o| {
            let keep = wanted.iter().any(|(w, _)| w.index_name() == o.iname);
            if !keep {
                o.cancel.cancel();
            }
            keep
        });
        for (source, mirror) in wanted {
            if origins.iter().any(|o| o.iname == source.index_name()) {
                continue;
            }
            let origin = Arc::new(Origin::new(source, mirror, &stream.closed));
            origins.push(origin.clone());
            tokio::spawn(follow(Arc::downgrade(self), Arc::downgrade(stream), origin));
        }
    }
}

impl JetStream {
    /// The JetStream an origin's stream lives in: this one, or for an `external` origin the
    /// one its API prefix reaches. As with nats-server, that takes a service import of the
    /// other account's JetStream API under the prefix, and a stream import that brings what
    /// it delivers to the deliver prefix back here unchanged; without them the origin is
    /// missing (and looked for again). A prefix of this server's own domain is this one.
    fn origin_jetstream(self: &Arc<Self>, source: &StreamSource) -> Option<Arc<JetStream>> {
        let Some(external) = &source.external else {
            return Some(self.clone());
        };
        let server = self.ctx.server()?;
        let own_domain = server
            .opts
            .jetstream_domain
            .as_deref()
            .is_some_and(|d| external.api == format!("$JS.{d}.API"));
        if own_domain {
            return Some(self.clone());
        }
        let links = self.ctx.account.links.get()?;
        let probe = format!("{}.STREAM.INFO.{}", external.api, source.name);
        let (exporter, mapped) = links.service_target(&probe)?;
        if mapped != format!("$JS.API.STREAM.INFO.{}", source.name) {
            return None;
        }
        let deliver = format!("{}.{}", external.deliver, source.name);
        let delivered_here = !external.deliver.is_empty()
            && exporter
                .links
                .get()
                .is_some_and(|l| l.streams_reach(&deliver, &self.ctx.account.name));
        if !delivered_here {
            return None;
        }
        server.jetstream.get()?.get(&exporter.name).cloned()
    }
}

/// Counts a follower of an origin stream for as long as it lives.
struct Following(Arc<Stream>);

impl Following {
    fn new(stream: Arc<Stream>) -> Following {
        stream.followers.fetch_add(1, Ordering::SeqCst);
        Following(stream)
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.0.followers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Follows one origin of `target` until the origin is configured away or either server or
/// stream closes: finds the origin stream (again after it is deleted and created anew), takes
/// what it holds past the position, then waits for what it stores next.
async fn follow(js: Weak<JetStream>, target: Weak<Stream>, origin: Arc<Origin>) {
    let cancel = origin.cancel.clone();
    while !cancel.is_cancelled() {
        let found = js.upgrade().and_then(|js| {
            let home = js.origin_jetstream(&origin.config)?;
            let stream = home.streams.read().get(&origin.config.name).cloned();
            stream
        });
        origin.missing.store(found.is_none(), Ordering::Relaxed);
        let Some(from) = found else {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(SOURCE_HEARTBEAT) => continue,
            }
        };
        let following = Following::new(from);
        let mut direct = MirrorDirect::default();
        loop {
            let wake = following.0.follow_wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let Some(stream) = target.upgrade() else {
                return;
            };
            let more = stream.take_from(&following.0, &origin);
            if origin.mirror && direct.ctx.is_none() && origin.lag() < DIRECT_GET_CAUGHT_UP {
                direct.subscribe(&stream, &origin.config.name);
            }
            drop(stream);
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = following.0.closed.cancelled() => break,
                () = &mut wake => {}
                () = tokio::time::sleep(SOURCE_HEARTBEAT) => origin.heard(),
            }
        }
    }
}

/// A mirror's subscriptions to its origin's direct gets (`mirror_direct`), in the queue group
/// the origin's own are in, so that both answer; dropped with the follower.
#[derive(Default)]
struct MirrorDirect {
    subs: Vec<Arc<Subscription>>,
    /// Set once the mirror caught up (whether or not it has `mirror_direct`).
    ctx: Option<Arc<Context>>,
}

impl MirrorDirect {
    fn subscribe(&mut self, mirror: &Arc<Stream>, origin: &str) {
        self.ctx = Some(mirror.ctx.clone());
        if !mirror.config().mirror_direct {
            return;
        }
        for subject in [
            format!("$JS.API.DIRECT.GET.{origin}"),
            format!("$JS.API.DIRECT.GET.{origin}.>"),
        ] {
            let sink: Arc<dyn InternalSink> = Arc::new(DirectGet(Arc::downgrade(mirror)));
            if let Some(sub) = mirror.ctx.subscribe(&subject, Some("_sys_"), sink) {
                self.subs.push(sub);
            }
        }
    }
}

impl Drop for MirrorDirect {
    fn drop(&mut self) {
        if let Some(ctx) = &self.ctx {
            for sub in self.subs.drain(..) {
                ctx.unsubscribe(&sub);
            }
        }
    }
}
