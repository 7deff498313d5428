//! TLS on the client port: INFO's TLS fields, the handshake after INFO and before it
//! (`handshake_first`, with and without fallback), `allow_non_tls`, client certificates
//! (`verify`, `verify_and_map`, `pinned_certs`), the `--tls*` flags, `/connz`'s TLS fields and
//! monitoring over HTTPS. Certificates are made by each scenario, in its own directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use broker::harness::{ServerProcess, HTTPS_MONITOR};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::raw::{RawClient, WAIT};
use crate::tls_certs::{Certs, ClientCert};
use crate::{block_on, scenarios, with_log, within, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        tls_info_says_tls_required_and_clients_connect_over_tls,
        a_client_that_does_not_upgrade_is_closed_without_an_answer,
        tls_verify_admits_only_certificates_the_ca_signed,
        verify_and_map_logs_in_the_user_the_certificate_names,
        handshake_first_starts_with_the_handshake_and_sends_info_over_tls,
        handshake_first_auto_still_serves_clients_that_wait_for_info,
        allow_non_tls_lets_each_client_choose,
        tls_flags_turn_tls_on_and_tls_false_turns_the_files_tls_off,
        connz_shows_the_tls_version_cipher_and_client_certificate,
        pinned_certs_admit_only_the_listed_client_keys,
        the_monitoring_port_serves_https_with_the_client_ports_certificate,
        broken_tls_settings_stop_the_server_at_start,
        a_reload_rotates_the_certificate_for_new_connections_only,
        with_verify_and_map_connect_cannot_name_the_user,
    ]
}

/// Connect options trusting the test CA, presenting `cert` when given.
fn tls_options(certs: &Certs, cert: Option<&ClientCert>) -> async_nats::ConnectOptions {
    let options = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(certs.ca())
        .connection_timeout(WAIT)
        .max_reconnects(Some(0));
    match cert {
        Some(c) => options.add_client_certificate(c.cert.clone(), c.key.clone()),
        None => options,
    }
}

/// Connects with `options` and checks a message goes round; returns the connected client.
async fn round_trip(
    port: u16,
    options: async_nats::ConnectOptions,
) -> anyhow::Result<async_nats::Client> {
    let connect = options.connect(format!("tls://127.0.0.1:{port}"));
    let client = within(WAIT, "connecting over TLS", connect).await??;
    let mut sub = client.subscribe("tls.check").await?;
    client.publish("tls.check", "over tls".into()).await?;
    client.flush().await?;
    let msg = within(WAIT, "the message back", sub.next())
        .await?
        .context("subscription ended")?;
    ensure!(msg.payload.as_ref() == b"over tls", "got {msg:?}");
    Ok(client)
}

