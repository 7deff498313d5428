//! The one error type of the HTTP API: a status and a JSON body `{"error", "message"}`.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::http::{body_problem, error_response, BodyProblem};

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The JSON body was refused: not JSON (400), wrong values (422), too long (413), not sent
    /// as JSON (415).
    #[error(transparent)]
    Body(#[from] BodyProblem),
    /// A value is out of range or of the wrong type (422).
    #[error("{0}")]
    Invalid(String),
    /// The id names nothing (404).
    #[error("{0}")]
    NotFound(String),
    /// `/faults` on a replica without fault injection (403).
    #[error(
        "fault injection is off on this replica: start it with --fault-injection \
         (FAULT_INJECTION=true) to use /faults; it is for demonstrations and tests, never for \
         production"
    )]
    FaultInjectionOff,
    /// As many faults as allowed are armed already (409).
    #[error("{0}")]
    TooManyFaults(String),
    /// Something broke on our side (500); details are logged, not returned.
    #[error("internal error")]
    Internal(#[from] sqlx::Error),
}

impl ApiError {
    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Body(problem) => problem.status(),
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::FaultInjectionOff => StatusCode::FORBIDDEN,
            ApiError::TooManyFaults(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Body(problem) => problem.code(),
            ApiError::Invalid(_) => "invalid_value",
            ApiError::NotFound(_) => "not_found",
            ApiError::FaultInjectionOff => "fault_injection_off",
            ApiError::TooManyFaults(_) => "too_many_faults",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = %err, "request failed");
        }
        error_response(self.status_code(), self.code(), self.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::Body(body_problem(rejection))
    }
}
