//! The JetStream API: one internal subscription per endpoint, as nats-server has, so that a
//! request to an endpoint that does not exist gets the usual 503 no-responders status. These
//! requests go, in order, to one API thread that may touch the disk. Pull requests
//! (`CONSUMER.MSG.NEXT`) go straight to their consumer's own subscription.
//!
//! - `streams.rs`: STREAM.CREATE, UPDATE, INFO, DELETE, NAMES, LIST, PURGE.
//! - `consumers.rs`: CONSUMER.CREATE, DURABLE.CREATE, INFO, DELETE, NAMES, LIST.
//! - `msgs.rs`: STREAM.MSG.GET, STREAM.MSG.DELETE and DIRECT.GET.
//! - `info.rs`: the JSON of stream and consumer info and of `$JS.API.INFO`.

pub(crate) mod consumers;
pub(crate) mod info;
pub(crate) mod msgs;
pub(crate) mod streams;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use serde_json::{json, Value};

use super::context::Context;
use super::errors::ApiError;
use super::JetStream;
use crate::client::InternalSink;
use crate::proto::server_op::Delivery;

/// Prefix of every response `type`.
const TYPE_PREFIX: &str = "io.nats.jetstream.api.v1.";

/// The endpoints and the subjects they listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    AccountInfo,
    StreamCreate,
    StreamUpdate,
    StreamNames,
    StreamList,
    StreamInfo,
    StreamDelete,
    StreamPurge,
    MsgDelete,
    MsgGet,
    ConsumerCreate,
    ConsumerCreateNamed,
    DurableCreate,
    ConsumerNames,
    ConsumerList,
    ConsumerInfo,
    ConsumerDelete,
}

/// Every endpoint with its subscription subject.
pub(crate) const ENDPOINTS: &[(&str, Endpoint)] = &[
    ("$JS.API.INFO", Endpoint::AccountInfo),
    ("$JS.API.STREAM.CREATE.*", Endpoint::StreamCreate),
    ("$JS.API.STREAM.UPDATE.*", Endpoint::StreamUpdate),
    ("$JS.API.STREAM.NAMES", Endpoint::StreamNames),
    ("$JS.API.STREAM.LIST", Endpoint::StreamList),
    ("$JS.API.STREAM.INFO.*", Endpoint::StreamInfo),
    ("$JS.API.STREAM.DELETE.*", Endpoint::StreamDelete),
    ("$JS.API.STREAM.PURGE.*", Endpoint::StreamPurge),
    ("$JS.API.STREAM.MSG.DELETE.*", Endpoint::MsgDelete),
    ("$JS.API.STREAM.MSG.GET.*", Endpoint::MsgGet),
    ("$JS.API.CONSUMER.CREATE.*", Endpoint::ConsumerCreate),
    ("$JS.API.CONSUMER.CREATE.*.>", Endpoint::ConsumerCreateNamed),
    (
        "$JS.API.CONSUMER.DURABLE.CREATE.*.*",
        Endpoint::DurableCreate,
    ),
    ("$JS.API.CONSUMER.NAMES.*", Endpoint::ConsumerNames),
    ("$JS.API.CONSUMER.LIST.*", Endpoint::ConsumerList),
    ("$JS.API.CONSUMER.INFO.*.*", Endpoint::ConsumerInfo),
    ("$JS.API.CONSUMER.DELETE.*.*", Endpoint::ConsumerDelete),
];

/// A request waiting for the API thread.
pub(crate) struct Request {
    pub endpoint: Endpoint,
    pub subject: String,
    pub reply: Option<String>,
    pub payload: Vec<u8>,
}

impl Request {
    /// The subject's tokens after the endpoint's fixed part.
    pub fn token(&self, index: usize) -> &str {
        self.subject.split('.').nth(index).unwrap_or("")
    }
}

/// Receives the requests of one endpoint.
pub(crate) struct ApiSink {
    pub js: Weak<JetStream>,
    pub endpoint: Endpoint,
}

