//! The one error type of a service's HTTP API: a status and a JSON body
//! `{"error": code, "message": …}`. The common cases have their own variant; a service's own
//! refusals (a reused idempotency key, fault injection switched off) are [`ApiError::Refused`]
//! with their status and code, so every service answers errors the same way.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::{body_problem, error_response, BodyProblem};

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed outside its JSON body: a bad header or query parameter (400
    /// `malformed_request`).
    #[error("{0}")]
    Malformed(String),
    /// The JSON body was refused: not JSON (400), wrong values (422), too long (413), not sent
    /// as JSON (415).
    #[error(transparent)]
    Body(#[from] BodyProblem),
    /// A value is out of range or of the wrong type (422 `invalid_value`).
    #[error("{0}")]
    Invalid(String),
    /// The id names nothing (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// A refusal of the service's own, with its status and code.
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The `error` code clients match on.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// Something broke on our side (500 `internal`); details are logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A refusal of the service's own.
    pub fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Refused {
            status,
            code,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::Body(problem) => problem.status(),
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Refused { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error` code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Malformed(_) => "malformed_request",
            ApiError::Body(problem) => problem.code(),
            ApiError::Invalid(_) => "invalid_value",
            ApiError::NotFound(_) => "not_found",
            ApiError::Refused { code, .. } => code,
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

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Invalid(rejection.body_text())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::Internal(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn each_error_has_its_status_and_code_and_internal_details_stay_inside() {
        let cases = [
            (
                ApiError::Malformed("m".into()),
                400,
                "malformed_request",
                "m",
            ),
            (ApiError::Invalid("i".into()), 422, "invalid_value", "i"),
            (ApiError::NotFound("n".into()), 404, "not_found", "n"),
            (
                ApiError::refused(StatusCode::CONFLICT, "too_many", "r"),
                409,
                "too_many",
                "r",
            ),
            (
                ApiError::Internal(anyhow::anyhow!("password=secret")),
                500,
                "internal",
                "internal error",
            ),
        ];
        for (error, status, code, message) in cases {
            let (got, body) = body(error).await;
            assert_eq!(got.as_u16(), status);
            assert_eq!(body["error"], code);
            assert_eq!(body["message"], message);
        }
    }
}
