//! A throwaway PostgreSQL for tests, once per test binary, stopped at exit: `TEST_DATABASE_URL`
//! when set; otherwise a `postgres` container (testcontainers) when a Docker engine answers;
//! otherwise, or when the container does not start, a local cluster made with `initdb` and
//! started with `pg_ctl` on a free port. `TEST_POSTGRES=local` skips the container,
//! `TEST_POSTGRES=docker` insists on it (CI sets it, so a broken container path fails rather than
//! falling back). Each test gets its own database (`test_<random>`).
//!
//! The container is testcontainers-modules' `Postgres` with its default image,
//! `postgres:11-alpine`, which the engine pulls where a registry answers. Where none does (CI),
//! `infra/offline/postgres-image.sh` builds a local image under that tag first: Debian bookworm's
//! PostgreSQL 15 with an entry point like the official image's, so this code is the same online
//! and offline. testcontainers-rs starts no reaper container (no Ryuk to pull or turn off): this
//! module removes its container at exit, and a binary killed before that leaves it behind
//! (`docker ps --filter label=org.testcontainers.managed-by=testcontainers`). bollard 0.20
//! sends its requests without an API version in the path, so the engine answers at its own
//! version: Debian's dockerd 20.10 (API 1.41) works although bollard's stubs are for 1.52.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use anyhow::{bail, Context};
use sqlx::{Connection, Executor};

/// Where the server behind [`fresh_database`] lives.
struct Server {
    /// `postgres://user@host:port` without a database.
    base_url: String,
}

/// A URL of a new, empty database on the shared test server.
pub async fn fresh_database() -> anyhow::Result<String> {
    let base = server()?;
    let name = format!("test_{:016x}", fastrand::u64(..));
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .with_context(|| format!("connecting to {base}/postgres"))?;
    admin
        .execute(format!("create database {name}").as_str())
        .await
        .context("creating a test database")?;
    admin.close().await.ok();
    Ok(format!("{base}/{name}"))
}

/// Why PostgreSQL cannot be had here, if it cannot.
pub fn unavailable() -> Option<String> {
    server().err().map(|err| format!("{err:#}"))
}

fn server() -> anyhow::Result<String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| start().map_err(|err| format!("{err:#}")))
        .as_ref()
        .map(|server| server.base_url.clone())
        .map_err(|err| anyhow::anyhow!("no PostgreSQL for tests: {err}"))
}

/// Which server `TEST_POSTGRES` asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Unset: a container where a Docker engine answers and one starts, else a local cluster.
    Auto,
    /// `local`: a local cluster, never a container.
    Local,
    /// `docker`: a container, or an error.
    Docker,
}

impl Mode {
    fn from_env() -> anyhow::Result<Mode> {
        match std::env::var("TEST_POSTGRES").as_deref() {
            Err(_) | Ok("") => Ok(Mode::Auto),
            Ok("local") => Ok(Mode::Local),
            Ok("docker") => Ok(Mode::Docker),
            Ok(other) => bail!("TEST_POSTGRES={other}: expected local or docker"),
        }
    }
}

fn start() -> anyhow::Result<Server> {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        return Ok(Server {
            base_url: base.to_owned(),
        });
    }
    let mode = Mode::from_env()?;
    if mode != Mode::Local {
        match (docker::engine(), mode) {
            (Some(engine), Mode::Docker) => return docker::start(&engine),
            (Some(engine), _) => match docker::start(&engine) {
                Ok(server) => return Ok(server),
                Err(err) => eprintln!(
                    "note: {err:#}; using a local initdb cluster instead \
                     (TEST_POSTGRES=docker makes this an error)"
                ),
            },
            (None, Mode::Docker) => bail!("TEST_POSTGRES=docker, but no Docker engine answers"),
            (None, _) => {}
        }
    }
    start_local()
}

