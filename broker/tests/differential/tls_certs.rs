//! The certificates of the TLS scenarios: a CA, server certificates and client certificates made
//! with rcgen for each scenario, in a directory removed when the scenario ends.

use std::path::PathBuf;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

/// A CA, a server certificate for 127.0.0.1 and localhost, and client certificates, written
/// as PEM files into a directory removed on drop.
pub struct Certs {
    dir: tempfile::TempDir,
}

/// A client certificate's file names.
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    pub fn new() -> anyhow::Result<Certs> {
        let certs = Certs {
            dir: tempfile::Builder::new().prefix("tls-certs-").tempdir()?,
        };
        let (ca, ca_key) = certs.authority("ca", "Test CA")?;
        let key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        server.distinguished_name = dn(&[(DnType::CommonName, "broker test server")]);
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server.signed_by(&key, &ca, &ca_key)?;
        certs.write("server-cert.pem", &server.pem())?;
        certs.write("server-key.pem", &key.serialize_pem())?;
        // alice: an email address; bob: a subject only; carol: nobody configured.
        certs.client(
            &ca,
            &ca_key,
            "alice",
            &[(DnType::CommonName, "alice")],
            Some("alice@example.com"),
        )?;
        certs.client(
            &ca,
            &ca_key,
            "bob",
            &[
                (DnType::OrganizationalUnitName, "dev"),
                (DnType::CommonName, "bob"),
            ],
            None,
        )?;
        certs.client(
            &ca,
            &ca_key,
            "carol",
            &[(DnType::CommonName, "carol")],
            None,
        )?;
        // mallory: signed by a CA the server does not trust.
        let (other, other_key) = certs.authority("other-ca", "Other CA")?;
        // A second server certificate, from the other CA, for rotation by a reload.
        let key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        server.distinguished_name = dn(&[(DnType::CommonName, "broker test server, renewed")]);
        let server = server.signed_by(&key, &other, &other_key)?;
        certs.write("server2-cert.pem", &server.pem())?;
        certs.write("server2-key.pem", &key.serialize_pem())?;
        certs.client(
            &other,
            &other_key,
            "mallory",
            &[(DnType::CommonName, "alice")],
            Some("alice@example.com"),
        )?;
        Ok(certs)
    }

    fn authority(&self, name: &str, cn: &str) -> anyhow::Result<(rcgen::Certificate, KeyPair)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = dn(&[(DnType::CommonName, cn)]);
        let cert = params.self_signed(&key)?;
        self.write(&format!("{name}.pem"), &cert.pem())?;
        Ok((cert, key))
    }

    fn client(
        &self,
        ca: &rcgen::Certificate,
        ca_key: &KeyPair,
        name: &str,
        subject: &[(DnType, &str)],
        email: Option<&str>,
    ) -> anyhow::Result<()> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(subject);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some(email) = email {
            params.subject_alt_names = vec![SanType::Rfc822Name(email.try_into()?)];
        }
        let cert = params.signed_by(&key, ca, ca_key)?;
        self.write(&format!("{name}-cert.pem"), &cert.pem())?;
        self.write(&format!("{name}-key.pem"), &key.serialize_pem())?;
        Ok(())
    }

    fn write(&self, name: &str, text: &str) -> anyhow::Result<()> {
        std::fs::write(self.path(name), text).with_context(|| format!("writing {name}"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    pub fn user(&self, name: &str) -> ClientCert {
        ClientCert {
            cert: self.path(&format!("{name}-cert.pem")),
            key: self.path(&format!("{name}-key.pem")),
        }
    }

    /// A `tls {}` block with the server certificate and `extra` settings.
    pub fn block(&self, extra: &str) -> String {
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  {extra}\n}}\n",
            self.path("server-cert.pem").display(),
            self.path("server-key.pem").display()
        )
    }

    /// `ca_file` of this CA, as a `tls {}` setting.
    pub fn ca_setting(&self) -> String {
        format!("ca_file: \"{}\"", self.ca().display())
    }
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (t, v) in parts {
        dn.push(t.clone(), *v);
    }
    dn
}
