//! The `tls {}` block, `allow_non_tls` and `https_port`, on certificates made by the test.

use std::path::PathBuf;
use std::time::Duration;

use super::tests::{error, load};
use crate::tls::{HandshakeFirst, TlsVersion};

/// A self-signed certificate and its key in a fresh directory; returns the `tls {}` lines
/// naming them.
fn files() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = crate::tls::test_certificate(dir.path());
    let lines = format!(
        "cert_file: \"{}\"\n key_file: \"{}\"\n",
        c.display(),
        k.display()
    );
    (dir, lines)
}

#[test]
fn every_tls_setting_reaches_its_option() {
    let (dir, files) = files();
    let ca = dir.path().join("cert.pem");
    let opts = load(&format!(
        "tls {{\n {files} ca_file: \"{}\"\n verify_and_map: true\n timeout: 0.5\n \
         handshake_first: auto\n min_version: \"1.3\"\n connection_rate_limit: 10\n \
         cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n \
         curve_preferences: [X25519, CurveP256]\n \
         pinned_certs: [\"{}\"]\n}}\nallow_non_tls: true\nhttps_port: -1\n",
        ca.display(),
        "ab".repeat(32)
    ))
    .unwrap();
    let tls = opts.tls.unwrap();
    assert!(tls.verify && tls.map);
    assert_eq!(tls.ca_file, Some(ca));
    assert_eq!(tls.timeout, Duration::from_millis(500));
    assert_eq!(
        tls.handshake_first,
        HandshakeFirst::Fallback(Duration::from_millis(50))
    );
    assert_eq!(tls.min_version, TlsVersion::V1_3);
    assert_eq!(tls.rate_limit, 10);
    assert_eq!(tls.pinned_certs, vec![[0xab; 32]]);
    assert_eq!(tls.curve_preferences.unwrap().len(), 2);
    assert!(opts.allow_non_tls);
    assert_eq!(opts.https_port, Some(0));
}

#[test]
fn handshake_first_takes_a_boolean_auto_or_a_delay() {
    let (_dir, files) = files();
    let first = |value: &str| {
        load(&format!("tls {{ {files} handshake_first: {value} }}"))
            .map(|o| o.tls.unwrap().handshake_first)
    };
    assert_eq!(first("true").unwrap(), HandshakeFirst::On);
    assert_eq!(first("false").unwrap(), HandshakeFirst::Off);
    assert_eq!(
        first("\"300ms\"").unwrap(),
        HandshakeFirst::Fallback(Duration::from_millis(300))
    );
    assert_eq!(
        first("300ms").unwrap(),
        HandshakeFirst::Fallback(Duration::from_millis(300))
    );
    assert_eq!(first("auto").unwrap(), first("\"auto_fallback\"").unwrap());
    let bad = first("\"sometimes\"").unwrap_err().to_string();
    assert!(bad.contains("\"sometimes\" is invalid"), "{bad}");
}

#[test]
fn the_tls_timeout_sets_the_default_auth_timeout() {
    let (_dir, files) = files();
    let opts = load(&format!("tls {{ {files} timeout: 3 }}")).unwrap();
    assert_eq!(opts.auth_timeout(), Duration::from_secs(4));
    let opts = load(&format!(
        "tls {{ {files} timeout: 3 }}\nauthorization {{ token: t, timeout: 1 }}"
    ))
    .unwrap();
    assert_eq!(opts.auth_timeout(), Duration::from_secs(1));
}

#[test]
fn broken_tls_settings_are_errors_that_name_the_problem() {
    let (_dir, files) = files();
    let cases = [
        ("tls { }", "missing 'cert_file' in TLS configuration"),
        (
            "tls { cert_file: \"a.pem\" }",
            "missing 'key_file' in TLS configuration",
        ),
        ("tls: true", "expected a block"),
        (
            "tls { cert_file: \"/nonexistent.pem\", key_file: \"/nonexistent-key.pem\" }",
            "error parsing X509 certificate/key pair: /nonexistent.pem",
        ),
        (
            &format!("tls {{ {files} verify: maybe }}"),
            "expected 'verify' to be a boolean",
        ),
        (
            &format!("tls {{ {files} colour: blue }}"),
            "unknown field \"colour\"",
        ),
        (
            &format!("tls {{ {files} cipher_suites: [] }}"),
            "'cipher_suites' cannot be empty",
        ),
        (
            &format!("tls {{ {files} cipher_suites: [NOT_A_SUITE] }}"),
            "unrecognized cipher NOT_A_SUITE",
        ),
        (
            &format!("tls {{ {files} cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA] }}"),
            "is not supported by this server",
        ),
        (
            &format!("tls {{ {files} curve_preferences: [CurveP999] }}"),
            "unrecognized curve preference",
        ),
        (
            &format!("tls {{ {files} pinned_certs: [\"xyz\"] }}"),
            "does not look like hex-encoded",
        ),
        (
            &format!("tls {{ {files} min_version: \"1.1\" }}"),
            "unsupported minimum TLS version",
        ),
        (
            &format!("tls {{ {files} cert_store: WindowsCurrentUser }}"),
            "only available on Windows",
        ),
        (
            &format!("tls {{ {files} verify_cert_and_check_known_urls: true }}"),
            "not supported in this context",
        ),
        (
            &format!(
                "tls {{ {files} ca_file: \"{}\" }}",
                PathBuf::from("/nonexistent-ca.pem").display()
            ),
            "failed to parse root ca certificate",
        ),
    ];
    for (text, want) in cases {
        let got = error(text);
        assert!(got.contains(want), "{text}\n  gave: {got}\n  want: {want}");
    }
}

#[test]
fn verify_and_map_false_leaves_verify_as_it_was() {
    let (_dir, files) = files();
    let tls = load(&format!(
        "tls {{ {files} verify: true, verify_and_map: false }}"
    ))
    .unwrap()
    .tls
    .unwrap();
    assert!(tls.verify && !tls.map);
    let tls = load(&format!("tls {{ {files} verify_and_map: true }}"))
        .unwrap()
        .tls
        .unwrap();
    assert!(tls.verify && tls.map);
    assert!(load(&format!(
        "tls {{ {files} verify_cert_and_check_known_urls: false }}"
    ))
    .is_ok());
}
