//! Assigning the stack's ports before anything starts: each asked-for port is checked by
//! binding it (a busy one is refused with the flag that moves it), port 0 picks a free one, and
//! the account replicas after the first take the next free ports (skipping the statement
//! service's: with the defaults, 8083 for `account-2`, 8085 for `account-3` past the statement
//! service's 8084).

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};

use crate::config::StackConfig;

/// The ports each component listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports {
    /// The web console.
    pub console: u16,
    /// The transaction service.
    pub transaction: u16,
    /// One per account-service replica, in order.
    pub accounts: Vec<u16>,
    /// The statement service.
    pub statement: u16,
    /// The broker's client port.
    pub broker: u16,
    /// The broker's monitoring port.
    pub monitor: u16,
}

/// Why the ports could not be assigned.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Something else listens there.
    #[error(
        "port {port} ({component}) is in use on {host}: stop what holds it, or choose another \
         with {flag} or {env}"
    )]
    Busy {
        /// The port.
        port: u16,
        /// Which component wanted it.
        component: &'static str,
        /// The host part of the address.
        host: IpAddr,
        /// The flag that moves it.
        flag: &'static str,
        /// The environment variable that moves it.
        env: &'static str,
    },
    /// Binding failed otherwise (a privileged port, an address not on this host).
    #[error("cannot listen on {addr} ({component}, {flag} / {env}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Which component wanted it.
        component: &'static str,
        /// The flag that moves it.
        flag: &'static str,
        /// The environment variable that moves it.
        env: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// Two components asked for the same port.
    #[error("{first} and {second} both ask for port {port}; give one of them another ({flag})")]
    Clash {
        /// The port.
        port: u16,
        /// The first component.
        first: &'static str,
        /// The second component.
        second: &'static str,
        /// The second component's flag.
        flag: &'static str,
    },
    /// No free port was left for an extra replica.
    #[error("no free port above {0} for the extra account-service replicas")]
    Exhausted(u16),
}

/// One port a component asks for.
struct Ask {
    component: &'static str,
    flag: &'static str,
    env: &'static str,
    port: u16,
}

/// Holds the checked ports bound until every one is assigned, so two port-0 requests never get
/// the same port; dropped (released) before the components start.
struct Held {
    host: IpAddr,
    listeners: Vec<TcpListener>,
    taken: BTreeSet<u16>,
    owners: Vec<(u16, &'static str)>,
}

impl Held {
    fn take(&mut self, ask: &Ask) -> Result<u16, PortError> {
        if ask.port != 0 {
            if let Some((_, first)) = self.owners.iter().find(|(p, _)| *p == ask.port) {
                return Err(PortError::Clash {
                    port: ask.port,
                    first,
                    second: ask.component,
                    flag: ask.flag,
                });
            }
        }
        let addr = SocketAddr::new(self.host, ask.port);
        let listener = TcpListener::bind(addr).map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                PortError::Busy {
                    port: ask.port,
                    component: ask.component,
                    host: self.host,
                    flag: ask.flag,
                    env: ask.env,
                }
            } else {
                PortError::Bind {
                    addr,
                    component: ask.component,
                    flag: ask.flag,
                    env: ask.env,
                    source,
                }
            }
        })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(ask.port);
        self.listeners.push(listener);
        self.taken.insert(port);
        self.owners.push((port, ask.component));
        Ok(port)
    }

    /// The first port above `after` that is neither taken here nor busy on the host.
    fn next_free(&mut self, after: u16, component: &'static str) -> Result<u16, PortError> {
        for port in after.saturating_add(1)..=u16::MAX {
            if self.taken.contains(&port) {
                continue;
            }
            if let Ok(listener) = TcpListener::bind(SocketAddr::new(self.host, port)) {
                self.listeners.push(listener);
                self.taken.insert(port);
                self.owners.push((port, component));
                return Ok(port);
            }
        }
        Err(PortError::Exhausted(after))
    }
}

const REPLICA_NAMES: [&str; crate::config::MAX_ACCOUNT_REPLICAS] = [
    "account-1",
    "account-2",
    "account-3",
    "account-4",
    "account-5",
    "account-6",
    "account-7",
    "account-8",
    "account-9",
    "account-10",
    "account-11",
    "account-12",
    "account-13",
    "account-14",
    "account-15",
    "account-16",
];

/// The name of the `index`-th (from 0) account-service replica: `account-1`, `account-2`, …
pub fn replica_name(index: usize) -> &'static str {
    REPLICA_NAMES.get(index).copied().unwrap_or("account")
}

