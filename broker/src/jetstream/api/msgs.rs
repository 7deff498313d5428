//! Reading and deleting single messages: `STREAM.MSG.GET`, `STREAM.MSG.DELETE` and, for
//! streams with `allow_direct`, `DIRECT.GET` (answered with the message itself).

use std::sync::{Arc, Weak};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::{is_empty_request, parse_body, Outcome, Request};
use crate::client::InternalSink;
use crate::jetstream::context::Outgoing;
use crate::jetstream::errors::ApiError;
use crate::jetstream::headers::HeaderBlock;
use crate::jetstream::stream::{Storage, Stream};
use crate::jetstream::time::format;
use crate::jetstream::JetStream;
use crate::proto::server_op::Delivery;
use crate::store::{StoredMsg, StreamState};

/// `{"seq"}`, `{"last_by_subj"}` or `{"next_by_subj", "seq"}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct GetRequest {
    seq: u64,
    last_by_subj: String,
    next_by_subj: String,
}

/// Which message a get asks for.
fn lookup(stream: &Stream, req: &GetRequest) -> Result<StoredMsg, ApiError> {
    let inner = stream.inner.lock();
    let found = match (
        req.seq,
        req.last_by_subj.as_str(),
        req.next_by_subj.as_str(),
    ) {
        (seq, "", "") if seq > 0 => inner.store.get(seq),
        (0, last, "") if !last.is_empty() => inner.store.get_last_by_subject(last),
        (seq, "", next) if !next.is_empty() => inner.store.get_next(seq, Some(next)),
        _ => return Err(ApiError::bad_request()),
    };
    match found {
        Ok(Some(msg)) => Ok(msg),
        Ok(None) => Err(ApiError::no_message_found()),
        Err(e) => Err(ApiError::stream_general(e)),
    }
}

/// `$JS.API.STREAM.MSG.GET.<stream>`
pub(crate) fn get(js: &Arc<JetStream>, req: &Request) -> Outcome {
    let stream = js.lookup(req.token(5))?;
    let request: GetRequest = parse_body(&req.payload)?;
    let msg = lookup(&stream, &request)?;
    let mut message = Map::new();
    message.insert("subject".into(), json!(msg.subject));
    message.insert("seq".into(), json!(msg.seq));
    if let Some(h) = &msg.headers {
        message.insert("hdrs".into(), json!(STANDARD.encode(h)));
    }
    if !msg.payload.is_empty() {
        message.insert("data".into(), json!(STANDARD.encode(&msg.payload)));
    }
    message.insert("time".into(), json!(format(msg.timestamp)));
    Ok(json!({"message": Value::Object(message)}))
}

/// `$JS.API.STREAM.MSG.DELETE.<stream>` with `{"seq", "no_erase"}`.
pub(crate) fn delete(js: &Arc<JetStream>, req: &Request) -> Outcome {
    #[derive(Default, serde::Deserialize)]
    #[serde(default)]
    struct DeleteRequest {
        seq: u64,
    }
    if is_empty_request(&req.payload) {
        return Err(ApiError::bad_request());
    }
    let request: DeleteRequest = parse_body(&req.payload)?;
    let stream = js.lookup(req.token(5))?;
    let removed = {
        let mut inner = stream.inner.lock();
        if inner.config.sealed {
            return Err(ApiError::stream_sealed());
        }
        if inner.config.deny_delete {
            return Err(ApiError::msg_delete_failed("message delete not permitted"));
        }
        if inner.config.storage == Storage::File {
            if let Some(refusal) = outside_file_range(request.seq, &inner.store.state()) {
                return Err(ApiError::msg_delete_failed(refusal));
            }
        }
        let removed = inner
            .store
            .delete(request.seq)
            .map_err(ApiError::msg_delete_failed)?;
        inner.store.commit().map_err(ApiError::msg_delete_failed)?;
        removed
    };
    if !removed {
        return Err(ApiError::sequence_not_found(request.seq));
    }
    stream.notify_removed();
    Ok(json!({"success": true}))
}

