//! The NATS client protocol: what clients send ([`client_op`]) and what the server writes back
//! ([`server_op`]), plus subject rules ([`subject`]) and the CONNECT options ([`connect`]).

pub mod client_op;
pub mod connect;
pub mod server_op;
pub mod subject;

pub use client_op::{parse, ClientOp, Limits, Publish};

/// Why bytes from a client cannot be an operation; each maps onto what nats-server does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not an operation a client may send: `-ERR 'Unknown Protocol Operation'`, then close.
    #[error("unknown protocol operation")]
    UnknownOperation,
    /// A control line over `max_control_line`: `-ERR 'maximum control line exceeded'`, then close.
    #[error("maximum control line exceeded")]
    MaxControlLine,
    /// A message over `max_payload`: `-ERR 'Maximum Payload Violation'`, then close.
    #[error("maximum payload exceeded")]
    MaxPayload,
    /// Arguments that do not fit the operation: the connection is closed.
    #[error("malformed operation: {0}")]
    Malformed(&'static str),
}

impl ProtocolError {
    /// The `-ERR` text nats-server sends for this error, if any.
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            ProtocolError::UnknownOperation => Some("Unknown Protocol Operation"),
            ProtocolError::MaxControlLine => Some("maximum control line exceeded"),
            ProtocolError::MaxPayload => Some("Maximum Payload Violation"),
            ProtocolError::Malformed(_) => None,
        }
    }
}
