//! The one error type of the HTTP API: a status and a JSON body `{"error", "message"}`.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::http::{body_problem, error_response, BodyProblem};

use crate::idempotency::KeyError;
use crate::store::StoreError;

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed header, such as a bad `Idempotency-Key` (400).
    #[error("{0}")]
    Malformed(String),
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
    /// An idempotency key was reused with another request (422).
    #[error("{0}")]
    KeyReused(String),
    /// Something broke on our side (500); details are logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::Body(problem) => problem.status(),
            ApiError::Invalid(_) | ApiError::KeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Malformed(_) => "malformed_request",
            ApiError::Body(problem) => problem.code(),
            ApiError::Invalid(_) => "invalid_value",
            ApiError::NotFound(_) => "not_found",
            ApiError::KeyReused(_) => "idempotency_key_reused",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        error_response(self.status_code(), self.code(), self.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::Body(body_problem(rejection))
    }
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        ApiError::Malformed(err.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::UnknownAccount(id) => ApiError::NotFound(format!(
                "unknown account {id}: accounts appear here moments after they are opened, \
                 so retry shortly if it was just created"
            )),
            StoreError::KeyReused => ApiError::KeyReused(err.to_string()),
            StoreError::Db(err) => ApiError::Internal(err.into()),
            StoreError::Batch(_) => ApiError::Internal(anyhow::anyhow!("the write batch failed")),
        }
    }
}
