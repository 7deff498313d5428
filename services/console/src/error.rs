//! The console API's errors: `{"error": code, "message": …}` like the services' APIs, and the
//! services' own errors passed through with their status.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use service_kit::http::{body_problem, error_response, BodyProblem};

/// Everything a console API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The request is malformed outside its body: a header that is not ASCII (400
    /// `malformed_request`).
    #[error("{0}")]
    Malformed(String),
    /// The JSON body was refused: not JSON (400), wrong values (422), too long (413), not sent
    /// as JSON (415).
    #[error(transparent)]
    Body(#[from] BodyProblem),
    /// A value is wrong (422 `invalid_value`).
    #[error("{0}")]
    Invalid(String),
    /// Nothing by that name (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// Refused in this state (409, with its code).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// A service answered with an error: passed through as it is.
    #[error("{0}: {1}")]
    Upstream(StatusCode, Value),
    /// A service did not answer (502 `upstream_unreachable`).
    #[error("the {service} at {url} did not answer: {detail}")]
    Unreachable {
        /// Which service.
        service: &'static str,
        /// Where the console looked for it.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The broker connection is down (503 `broker_unreachable`).
    #[error("the broker at {0} is unreachable; the console keeps trying to connect")]
    BrokerUnreachable(String),
    /// Something the stack cannot do right now (503, with its code).
    #[error("{1}")]
    Unavailable(&'static str, String),
    /// A run went wrong on the stack's side (502, with its code).
    #[error("{1}")]
    Gateway(&'static str, String),
    /// Too many at once (429 `busy`).
    #[error("{0}")]
    Busy(String),
}

impl ConsoleError {
    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::Malformed(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Body(problem) => problem.status(),
            ConsoleError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Conflict(..) => StatusCode::CONFLICT,
            ConsoleError::Upstream(status, _) => *status,
            ConsoleError::Unreachable { .. } | ConsoleError::Gateway(..) => StatusCode::BAD_GATEWAY,
            ConsoleError::BrokerUnreachable(_) | ConsoleError::Unavailable(..) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ConsoleError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ConsoleError::Malformed(_) => "malformed_request",
            ConsoleError::Body(problem) => problem.code(),
            ConsoleError::Invalid(_) => "invalid_value",
            ConsoleError::NotFound(_) => "not_found",
            ConsoleError::Conflict(code, _)
            | ConsoleError::Unavailable(code, _)
            | ConsoleError::Gateway(code, _) => code,
            ConsoleError::Upstream(..) => "upstream_error",
            ConsoleError::Unreachable { .. } => "upstream_unreachable",
            ConsoleError::BrokerUnreachable(_) => "broker_unreachable",
            ConsoleError::Busy(_) => "busy",
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            // The service's own body, error code and message included.
            ConsoleError::Upstream(status, Value::Object(body)) => {
                (status, Json(Value::Object(body))).into_response()
            }
            ConsoleError::Upstream(status, other) => {
                let message = match other {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                error_response(status, "upstream_error", message)
            }
            other => error_response(other.status_code(), other.code(), other.to_string()),
        }
    }
}

impl From<JsonRejection> for ConsoleError {
    fn from(rejection: JsonRejection) -> Self {
        ConsoleError::Body(body_problem(rejection))
    }
}

impl From<QueryRejection> for ConsoleError {
    fn from(rejection: QueryRejection) -> Self {
        ConsoleError::Invalid(rejection.body_text())
    }
}
