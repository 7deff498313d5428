//! TLS on the client port (and the monitoring port's HTTPS), with rustls.
//!
//! A connection opens the way nats-server opens it: INFO in clear text saying `tls_required`,
//! then the client's handshake; or, with `handshake_first`, the handshake before anything; or,
//! with `allow_non_tls`, whichever the client's first byte asks for. See docs/broker.md.

pub(crate) mod load;
pub(crate) mod peer;
mod settings;

use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub use settings::{
    hex, parse_pin, CertPair, HandshakeFirst, TlsSettings, TlsVersion,
    DEFAULT_HANDSHAKE_FIRST_FALLBACK, DEFAULT_TLS_TIMEOUT,
};

use peer::PeerCert;

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// The client port's TLS, ready to accept.
pub(crate) struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    /// The monitoring port's: the same certificates, never asking for a client's.
    https: tokio_rustls::TlsAcceptor,
    /// What it was built from.
    pub settings: TlsSettings,
    /// Clients may also connect without TLS (`allow_non_tls`).
    pub allow_non_tls: bool,
    rate: Option<Mutex<RateWindow>>,
}

/// Handshakes started in the current second, for `connection_rate_limit`.
struct RateWindow {
    second: u64,
    count: u64,
}

/// A client connection once opened: with or without TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// What `/connz` shows about a connection's TLS.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub version: &'static str,
    pub cipher: String,
    pub peer_certs: Vec<PeerCert>,
    /// The handshake came before INFO.
    pub first: bool,
}

/// How an opened connection continues.
pub(crate) struct Opened {
    pub stream: Stream,
    pub session: Option<Session>,
    /// INFO is still to send, over TLS and saying `tls_required`; otherwise it went out in
    /// clear text before the handshake.
    pub info_after_handshake: bool,
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The TLS handshake failed or took longer than the TLS timeout.
    Handshake(String),
    /// `connection_rate_limit` was reached; the client was told.
    Throttled,
    /// The server stopped, or closed the connection, before it was open.
    Stopped,
}

impl Tls {
    /// Loads the certificates and keys; the error is one line for the operator.
    pub fn new(settings: &TlsSettings, allow_non_tls: bool) -> Result<Tls, String> {
        let config = load::server_config(settings)?;
        let https = load::server_config(&TlsSettings {
            verify: false,
            ca_file: None,
            ..settings.clone()
        })?;
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(config),
            https: tokio_rustls::TlsAcceptor::from(https),
            settings: settings.clone(),
            allow_non_tls,
            rate: (settings.rate_limit > 0).then(|| {
                Mutex::new(RateWindow {
                    second: 0,
                    count: 0,
                })
            }),
        })
    }

    /// The monitoring port's HTTPS acceptor: this TLS's certificates, never asking for a
    /// client's.
    pub fn https_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.https.clone()
    }

    /// Whether INFO says `tls_required` (as opposed to `tls_available`) to a client that gets
    /// INFO before any handshake.
    pub fn required(&self) -> bool {
        !self.allow_non_tls
    }

    /// Opens a connection. `info(tls_required)` is the INFO line to send; it is written here in
    /// clear text when it goes before the handshake.
    pub async fn open(
        &self,
        mut socket: TcpStream,
        info: impl Fn(bool) -> Vec<u8>,
    ) -> Result<Opened, OpenError> {
        let first = match self.settings.handshake_first {
            HandshakeFirst::Off => false,
            HandshakeFirst::On => true,
            // A client that starts with the handshake sends its first bytes at once.
            HandshakeFirst::Fallback(delay) => wait_for_bytes(&socket, delay).await,
        };
        if first {
            let (stream, session) = self.handshake(socket, true).await?;
            return Ok(Opened {
                stream,
                session: Some(session),
                info_after_handshake: true,
            });
        }
        let bytes = info(self.required());
        let written = tokio::time::timeout(self.settings.timeout, socket.write_all(&bytes)).await;
        if !matches!(written, Ok(Ok(()))) {
            return Err(OpenError::Handshake("cannot send INFO".to_owned()));
        }
        let tls = !self.allow_non_tls || starts_tls(&socket, self.settings.timeout).await;
        if !tls {
            return Ok(Opened {
                stream: Stream::Plain(socket),
                session: None,
                info_after_handshake: false,
            });
        }
        let (stream, session) = self.handshake(socket, false).await?;
        Ok(Opened {
            stream,
            session: Some(session),
            info_after_handshake: false,
        })
    }

    async fn handshake(
        &self,
        mut socket: TcpStream,
        first: bool,
    ) -> Result<(Stream, Session), OpenError> {
        if !self.allow_handshake() {
            let err = b"-ERR 'Connection throttling is active. Please try again later.'\r\n";
            let _ = tokio::time::timeout(self.settings.timeout, socket.write_all(err)).await;
            return Err(OpenError::Throttled);
        }
        let stream =
            match tokio::time::timeout(self.settings.timeout, self.acceptor.accept(socket)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(OpenError::Handshake(e.to_string())),
                Err(_) => return Err(OpenError::Handshake("timeout".to_owned())),
            };
        let (_, conn) = stream.get_ref();
        let ders = conn.peer_certificates().unwrap_or_default();
        let leaf = ders.first().map(|der| PeerCert::parse(der.as_ref()));
        if matches!(leaf, Some(None))
            && (self.settings.map || !self.settings.pinned_certs.is_empty())
        {
            // Mapping and pinning look at the leaf: one that cannot be read fails the handshake.
            return Err(OpenError::Handshake(
                "the client certificate cannot be parsed".to_owned(),
            ));
        }
        let peer_certs: Vec<PeerCert> = leaf
            .flatten()
            .into_iter()
            .chain(
                ders.iter()
                    .skip(1)
                    .filter_map(|der| PeerCert::parse(der.as_ref())),
            )
            .collect();
        if !self.settings.pinned_certs.is_empty() {
            let pinned = peer_certs
                .first()
                .is_some_and(|c| self.settings.pinned_certs.contains(&c.spki_sha256));
            if !pinned {
                return Err(OpenError::Handshake(
                    "peer certificate's public key is not in pinned_certs".to_owned(),
                ));
            }
        }
        let session = Session {
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
                _ => "1.2",
            },
            cipher: conn
                .negotiated_cipher_suite()
                .map(|s| load::go_cipher_name(s.suite()))
                .unwrap_or_default(),
            peer_certs,
            first,
        };
        Ok((Stream::Tls(Box::new(stream)), session))
    }

    fn allow_handshake(&self) -> bool {
        let Some(rate) = &self.rate else {
            return true;
        };
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut window = rate.lock();
        if window.second != second {
            *window = RateWindow { second, count: 0 };
        }
        window.count += 1;
        window.count <= self.settings.rate_limit
    }
}

