//! Configuration reload (SIGHUP, `--signal reload`), as nats-server 2.10: the config file is
//! read again (flags still win over it), compared with the settings in force ([`diff`]), and
//! either refused whole, keeping the running settings, or put in force:
//!
//! - users, tokens, nkeys, accounts and permissions: every logged-in client is checked again
//!   (see the client's `reconfigure`), new accounts are created;
//! - `max_payload` (in the INFO of new connections, and for existing ones at once),
//!   `max_control_line`, `max_connections` (clients over a lowered limit are closed),
//!   `ping_interval`, `ping_max`, `auth_timeout` and `write_deadline` (for new connections);
//! - TLS (`tls {}`, `allow_non_tls`): new connections use the new certificates and settings,
//!   open ones keep theirs (how certificates are rotated);
//! - logging (`debug`, `trace`, `logtime`, `logfile`) and the pid and ports files, which the
//!   caller applies with [`Reloaded`].
//!
//! What nats-server refuses (host, port, server name, monitoring port, `max_subscriptions`,
//! `max_pending`, lame duck durations, JetStream's store) is refused with its words.

mod diff;

use std::sync::Arc;

use crate::client::CloseReason;
use crate::options::Options;
use crate::proto::server_op;
use crate::server::{Live, ServerState};

/// What a reload put in force, for the caller to log and to apply to what the server does not
/// own (logging, the pid and ports files).
#[derive(Debug)]
pub struct Reloaded {
    /// One line per changed setting (`max_payload = 2048`), for `Reloaded: <line>` in the log.
    pub lines: Vec<String>,
    /// Whether the log level, file or timestamps changed.
    pub logging: bool,
    /// Whether the pid file moved.
    pub pid_file: bool,
    /// Whether the ports file directory moved.
    pub ports_file_dir: bool,
    /// The settings now in force.
    pub opts: Options,
}

/// Reloads one running server's configuration.
#[derive(Clone)]
pub struct Reloader {
    state: Arc<ServerState>,
}

impl Reloader {
    pub(crate) fn new(state: Arc<ServerState>) -> Reloader {
        Reloader { state }
    }

    /// Puts `new` in force, or says why not (then nothing changed).
    pub fn reload(&self, mut new: Options) -> Result<Reloaded, String> {
        let state = &self.state;
        let _one_at_a_time = state.reloading.lock();
        let live = state.live();
        let changes = diff::diff(&live.opts, &mut new)?;
        if changes != diff::Changes::default() {
            new.validate()?;
        }
        // Loaded before anything changes, so that a bad certificate refuses the whole reload.
        // Rebuilt on every reload, as nats-server loads its options afresh: a certificate
        // renewed in place (same file names) comes into force too.
        let tls = if changes.tls || new.tls.is_some() {
            match &new.tls {
                Some(settings) => Some(Arc::new(
                    crate::tls::Tls::new(settings, new.allow_non_tls)
                        .map_err(|e| format!("TLS: {e}"))?,
                )),
                None => None,
            }
        } else {
            live.tls.clone()
        };
        for account in &new.accounts {
            if state.accounts.add(&account.name) && account.jetstream && new.jetstream {
                tracing::warn!(
                    "account {} was added by a reload: its JetStream starts with the next \
                     restart",
                    account.name
                );
            }
        }
        let mut info = live.info.clone();
        info.max_payload = new.max_payload;
        info.auth_required = new.auth_required();
        info.tls_required = tls.as_ref().is_some_and(|t| t.required());
        info.tls_available = tls.as_ref().is_some_and(|t| !t.required());
        info.tls_verify = new.tls.as_ref().is_some_and(|t| t.verify);
        let max_connections = new.max_connections;
        state.set_live(Live {
            opts: new.clone(),
            info,
            tls,
        });
        *state.config_loaded.lock() = std::time::SystemTime::now();
        let clients: Vec<_> = state.clients.lock().values().cloned().collect();
        for client in &clients {
            client.reloaded.notify_one();
        }
        if changes.max_connections && clients.len() > max_connections {
            let excess = clients.len() - max_connections;
            for client in clients.iter().take(excess) {
                client.queue_proto(|out| server_op::write_err(out, "maximum connections exceeded"));
                client.close(CloseReason::MaxConnectionsExceeded);
            }
            tracing::info!("Closed {excess} connections to fall within max_connections");
        }
        Ok(Reloaded {
            lines: changes.lines,
            logging: changes.logging,
            pid_file: changes.pid_file,
            ports_file_dir: changes.ports_file_dir,
            opts: new,
        })
    }
}
