//! The bundled broker: a server that speaks the NATS client protocol.
//!
//! A tour of the layout:
//! - [`options`]: every setting, with its default; [`cli`] and `config_file` fill it in.
//! - `proto`: the wire format, client operations in and server operations out.
//! - `server`: the accept loop, connection limit and shutdown.
//! - `client`: one connection, from socket bytes to routed messages.
//! - `sublist`: subject matching with `*` and `>` wildcards, and queue groups.
//! - [`harness`]: runs this broker or the reference `nats-server` on free ports, for tests and
//!   benchmarks.

pub mod cli;
mod config_file;
pub mod harness;
pub mod options;

pub use options::Options;
