//! The console API's errors: `{"error": code, "message": …}` like the services' APIs, and the
//! services' own errors passed through with their status.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use service_kit::api_error::ApiError;
use service_kit::http::error_response;

/// Everything a console API call can fail with: the errors every service's API has (the kit's
/// [`ApiError`]), and the console's own about the services and the broker behind it.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A bad request, a missing thing, or a refusal with its own status and code.
    #[error(transparent)]
    Api(#[from] ApiError),
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
}

impl ConsoleError {
    /// A value is wrong (422 `invalid_value`).
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::Invalid(message.into()).into()
    }

    /// Malformed outside the body, such as a header that is not ASCII (400
    /// `malformed_request`).
    pub fn malformed(message: impl Into<String>) -> Self {
        ApiError::Malformed(message.into()).into()
    }

    /// Nothing by that name (404 `not_found`).
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::NotFound(message.into()).into()
    }

    /// Refused in this state (409, with its code).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::refused(StatusCode::CONFLICT, code, message).into()
    }

    /// Something the stack cannot do right now (503, with its code).
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::refused(StatusCode::SERVICE_UNAVAILABLE, code, message).into()
    }

    /// A run went wrong on the stack's side (502, with its code).
    pub fn gateway(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::refused(StatusCode::BAD_GATEWAY, code, message).into()
    }

    /// Too many at once (429 `busy`).
    pub fn busy(message: impl Into<String>) -> Self {
        ApiError::refused(StatusCode::TOO_MANY_REQUESTS, "busy", message).into()
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::Api(err) => err.status_code(),
            ConsoleError::Upstream(status, _) => *status,
            ConsoleError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
            ConsoleError::BrokerUnreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            ConsoleError::Api(err) => err.into_response(),
            ConsoleError::Unreachable { .. } => {
                error_response(self.status_code(), "upstream_unreachable", self.to_string())
            }
            ConsoleError::BrokerUnreachable(_) => {
                error_response(self.status_code(), "broker_unreachable", self.to_string())
            }
        }
    }
}

impl From<JsonRejection> for ConsoleError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::from(rejection).into()
    }
}

impl From<QueryRejection> for ConsoleError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::from(rejection).into()
    }
}
