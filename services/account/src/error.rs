//! The account service's API errors: the kit's [`ApiError`] (a status and a JSON body
//! `{"error", "message"}`), and the service's own refusals.

use axum::http::StatusCode;
pub use service_kit::api_error::ApiError;

/// `/faults` on a replica without fault injection (403 `fault_injection_off`).
pub fn fault_injection_off() -> ApiError {
    ApiError::refused(
        StatusCode::FORBIDDEN,
        "fault_injection_off",
        "fault injection is off on this replica: start it with --fault-injection \
         (FAULT_INJECTION=true) to use /faults; it is for demonstrations and tests, never for \
         production",
    )
}

/// As many faults as allowed are armed already (409 `too_many_faults`).
pub fn too_many_faults(message: String) -> ApiError {
    ApiError::refused(StatusCode::CONFLICT, "too_many_faults", message)
}
