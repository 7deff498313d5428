//! Hostile input over HTTP on every database: text PostgreSQL refuses (a NUL) or that hides
//! what it says (control characters, bidirectional overrides) is `422`, and the shared HTTP
//! rules (body limit, content type, unknown routes and methods) answer with JSON errors.

use serde_json::json;
use test_support::scenario;
use test_support::{Scenario, Target};

use crate::support::spawn_app;

pub const SCENARIOS: &[Scenario] = &[
    scenario!(control_characters_and_bidi_overrides_in_owners_and_cursors_are_422),
    scenario!(long_non_json_and_misrouted_requests_get_json_errors),
];

async fn control_characters_and_bidi_overrides_in_owners_and_cursors_are_422(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    for (owner, says) in [
        ("a\0b", "U+0000 at character 2"),
        ("\0", "U+0000 at character 1"),
        ("red\u{1b}[31m", "U+001B at character 4"),
        ("tab\there", "U+0009 at character 4"),
        ("del\u{7f}", "U+007F at character 4"),
        ("c1\u{85}x", "U+0085 at character 3"),
        ("evil\u{202e}gpj.exe", "U+202E at character 5"),
        ("\u{2066}isolated\u{2069}", "U+2066 at character 1"),
    ] {
        let (status, body) = app
            .service
            .post("/api/accounts", &json!({"owner": owner}), &[])
            .await?;
        assert_eq!(status, 422, "{owner:?}: {body}");
        assert_eq!(body["error"], "invalid_value", "{owner:?}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("owner must not contain control"),
            "{message}"
        );
        assert!(message.ends_with(says), "{owner:?}: {message}");
    }
    let unicode = "Zoë Ångström 李雷 a\u{200d}b";
    let (status, body) = app
        .service
        .post("/api/accounts", &json!({"owner": unicode}), &[])
        .await?;
    assert_eq!(
        (status, body["owner"].as_str()),
        (201, Some(unicode)),
        "{body}"
    );
    for cursor in ["%00", "a%00b", "%E2%80%AE", "%1B"] {
        let (status, body) = app.get(&format!("/api/accounts?after={cursor}")).await?;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("invalid_value")),
            "{body}"
        );
    }
    for path in ["/api/accounts/%00", "/api/accounts/%00/ledger"] {
        let (status, body) = app.get(path).await?;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{body}"
        );
    }
    let (status, body) = app.get("/api/accounts?after=%00&limit=x").await?;
    assert_eq!(status, 422, "{body}");
    Ok(())
}

async fn long_non_json_and_misrouted_requests_get_json_errors(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    app.service.check_http_rules("/api/accounts", "owner").await
}
