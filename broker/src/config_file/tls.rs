//! The `tls {}` block: the client port's certificate, client verification and handshake
//! settings, in nats-server's words.

use std::path::PathBuf;
use std::time::Duration;

use super::apply::{boolean, invalid, string, unsupported};
use super::value::{classify, parse_duration, Entry, Map, Node, Value};
use super::ConfigError;
use crate::tls::{
    parse_pin, CertPair, HandshakeFirst, TlsSettings, TlsVersion, DEFAULT_HANDSHAKE_FIRST_FALLBACK,
};

/// Settings of `tls {}` that only make sense on Windows or with OCSP, which this broker does
/// not have: refused with a reason rather than ignored.
const REFUSED: &[(&str, &str)] = &[
    (
        "cert_store",
        "certificate stores are only available on Windows",
    ),
    (
        "cert_match_by",
        "certificate stores are only available on Windows",
    ),
    (
        "cert_match",
        "certificate stores are only available on Windows",
    ),
    (
        "ca_certs_match",
        "certificate stores are only available on Windows",
    ),
    (
        "cert_match_skip_invalid",
        "certificate stores are only available on Windows",
    ),
    ("ocsp_peer", "OCSP is not supported"),
];

// tls { cert_file: ..., key_file: ..., ca_file: ..., verify: true, timeout: 2, ... }
pub(super) fn tls(entry: &Entry) -> Result<TlsSettings, ConfigError> {
    let (key, node) = (entry.key.as_str(), &entry.node);
    let Value::Map(map) = &node.value else {
        return Err(invalid(
            key,
            node,
            "expected a block: tls { cert_file: ..., key_file: ... }",
        ));
    };
    let mut s = TlsSettings::new(PathBuf::new(), PathBuf::new());
    s.certs.clear();
    let (mut cert_file, mut key_file) = (None, None);
    for e in &map.entries {
        let k = e.key.to_ascii_lowercase();
        let (k, n) = (k.as_str(), &e.node);
        match k {
            "cert_file" => cert_file = Some(file(k, n, "cert_file")?),
            "key_file" => key_file = Some(file(k, n, "key_file")?),
            "ca_file" => s.ca_file = Some(file(k, n, "ca_file")?),
            "insecure" => drop(flag(k, n)?),
            "verify" => s.verify = flag(k, n)?,
            // As nats-server: `true` turns verification on too, `false` leaves `verify` alone.
            "verify_and_map" => {
                s.map = flag(k, n)?;
                s.verify |= s.map;
            }
            "verify_cert_and_check_known_urls" => {
                if flag(k, n)? {
                    return Err(invalid(
                        k,
                        n,
                        "verify_cert_and_check_known_urls not supported in this context",
                    ));
                }
            }
            "cipher_suites" => s.cipher_suites = Some(names(k, n, "cipher_suites")?),
            "curve_preferences" => s.curve_preferences = Some(names(k, n, "curve_preferences")?),
            "timeout" => s.timeout = timeout(k, n)?,
            "connection_rate_limit" => s.rate_limit = rate_limit(k, n)?,
            "pinned_certs" => s.pinned_certs = pins(k, n)?,
            "handshake_first" | "first" | "immediate" => s.handshake_first = first(k, n)?,
            "certs" | "certificates" => s.certs = cert_list(k, n)?,
            "min_version" => {
                s.min_version = TlsVersion::parse(&string(k, n)?)
                    .map_err(|m| invalid(k, n, format!("error parsing tls config: {m}")))?
            }
            _ => match REFUSED.iter().find(|(name, _)| *name == k) {
                Some((_, why)) => return Err(unsupported(e, why)),
                None if e.used_as_variable => {}
                None => {
                    return Err(invalid(
                        key,
                        node,
                        format!("error parsing tls config, unknown field \"{}\"", e.key),
                    ))
                }
            },
        }
    }
    match (cert_file, key_file) {
        (Some(_), _) if !s.certs.is_empty() => {
            return Err(invalid(
                key,
                node,
                "error parsing tls config, cannot combine 'cert_file' option with 'certs' option",
            ))
        }
        (Some(cert_file), Some(key_file)) => s.certs.push(CertPair {
            cert_file,
            key_file,
        }),
        (Some(_), None) => {
            return Err(invalid(
                key,
                node,
                "missing 'key_file' in TLS configuration",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                key,
                node,
                "missing 'cert_file' in TLS configuration",
            ))
        }
        (None, None) if s.certs.is_empty() => {
            return Err(invalid(
                key,
                node,
                "missing 'cert_file' in TLS configuration",
            ))
        }
        (None, None) => {}
    }
    // Read the files now, so that `-t` and a bad file fail at start-up with the position.
    crate::tls::load::server_config(&s).map_err(|m| invalid(key, node, m))?;
    Ok(s)
}

fn file(key: &str, node: &Node, name: &str) -> Result<PathBuf, ConfigError> {
    match node.value {
        Value::String(_) => Ok(PathBuf::from(&node.text)),
        _ => Err(invalid(
            key,
            node,
            format!("error parsing tls config, expected '{name}' to be filename"),
        )),
    }
}

