//! A three-node nats-server 2.10 JetStream cluster on loopback, for the `nats-cluster` broker
//! target: three processes with routes between them, JetStream on each with its own store
//! directory, and a handle that kills one node (SIGKILL) and restarts it on the same ports and
//! store.
//!
//! [`NatsCluster::start`] waits until every node's `/jsz` reports the same JetStream meta leader
//! with all three peers; [`NatsCluster::restart`] waits until the restarted node serves
//! JetStream again (`/healthz?js-server-only=true`) and the cluster agrees on a meta leader. It
//! does not wait for the node's stream and consumer replicas to catch up: that is nats-server's
//! own recovery, which took more than 60 s on a busy 2-core machine, and the other two nodes
//! keep a quorum meanwhile.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use broker::harness::reference_server_path;
use tempfile::TempDir;

use crate::brokers::unused_port;

/// How many nodes the cluster has.
pub const NODES: usize = 3;

/// How long a start or a restart waits for the cluster to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How many times [`NatsCluster::start`] tries, each from scratch.
const START_ATTEMPTS: usize = 3;

/// The cluster's name (`--cluster_name`).
const CLUSTER_NAME: &str = "e2e";

/// One node: its ports, its store and its process (none while killed).
struct Node {
    name: String,
    client_port: u16,
    cluster_port: u16,
    http_port: u16,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

struct State {
    nodes: Vec<Node>,
    program: PathBuf,
    /// Holds the store directories and logs; removed on drop.
    _dir: TempDir,
}

/// A running three-node cluster; every node is killed when the last handle drops. Cheap to
/// clone, so a chaos task can hold one.
#[derive(Clone)]
pub struct NatsCluster {
    state: Arc<Mutex<State>>,
}

impl NatsCluster {
    /// Starts three nats-server processes on free loopback ports, each with JetStream and its
    /// own store, routed to one another, and waits until they agree on a meta leader.
    ///
    /// A start that fails is tried again from scratch (new ports, new stores), up to
    /// [`START_ATTEMPTS`] times: ports are picked before the processes bind them, so another
    /// process can take one in between, and on a loaded machine a node has been seen to miss
    /// the meta leader election for the whole [`READY_TIMEOUT`]. The tests are about the
    /// services on a working cluster, not about nats-server's bootstrap.
    pub fn start() -> anyhow::Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once() {
                Err(err) if attempt < START_ATTEMPTS => {
                    eprintln!("cluster start attempt {attempt} failed, retrying: {err:#}");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn start_once() -> anyhow::Result<Self> {
        let program = reference_server_path()?;
        let dir = tempfile::Builder::new()
            .prefix("nats-cluster-")
            .tempdir()
            .context("creating the cluster's directory")?;
        let mut nodes = Vec::with_capacity(NODES);
        for i in 1..=NODES {
            let name = format!("n{i}");
            nodes.push(Node {
                client_port: unused_port()?,
                cluster_port: unused_port()?,
                http_port: unused_port()?,
                store: dir.path().join(&name),
                log: dir.path().join(format!("{name}.log")),
                name,
                child: None,
            });
        }
        let cluster = Self {
            state: Arc::new(Mutex::new(State {
                nodes,
                program,
                _dir: dir,
            })),
        };
        for i in 0..NODES {
            cluster.launch(i)?;
        }
        cluster.wait_for_meta_leader()?;
        Ok(cluster)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every client URL, comma-separated, so a client fails over between the nodes.
    pub fn url(&self) -> String {
        let state = self.lock();
        let urls: Vec<String> = state
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect();
        urls.join(",")
    }

    /// The client URLs of every node but node `i`, comma-separated.
    pub fn url_without(&self, i: usize) -> String {
        let state = self.lock();
        let urls: Vec<String> = (state.nodes.iter().enumerate())
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| format!("nats://127.0.0.1:{}", n.client_port))
            .collect();
        urls.join(",")
    }

    /// The node names, `n1`, `n2`, `n3` (nats-server's `--server_name`).
    pub fn names(&self) -> Vec<String> {
        self.lock().nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The index of the node named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.lock().nodes.iter().position(|n| n.name == name)
    }

    /// Kills node `i` at once (SIGKILL), as a crash would, and reaps it.
    pub fn kill(&self, i: usize) -> anyhow::Result<()> {
        let mut state = self.lock();
        let node = state.nodes.get_mut(i).context("no such node")?;
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            child.wait().context("reaping a killed node")?;
        }
        Ok(())
    }

    /// Starts node `i` again on the same ports and store, and waits until it serves JetStream
    /// (`/healthz?js-server-only=true` answers 200) and the cluster has a meta leader again.
    pub fn restart(&self, i: usize) -> anyhow::Result<()> {
        self.launch(i)?;
        let (port, name) = {
            let state = self.lock();
            let node = state.nodes.get(i).context("no such node")?;
            (node.http_port, node.name.clone())
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            if matches!(http_get(port, "/healthz?js-server-only=true"), Ok((200, _))) {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "restarted node {name} not serving JetStream within {READY_TIMEOUT:?}; log:\n{}",
                    self.log(i)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_for_meta_leader()
    }

    /// What node `i` logged so far (this run and the ones before its restarts).
    pub fn log(&self, i: usize) -> String {
        let state = self.lock();
        state
            .nodes
            .get(i)
            .and_then(|n| std::fs::read_to_string(&n.log).ok())
            .unwrap_or_default()
    }

    fn launch(&self, i: usize) -> anyhow::Result<()> {
        let mut state = self.lock();
        let routes: Vec<String> = state
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect();
        let program = state.program.clone();
        let node = state.nodes.get_mut(i).context("no such node")?;
        if node.child.is_some() {
            bail!("node {} is running already", node.name);
        }
        std::fs::create_dir_all(&node.store)?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .with_context(|| format!("opening {}", node.log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(&program)
            .args(["-a", "127.0.0.1", "-p", &node.client_port.to_string()])
            .args(["-m", &node.http_port.to_string()])
            .args(["--server_name", &node.name, "-js"])
            .arg("-sd")
            .arg(&node.store)
            .args(["--cluster_name", CLUSTER_NAME])
            .arg("--cluster")
            .arg(format!("nats://127.0.0.1:{}", node.cluster_port))
            .arg("--routes")
            .arg(routes.join(","))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("launching {}", program.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Fails with the node's log when a node that should run has exited.
    fn check_alive(&self) -> anyhow::Result<()> {
        let mut state = self.lock();
        for node in &mut state.nodes {
            if let Some(child) = &mut node.child {
                if let Some(status) = child.try_wait()? {
                    node.child = None;
                    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                    bail!("node {} exited ({status}); log:\n{log}", node.name);
                }
            }
        }
        Ok(())
    }

    /// Waits until every running node's `/jsz` names the same meta leader and a meta group of
    /// three.
    fn wait_for_meta_leader(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::new();
        loop {
            self.check_alive()?;
            let ports: Vec<(String, u16)> = {
                let state = self.lock();
                state
                    .nodes
                    .iter()
                    .filter(|n| n.child.is_some())
                    .map(|n| (n.name.clone(), n.http_port))
                    .collect()
            };
            let mut leaders = Vec::new();
            for (name, port) in &ports {
                match meta_leader(*port) {
                    Ok(Some(leader)) => leaders.push(leader),
                    Ok(None) => last = format!("{name}: no meta leader yet"),
                    Err(err) => last = format!("{name}: {err:#}"),
                }
            }
            if leaders.len() == ports.len() && leaders.windows(2).all(|w| w[0] == w[1]) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..NODES)
                    .map(|i| format!("--- log of n{}:\n{}", i + 1, self.log(i)))
                    .collect();
                bail!(
                    "the cluster had no common JetStream meta leader within {READY_TIMEOUT:?} \
                     ({last})\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The meta leader's name from `/jsz` on `port`, when the node knows one and sees a meta group
/// of [`NODES`].
fn meta_leader(port: u16) -> anyhow::Result<Option<String>> {
    let (status, body) = http_get(port, "/jsz")?;
    if status != 200 {
        bail!("/jsz answered {status}");
    }
    let jsz: serde_json::Value = serde_json::from_str(&body).context("parsing /jsz")?;
    let meta = &jsz["meta_cluster"];
    let size = meta["cluster_size"].as_u64().unwrap_or(0);
    Ok(meta["leader"]
        .as_str()
        .filter(|l| !l.is_empty() && size == NODES as u64)
        .map(str::to_owned))
}

/// A plain HTTP/1.0 GET on the loopback monitoring port: status and body.
fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}
