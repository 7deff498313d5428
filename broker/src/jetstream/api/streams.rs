//! Stream endpoints: create, update, info, delete, names, list, purge.

use std::sync::Arc;

use serde_json::{json, Value};

use super::info::{self, StreamInfoRequest};
use super::{expect_empty, parse_body, Outcome, Paged, Request, LIST_PAGE, NAMES_PAGE};
use crate::jetstream::errors::ApiError;
use crate::jetstream::stream::{Retention, Stream, StreamConfig};
use crate::jetstream::subjects::collide;
use crate::jetstream::JetStream;
use crate::store::Purge;

/// `$JS.API.STREAM.CREATE.<stream>`
pub(crate) fn create(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let name = req.token(4);
    let config: StreamConfig = parse_body(&req.payload)?;
    if config.name != name {
        return Err(ApiError::stream_mismatch());
    }
    if name.contains('/') || name.contains('\\') {
        return Err(ApiError::stream_name_path_separators());
    }
    if config.sealed {
        return Err(ApiError::invalid_config(
            "stream configuration for create can not be sealed",
        ));
    }
    if config.mirror_direct && config.mirror.is_none() {
        return Err(ApiError::invalid_config(
            "stream has no mirror but does have mirror direct",
        ));
    }
    let mut config = config.normalize()?;
    js.check_origins(&mut config)?;
    if config.num_replicas > 1 {
        return Err(ApiError::replicas_not_supported());
    }
    crate::jetstream::account_limits::check_stream_config(&js.ctx.config.account, &config)?;
    let stream = js.create_stream(config)?;
    let mut info = info::stream_reply(js, &stream);
    if let Some(map) = info.as_object_mut() {
        map.remove("domain");
    }
    info["did_create"] = json!(true);
    Ok(info)
}

/// `$JS.API.STREAM.UPDATE.<stream>`
pub(crate) fn update(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let name = req.token(4);
    let config: StreamConfig = parse_body(&req.payload)?;
    if config.name != name {
        return Err(ApiError::stream_mismatch());
    }
    let stream = js.lookup(name)?;
    let mut config = config.normalize()?;
    js.check_origins(&mut config)?;
    crate::jetstream::account_limits::check_stream_config(&js.ctx.config.account, &config)?;
    let old = stream.config();
    config.check_update(&old)?;
    config
        .check_transforms_on_update()
        .map_err(ApiError::stream_update)?;
    check_consumer_limits(&stream, &old, &config)?;
    js.check_update_reservation(&old, &config)?;
    js.check_overlap(&config, Some(name))?;
    let resubscribe = config.subjects != old.subjects;
    let allow_direct_changed = config.allow_direct != old.allow_direct;
    let now_interest =
        config.retention == Retention::Interest && old.retention != Retention::Interest;
    stream
        .inner
        .lock()
        .reconfigure(config.clone())
        .map_err(ApiError::stream_update)?;
    js.save_stream_meta(&stream)
        .map_err(|e| ApiError::stream_update(format!("{e:#}")))?;
    if resubscribe {
        stream.resubscribe();
    }
    if resubscribe || allow_direct_changed {
        js.direct_get_subscriptions(&stream);
    }
    js.follow_origins(&stream);
    if now_interest {
        // Messages no consumer wants go at once, as they would have on arrival.
        stream.remove_unwanted();
    } else {
        stream.notify_removed();
    }
    Ok(info::stream_reply(js, &stream))
}

/// New `consumer_limits` that a consumer of the stream already exceeds are refused, as
/// nats-server does (comparing with the limits as given: a zero limit is exceeded by any value).
fn check_consumer_limits(
    stream: &Stream,
    old: &StreamConfig,
    new: &StreamConfig,
) -> Result<(), ApiError> {
    let limits = &new.consumer_limits;
    if old.consumer_limits == *limits {
        return Ok(());
    }
    let violating: Vec<String> = stream
        .consumers
        .read()
        .iter()
        .filter(|(_, consumer)| {
            let config = consumer.config();
            config.inactive_threshold > limits.inactive_threshold
                || config.max_ack_pending > limits.max_ack_pending
        })
        .map(|(name, _)| name.clone())
        .collect();
    if violating.is_empty() {
        return Ok(());
    }
    Err(ApiError::stream_update(format!(
        "change to limits violates consumers: {}",
        violating.join(", ")
    )))
}