impl InternalSink for ApiSink {
    fn receive(&self, d: &Delivery<'_>) {
        let Some(js) = self.js.upgrade() else {
            return;
        };
        let (Ok(subject), reply) = (
            std::str::from_utf8(d.subject),
            d.reply.and_then(|r| std::str::from_utf8(r).ok()),
        ) else {
            return;
        };
        let request = Request {
            endpoint: self.endpoint,
            subject: subject.to_string(),
            reply: reply.map(str::to_string),
            payload: d.payload.to_vec(),
        };
        js.queue_request(request);
    }
}

/// Handles one request on the API thread and sends the response.
pub(crate) fn handle(js: &Arc<JetStream>, req: &Request) {
    // Counted after the reply is built, as nats-server does: an INFO reply does not count
    // its own request.
    let (kind, result) = dispatch(js, req);
    js.api_total.fetch_add(1, Ordering::Relaxed);
    let body = match result {
        Ok(Value::Object(mut fields)) => {
            fields.insert("type".into(), Value::String(format!("{TYPE_PREFIX}{kind}")));
            Value::Object(fields)
        }
        Ok(other) => other,
        Err(e) => {
            js.api_errors.fetch_add(1, Ordering::Relaxed);
            let mut body = json!({"type": format!("{TYPE_PREFIX}{kind}"), "error": e});
            error_members(kind, &mut body);
            body
        }
    };
    if let Some(reply) = &req.reply {
        js.ctx.reply(reply, body.to_string().as_bytes());
    }
}

type Outcome = Result<Value, ApiError>;

/// The members nats-server's response types carry even beside an error (those it does not
/// mark `omitempty`), at their zero values.
fn error_members(kind: &str, body: &mut Value) {
    let paged = || json!({"total": 0, "offset": 0, "limit": 0});
    let extra = match kind {
        "stream_purge_response" => json!({"purged": 0}),
        "stream_info_response" => paged(),
        "stream_names_response" => json!({"total": 0, "offset": 0, "limit": 0, "streams": null}),
        "stream_list_response" => json!({"total": 0, "offset": 0, "limit": 0, "streams": []}),
        "consumer_names_response" | "consumer_list_response" => {
            json!({"total": 0, "offset": 0, "limit": 0, "consumers": []})
        }
        _ => return,
    };
    if let (Value::Object(body), Value::Object(extra)) = (body, extra) {
        body.extend(extra);
    }
}

fn dispatch(js: &Arc<JetStream>, req: &Request) -> (&'static str, Outcome) {
    use Endpoint::*;
    let outcome = match req.endpoint {
        AccountInfo => Ok(info::account(js)),
        StreamCreate => streams::create(js, req),
        StreamUpdate => streams::update(js, req),
        StreamNames => streams::names(js, req),
        StreamList => streams::list(js, req),
        StreamInfo => streams::info(js, req),
        StreamDelete => streams::delete(js, req),
        StreamPurge => streams::purge(js, req),
        MsgDelete => msgs::delete(js, req),
        MsgGet => msgs::get(js, req),
        ConsumerCreate | ConsumerCreateNamed | DurableCreate => consumers::create(js, req),
        ConsumerNames => consumers::names(js, req),
        ConsumerList => consumers::list(js, req),
        ConsumerInfo => consumers::info(js, req),
        ConsumerDelete => consumers::delete(js, req),
    };
    (req.endpoint.kind(), outcome)
}

impl Endpoint {
    /// The response's `type`, after `io.nats.jetstream.api.v1.`.
    pub(crate) fn kind(self) -> &'static str {
        use Endpoint::*;
        match self {
            AccountInfo => "account_info_response",
            StreamCreate => "stream_create_response",
            StreamUpdate => "stream_update_response",
            StreamNames => "stream_names_response",
            StreamList => "stream_list_response",
            StreamInfo => "stream_info_response",
            StreamDelete => "stream_delete_response",
            StreamPurge => "stream_purge_response",
            MsgDelete => "stream_msg_delete_response",
            MsgGet => "stream_msg_get_response",
            ConsumerCreate | ConsumerCreateNamed | DurableCreate => "consumer_create_response",
            ConsumerNames => "consumer_names_response",
            ConsumerList => "consumer_list_response",
            ConsumerInfo => "consumer_info_response",
            ConsumerDelete => "consumer_delete_response",
        }
    }
}

/// Answers the API requests of an account without JetStream, as nats-server does.
pub(crate) struct NotEnabled {
    pub ctx: Weak<Context>,
    pub endpoint: Endpoint,
}