/// The monitoring port's HTTPS: accepts in the background and hands over each connection once
/// its handshake is done, so that a slow client holds up no other. `acceptor` gives the TLS in
/// force for each new connection (a reload may have rotated the certificate); the task ends with
/// `stop` or when the server stops taking connections.
pub(crate) fn https_listener(
    listener: tokio::net::TcpListener,
    acceptor: impl Fn() -> Option<tokio_rustls::TlsAcceptor> + Send + 'static,
    timeout: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> HttpsListener {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let local = listener.local_addr();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.cancelled() => break,
                _ = tx.closed() => break,
            };
            let Ok((socket, addr)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (Some(acceptor), to_server) = (acceptor(), tx.clone()) else {
                continue;
            };
            tokio::spawn(async move {
                if let Ok(Ok(stream)) = tokio::time::timeout(timeout, acceptor.accept(socket)).await
                {
                    let _ = to_server.send((stream, addr)).await;
                }
            });
        }
    });
    HttpsListener { rx, local }
}

/// The monitoring port's listener over HTTPS (see [`https_listener`]).
pub(crate) struct HttpsListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<TcpStream>,
        std::net::SocketAddr,
    )>,
    local: std::io::Result<std::net::SocketAddr>,
}

impl axum::serve::Listener for HttpsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The accepting task only ends with the receiver: never here.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.local {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// Whether the client sends anything within `delay`.
async fn wait_for_bytes(socket: &TcpStream, delay: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(delay, socket.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// Whether the client's first byte, within `wait`, opens a TLS handshake.
async fn starts_tls(socket: &TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, socket.peek(&mut byte)).await,
        Ok(Ok(1)) if byte[0] == HANDSHAKE_RECORD
    )
}

/// For tests: a self-signed certificate for localhost and its key, written into `dir` as
/// `cert.pem` and `key.pem`; returns their paths.
#[cfg(test)]
pub(crate) fn test_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .and_then(|p| p.self_signed(&key))
        .expect("a certificate");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).expect("writing the certificate");
    std::fs::write(&k, key.serialize_pem()).expect("writing the key");
    (c, k)
}