/// Expects a connection with `options` to fail.
async fn refused(port: u16, options: async_nats::ConnectOptions, what: &str) -> anyhow::Result<()> {
    let attempt = options.connect(format!("tls://127.0.0.1:{port}"));
    match within(WAIT, what, attempt).await? {
        Ok(client) => {
            // A refused login can show only at the first round trip.
            if client.flush().await.is_ok()
                && client.connection_state() == async_nats::connection::State::Connected
            {
                bail!("{what}: the connection was accepted");
            }
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

fn start(t: &Target, config: &str, args: &[&str]) -> anyhow::Result<ServerProcess> {
    t.start_with_config(config, args)
}

/// A started server's ports.
struct Ports {
    client: u16,
    monitor: u16,
}

/// Starts a server with `config` and `args`, runs `body` against it with the certificates, and
/// adds the server's log to a failure.
fn run_on<F, Fut>(
    t: &Target,
    config: &str,
    args: &[&str],
    certs: Certs,
    body: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Certs, Ports) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let server = start(t, config, args)?;
    let ports = Ports {
        client: server.port(),
        monitor: server.http_port(),
    };
    with_log(&server, block_on(body(certs, ports)))
}

fn tls_info_says_tls_required_and_clients_connect_over_tls(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    run_on(t, &certs.block(""), &[], certs, |certs, ports| async move {
        let port = ports.client;
        let info = RawClient::connect(port).await?.info;
        ensure!(info["tls_required"] == true, "INFO: {info}");
        ensure!(info["tls_verify"].is_null(), "INFO: {info}");
        ensure!(info["tls_available"].is_null(), "INFO: {info}");
        round_trip(port, tls_options(&certs, None)).await?;
        Ok(())
    })
}

fn a_client_that_does_not_upgrade_is_closed_without_an_answer(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    run_on(
        t,
        &certs.block(""),
        &[],
        certs,
        |_certs, ports| async move {
            let port = ports.client;
            let exchange = async {
                let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
                let mut info = Vec::new();
                while !info.ends_with(b"\r\n") {
                    let mut byte = [0u8; 1];
                    ensure!(tcp.read(&mut byte).await? == 1, "closed before INFO ended");
                    info.push(byte[0]);
                }
                tcp.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
                    .await?;
                let mut rest = Vec::new();
                // Reset or EOF: either way, the end of the connection.
                let _ = tcp.read_to_end(&mut rest).await;
                anyhow::Ok(rest)
            };
            let rest = within(WAIT, "the server closing the connection", exchange).await??;
            ensure!(
                !String::from_utf8_lossy(&rest).contains("PONG"),
                "a clear-text PING was answered: {rest:?}"
            );
            Ok(())
        },
    )
}

fn tls_verify_admits_only_certificates_the_ca_signed(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let config = certs.block(&format!("{}\n  verify: true", certs.ca_setting()));
    run_on(t, &config, &[], certs, |certs, ports| async move {
        let port = ports.client;
        let info = RawClient::connect(port).await?.info;
        ensure!(
            info["tls_required"] == true && info["tls_verify"] == true,
            "INFO: {info}"
        );
        round_trip(port, tls_options(&certs, Some(&certs.user("alice")))).await?;
        refused(port, tls_options(&certs, None), "no client certificate").await?;
        refused(
            port,
            tls_options(&certs, Some(&certs.user("mallory"))),
            "a certificate of another CA",
        )
        .await
    })
}

fn verify_and_map_logs_in_the_user_the_certificate_names(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let config = format!(
        "{}authorization {{\n  users: [\n    {{user: \"alice@example.com\"}}\n    {{user: \"CN=bob,OU=dev\", permissions: {{publish: \"bob.>\", subscribe: \"bob.>\"}}}}\n  ]\n}}\n",
        certs.block(&format!("{}\n  verify_and_map: true", certs.ca_setting()))
    );
    run_on(t, &config, &[], certs, |certs, ports| async move {
        let (port, http) = (ports.client, ports.monitor);
        let info = RawClient::connect(port).await?.info;
        ensure!(
            info["auth_required"] == true && info["tls_verify"] == true,
            "INFO: {info}"
        );
        let alice = within(
            WAIT,
            "alice connecting",
            tls_options(&certs, Some(&certs.user("alice")))
                .name("alice")
                .connect(format!("tls://127.0.0.1:{port}")),
        )
        .await??;
        alice.flush().await?;
        // bob logs in as the user his subject names, whose permissions allow bob.>.
        let bob = within(
            WAIT,
            "bob connecting",
            tls_options(&certs, Some(&certs.user("bob")))
                .name("bob")
                .connect(format!("tls://127.0.0.1:{port}")),
        )
        .await??;
        let mut sub = bob.subscribe("bob.x").await?;
        bob.publish("bob.x", "mine".into()).await?;
        bob.flush().await?;
        within(WAIT, "bob's message", sub.next())
            .await?
            .context("bob's subscription ended")?;
        let users = users_by_name(http).await?;
        ensure!(
            users.contains(&("alice".to_owned(), "alice@example.com".to_owned())),
            "connz users: {users:?}"
        );
        ensure!(
            users.contains(&("bob".to_owned(), "CN=bob,OU=dev".to_owned())),
            "connz users: {users:?}"
        );
        refused(
            port,
            tls_options(&certs, Some(&certs.user("carol"))),
            "carol, whom no user names",
        )
        .await
    })
}

/// `(client name, authorized_user)` of every connection in `/connz?auth=1`.
async fn users_by_name(http: u16) -> anyhow::Result<Vec<(String, String)>> {
    let connz = crate::http::get_json(http, "/connz?auth=1").await?;
    Ok(connz["connections"]
        .as_array()
        .context("connz has no connections list")?
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["authorized_user"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

fn handshake_first_starts_with_the_handshake_and_sends_info_over_tls(
    t: &Target,
) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    run_on(
        t,
        &certs.block("handshake_first: true"),
        &[],
        certs,
        |certs, ports| async move {
            let (port, http) = (ports.client, ports.monitor);
            // A client that waits for INFO first hears nothing.
            let mut raw = RawClient::open(port).await?;
            let heard = tokio::time::timeout(Duration::from_millis(300), raw.next_op()).await;
            ensure!(heard.is_err(), "the server spoke first: {heard:?}");
            let client = round_trip(port, tls_options(&certs, None).tls_first()).await?;
            let connz = crate::http::get_json(http, "/connz").await?;
            drop(client);
            let first = connz["connections"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["tls_first"] == true);
            ensure!(first, "no connection with tls_first in {connz}");
            Ok(())
        },
    )
}

fn handshake_first_auto_still_serves_clients_that_wait_for_info(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    run_on(
        t,
        &certs.block("handshake_first: \"300ms\""),
        &[],
        certs,
        |certs, ports| async move {
            let port = ports.client;
            round_trip(port, tls_options(&certs, None).tls_first()).await?;
            round_trip(port, tls_options(&certs, None)).await?;
            let info = RawClient::connect(port).await?.info;
            ensure!(
                info["tls_required"] == true,
                "INFO after the fallback: {info}"
            );
            Ok(())
        },
    )
}

fn allow_non_tls_lets_each_client_choose(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let config = format!("{}allow_non_tls: true\n", certs.block(""));
    run_on(t, &config, &[], certs, |certs, ports| async move {
        let port = ports.client;
        let mut plain = RawClient::quiet(port).await?;
        ensure!(plain.info["tls_available"] == true, "INFO: {}", plain.info);
        ensure!(plain.info["tls_required"].is_null(), "INFO: {}", plain.info);
        plain
            .send("SUB plain.x 1\r\nPUB plain.x 2\r\nhi\r\n")
            .await?;
        let op = plain.expect().await?;
        ensure!(
            op == crate::raw::ServerOp::msg("plain.x", "1", b"hi"),
            "got {op:?}"
        );
        round_trip(port, tls_options(&certs, None)).await?;
        Ok(())
    })
}

fn tls_flags_turn_tls_on_and_tls_false_turns_the_files_tls_off(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let (cert, key) = (certs.path("server-cert.pem"), certs.path("server-key.pem"));
    let (cert, key) = (
        cert.to_str().context("path")?,
        key.to_str().context("path")?,
    );
    let on = t.start(&["--tls", "--tlscert", cert, "--tlskey", key])?;
    let off = start(t, &certs.block(""), &["--tls=false"])?;
    let (on_port, off_port) = (on.port(), off.port());
    block_on(async move {
        round_trip(on_port, tls_options(&certs, None)).await?;
        let info = RawClient::quiet(off_port).await?.info;
        ensure!(info["tls_required"].is_null(), "with -tls=false: {info}");
        Ok(())
    })
}

fn connz_shows_the_tls_version_cipher_and_client_certificate(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let config = certs.block(&format!("{}\n  verify: true", certs.ca_setting()));
    run_on(t, &config, &[], certs, |certs, ports| async move {
        let (port, http) = (ports.client, ports.monitor);
        let client = within(
            WAIT,
            "connecting",
            tls_options(&certs, Some(&certs.user("bob")))
                .name("bob")
                .connect(format!("tls://127.0.0.1:{port}")),
        )
        .await??;
        client.flush().await?;
        let plain = crate::http::get_json(http, "/connz").await?;
        ensure!(
            !plain.to_string().contains("tls_peer_certs"),
            "client certificates shown without auth=1: {plain}"
        );
        let connz = crate::http::get_json(http, "/connz?auth=1").await?;
        let conn = connz["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "bob")
            .with_context(|| format!("bob is not in {connz}"))?
            .clone();
        ensure!(conn["tls_version"] == "1.3", "connz: {conn}");
        let cipher = conn["tls_cipher_suite"].as_str().unwrap_or_default();
        ensure!(
            cipher.starts_with("TLS_") && !cipher.starts_with("TLS13"),
            "connz: {conn}"
        );
        let peer = &conn["tls_peer_certs"][0];
        ensure!(peer["subject"] == "CN=bob,OU=dev", "connz: {conn}");
        let spki = peer["spki_sha256"].as_str().unwrap_or_default();
        ensure!(spki.len() == 64, "connz: {conn}");
        ensure!(
            peer["cert_sha256"].as_str().is_some_and(|s| s.len() == 64),
            "connz: {conn}"
        );
        ensure!(conn["tls_first"].is_null(), "connz: {conn}");
        Ok(())
    })
}

fn pinned_certs_admit_only_the_listed_client_keys(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let alice_pin = spki_sha256(&certs.user("alice").cert)?;
    let config = certs.block(&format!(
        "{}\n  verify: true\n  pinned_certs: [\"{alice_pin}\"]",
        certs.ca_setting()
    ));
    run_on(t, &config, &[], certs, |certs, ports| async move {
        let port = ports.client;
        round_trip(port, tls_options(&certs, Some(&certs.user("alice")))).await?;
        refused(
            port,
            tls_options(&certs, Some(&certs.user("bob"))),
            "bob, not pinned",
        )
        .await
    })
}

/// The SHA-256 of a PEM certificate's SubjectPublicKeyInfo, in hex.
fn spki_sha256(pem: &Path) -> anyhow::Result<String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_file(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

fn the_monitoring_port_serves_https_with_the_client_ports_certificate(
    t: &Target,
) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    run_on(
        t,
        &certs.block(""),
        &[HTTPS_MONITOR],
        certs,
        |certs, ports| async move {
            let https = ports.monitor;
            let body = https_get(&certs, https, "/varz").await?;
            let varz: serde_json::Value =
                serde_json::from_str(&body).context("varz is not JSON")?;
            ensure!(varz["tls_required"] == true, "varz: {varz}");
            ensure!(varz["https_port"] == https, "varz: {varz}");
            ensure!(varz["tls_timeout"] == 2.0, "varz: {varz}");
            // Plain HTTP on that port gets no answer.
            let plain = crate::http::get(https, "/varz").await;
            ensure!(
                plain.is_err() || plain.as_ref().is_ok_and(|r| r.status != 200),
                "plain HTTP was served"
            );
            Ok(())
        },
    )
}

/// `GET path` over HTTPS, trusting the test CA; the body.
async fn https_get(certs: &Certs, port: u16, path: &str) -> anyhow::Result<String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::CertificateDer::from_pem_file(certs.ca())?)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?.to_owned();
        let mut tls = connector.connect(name, tcp).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        // A server may end TLS without close_notify; what arrived counts.
        let _ = tls.read_to_end(&mut raw).await;
        anyhow::Ok(raw)
    };
    let raw = within(WAIT, "the HTTPS exchange", exchange).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
    ensure!(head.starts_with("HTTP/1.1 200"), "response: {head}");
    // Chunked or not, the JSON object is the body's outermost braces.
    let start = body.find('{').context("no JSON in the body")?;
    let end = body.rfind('}').context("no JSON in the body")?;
    Ok(body[start..=end].to_owned())
}

fn broken_tls_settings_stop_the_server_at_start(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let cert = certs.path("server-cert.pem");
    let cases = [
        format!("tls {{ cert_file: \"{}\" }}", cert.display()),
        format!(
            "tls {{ cert_file: \"{}\", key_file: \"/nonexistent/key.pem\" }}",
            cert.display()
        ),
        certs.block("no_such_field: 1"),
        certs.block("handshake_first: \"sometimes\""),
        certs.block("pinned_certs: [\"abc\"]"),
        format!("{}https_port: -1\nhttp_port: -1\n", certs.block("")),
    ];
    for config in cases {
        if let Ok(server) = start(t, &config, &[]) {
            bail!(
                "{} started with:\n{config}\nlog:\n{}",
                t.kind(),
                server.log()
            );
        }
    }
    Ok(())
}

fn a_reload_rotates_the_certificate_for_new_connections_only(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let server = start(t, &certs.block(""), &[])?;
    let port = server.port();
    let renewed = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
        certs.path("server2-cert.pem").display(),
        certs.path("server2-key.pem").display()
    );
    let trusting_other = || {
        async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(certs.path("other-ca.pem"))
            .connection_timeout(WAIT)
            .max_reconnects(Some(0))
    };
    let outcome = block_on(async {
        let before = round_trip(port, tls_options(&certs, None)).await?;
        server.rewrite_config(&renewed)?;
        crate::reload::signal_reload(&server)?;
        crate::reload::logged(&server, crate::reload::RELOADED, 1).await?;
        round_trip(port, trusting_other()).await?;
        refused(
            port,
            tls_options(&certs, None),
            "a client trusting only the old CA",
        )
        .await?;
        before
            .flush()
            .await
            .context("the connection opened before the reload")?;
        Ok(())
    });
    with_log(&server, outcome)
}

fn with_verify_and_map_connect_cannot_name_the_user(t: &Target) -> anyhow::Result<()> {
    let certs = Certs::new()?;
    let config = format!(
        "{}allow_non_tls: true\nauthorization {{ users: [ {{user: \"CN=admin,O=bank\"}} ] }}\n",
        certs.block(&format!("{}\n  verify_and_map: true", certs.ca_setting()))
    );
    run_on(t, &config, &[], certs, |_certs, ports| async move {
        let port = ports.client;
        // In clear text there is no certificate: naming the user, with or without an nkey
        // nobody configured, logs in as no one.
        crate::auth::rejected(port, r#"{"verbose":false,"user":"CN=admin,O=bank"}"#).await?;
        crate::auth::rejected(
            port,
            r#"{"verbose":false,"user":"CN=admin,O=bank","nkey":"UAFHG6FUD2UU4SDFVAFUL5LDFO2XM4WYM76UNXTPJYJK7EEMYRBHT2VE","sig":"AAAA"}"#,
        )
        .await?;
        Ok(())
    })
}