impl InternalSink for NotEnabled {
    fn receive(&self, d: &Delivery<'_>) {
        let (Some(ctx), Some(reply)) = (
            self.ctx.upgrade(),
            d.reply.and_then(|r| std::str::from_utf8(r).ok()),
        ) else {
            return;
        };
        let kind = self.endpoint.kind();
        let mut body = json!({
            "type": format!("{TYPE_PREFIX}{kind}"),
            "error": ApiError::not_enabled_for_account(),
        });
        error_members(kind, &mut body);
        ctx.reply(reply, body.to_string().as_bytes());
    }
}

/// Refuses a body other than nothing or an empty JSON object (10038), for the endpoints that
/// take no request.
pub(crate) fn expect_empty(payload: &[u8]) -> Result<(), ApiError> {
    match is_empty_request(payload) {
        true => Ok(()),
        false => Err(ApiError::not_empty_request()),
    }
}

/// nats-server's `isEmptyRequest`: no bytes at all, or a JSON object without members.
pub(crate) fn is_empty_request(payload: &[u8]) -> bool {
    payload.is_empty()
        || matches!(
            serde_json::from_slice::<Value>(payload),
            Ok(Value::Object(members)) if members.is_empty()
        )
}

/// Parses a JSON body; an empty body is `T::default()`. As Go's decoder, which clients are
/// written against, a `null` member counts as absent.
pub(crate) fn parse_body<T: for<'de> serde::Deserialize<'de> + Default>(
    payload: &[u8],
) -> Result<T, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut value: Value = serde_json::from_slice(payload).map_err(|_| ApiError::invalid_json())?;
    if value.is_null() {
        return Ok(T::default());
    }
    drop_nulls(&mut value);
    serde_json::from_value(value).map_err(|e| {
        tracing::debug!("JetStream API request refused: {e}");
        ApiError::invalid_json()
    })
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Paging of list requests: `{"offset": n}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct Paged {
    #[serde(deserialize_with = "go_offset")]
    pub offset: usize,
    /// NAMES: only streams with a subject matching this.
    pub subject: String,
}

impl Paged {
    /// Where the page starts, as nats-server reports it: an offset past the end is the end.
    pub fn offset_within(&self, total: usize) -> usize {
        self.offset.min(total)
    }
}

/// An `offset` as nats-server decodes it, into a Go `int`: past `i64::MAX` the request is not
/// valid JSON to it (10025), whatever it asks for.
pub(crate) fn go_offset<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    use serde::de::Error;
    let offset = <u64 as serde::Deserialize>::deserialize(d)?;
    i64::try_from(offset)
        .ok()
        .and_then(|offset| usize::try_from(offset).ok())
        .ok_or_else(|| D::Error::custom(format!("offset {offset} overflows Go's int")))
}

/// Items per page of NAMES (1024) and LIST (256) responses, as nats-server.
pub(crate) const NAMES_PAGE: usize = 1024;
pub(crate) const LIST_PAGE: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_read_within_gos_int_and_refused_past_it() {
        let paged = |body: &str| parse_body::<Paged>(body.as_bytes()).map(|p| p.offset);
        assert_eq!(paged("{}").unwrap(), 0);
        assert_eq!(paged(r#"{"offset": 7}"#).unwrap(), 7);
        let largest = format!(r#"{{"offset": {}}}"#, i64::MAX);
        assert_eq!(paged(&largest).unwrap(), i64::MAX as usize);
        for body in [
            r#"{"offset": 9223372036854775808}"#,
            r#"{"offset": 18446744073709551615}"#,
            r#"{"offset": -1}"#,
            r#"{"offset": 1.5}"#,
        ] {
            assert_eq!(paged(body).unwrap_err().err_code, 10025, "{body}");
        }
    }

    #[test]
    fn an_empty_request_is_no_bytes_or_an_object_without_members() {
        for empty in ["", "{}", " { } "] {
            assert!(is_empty_request(empty.as_bytes()), "{empty:?}");
        }
        for not in [" ", "null", "[]", r#"{"seq": 0}"#, "{"] {
            assert!(!is_empty_request(not.as_bytes()), "{not:?}");
        }
    }
}