/// A cluster made with `initdb` in a temporary directory and started with `pg_ctl` on a free
/// port; stopped and deleted at exit.
fn start_local() -> anyhow::Result<Server> {
    let bin = postgres_bin_dir()?;
    let dir = tempfile::Builder::new()
        .prefix("pg-test-")
        .tempdir()
        .context("creating the cluster directory")?
        .keep();
    let port = free_port()?;
    let cluster = Cluster { bin, dir, port };
    cluster.init()?;
    cluster.start()?;
    CLUSTER.set(cluster).ok();
    // SAFETY: registering a plain extern "C" function with no preconditions.
    unsafe { libc::atexit(stop_at_exit) };
    Ok(Server {
        base_url: format!("postgres://postgres@127.0.0.1:{port}"),
    })
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

extern "C" fn stop_at_exit() {
    if let Some(cluster) = CLUSTER.get() {
        cluster.stop();
    }
}

struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self) -> anyhow::Result<()> {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.dir)
                .status()
                .context("running chown")?;
            if !status.success() {
                bail!("chown postgres {} failed ({status})", self.dir.display());
            }
        }
        let data = self.data();
        let initdb = self.bin.join("initdb");
        let args = [
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ];
        let output = self.run(&initdb, &args, &[data.as_os_str()])?;
        check(&output, "initdb")
    }

    fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log");
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        let args = [
            "-D".as_ref(),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-o".as_ref(),
            options.as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            "30".as_ref(),
            "start".as_ref(),
        ];
        let output = self.run(&pg_ctl, &[], &args)?;
        if !output.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn stop(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        let args = [
            "-D".as_ref(),
            data.as_os_str(),
            "-m".as_ref(),
            "immediate".as_ref(),
            "stop".as_ref(),
        ];
        let _ = self.run(&pg_ctl, &[], &args);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Runs a PostgreSQL tool, as the `postgres` user when we are root (it refuses to run as root).
    fn run(
        &self,
        program: &Path,
        args: &[&str],
        more: &[&std::ffi::OsStr],
    ) -> anyhow::Result<Output> {
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args).args(more).current_dir(&self.dir);
        command
            .output()
            .with_context(|| format!("running {}", program.display()))
    }
}

fn check(output: &Output, what: &str) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `$PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` with an `initdb`, else `initdb`
/// on `PATH`.
fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file())
        .context("initdb not found (install postgresql, or set PG_BIN or TEST_DATABASE_URL)")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding port 0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// PostgreSQL in a container, through testcontainers.
mod docker {
    use std::net::{TcpStream, ToSocketAddrs};
    use std::os::unix::net::UnixStream;
    use std::sync::Mutex;
    use std::time::Duration;

    use anyhow::Context;
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::runners::SyncRunner;
    use testcontainers_modules::testcontainers::{Container, Image, ImageExt};

    use super::Server;

    /// Where a Docker engine answers: `$DOCKER_HOST` (`unix://` or `tcp://`), else
    /// `/var/run/docker.sock`. A quick connect, so that a machine without Docker pays nothing.
    pub fn engine() -> Option<String> {
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
        let answers = if let Some(path) = host.strip_prefix("unix://") {
            UnixStream::connect(path).is_ok()
        } else if let Some(addr) = host.strip_prefix("tcp://") {
            addr.to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
        } else {
            false
        };
        answers.then_some(host)
    }

    static CONTAINER: Mutex<Option<Container<Postgres>>> = Mutex::new(None);

    /// Starts `postgres` (trust authentication, settings for tests) and returns its URL base.
    /// Runs on a thread of its own: the blocking runner must not run inside a tokio runtime.
    pub fn start(engine: &str) -> anyhow::Result<Server> {
        let engine = engine.to_owned();
        let container = std::thread::spawn(move || {
            let image = Postgres::default();
            let name = format!("{}:{}", image.name(), image.tag());
            image
                .with_host_auth()
                .with_cmd([
                    "postgres",
                    "-c",
                    "max_connections=400",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                ])
                .start()
                .with_context(|| {
                    format!(
                        "starting a {name} container on {engine} (where no registry can be \
                         reached, infra/offline/postgres-image.sh makes that image locally)"
                    )
                })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the container start panicked"))??;
        let host = container.get_host().context("the container's host")?;
        let port = container
            .get_host_port_ipv4(5432)
            .context("the container's port")?;
        *CONTAINER.lock().unwrap_or_else(|e| e.into_inner()) = Some(container);
        // SAFETY: registering a plain extern "C" function with no preconditions.
        unsafe { libc::atexit(remove_at_exit) };
        Ok(Server {
            base_url: format!("postgres://postgres@{host}:{port}"),
        })
    }

    /// Removes the container (and its anonymous volumes) at exit. On a thread of its own: by the
    /// time `atexit` handlers run, the main thread's thread-locals, tokio's among them, are gone,
    /// and the blocking runner panics without them.
    extern "C" fn remove_at_exit() {
        let container = CONTAINER.lock().ok().and_then(|mut c| c.take());
        if let Some(container) = container {
            let _ = std::thread::spawn(move || container.rm()).join();
        }
    }
}
