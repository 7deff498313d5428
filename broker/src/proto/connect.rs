//! The CONNECT options a client sends.

use serde::Deserialize;

/// The JSON body of `CONNECT`; unknown fields are ignored, as nats-server does.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectInfo {
    /// Acknowledge each operation with `+OK`; on unless the client says otherwise.
    pub verbose: Option<bool>,
    /// Check publish subjects strictly; on unless the client says otherwise.
    pub pedantic: Option<bool>,
    /// Token for token auth.
    pub auth_token: Option<String>,
    /// User for user/password auth.
    pub user: Option<String>,
    /// Password for user/password auth.
    pub pass: Option<String>,
    /// Public nkey for nkey auth.
    pub nkey: Option<String>,
    /// Signature of the INFO nonce by `nkey` (or by the user of `jwt`), base64.
    pub sig: Option<String>,
    /// A user JWT, for operator mode.
    pub jwt: Option<String>,
    /// Client-chosen connection name, shown in `/connz`.
    pub name: Option<String>,
    /// Client library language.
    pub lang: Option<String>,
    /// Client library version.
    pub version: Option<String>,
    /// Protocol level: 0 original, 1 with async INFO.
    pub protocol: i64,
    /// Deliver the connection's own publications to its own subscriptions (default true).
    pub echo: Option<bool>,
    /// The client understands HMSG.
    pub headers: bool,
    /// The client wants a 503 status when a request has no responders.
    pub no_responders: bool,
}

impl ConnectInfo {
    /// Parses a CONNECT body.
    pub fn parse(json: &[u8]) -> Result<ConnectInfo, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// Whether to answer `+OK`: nats-server starts every client verbose and pedantic and lets
    /// CONNECT switch them off.
    pub fn verbose(&self) -> bool {
        self.verbose.unwrap_or(true)
    }

    /// Whether publish subjects are checked strictly (see [`ConnectInfo::verbose`]).
    pub fn pedantic(&self) -> bool {
        self.pedantic.unwrap_or(true)
    }

    /// Whether own messages are echoed back.
    pub fn echo(&self) -> bool {
        self.echo.unwrap_or(true)
    }
}