/// `$JS.API.STREAM.INFO.<stream>`
pub(crate) fn info(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let stream = js.lookup(req.token(4))?;
    let mut request: StreamInfoRequest = parse_body(&req.payload)?;
    request.paged = true;
    Ok(info::stream(js, &stream, &request))
}

/// `$JS.API.STREAM.DELETE.<stream>`
pub(crate) fn delete(js: &Arc<JetStream>, req: &Request) -> Outcome {
    expect_empty(&req.payload)?;
    js.delete_stream(req.token(4))?;
    Ok(json!({"success": true}))
}

/// `$JS.API.STREAM.PURGE.<stream>` with `{"filter", "seq", "keep"}`.
pub(crate) fn purge(js: &Arc<JetStream>, req: &Request) -> Outcome {
    #[derive(Default, serde::Deserialize)]
    #[serde(default)]
    struct PurgeRequest {
        filter: String,
        seq: u64,
        keep: u64,
    }
    let stream = js.lookup(req.token(4))?;
    let request: PurgeRequest = parse_body(&req.payload)?;
    let purged = {
        let mut inner = stream.inner.lock();
        if inner.config.sealed || inner.config.deny_purge {
            return Err(ApiError::purge_failed("stream purge not permitted"));
        }
        if request.seq > 0 && request.keep > 0 {
            return Err(ApiError::bad_request());
        }
        let purge = Purge {
            filter: Some(request.filter).filter(|f| !f.is_empty()),
            up_to_seq: (request.seq > 0).then_some(request.seq),
            keep: (request.keep > 0).then_some(request.keep),
        };
        let purged = inner.store.purge(&purge).map_err(ApiError::purge_failed)?;
        inner.store.commit().map_err(ApiError::purge_failed)?;
        purged
    };
    stream.notify_removed();
    Ok(json!({"success": true, "purged": purged}))
}

/// `$JS.API.STREAM.NAMES`, optionally only streams whose subjects match `subject`.
pub(crate) fn names(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let paged: Paged = parse_body(&req.payload)?;
    let matching = matching_streams(js, &paged.subject);
    let total = matching.len();
    let offset = paged.offset_within(total);
    let page: Vec<String> = matching
        .into_iter()
        .skip(offset)
        .take(NAMES_PAGE)
        .map(|s| s.name.clone())
        .collect();
    // nats-server's list starts as Go's nil slice: an empty page is `null`, not `[]`.
    let streams = if page.is_empty() {
        Value::Null
    } else {
        json!(page)
    };
    Ok(json!({"total": total, "offset": offset, "limit": NAMES_PAGE, "streams": streams}))
}

/// `$JS.API.STREAM.LIST`: the info of every stream.
pub(crate) fn list(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let paged: Paged = parse_body(&req.payload)?;
    let matching = matching_streams(js, &paged.subject);
    let total = matching.len();
    let offset = paged.offset_within(total);
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(LIST_PAGE)
        .map(|s| info::stream_reply(js, &s))
        .collect();
    Ok(json!({"total": total, "offset": offset, "limit": LIST_PAGE, "streams": page}))
}

fn matching_streams(js: &JetStream, subject: &str) -> Vec<Arc<Stream>> {
    js.streams
        .read()
        .values()
        .filter(|s| {
            subject.is_empty()
                || s.inner
                    .lock()
                    .config
                    .subjects
                    .iter()
                    .any(|own| collide(own, subject))
        })
        .cloned()
        .collect()
}
