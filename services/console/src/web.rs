//! The page: HTML, CSS and plain JavaScript embedded in the binary (no build chain). The ids
//! and `data-testid`s a browser test can rely on are listed at the top of `web/app.js`.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The page itself.
pub const INDEX_HTML: &str = include_str!("web/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("web/app.js");
/// Its style sheet.
pub const APP_CSS: &str = include_str!("web/app.css");

/// `/`, `/app.js`, `/app.css`.
pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { page(APP_CSS, "text/css; charset=utf-8") }),
        )
}

fn page(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