/// Why nats-server's file store fails a delete of `seq` outright (500, not the 400 of a
/// sequence it does not hold): 0, or a sequence outside the stored range, with its store's
/// words. Its memory store answers those as not found like any other.
fn outside_file_range(seq: u64, state: &StreamState) -> Option<&'static str> {
    let outside = seq < state.first_seq || seq > state.last_seq || state.msgs == 0;
    match seq {
        0 => Some("no message found"),
        seq if outside && seq <= state.last_seq => Some("no message found"),
        _ if outside => Some("stream store EOF"),
        _ => None,
    }
}

/// Serves `$JS.API.DIRECT.GET.<stream>[.<subject>]` for one stream, on the requester's task.
pub(crate) struct DirectGet(pub Weak<Stream>);

impl InternalSink for DirectGet {
    fn receive(&self, d: &Delivery<'_>) {
        let (Some(stream), Some(reply)) = (
            self.0.upgrade(),
            d.reply.and_then(|r| std::str::from_utf8(r).ok()),
        ) else {
            return;
        };
        let subject = std::str::from_utf8(d.subject).unwrap_or("");
        let prefix = format!("$JS.API.DIRECT.GET.{}.", stream.name);
        let request = match subject.strip_prefix(&prefix) {
            Some(last) if d.payload.is_empty() => Ok(GetRequest {
                last_by_subj: last.to_string(),
                ..GetRequest::default()
            }),
            Some(_) => Err("Bad Request"),
            None if d.payload.is_empty() => Err("Empty Request"),
            None => serde_json::from_slice(d.payload).map_err(|_| "Bad Request"),
        };
        let answer = request.map_err(|e| (408, e)).and_then(|r| {
            lookup(&stream, &r).map_err(|e| match e.code {
                404 => (404, "Message Not Found"),
                _ => (408, "Bad Request"),
            })
        });
        let headers;
        let (h, payload): (Vec<u8>, &[u8]) = match &answer {
            Ok(msg) => {
                let base = msg
                    .headers
                    .as_deref()
                    .map_or(HeaderBlock::new(), HeaderBlock::extend);
                headers = base
                    .add("Nats-Stream", &stream.name)
                    .add("Nats-Subject", &msg.subject)
                    .add("Nats-Sequence", msg.seq)
                    .add("Nats-Time-Stamp", format(msg.timestamp))
                    .finish();
                (headers, &msg.payload)
            }
            Err((code, text)) => (HeaderBlock::status(*code, text).finish(), b""),
        };
        stream.ctx.send(&Outgoing {
            route: reply,
            subject: reply,
            reply: None,
            headers: Some(&h),
            payload,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(first_seq: u64, last_seq: u64, msgs: u64) -> StreamState {
        StreamState {
            first_seq,
            last_seq,
            msgs,
            ..StreamState::default()
        }
    }

    #[test]
    fn a_file_store_refuses_deletes_outside_its_range_as_nats_servers_does() {
        let empty = state(0, 0, 0);
        assert_eq!(outside_file_range(0, &empty), Some("no message found"));
        assert_eq!(outside_file_range(1, &empty), Some("stream store EOF"));
        // Messages 2..=4 stored, with 3 deleted.
        let stored = state(2, 4, 2);
        assert_eq!(outside_file_range(1, &stored), Some("no message found"));
        assert_eq!(outside_file_range(2, &stored), None);
        assert_eq!(outside_file_range(3, &stored), None, "a gap is looked up");
        assert_eq!(outside_file_range(5, &stored), Some("stream store EOF"));
        let purged = state(5, 4, 0);
        assert_eq!(outside_file_range(4, &purged), Some("no message found"));
        assert_eq!(outside_file_range(5, &purged), Some("stream store EOF"));
    }
}
