//! Launching the server child, finding its port in the ports file, and cleaning up.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to write its ports file.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the ports directory is looked at while waiting.
const POLL: Duration = Duration::from_millis(10);

/// What to launch: everything needed to launch the same server again on restart.
pub(crate) struct Launch {
    program: String,
    config: Option<PathBuf>,
    port: Option<u16>,
    jetstream: bool,
}

impl Launch {
    /// `cfg` empty means no configuration file; `port` `None` means a free one.
    pub(crate) fn new(cfg: &str, port: Option<u16>) -> Self {
        let program = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let config = (!cfg.is_empty()).then(|| absolute(Path::new(cfg)));
        // A JetStream server gets its own store, not the shared default under the temp dir.
        let jetstream = config.as_deref().is_some_and(mentions_jetstream);
        Launch {
            program,
            config,
            port,
            jetstream,
        }
    }

    fn command(&self, dir: &Dir) -> Command {
        let mut cmd = Command::new(&self.program);
        let port = self.port.map_or("-1".to_string(), |p| p.to_string());
        cmd.arg("-p").arg(port);
        cmd.arg("--ports_file_dir").arg(dir.ports());
        if let Some(config) = &self.config {
            cmd.arg("-c").arg(config);
        }
        if self.jetstream {
            cmd.arg("-sd").arg(dir.store());
        }
        cmd
    }
}

/// A running child, the directory it writes into, and how it was launched.
pub(crate) struct ServerProcess {
    launch: Launch,
    dir: Dir,
    child: Child,
    port: u16,
}

impl ServerProcess {
    /// Launches the server and waits for its ports file.
    pub(crate) fn start(launch: Launch) -> io::Result<Self> {
        let dir = Dir::create()?;
        let child = spawn(&launch, &dir)?;
        let mut process = ServerProcess {
            launch,
            dir,
            child,
            port: 0,
        };
        process.port = process.wait_for_port()?;
        Ok(process)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.log()).unwrap_or_default()
    }

    /// Sends `signal` to the child.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits in pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child, not yet
        // reaped, so it cannot have been reused.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "cannot signal the server: {}",
            io::Error::last_os_error()
        );
    }

    /// Kills the child and launches it again on the same port with the same store.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.launch.port = Some(self.port);
        let _ = fs::remove_dir_all(self.dir.ports());
        let restarted = fs::create_dir_all(self.dir.ports())
            .and_then(|()| spawn(&self.launch, &self.dir))
            .and_then(|child| {
                self.child = child;
                self.wait_for_port()
            });
        if let Err(e) = restarted {
            panic!("cannot restart the server: {e}");
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Polls the ports directory until the server names its client port, or fails with the log
    /// if the child exits or takes too long.
    fn wait_for_port(&mut self) -> io::Result<u16> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(port) = read_port(&self.dir.ports())? {
                return Ok(port);
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(failure(
                    &format!("the server exited with {status}"),
                    &self.log(),
                ));
            }
            if Instant::now() > deadline {
                return Err(failure(
                    "the server wrote no ports file in time",
                    &self.log(),
                ));
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("NATS_SERVER_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir.root);
        }
    }
}

fn spawn(launch: &Launch, dir: &Dir) -> io::Result<Child> {
    // The child's output goes to a file: inherited, it would interleave with libtest's report.
    let log = File::options().create(true).append(true).open(dir.log())?;
    launch
        .command(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", launch.program)))
}

fn failure(what: &str, log: &str) -> io::Error {
    io::Error::other(format!("{what}; its log:\n{log}"))
}

/// The client port in a `*.ports` file in `dir`, once one is complete.
fn read_port(dir: &Path) -> io::Result<Option<u16>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ports") {
            // A file caught half-written does not parse yet; the next poll reads it again.
            return Ok(fs::read_to_string(&path).ok().and_then(|t| client_port(&t)));
        }
    }
    Ok(None)
}

// {"nats":["nats://127.0.0.1:4222", ...],"monitoring":[...]}; `tls://` when TLS is required.
/// The port of the first URL under `"nats"`.
fn client_port(ports_json: &str) -> Option<u16> {
    let urls = &ports_json[ports_json.find(r#""nats""#)?..];
    let urls = &urls[urls.find('[')? + 1..];
    let url = urls.trim_start().strip_prefix('"')?;
    let url = &url[..url.find('"')?];
    url.rsplit(':').next()?.parse().ok()
}

fn mentions_jetstream(config: &Path) -> bool {
    fs::read_to_string(config).is_ok_and(|text| text.contains("jetstream"))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The server's own temporary directory: `ports/`, `jetstream/` and `server.log`.
struct Dir {
    root: PathBuf,
}

impl Dir {
    fn create() -> io::Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "nats-server-helper-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = Dir {
            root: std::env::temp_dir().join(name),
        };
        fs::create_dir_all(dir.ports())?;
        Ok(dir)
    }

    fn ports(&self) -> PathBuf {
        self.root.join("ports")
    }

    fn store(&self) -> PathBuf {
        self.root.join("jetstream")
    }

    fn log(&self) -> PathBuf {
        self.root.join("server.log")
    }
}

#[cfg(test)]
mod tests {
    use super::client_port;

    #[test]
    fn client_port_is_read_from_the_first_nats_url() {
        let json = r#"{"nats":["nats://127.0.0.1:4222","nats://10.0.0.2:4222"],"monitoring":["http://127.0.0.1:8222"]}"#;
        assert_eq!(client_port(json), Some(4222));
    }

    #[test]
    fn client_port_is_read_from_a_tls_url_too() {
        let json = r#"{"nats":["tls://localhost:40611"]}"#;
        assert_eq!(client_port(json), Some(40611));
    }

    #[test]
    fn half_written_ports_file_has_no_port_yet() {
        assert_eq!(client_port(r#"{"nats":["nats://127.0.0.1:42"#), None);
    }
}
