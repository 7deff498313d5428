//! The transaction service's API errors: the kit's [`ApiError`] (a status and a JSON body
//! `{"error", "message"}`), and how the service's own errors map onto it.

use axum::http::StatusCode;
pub use service_kit::api_error::ApiError;

use crate::idempotency::KeyError;
use crate::store::StoreError;

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
            StoreError::KeyReused => ApiError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                err.to_string(),
            ),
            StoreError::Db(err) => ApiError::Internal(err.into()),
            StoreError::Batch(_) => ApiError::Internal(anyhow::anyhow!("the write batch failed")),
        }
    }
}
