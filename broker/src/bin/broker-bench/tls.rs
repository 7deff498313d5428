//! `--tls`: the servers the bench starts get a certificate made for the run, and the raw
//! clients upgrade to TLS when a server's INFO says `tls_required`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tempfile::TempDir;

/// The client configuration the raw clients use, set once before any connects.
static CLIENT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
/// The CA file [`trust`] added, for the async-nats clients.
static CA_FILE: OnceLock<PathBuf> = OnceLock::new();

/// A self-signed certificate for 127.0.0.1 and localhost, in a directory removed on drop.
pub(crate) struct ServerCert {
    dir: TempDir,
}

impl ServerCert {
    /// Makes the certificate and trusts it in the raw clients.
    pub(crate) fn generate() -> anyhow::Result<ServerCert> {
        let dir = tempfile::Builder::new()
            .prefix("broker-bench-tls-")
            .tempdir()
            .context("creating a directory for the certificate")?;
        let key = rcgen::KeyPair::generate().context("making a key")?;
        let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .and_then(|p| p.self_signed(&key))
            .context("making a certificate")?;
        let made = ServerCert { dir };
        std::fs::write(made.cert(), cert.pem()).context("writing the certificate")?;
        std::fs::write(made.key(), key.serialize_pem()).context("writing the key")?;
        trust(Some(made.cert()))?;
        Ok(made)
    }

    pub(crate) fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub(crate) fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

/// Sets the raw clients' TLS roots: the system's, plus `ca` when given (`--tls-ca`, or the
/// certificate the bench made).
pub(crate) fn trust(ca: Option<PathBuf>) -> anyhow::Result<()> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = ca {
        let _ = CA_FILE.set(ca.clone());
        for cert in CertificateDer::pem_file_iter(&ca)
            .with_context(|| format!("reading {}", ca.display()))?
        {
            roots
                .add(cert.with_context(|| format!("reading {}", ca.display()))?)
                .with_context(|| format!("using {} as a CA", ca.display()))?;
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let _ = CLIENT.set(Arc::new(config));
    Ok(())
}

/// The raw clients' TLS configuration; the system's roots unless [`trust`] was called.
pub(crate) fn client_config() -> anyhow::Result<Arc<ClientConfig>> {
    if CLIENT.get().is_none() {
        trust(None)?;
    }
    CLIENT.get().cloned().context("no TLS client configuration")
}

/// Connects an async-nats client to `url`, trusting the CA of [`trust`] for TLS.
pub(crate) async fn connect(url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    let options = async_nats::ConnectOptions::new();
    let options = match CA_FILE.get() {
        Some(ca) => options.add_root_certificates(ca.clone()),
        None => options,
    };
    options.connect(url).await
}
