//! `exports` and `imports` of accounts in the configuration file.

use std::time::Duration;

use super::tests::{error, load};
use crate::options::{Export, ExportKind, Import, ImportKind, ResponseType};

#[test]
fn exports_and_imports_are_read_with_their_defaults() {
    let opts = load(
        r#"accounts {
  A: { exports: [
    { stream: "news.>" }
    { service: "help", accounts: [B], response_type: chunked, response_threshold: "5s" }
    { service: "plain.*" }
  ] }
  B: { imports: [
    { stream: { account: A, subject: "news.>" }, prefix: "a" }
    { stream: { account: A, subject: "news.x" }, to: "x" }
    { service: { account: A, subject: "help" }, to: "ask", share: true }
    { service: { account: A, subject: "plain.one" } }
  ] }
}"#,
    )
    .unwrap();
    let [a, b] = opts.accounts.as_slice() else {
        panic!("two accounts")
    };
    assert_eq!(
        a.exports,
        [
            Export {
                subject: "news.>".into(),
                kind: ExportKind::Stream,
                accounts: vec![],
            },
            Export {
                subject: "help".into(),
                kind: ExportKind::Service {
                    response: ResponseType::Chunked,
                    threshold: Duration::from_secs(5),
                },
                accounts: vec!["B".into()],
            },
            Export {
                subject: "plain.*".into(),
                kind: ExportKind::Service {
                    response: ResponseType::Singleton,
                    threshold: crate::links::DEFAULT_RESPONSE_THRESHOLD,
                },
                accounts: vec![],
            },
        ]
    );
    let import = |subject: &str, kind| Import {
        account: "A".into(),
        subject: subject.into(),
        kind,
    };
    assert_eq!(
        b.imports,
        [
            import(
                "news.>",
                ImportKind::Stream {
                    to: Some("a.news.>".into())
                }
            ),
            import(
                "news.x",
                ImportKind::Stream {
                    to: Some("x".into())
                }
            ),
            import(
                "help",
                ImportKind::Service {
                    to: Some("ask".into()),
                    share: true
                }
            ),
            import(
                "plain.one",
                ImportKind::Service {
                    to: None,
                    share: false
                }
            ),
        ]
    );
}

#[test]
fn imports_the_exporter_does_not_allow_are_refused() {
    let exporter =
        r#"A: { exports: [ { stream: "news.>" }, { service: "help", accounts: [C] } ] }"#;
    let cases = [
        // Not exported at all, or exported as the other kind.
        (
            r#"{ stream: { account: A, subject: "other" } }"#,
            "stream import not authorized",
        ),
        (
            r#"{ service: { account: A, subject: "news.x" } }"#,
            "service import not authorized",
        ),
        // Wider than the export.
        (
            r#"{ stream: { account: A, subject: ">" } }"#,
            "stream import not authorized",
        ),
        // Exported to another account only.
        (
            r#"{ service: { account: A, subject: "help" } }"#,
            "service import not authorized",
        ),
        (
            r#"{ stream: { account: Z, subject: "x" } }"#,
            "\"Z\" account not defined",
        ),
    ];
    for (import, expected) in cases {
        let text = format!("accounts {{ {exporter}\n B: {{ imports: [ {import} ] }}\n C: {{}} }}");
        let message = error(&text);
        assert!(message.contains(expected), "{import}: {message}");
    }
    let unknown_account = error(r#"accounts { A: { exports: [ { stream: x, accounts: [Q] } ] } }"#);
    assert!(
        unknown_account.contains("\"Q\" account not defined"),
        "{unknown_account}"
    );
}

#[test]
fn malformed_entries_get_a_clear_error() {
    let cases = [
        (
            r#"exports: [ { stream: "a", service: "b" } ]"#,
            "either a stream or a service",
        ),
        (
            r#"exports: [ { accounts: [B] } ]"#,
            "needs `stream` or `service`",
        ),
        (
            r#"exports: [ { stream: "a", response_type: stream } ]"#,
            "service export only",
        ),
        (
            r#"exports: [ { service: "a", response_type: many } ]"#,
            "unknown response type",
        ),
        (
            r#"exports: [ { service: "a", latency: { subject: lat } } ]"#,
            "latency",
        ),
        (r#"exports: [ { service: "a..b" } ]"#, "not a valid subject"),
        (r#"exports: [ { colour: blue } ]"#, "unknown field"),
        (r#"exports: { stream: a }"#, "expected a list"),
        (
            r#"imports: [ { stream: { account: A } } ]"#,
            "an account name and a subject",
        ),
        (r#"imports: [ { stream: "x" } ]"#, "expected a map"),
        (
            r#"imports: [ { stream: { account: A, subject: x }, prefix: p, to: y } ]"#,
            "not both",
        ),
        (
            r#"imports: [ { stream: { account: A, subject: x }, prefix: "p.*" } ]"#,
            "wildcards",
        ),
        (
            r#"imports: [ { service: { account: A, subject: x }, prefix: p } ]"#,
            "takes `to`, not `prefix`",
        ),
    ];
    for (entry, expected) in cases {
        let message = error(&format!("accounts {{ A: {{ {entry} }} }}"));
        assert!(message.contains(expected), "{entry}: {message}");
    }
}

#[test]
fn a_mapping_that_cannot_work_is_refused() {
    let text = r#"accounts {
  A: { exports: [ { stream: "a.>" } ] }
  B: { imports: [ { stream: { account: A, subject: "a.>" }, to: "b.*" } ] }
}"#;
    let message = error(text);
    assert!(message.contains("import \"a.>\""), "{message}");
}
