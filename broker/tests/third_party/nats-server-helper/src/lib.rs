//! A stand-in for the unpublished `nats-server` test-helper crate that third-party NATS client
//! suites (async-nats 0.51, and the legacy synchronous `nats` 0.25) use as a dev-dependency: it
//! runs a server for one test and kills it when the handle drops.
//!
//! The server is the binary named by `NATS_SERVER_BIN` (default `nats-server` on `PATH`), so one
//! build of a suite runs against the reference nats-server and against the bundled broker. Each
//! server gets its own temporary directory holding its ports file (`--ports_file_dir`), its
//! JetStream store (`-sd`) and its log (`server.log`), and listens on a free port (`-p -1`) unless
//! the test asks for a fixed one. The directory is removed when the server drops, unless
//! `NATS_SERVER_KEEP` is set.
//!
//! Layout: this file is the API the suites call; [`process`] launches and watches the child.
//!
//! Not implemented, and panicking with a message saying so: [`run_cluster`].

mod process;

use process::{Launch, ServerProcess};

/// One running server; killed (SIGKILL) when dropped.
pub struct Server {
    process: ServerProcess,
}

impl Server {
    /// `nats://localhost:<port>`: `localhost` so that TLS suites can check the certificate name.
    pub fn client_url(&self) -> String {
        format!("nats://localhost:{}", self.process.port())
    }

    /// `nats://<user>:<pass>@localhost:<port>`: credentials in the URL (the legacy `nats` suite).
    pub fn client_url_with(&self, user: &str, pass: &str) -> String {
        format!("nats://{user}:{pass}@localhost:{}", self.process.port())
    }

    /// `nats://<token>@localhost:<port>`: a token in the URL (the legacy `nats` suite).
    pub fn client_url_with_token(&self, token: &str) -> String {
        format!("nats://{token}@localhost:{}", self.process.port())
    }

    /// The client port the server reported in its ports file.
    pub fn client_port(&self) -> u16 {
        self.process.port()
    }

    /// Kills the server and starts it again with the same configuration, port and store.
    pub fn restart(&mut self) {
        self.process.restart();
    }

    /// The server's process id, for signals.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// What the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// Several servers routed together; only a type here, since [`run_cluster`] is not implemented.
pub struct Cluster {
    servers: Vec<Server>,
}

impl Cluster {
    /// The client URL of the first server.
    pub fn client_url(&self) -> String {
        self.servers[0].client_url()
    }
}

/// Runs a server with no configuration file on a free port.
pub fn run_basic_server() -> Server {
    run_server_with_port("", None)
}

/// Runs a server with configuration file `cfg` (relative to the suite's directory, as the
/// suites' `tests/configs/*.conf` are) on a free port.
pub fn run_server(cfg: &str) -> Server {
    run_server_with_port(cfg, None)
}

/// Runs a server with configuration file `cfg` (none when empty) on `port`, or on a free port
/// when `None`. A flag's port overrides the file's `port`/`listen`, as in nats-server.
pub fn run_server_with_port(cfg: &str, port: Option<&str>) -> Server {
    let port = port.map(|p| {
        p.parse()
            .unwrap_or_else(|_| panic!("port {p:?} is not a number"))
    });
    let launch = Launch::new(cfg, port);
    let process =
        ServerProcess::start(launch).unwrap_or_else(|e| panic!("cannot run the server: {e}"));
    Server { process }
}

/// Would run a three-node cluster; clustering is out of scope for this helper (the bundled
/// broker does not cluster), so it panics.
pub fn run_cluster(cfg: &str) -> Cluster {
    panic!(
        "run_cluster({cfg:?}): clustering is not implemented by this nats-server test helper; \
         the runner script allow-lists cluster tests"
    )
}

/// Puts the server into lame duck mode with SIGUSR2, as `nats-server --signal ldm=<pid>` does.
pub fn set_lame_duck_mode(server: &Server) {
    server.process.signal(libc::SIGUSR2);
}
