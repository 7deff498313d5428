//! A service's broker connection over TLS (`NATS_TLS_CA`, a `tls://` URL), against the bundled
//! broker and nats-server, each started with `--tls` and a certificate made here.

use anyhow::Context;
use broker::harness::{ServerKind, ServerProcess};
use clap::Parser;
use service_kit::nats_auth::NatsAuth;
use test_support::brokers::{bundled_path, BrokerTarget};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    auth: NatsAuth,
}

fn auth(args: &[&str]) -> NatsAuth {
    Cli::parse_from(std::iter::once("svc").chain(args.iter().copied())).auth
}

/// Each server, the bundled broker built first if needed.
fn servers() -> Vec<ServerKind> {
    let bundled = BrokerTarget::bundled(bundled_path());
    if let Some(why) = bundled.unavailable() {
        panic!("the bundled broker cannot run: {why}");
    }
    vec![ServerKind::Bundled(bundled_path()), ServerKind::Reference]
}

#[test]
fn a_service_trusting_the_brokers_ca_connects_over_tls_and_one_without_it_does_not(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?
        .self_signed(&key)?;
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    let (c, k) = (
        cert_path.to_str().context("path")?,
        key_path.to_str().context("path")?,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for kind in servers() {
        let server = ServerProcess::start(&kind, &["--tls", "--tlscert", c, "--tlskey", k])?;
        let url = format!("tls://127.0.0.1:{}", server.port());
        runtime.block_on(async {
            let trusting = auth(&["--nats-tls-ca", c])
                .load_for(&url)
                .map_err(anyhow::Error::msg)?;
            let client = trusting
                .apply(async_nats::ConnectOptions::new())
                .connect(&url)
                .await
                .with_context(|| format!("{kind}: connecting with the CA"))?;
            client.flush().await?;
            let stranger = auth(&[]).load_for(&url).map_err(anyhow::Error::msg)?;
            let refused = stranger
                .apply(async_nats::ConnectOptions::new())
                .connect(&url)
                .await;
            anyhow::ensure!(
                refused.is_err(),
                "{kind}: a client without the CA connected"
            );
            anyhow::Ok(())
        })?;
    }
    Ok(())
}
