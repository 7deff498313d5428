//! Pieces of every service's `ApiError`: the JSON error body and how body rejections split into
//! "malformed" (400) and "invalid values" (422).

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A response with body `{"error": code, "message": message}`.
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({"error": code, "message": message});
    (status, Json(body)).into_response()
}

/// How a rejected JSON body is reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyProblem {
    /// Not JSON, not an object, or not sent as JSON (400).
    Malformed(String),
    /// JSON of the wrong shape or with values of the wrong type (422).
    Invalid(String),
}

/// Classifies axum's JSON rejection.
pub fn body_problem(rejection: JsonRejection) -> BodyProblem {
    match rejection {
        JsonRejection::JsonDataError(err) => BodyProblem::Invalid(err.body_text()),
        other => BodyProblem::Malformed(other.body_text()),
    }
}

/// The trace context of a request: a child of its `traceparent` header, or a new trace.
pub fn request_trace(headers: &axum::http::HeaderMap) -> crate::trace::TraceContext {
    use crate::trace::TraceContext;
    headers
        .get(crate::trace::TRACEPARENT)
        .and_then(|value| TraceContext::parse(value.to_str().ok()?))
        .map_or_else(TraceContext::new_root, TraceContext::child)
}
