//! Pieces of every service's HTTP API: the JSON error body, how body rejections split into
//! "malformed" (400), "invalid values" (422), "too large" (413) and "not JSON" (415), the body
//! limit and the JSON bodies of axum's own empty answers ([`json_api`]), and the check of free
//! text ([`check_text`]).

use axum::body::HttpBody;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

/// The largest request body a service reads, in bytes; a longer one is `413 body_too_large`.
/// The APIs' bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A response with body `{"error": code, "message": message}`.
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({"error": code, "message": message});
    (status, Json(body)).into_response()
}

/// How a rejected JSON body is reported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyProblem {
    /// Not JSON: a syntax error, invalid UTF-8, a truncated body (400 `malformed_request`).
    #[error("{0}")]
    Malformed(String),
    /// JSON of the wrong shape or with values of the wrong type (422 `invalid_value`).
    #[error("{0}")]
    Invalid(String),
    /// Longer than [`MAX_BODY_BYTES`] (413 `body_too_large`).
    #[error("the body is longer than the limit of {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// Not sent as JSON (415 `unsupported_media_type`).
    #[error("the body must be JSON: send it with Content-Type: application/json")]
    NotJson,
}

impl BodyProblem {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyProblem::Malformed(_) => StatusCode::BAD_REQUEST,
            BodyProblem::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BodyProblem::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyProblem::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            BodyProblem::Malformed(_) => "malformed_request",
            BodyProblem::Invalid(_) => "invalid_value",
            BodyProblem::TooLarge => "body_too_large",
            BodyProblem::NotJson => "unsupported_media_type",
        }
    }
}

/// Classifies axum's JSON rejection: the body limit and the content type by the status axum
/// gives them, wrong values apart from wrong syntax.
pub fn body_problem(rejection: JsonRejection) -> BodyProblem {
    match rejection {
        JsonRejection::JsonDataError(err) => BodyProblem::Invalid(err.body_text()),
        JsonRejection::MissingJsonContentType(_) => BodyProblem::NotJson,
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => BodyProblem::TooLarge,
        other => BodyProblem::Malformed(other.body_text()),
    }
}

/// What a service's HTTP port does to every request: bodies are read up to [`MAX_BODY_BYTES`],
/// and the answers axum gives without a body (an unknown route `404`, a method the route does
/// not serve `405`, its `Allow` header kept) get the JSON error body.
pub fn json_api(router: Router) -> Router {
    // Around the whole router, not each route: a route's `Allow` header is added after its
    // own layers ran.
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn(json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Gives an error answer without a body the JSON error body.
async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let empty = response.body().size_hint().exact() == Some(0);
    if !empty || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, _) = response.into_parts();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (
            "not_found",
            format!("no route {method} {path}: the API is described at /openapi.json"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts.headers.get(header::ALLOW);
            let allow = allow.and_then(|v| v.to_str().ok()).unwrap_or_default();
            let message = format!("{path} does not serve {method}; it serves {allow}");
            ("method_not_allowed", message)
        }
        other => {
            let reason = other.canonical_reason().unwrap_or("error").to_lowercase();
            ("http_error", reason)
        }
    };
    let mut answer = error_response(status, code, message);
    let own = answer.headers().clone();
    for (name, value) in &parts.headers {
        // Every value of a repeated header (`Vary`, `Set-Cookie`) is kept.
        if !own.contains_key(name) && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}

/// Checks free text from a request (a name, a cursor): no control characters (C0, DEL, C1: a
/// NUL is refused by PostgreSQL, the others garble logs and terminals) and no bidirectional
/// overrides or isolates (U+202A to U+202E, U+2066 to U+2069: they make text show in another
/// order than it is stored). The error names `field`, the character and where it is.
pub fn check_text(field: &str, text: &str) -> Result<(), String> {
    let hidden =
        |c: &char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    match text.chars().enumerate().find(|(_, c)| hidden(c)) {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "{field} must not contain control characters or bidirectional overrides: \
             U+{:04X} at character {}",
            u32::from(c),
            at + 1
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    #[derive(Debug, serde::Deserialize)]
    struct Named {
        #[allow(dead_code)]
        name: String,
    }

    fn app() -> Router {
        let echo = |body: Result<Json<Named>, JsonRejection>| async move {
            match body {
                Ok(_) => StatusCode::NO_CONTENT.into_response(),
                Err(rejection) => {
                    let problem = body_problem(rejection);
                    error_response(problem.status(), problem.code(), problem.to_string())
                }
            }
        };
        json_api(Router::new().route("/named", post(echo)))
    }

    async fn send(method: &str, uri: &str, content_type: &str, body: Vec<u8>) -> Response {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        app().oneshot(request).await.unwrap()
    }

    async fn answer(response: Response) -> (u16, serde_json::Value) {
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn body_rejections_have_their_own_status_and_code() {
        let json = "application/json";
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        let cases: [(&str, Vec<u8>, u16, &str); 5] = [
            (json, big.into_bytes(), 413, "body_too_large"),
            (
                "text/plain",
                b"{\"name\": \"a\"}".to_vec(),
                415,
                "unsupported_media_type",
            ),
            (json, b"{\"name\": ".to_vec(), 400, "malformed_request"),
            (
                json,
                b"{\"name\": \"\xe2\x82\"}".to_vec(),
                400,
                "malformed_request",
            ),
            (json, b"{\"name\": 5}".to_vec(), 422, "invalid_value"),
        ];
        for (content_type, body, status, code) in cases {
            let (got, body) = answer(send("POST", "/named", content_type, body).await).await;
            assert_eq!(
                (got, body["error"].as_str()),
                (status, Some(code)),
                "{body}"
            );
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_get_the_json_error_body_and_405_keeps_allow() {
        let (status, body) = answer(send("GET", "/nowhere", "text/plain", vec![]).await).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
        assert!(body["message"].as_str().unwrap().contains("GET /nowhere"));
        let response = send("DELETE", "/named", "text/plain", vec![]).await;
        let allow = response.headers().get(header::ALLOW).cloned();
        assert_eq!(allow.unwrap().to_str().unwrap(), "POST");
        let (status, body) = answer(response).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (405, Some("method_not_allowed"))
        );
        assert!(body["message"]
            .as_str()
            .unwrap()
            .ends_with("it serves POST"));
    }

    #[test]
    fn free_text_refuses_control_characters_and_bidi_overrides_and_says_where() {
        for fine in ["Zoë Ångström", "李雷", "O'Brien-Smith", "a\u{200d}b", ""] {
            assert_eq!(check_text("owner", fine), Ok(()), "{fine:?}");
        }
        for (bad, at) in [
            ("a\0b", "U+0000 at character 2"),
            ("\u{1b}[31m", "U+001B at character 1"),
            ("tab\there", "U+0009 at character 4"),
            ("del\u{7f}", "U+007F at character 4"),
            ("c1\u{85}", "U+0085 at character 3"),
            ("evil\u{202e}gpj.exe", "U+202E at character 5"),
            ("\u{2066}x", "U+2066 at character 1"),
            ("x\u{2069}", "U+2069 at character 2"),
        ] {
            let err = check_text("owner", bad).unwrap_err();
            assert!(err.starts_with("owner must not contain"), "{err}");
            assert!(err.ends_with(at), "{bad:?}: {err}");
        }
    }
}
