//! Which processes the stack runs, with which arguments, where each answers and what it keeps
//! on disk: everything the supervisor and the table need, decided before anything starts.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::components::Component;
use crate::config::StackConfig;
use crate::ports::{replica_name, Ports};

/// When a component starts and stops relative to the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The broker: started first, stopped last.
    Broker,
    /// The services and the console: started once the broker answers, stopped first.
    Service,
}

/// One process of the stack.
#[derive(Clone, Debug)]
pub struct Planned {
    /// Its name in the table and the logs: `broker`, `transaction`, `account-1`, `console`.
    pub name: String,
    /// Which component the child runs (`bank <component> <args>`).
    pub component: Component,
    /// Its command-line arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where users reach it (`nats://…` or `http://…`).
    pub url: String,
    /// A second address worth printing (the broker's monitoring).
    pub extra_url: Option<(String, String)>,
    /// The HTTP URL that answers 200 once it is ready.
    pub ready_url: String,
    /// What it keeps on disk.
    pub data: Option<PathBuf>,
    /// Its start and stop order.
    pub stage: Stage,
}

/// The whole stack.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Every process, broker first.
    pub components: Vec<Planned>,
    /// Where component logs go when they go to files.
    pub log_dir: PathBuf,
    /// The console's URL, for the closing line of the table.
    pub console_url: String,
}

/// The host part of a URL for `bind`: where a client on this machine connects.
fn client_host(bind: IpAddr) -> String {
    let host = if bind.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        bind
    };
    SocketAddr::new(host, 0)
        .to_string()
        .trim_end_matches(":0")
        .to_owned()
}

fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}?mode=rwc", file.display())
}

/// Lays the stack out over `ports`, with its files under `data_dir` (an absolute path).
pub fn plan(config: &StackConfig, ports: &Ports, data_dir: &Path) -> Plan {
    let host = client_host(config.bind);
    let bind = config.bind.to_string();
    let nats_url = format!("nats://{host}:{}", ports.broker);
    let http = |port: u16| format!("http://{host}:{port}");
    let listen = |port: u16| SocketAddr::new(config.bind, port).to_string();
    let store = data_dir.join("broker");
    let mut components = vec![Planned {
        name: "broker".into(),
        component: Component::Broker,
        args: vec![
            "-js".into(),
            "-sd".into(),
            store.display().to_string(),
            "-a".into(),
            bind.clone(),
            "-p".into(),
            ports.broker.to_string(),
            "-m".into(),
            ports.monitor.to_string(),
            "-n".into(),
            "bank-broker".into(),
            // NATS Streaming clients (the worked example's services/stan-audit) connect to the
            // same streams under cluster ID `bank`.
            "-cid".into(),
            "bank".into(),
        ],
        env: Vec::new(),
        url: nats_url.clone(),
        extra_url: Some(("broker monitor".into(), http(ports.monitor))),
        ready_url: format!("{}/healthz", http(ports.monitor)),
        data: Some(store),
        stage: Stage::Broker,
    }];
    let service = |name: &str, component, port, database: PathBuf, env| Planned {
        name: name.to_owned(),
        component,
        args: vec![
            format!("--http-addr={}", listen(port)),
            format!("--nats-url={nats_url}"),
            format!("--database-url={}", sqlite_url(&database)),
        ],
        env,
        url: http(port),
        extra_url: None,
        ready_url: format!("{}/readyz", http(port)),
        data: Some(database),
        stage: Stage::Service,
    };
    components.push(service(
        "transaction",
        Component::Transaction,
        ports.transaction,
        data_dir.join("transaction.db"),
        vec![("REPLICA_ID".into(), "transaction-1".into())],
    ));
    for (index, port) in ports.accounts.iter().enumerate() {
        let name = replica_name(index);
        components.push(service(
            name,
            Component::Account,
            *port,
            data_dir.join("account.db"),
            vec![
                ("REPLICA_ID".into(), name.into()),
                // The console's fault scenarios (slow handler, crashed replica, dead client).
                ("FAULT_INJECTION".into(), "true".into()),
            ],
        ));
    }
    components.push(service(
        "statement",
        Component::Statement,
        ports.statement,
        data_dir.join("statement.db"),
        vec![("REPLICA_ID".into(), "statement-1".into())],
    ));
    let account_urls: Vec<String> = ports.accounts.iter().map(|p| http(*p)).collect();
    components.push(Planned {
        name: "console".into(),
        component: Component::Console,
        args: vec![
            format!("--http-addr={}", listen(ports.console)),
            format!("--nats-url={nats_url}"),
            format!("--account-url={}", account_urls.join(",")),
            format!("--transaction-url={}", http(ports.transaction)),
            format!("--statement-url={}", http(ports.statement)),
        ],
        env: Vec::new(),
        url: http(ports.console),
        extra_url: None,
        ready_url: format!("{}/readyz", http(ports.console)),
        data: None,
        stage: Stage::Service,
    });
    Plan {
        components,
        log_dir: data_dir.join("logs"),
        console_url: format!("{}/", http(ports.console)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn ports() -> Ports {
        Ports {
            console: 8080,
            transaction: 8081,
            accounts: vec![8082, 8083],
            statement: 8084,
            broker: 4222,
            monitor: 8222,
        }
    }

    #[test]
    fn the_default_stack_is_a_broker_a_transaction_service_two_replicas_statements_and_the_console()
    {
        let config = StackConfig::try_parse_from(["bank"]).unwrap();
        let plan = plan(&config, &ports(), Path::new("/srv/data"));
        let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "broker",
                "transaction",
                "account-1",
                "account-2",
                "statement",
                "console"
            ]
        );
        assert_eq!(plan.components[0].url, "nats://127.0.0.1:4222");
        assert_eq!(plan.console_url, "http://127.0.0.1:8080/");
        let replica = &plan.components[3];
        assert!(replica
            .args
            .contains(&"--database-url=sqlite:///srv/data/account.db?mode=rwc".to_owned()));
        assert!(replica
            .env
            .contains(&("REPLICA_ID".to_owned(), "account-2".to_owned())));
        assert!(replica
            .env
            .contains(&("FAULT_INJECTION".to_owned(), "true".to_owned())));
        assert!(!plan.components[1]
            .env
            .iter()
            .any(|(name, _)| name == "FAULT_INJECTION"));
        let statement = &plan.components[4];
        assert_eq!(statement.component, Component::Statement);
        assert!(statement
            .args
            .contains(&"--database-url=sqlite:///srv/data/statement.db?mode=rwc".to_owned()));
        assert_eq!(statement.stage, Stage::Service);
        let console = &plan.components[5];
        assert!(console
            .args
            .contains(&"--account-url=http://127.0.0.1:8082,http://127.0.0.1:8083".to_owned()));
        assert!(console
            .args
            .contains(&"--statement-url=http://127.0.0.1:8084".to_owned()));
    }

    #[test]
    fn binding_every_interface_still_prints_loopback_urls() {
        let config = StackConfig::try_parse_from(["bank", "--bind", "0.0.0.0"]).unwrap();
        let plan = plan(&config, &ports(), Path::new("/d"));
        assert_eq!(plan.components[0].url, "nats://127.0.0.1:4222");
        assert!(plan.components[1]
            .args
            .contains(&"--http-addr=0.0.0.0:8081".to_owned()));
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_urls() {
        let config = StackConfig::try_parse_from(["bank", "--bind", "::1"]).unwrap();
        let plan = plan(&config, &ports(), Path::new("/d"));
        assert_eq!(plan.components[1].url, "http://[::1]:8081");
    }
}
