//! From [`TlsSettings`] to a rustls server configuration: reads the certificate, key and CA
//! files, and narrows the cipher suites, key exchange groups and protocol versions.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::settings::{CertPair, TlsSettings, TlsVersion};

/// Builds the server configuration; the error is one line in nats-server's words where it has
/// them.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(provider(settings)?);
    let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("error building the TLS configuration: {e}"))?;
    let builder = if settings.verify {
        let roots = client_roots(settings.ca_file.as_deref())?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("error building the client certificate verifier: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        if let Some(ca) = &settings.ca_file {
            // Checked even when unused, as nats-server parses it whatever `verify` says.
            client_roots(Some(ca))?;
        }
        builder.with_no_client_auth()
    };
    let keys = settings
        .certs
        .iter()
        .enumerate()
        .map(|(i, pair)| certified_key(pair, &provider, i, settings.certs.len()))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err("missing 'cert_file' in TLS configuration".to_owned());
    }
    // Each certificate's DNS names, read once here rather than at every handshake.
    let keys = keys
        .into_iter()
        .map(|key| {
            let names = key
                .end_entity_cert()
                .ok()
                .and_then(|der| super::peer::dns_names(der.as_ref()))
                .unwrap_or_default();
            (names, key)
        })
        .collect();
    let config = builder.with_cert_resolver(Arc::new(ByServerName { keys }));
    Ok(Arc::new(config))
}

/// The ring provider narrowed to the configured suites and groups.
fn provider(settings: &TlsSettings) -> Result<CryptoProvider, String> {
    let mut provider = ring::default_provider();
    if let Some(names) = &settings.cipher_suites {
        if names.is_empty() {
            return Err("error parsing tls config, 'cipher_suites' cannot be empty".to_owned());
        }
        let wanted = names
            .iter()
            .map(|name| cipher_suite(&provider, name))
            .collect::<Result<Vec<_>, _>>()?;
        // TLS 1.3 suites cannot be chosen (as in Go): every one stays.
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13 || wanted.iter().any(|w| w.suite() == s.suite())
        });
    }
    if let Some(names) = &settings.curve_preferences {
        if names.is_empty() {
            return Err("error parsing tls config, 'curve_preferences' cannot be empty".to_owned());
        }
        let mut groups = Vec::new();
        for name in names {
            let group = match name.as_str() {
                "X25519" => rustls::NamedGroup::X25519,
                "CurveP256" => rustls::NamedGroup::secp256r1,
                "CurveP384" => rustls::NamedGroup::secp384r1,
                "CurveP521" => {
                    return Err(format!(
                        "curve preference {name} is not supported by this server"
                    ))
                }
                _ => return Err(format!("unrecognized curve preference {name}")),
            };
            groups.extend(
                provider
                    .kx_groups
                    .iter()
                    .copied()
                    .filter(|g| g.name() == group),
            );
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

/// The suite Go calls `name`; Go's TLS 1.2 suites that rustls leaves out (CBC, RC4, 3DES, RSA
/// key exchange) are refused with a reason rather than silently dropped.
fn cipher_suite(provider: &CryptoProvider, name: &str) -> Result<SupportedCipherSuite, String> {
    provider
        .cipher_suites
        .iter()
        .find(|s| go_cipher_name(s.suite()) == name)
        .copied()
        .ok_or_else(|| {
            if name.starts_with("TLS_") && name.contains("_WITH_") {
                format!("cipher suite {name} is not supported by this server")
            } else {
                format!("unrecognized cipher {name}")
            }
        })
}

/// Go's name for a suite, which nats-server uses in its config and in `/connz`.
pub fn go_cipher_name(suite: rustls::CipherSuite) -> String {
    let name = format!("{suite:?}");
    let name = name.replacen("TLS13_", "TLS_", 1);
    // Go names the TLS 1.2 ChaCha20 suites without their hash.
    match name.strip_suffix("_CHACHA20_POLY1305_SHA256") {
        Some(stem) if stem.contains("_WITH") => format!("{stem}_CHACHA20_POLY1305"),
        _ => name,
    }
}

/// The CAs client certificates must chain to: `ca_file`, else the system's roots.
fn client_roots(ca_file: Option<&Path>) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = read_certs(path).map_err(|_| "failed to parse root ca certificate")?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|_| "failed to parse root ca certificate".to_owned())?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("failed to parse root ca certificate".to_owned());
    }
    Ok(Arc::new(roots))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {}", path.display(), pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {}", path.display(), pem_error(e)))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    Ok(certs)
}

fn pem_error(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(e) => e.to_string(),
        other => format!("{other:?}"),
    }
}

fn certified_key(
    pair: &CertPair,
    provider: &CryptoProvider,
    index: usize,
    count: usize,
) -> Result<Arc<CertifiedKey>, String> {
    let which = if count > 1 {
        format!(" {}/{}", index + 1, count)
    } else {
        String::new()
    };
    let fail = |detail: String| format!("error parsing X509 certificate/key pair{which}: {detail}");
    let chain = read_certs(&pair.cert_file).map_err(fail)?;
    let key = PrivateKeyDer::from_pem_file(&pair.key_file)
        .map_err(|e| fail(format!("{}: {}", pair.key_file.display(), pem_error(e))))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| fail(format!("{}: {e}", pair.key_file.display())))?;
    let certified = CertifiedKey::new(chain, key);
    certified
        .keys_match()
        .map_err(|_| fail("private key does not match public key".to_owned()))?;
    Ok(Arc::new(certified))
}

/// Picks the certificate whose names match the server name the client asked for (SNI), else the
/// first, as Go does with several certificates.
#[derive(Debug)]
struct ByServerName {
    keys: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for ByServerName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let wanted = hello.server_name().map(str::to_ascii_lowercase);
        if let (Some(name), true) = (wanted, self.keys.len() > 1) {
            let found = self
                .keys
                .iter()
                .find(|(names, _)| names.iter().any(|n| dns_matches(n, &name)));
            if let Some((_, key)) = found {
                return Some(key.clone());
            }
        }
        self.keys.first().map(|(_, key)| key.clone())
    }
}

/// RFC 6125 matching: a `*` stands for exactly the leftmost label.
fn dns_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => name
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_names_of_the_suites() {
        use rustls::CipherSuite as S;
        assert_eq!(
            go_cipher_name(S::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            go_cipher_name(S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"
        );
        assert_eq!(
            go_cipher_name(S::TLS13_CHACHA20_POLY1305_SHA256),
            "TLS_CHACHA20_POLY1305_SHA256"
        );
        assert_eq!(
            go_cipher_name(S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        );
    }

    #[test]
    fn wildcards_stand_for_one_label() {
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("Example.com", "example.com"));
    }
}
