//! The bundled broker: a server that speaks the NATS client protocol.
//!
//! A tour of the layout:
//! - [`entry`]: the command-line entry point of the `broker` binary.
//! - [`options`]: every setting, with its default; [`cli`] and `config_file` fill it in.
//! - [`proto`]: the wire format, client operations in and server operations out.
//! - [`server`]: the accept loop, connection limit and shutdown.
//! - `client`: one connection, from socket bytes to routed messages.
//! - `sublist`: subject matching with `*` and `>` wildcards, and queue groups.
//! - [`harness`]: runs this broker or the reference `nats-server` on free ports, for tests and
//!   benchmarks.
//! - `accounts`: isolated subject spaces; `$G` for everyone without an account of their own.
//! - `auth`: logging in with a token, a password or an nkey (`secret`: plain or bcrypt);
//!   `trust` and `jwt`: operator mode, where users log in with a JWT signed by an account that a
//!   trusted operator signed.
//! - `permissions`: what each user may publish and subscribe to.
//! - [`tls`]: TLS on the client port (rustls): the handshake before or after INFO, client
//!   certificates, and mapping them to users.
//! - `lame_duck`: the SIGUSR2 drain that moves clients to other servers.
//! - [`reload`]: configuration reload on SIGHUP, as nats-server.
//! - [`send_signal`]: `--signal`, sending a command to a running broker.
//! - [`store`]: a JetStream stream's messages, in memory or in segmented files, with limits.
//! - `monitor`: `/healthz`, `/varz`, `/connz`, `/subsz`, `/jsz` and `/metrics`.

mod accounts;
mod auth;
pub mod cli;
mod client;
mod config_file;
pub mod entry;
pub mod harness;
pub(crate) mod jetstream;
mod jwt;
mod lame_duck;
mod links;
pub mod logging;
mod monitor;
pub mod options;
mod permissions;
pub mod proto;
pub mod reload;
mod secret;
pub mod send_signal;
pub mod server;
pub mod signals;
pub mod stan;
pub mod store;
mod sublist;
pub mod tls;
mod trust;

pub use options::Options;
pub use server::Server;
