//! TLS settings as the command line and the config file give them (`--tls*` flags, `tls {}`),
//! before any file is read.

use std::path::PathBuf;
use std::time::Duration;

/// How long a client has to finish the TLS handshake (`tls { timeout }`), as nats-server: 2 s.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);
/// With `handshake_first: auto`, how long the server waits for a client's TLS handshake before
/// it sends INFO in clear text for a client that expects INFO first, as nats-server: 50 ms.
pub const DEFAULT_HANDSHAKE_FIRST_FALLBACK: Duration = Duration::from_millis(50);

/// The client port's TLS, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate chains and their keys (`cert_file`/`key_file`, or `certs [...]`); the first
    /// is used unless a client's server name matches another.
    pub certs: Vec<CertPair>,
    /// CA certificates that client certificates must chain to (`ca_file`, `--tlscacert`).
    pub ca_file: Option<PathBuf>,
    /// Clients must present a certificate the CAs signed (`verify`, `--tlsverify`).
    pub verify: bool,
    /// The client certificate names the user (`verify_and_map`): see `docs/broker.md`.
    pub map: bool,
    /// See [`DEFAULT_TLS_TIMEOUT`].
    pub timeout: Duration,
    /// Whether the handshake comes before INFO (`handshake_first`).
    pub handshake_first: HandshakeFirst,
    /// SHA-256 digests of the DER SubjectPublicKeyInfo of the only client keys accepted
    /// (`pinned_certs`); empty accepts any.
    pub pinned_certs: Vec<[u8; 32]>,
    /// TLS 1.2 cipher suites, by Go's names (`cipher_suites`); `None` is every suite supported.
    pub cipher_suites: Option<Vec<String>>,
    /// Key exchange groups, by Go's names (`curve_preferences`); `None` is every one supported.
    pub curve_preferences: Option<Vec<String>>,
    /// Lowest protocol version (`min_version`): 1.2 unless set to 1.3.
    pub min_version: TlsVersion,
    /// Most TLS handshakes started per second (`connection_rate_limit`); 0 is no limit.
    pub rate_limit: u64,
}

impl TlsSettings {
    /// Settings for one certificate and key with every other setting at its default.
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> TlsSettings {
        TlsSettings {
            certs: vec![CertPair {
                cert_file,
                key_file,
            }],
            ca_file: None,
            verify: false,
            map: false,
            timeout: DEFAULT_TLS_TIMEOUT,
            handshake_first: HandshakeFirst::Off,
            pinned_certs: Vec::new(),
            cipher_suites: None,
            curve_preferences: None,
            min_version: TlsVersion::V1_2,
            rate_limit: 0,
        }
    }
}

/// A certificate chain file and its private key file, both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPair {
    /// The chain, leaf first.
    pub cert_file: PathBuf,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `handshake_first`: whether the server waits for the client's TLS handshake before sending
/// INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HandshakeFirst {
    /// INFO first, in clear text, then the handshake (the NATS default).
    #[default]
    Off,
    /// The handshake first; clients that wait for INFO never get one.
    On,
    /// The handshake first when the client starts one within this delay; otherwise INFO first.
    Fallback(Duration),
}

/// A TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

impl TlsVersion {
    /// Parses `min_version` as nats-server spells it (`"1.2"`, `"1.3"`).
    pub fn parse(text: &str) -> Result<TlsVersion, String> {
        match text.trim() {
            "1.2" => Ok(TlsVersion::V1_2),
            "1.3" => Ok(TlsVersion::V1_3),
            "1.0" | "1.1" => Err(format!(
                "unsupported minimum TLS version: TLS {}",
                text.trim()
            )),
            other => Err(format!("unknown version: {other}")),
        }
    }

    /// As nats-server shows it in `/connz`: `1.2`, `1.3`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }
}

/// Parses one `pinned_certs` entry: 64 hex digits.
pub fn parse_pin(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Hex, lower case, as nats-server prints digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