/// Checks and assigns every port of `config`.
pub fn assign(config: &StackConfig) -> Result<Ports, PortError> {
    let mut held = Held {
        host: config.bind,
        listeners: Vec::new(),
        taken: BTreeSet::new(),
        owners: Vec::new(),
    };
    let ask = |component, flag, env, port| Ask {
        component,
        flag,
        env,
        port,
    };
    let broker = held.take(&ask(
        "broker",
        "--broker-port",
        "BANK_BROKER_PORT",
        config.broker_port,
    ))?;
    let monitor = held.take(&ask(
        "broker monitor",
        "--monitor-port",
        "BANK_MONITOR_PORT",
        config.monitor_port,
    ))?;
    let transaction = held.take(&ask(
        "transaction service",
        "--transaction-port",
        "BANK_TRANSACTION_PORT",
        config.transaction_port,
    ))?;
    let first = held.take(&ask(
        replica_name(0),
        "--account-port",
        "BANK_ACCOUNT_PORT",
        config.account_port,
    ))?;
    let console = held.take(&ask(
        "console",
        "--console-port",
        "BANK_CONSOLE_PORT",
        config.console_port,
    ))?;
    // Before the extra replicas, so that they skip its port.
    let statement = held.take(&ask(
        "statement service",
        "--statement-port",
        "BANK_STATEMENT_PORT",
        config.statement_port,
    ))?;
    let mut accounts = vec![first];
    for index in 1..config.account_replicas {
        let name = replica_name(index);
        let port = if config.account_port == 0 {
            held.take(&ask(name, "--account-port", "BANK_ACCOUNT_PORT", 0))?
        } else {
            let after = accounts.last().copied().unwrap_or(first);
            held.next_free(after, name)?
        };
        accounts.push(port);
    }
    drop(held);
    Ok(Ports {
        console,
        transaction,
        accounts,
        statement,
        broker,
        monitor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> StackConfig {
        let mut all = vec!["bank"];
        all.extend_from_slice(args);
        StackConfig::try_parse_from(all).unwrap()
    }

    fn all_zero(extra: &[&str]) -> StackConfig {
        let mut args = vec![
            "--console-port=0",
            "--transaction-port=0",
            "--account-port=0",
            "--statement-port=0",
            "--broker-port=0",
            "--monitor-port=0",
        ];
        args.extend_from_slice(extra);
        config(&args)
    }

    #[test]
    fn port_zero_gives_distinct_free_ports_for_every_component() {
        let ports = assign(&all_zero(&["--account-replicas=3"])).unwrap();
        let mut all = vec![
            ports.console,
            ports.transaction,
            ports.statement,
            ports.broker,
            ports.monitor,
        ];
        all.extend(&ports.accounts);
        assert_eq!(ports.accounts.len(), 3);
        assert!(all.iter().all(|p| *p != 0));
        let distinct: BTreeSet<u16> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "{ports:?}");
    }

    #[test]
    fn a_busy_port_is_refused_naming_the_flag_and_the_variable() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let mut config = all_zero(&[]);
        config.console_port = port;
        let err = assign(&config).unwrap_err().to_string();
        assert!(
            err.contains(&format!("port {port} (console) is in use")),
            "{err}"
        );
        assert!(
            err.contains("--console-port") && err.contains("BANK_CONSOLE_PORT"),
            "{err}"
        );
    }

    #[test]
    fn extra_replicas_skip_busy_ports() {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        drop(first);
        // Hold the port right after the first replica's.
        let Ok(_busy) = TcpListener::bind(("127.0.0.1", base + 1)) else {
            return; // someone else has it, which proves the same point less neatly
        };
        let mut config = all_zero(&["--account-replicas=2"]);
        config.account_port = base;
        let ports = assign(&config).unwrap();
        assert_eq!(ports.accounts[0], base);
        assert!(ports.accounts[1] > base + 1, "{ports:?}");
    }

    #[test]
    fn extra_replicas_skip_the_statement_services_port() {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        drop(first);
        let mut config = all_zero(&["--account-replicas=3"]);
        config.account_port = base;
        config.statement_port = base + 2;
        let Ok(ports) = assign(&config) else {
            return; // a port right above base is someone else's: nothing to learn here
        };
        assert_eq!(ports.statement, base + 2);
        assert_eq!(ports.accounts[0], base);
        assert!(!ports.accounts.contains(&ports.statement), "{ports:?}");
    }

    #[test]
    fn two_components_on_one_port_are_refused() {
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let mut config = all_zero(&[]);
        config.transaction_port = port;
        config.account_port = port;
        let err = assign(&config).unwrap_err().to_string();
        assert!(err.contains("both ask for port"), "{err}");
    }
}