fn flag(key: &str, node: &Node) -> Result<bool, ConfigError> {
    boolean(key, node).map_err(|_| {
        invalid(
            key,
            node,
            format!("error parsing tls config, expected '{key}' to be a boolean"),
        )
    })
}

fn names(key: &str, node: &Node, name: &str) -> Result<Vec<String>, ConfigError> {
    let Value::Array(items) = &node.value else {
        return Err(invalid(
            key,
            node,
            format!("error parsing tls config, '{name}' must be a list"),
        ));
    };
    if items.is_empty() {
        return Err(invalid(
            key,
            node,
            format!("error parsing tls config, '{name}' cannot be empty"),
        ));
    }
    items.iter().map(|item| string(key, item)).collect()
}

/// Seconds (`2`, `0.5`) or a duration (`"2s"`).
fn timeout(key: &str, node: &Node) -> Result<Duration, ConfigError> {
    let parsed = match node.value {
        Value::Integer(n) if n > 0 => Ok(Duration::from_secs(n as u64)),
        Value::Float(f) if f > 0.0 => Duration::try_from_secs_f64(f).map_err(|e| e.to_string()),
        Value::String(_) => parse_duration(&node.text),
        _ => Err("wrong type".to_owned()),
    };
    match parsed {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(invalid(
            key,
            node,
            "error parsing tls config, 'timeout' must be greater than zero",
        )),
        Err(m) => Err(invalid(
            key,
            node,
            format!("error parsing tls config, 'timeout' {m}"),
        )),
    }
}

fn rate_limit(key: &str, node: &Node) -> Result<u64, ConfigError> {
    match node.value {
        Value::Integer(n) if n >= 0 => Ok(n as u64),
        _ => Err(invalid(
            key,
            node,
            "error parsing tls config, 'connection_rate_limit' wrong type",
        )),
    }
}

fn pins(key: &str, node: &Node) -> Result<Vec<[u8; 32]>, ConfigError> {
    const EXPECTED: &str = "error parsing tls config, expected 'pinned_certs' to be a list of \
                            hex-encoded sha256 of DER encoded SubjectPublicKeyInfo";
    let Value::Array(items) = &node.value else {
        return Err(invalid(key, node, EXPECTED));
    };
    items
        .iter()
        .map(|item| {
            parse_pin(&item.text).ok_or_else(|| {
                invalid(
                    key,
                    item,
                    format!(
                        "error parsing tls config, 'pinned_certs' key {} does not look like \
                         hex-encoded sha256 of DER encoded SubjectPublicKeyInfo",
                        item.text
                    ),
                )
            })
        })
        .collect()
}

// handshake_first: true | false | "auto" | "300ms"
fn first(key: &str, node: &Node) -> Result<HandshakeFirst, ConfigError> {
    let word = node.text.to_ascii_lowercase();
    if let (Value::Bool(b), false) = (classify(&node.text), matches!(node.value, Value::Map(_))) {
        return Ok(if b {
            HandshakeFirst::On
        } else {
            HandshakeFirst::Off
        });
    }
    match word.as_str() {
        "auto" | "auto_fallback" => Ok(HandshakeFirst::Fallback(DEFAULT_HANDSHAKE_FIRST_FALLBACK)),
        _ => match (&node.value, parse_duration(&node.text)) {
            (Value::String(_), Ok(d)) if !d.is_zero() => Ok(HandshakeFirst::Fallback(d)),
            (Value::String(_), _) => Err(invalid(
                key,
                node,
                format!("field \"{key}\"'s value \"{}\" is invalid", node.text),
            )),
            _ => Err(invalid(
                key,
                node,
                format!("field \"{key}\" should be a boolean or a string"),
            )),
        },
    }
}

// certs: [ { cert_file: a.pem, key_file: a-key.pem }, ... ]
fn cert_list(key: &str, node: &Node) -> Result<Vec<CertPair>, ConfigError> {
    let Value::Array(items) = &node.value else {
        return Err(invalid(
            key,
            node,
            "error parsing certificates config: expected a list",
        ));
    };
    items
        .iter()
        .map(|item| {
            let Value::Map(Map { entries }) = &item.value else {
                return Err(invalid(key, item, "error parsing certificates config: expected a block"));
            };
            let (mut cert, mut private) = (None, None);
            for e in entries {
                match e.key.to_ascii_lowercase().as_str() {
                    "cert_file" => cert = Some(file("cert_file", &e.node, "cert_file")?),
                    "key_file" => private = Some(file("key_file", &e.node, "key_file")?),
                    _ => {
                        return Err(invalid(
                            key,
                            item,
                            format!("error parsing tls certs config, unknown field \"{}\"", e.key),
                        ))
                    }
                }
            }
            match (cert, private) {
                (Some(cert_file), Some(key_file)) => Ok(CertPair {
                    cert_file,
                    key_file,
                }),
                _ => Err(invalid(
                    key,
                    item,
                    "error parsing certificates config: both 'cert_file' and 'cert_key' options are required",
                )),
            }
        })
        .collect()
}
