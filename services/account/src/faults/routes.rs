//! `GET`, `POST` and `DELETE /faults`: the HTTP face of the replica's [`Faults`].

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::registry::parse_account_id;
use super::{ArmRequest, Faults, FAULT_TTL, MAX_FAULTS};
use crate::error::ApiError;

/// What the `/faults` routes need.
#[derive(Clone)]
struct FaultState {
    faults: Option<Faults>,
    replica: String,
}

impl FaultState {
    fn faults(&self) -> Result<&Faults, ApiError> {
        self.faults
            .as_ref()
            .ok_or_else(crate::error::fault_injection_off)
    }
}

/// `GET`, `POST` and `DELETE /faults`: the armed faults, or `403` when `faults` is `None` (fault
/// injection off). `replica` names this replica in the answers.
pub fn router(faults: Option<Faults>, replica: String) -> Router {
    Router::new()
        .route("/faults", get(list).post(arm).delete(clear))
        .with_state(FaultState { faults, replica })
}

async fn list(State(state): State<FaultState>) -> Result<impl IntoResponse, ApiError> {
    let faults = state.faults()?;
    Ok(Json(serde_json::json!({
        "replica": state.replica,
        "items": faults.list(),
        "limit": MAX_FAULTS,
        "ttl_ms": FAULT_TTL.as_millis() as u64,
    })))
}

async fn arm(
    State(state): State<FaultState>,
    body: Result<Json<ArmRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let faults = state.faults()?;
    let Json(request) = body?;
    let fault = faults.arm(request)?;
    tracing::warn!(
        account = %fault.account_id,
        fault = fault.fault.as_str(),
        delay_ms = fault.delay_ms,
        on_delivery = fault.on_delivery,
        "fault armed (fault injection is for demonstrations and tests only)"
    );
    let mut body = serde_json::to_value(&fault).unwrap_or_default();
    body["replica"] = serde_json::Value::String(state.replica.clone());
    Ok((StatusCode::CREATED, Json(body)))
}

/// The query of `DELETE /faults`.
#[derive(Debug, Deserialize)]
struct ClearQuery {
    account_id: Option<String>,
}

async fn clear(
    State(state): State<FaultState>,
    query: Result<Query<ClearQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let faults = state.faults()?;
    let Query(query) = query.map_err(|err| ApiError::Invalid(err.body_text()))?;
    let account = query
        .account_id
        .as_deref()
        .map(parse_account_id)
        .transpose()
        .map_err(ApiError::Invalid)?;
    let cleared = faults.clear(account);
    Ok(Json(
        serde_json::json!({"replica": state.replica, "cleared": cleared}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use common_events::AccountId;
    use http_body_util::BodyExt;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    fn account() -> AccountId {
        AccountId::new()
    }

    async fn call(router: &Router, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let builder = Request::builder().method(method).uri(uri);
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn the_routes_validate_with_4xx_json_errors_and_list_and_clear() {
        let router = router(Some(Faults::default()), "account-9".into());
        let id = account().to_string();
        let (status, body) = call(
            &router,
            "POST",
            "/faults",
            Some(json!({"account_id": id, "fault": "slow", "delay_ms": 12000})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            (&body["fault"], &body["on_delivery"], &body["replica"]),
            (&json!("slow"), &json!(1), &json!("account-9"))
        );
        for (bad, expected) in [
            (json!({"account_id": id, "fault": "melt"}), 422),
            (json!({"account_id": 5, "fault": "crash"}), 422),
            (json!({"account_id": id, "fault": "crash", "extra": 1}), 422),
            (
                json!({"account_id": id, "fault": "slow", "delay_ms": -1}),
                422,
            ),
            (
                json!({"account_id": id, "fault": "crash", "on_delivery": 0}),
                422,
            ),
        ] {
            let (status, body) = call(&router, "POST", "/faults", Some(bad.clone())).await;
            assert_eq!(status, expected, "{bad} gave {body}");
            assert_eq!(body["error"], "invalid_value", "{body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        let malformed = Request::builder()
            .method("POST")
            .uri("/faults")
            .header("content-type", "application/json")
            .body(Body::from("{\"account_id\""))
            .unwrap();
        let response = router.clone().oneshot(malformed).await.unwrap();
        assert_eq!(response.status(), 400);
        let (status, listed) = call(&router, "GET", "/faults", None).await;
        assert_eq!(status, 200);
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(listed["limit"], MAX_FAULTS);
        let (status, body) = call(&router, "DELETE", "/faults?account_id=nope", None).await;
        assert_eq!((status, &body["error"]), (422, &json!("invalid_value")));
        let (status, body) =
            call(&router, "DELETE", &format!("/faults?account_id={id}"), None).await;
        assert_eq!((status, &body["cleared"]), (200, &json!(1)));
    }

    #[tokio::test]
    async fn the_limit_is_a_409_with_a_message() {
        let router = router(Some(Faults::default()), "account-9".into());
        let arm = json!({"account_id": account().to_string(), "fault": "crash"});
        for _ in 0..MAX_FAULTS {
            let (status, _) = call(&router, "POST", "/faults", Some(arm.clone())).await;
            assert_eq!(status, 201);
        }
        let (status, body) = call(&router, "POST", "/faults", Some(arm)).await;
        assert_eq!(
            (status, &body["error"]),
            (409, &json!("too_many_faults")),
            "{body}"
        );
        let (status, body) = call(&router, "DELETE", "/faults", None).await;
        assert_eq!((status, &body["cleared"]), (200, &json!(MAX_FAULTS)));
    }

    #[tokio::test]
    async fn without_fault_injection_every_route_is_403_saying_how_to_turn_it_on() {
        let router = router(None, "account-9".into());
        let arm = json!({"account_id": account().to_string(), "fault": "crash"});
        for (method, body) in [("GET", None), ("POST", Some(arm)), ("DELETE", None)] {
            let (status, answer) = call(&router, method, "/faults", body).await;
            assert_eq!(status, 403, "{method}: {answer}");
            assert_eq!(answer["error"], "fault_injection_off");
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("--fault-injection") && message.contains("FAULT_INJECTION=true"),
                "{message}"
            );
        }
    }
}
