//! Checks of a service's start-up that both services' suites share: while it waits for its
//! database or broker it answers `/healthz` 200, `/readyz` 503 saying what is missing, and
//! `503 {"error": "starting"}` on its API; a binary run to its exit, with its output.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::Value;

use crate::InProcess;

/// `/readyz` while the service waits for `missing` (`"database"` or `"broker"`): 503, that
/// part false, `"starting": true`. `/healthz` must answer 200 meanwhile. Returns the body.
pub async fn starting(service: &InProcess, missing: &str) -> anyhow::Result<Value> {
    let (health, _) = service.get("/healthz").await?;
    ensure!(health == 200, "/healthz answered {health} while starting");
    let (status, body) = service.get("/readyz").await?;
    ensure!(
        status == 503,
        "/readyz answered {status} while starting: {body}"
    );
    ensure!(
        body[missing] == Value::Bool(false),
        "/readyz says {missing} is up while it is not: {body}"
    );
    ensure!(
        body["starting"] == true,
        "/readyz lacks \"starting\": {body}"
    );
    Ok(body)
}

/// Holds [`starting`] for `period` (polling), and waits within it for the other part to show
/// as connected (it is there).
pub async fn stays_starting(
    service: &InProcess,
    missing: &str,
    present: &str,
    period: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + period;
    let mut seen_present = false;
    while Instant::now() < until {
        let body = starting(service, missing).await?;
        seen_present |= body[present] == true;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        seen_present,
        "/readyz never showed the {present} as connected in {period:?}"
    );
    Ok(())
}

/// An API call while the service starts must be `503 {"error": "starting", …}` with
/// `Retry-After`.
pub async fn api_says_starting(service: &InProcess, path: &str) -> anyhow::Result<()> {
    let response = service
        .http
        .post(format!("{}{path}", service.url))
        .json(&serde_json::json!({}))
        .send()
        .await?;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await?;
    ensure!(
        status == 503,
        "{path} answered {status} while starting: {body}"
    );
    ensure!(body["error"] == "starting", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    ensure!(
        message == "the service is starting: waiting for the database and the broker",
        "{body}"
    );
    ensure!(retry_after.is_some(), "no Retry-After on the 503");
    Ok(())
}

/// A binary run to its exit.
#[derive(Debug)]
pub struct Exit {
    /// How it ended.
    pub status: ExitStatus,
    /// How long it ran.
    pub elapsed: Duration,
    /// Its standard output (the log, as JSON lines with `LOG_JSON=true`).
    pub stdout: String,
    /// Its standard error (where an error that ends it is printed).
    pub stderr: String,
}

impl Exit {
    /// The JSON log lines at `level` (`WARN`, `ERROR`, …).
    pub fn log_lines(&self, level: &str) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["level"] == level)
            .collect()
    }
}

/// Runs `program` with `env` (plus `HTTP_ADDR=127.0.0.1:0` and `LOG_JSON=true`) until it exits
/// by itself, for at most `bound` (then it is killed and this fails).
pub fn run_to_exit(
    program: &Path,
    env: &[(&str, String)],
    bound: Duration,
) -> anyhow::Result<Exit> {
    let out_dir = tempfile::tempdir()?;
    let (out_path, err_path) = (out_dir.path().join("out"), out_dir.path().join("err"));
    let began = Instant::now();
    let mut child = Command::new(program)
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("LOG_JSON", "true")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if began.elapsed() >= bound {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            bail!(
                "{} still ran after {bound:?}; stderr:\n{stderr}",
                program.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Exit {
        status,
        elapsed: began.elapsed(),
        stdout: std::fs::read_to_string(&out_path)?,
        stderr: std::fs::read_to_string(&err_path)?,
    })
}

/// Checks a run that gave up at its `CONNECT_DEADLINE` of `deadline` on a broker that never
/// came: non-zero exit soon after the deadline, the error naming the broker and the deadline on
/// stderr, and a WARN line per failed attempt with its number, error and next delay.
pub fn gave_up_on_the_broker(exit: &Exit, nats_url: &str, deadline: &str) -> anyhow::Result<()> {
    ensure!(!exit.status.success(), "exited with {}", exit.status);
    let stderr = &exit.stderr;
    let broker = format!("gave up on the broker at {nats_url}");
    ensure!(
        stderr.contains(&broker),
        "stderr lacks {broker:?}:\n{stderr}"
    );
    let named = format!("CONNECT_DEADLINE={deadline}");
    ensure!(stderr.contains(&named), "stderr lacks {named:?}:\n{stderr}");
    let warnings = exit.log_lines("WARN");
    let attempts: Vec<&Value> = warnings
        .iter()
        .filter(|line| line["fields"]["attempt"].is_number())
        .collect();
    ensure!(
        attempts.len() >= 2,
        "expected a WARN line per failed attempt; log:\n{}",
        exit.stdout
    );
    for line in &attempts {
        let fields = &line["fields"];
        ensure!(fields["error"].is_string(), "no error in {line}");
        ensure!(fields["retry_in"].is_string(), "no next delay in {line}");
    }
    ensure!(
        attempts[0]["fields"]["attempt"] == 1,
        "attempts are numbered from 1: {}",
        attempts[0]
    );
    Ok(())
}

/// A service's binary, for the process-level start-up checks below.
#[derive(Clone, Copy, Debug)]
pub struct Binary {
    /// Its path (`env!("CARGO_BIN_EXE_…")`).
    pub path: &'static str,
    /// Its short name: the SQLite file is `<name>.db`.
    pub name: &'static str,
}

impl Binary {
    /// `NATS_URL` at a port nothing listens on, and `DATABASE_URL` a fresh SQLite file in `dir`.
    fn without_broker(&self, dir: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
        let database = dir.join(format!("{}.db", self.name));
        Ok(vec![
            (
                "NATS_URL",
                format!("nats://127.0.0.1:{}", crate::unused_port()?),
            ),
            (
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", database.display()),
            ),
        ])
    }
}

/// A busy `HTTP_ADDR` fails the service at once, with an error naming the setting. `run` runs
/// the service in-process from command-line arguments (no broker, an in-memory database, the
/// taken address).
pub async fn a_busy_http_port_fails_at_once<F, Fut>(run: F) -> anyhow::Result<()>
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?;
    let args = vec![
        "service".to_owned(),
        format!("--nats-url=nats://127.0.0.1:{}", crate::unused_port()?),
        "--database-url=sqlite::memory:".to_owned(),
        format!("--http-addr={addr}"),
    ];
    let began = Instant::now();
    let ran = tokio::time::timeout(Duration::from_secs(10), run(args)).await?;
    let err = ran.err().context("the service ran on a taken port")?;
    ensure!(
        format!("{err:#}")
            == format!("cannot listen on {addr} (HTTP_ADDR / --http-addr): address in use"),
        "{err:#}"
    );
    ensure!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    Ok(())
}

/// With `CONNECT_DEADLINE=1s` and no broker, the binary gives up soon after the deadline and
/// exits with an error (see [`gave_up_on_the_broker`]).
pub async fn gives_up_at_its_connect_deadline(binary: Binary) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut env = binary.without_broker(dir.path())?;
    let nats_url = env[0].1.clone();
    env.push(("CONNECT_DEADLINE", "1s".to_owned()));
    let exit = tokio::task::spawn_blocking(move || {
        run_to_exit(Path::new(binary.path), &env, Duration::from_secs(15))
    })
    .await??;
    gave_up_on_the_broker(&exit, &nats_url, "1s")?;
    ensure!(
        exit.elapsed >= Duration::from_secs(1) && exit.elapsed < Duration::from_secs(5),
        "gave up after {:?} with a 1 s deadline",
        exit.elapsed
    );
    Ok(())
}

/// SIGTERM while the binary still waits for its broker stops it within a second, exit 0.
pub async fn sigterm_while_waiting_for_the_broker_stops_at_once(
    binary: Binary,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = binary.without_broker(dir.path())?;
    let mut service = crate::process::ServiceProcess::start(Path::new(binary.path), &env)?;
    let readyz = format!("{}/readyz", service.url());
    let status = reqwest::Client::new().get(&readyz).send().await?.status();
    ensure!(
        status.as_u16() == 503,
        "/readyz answered {status} while starting"
    );
    let began = Instant::now();
    let status = service.terminate(Duration::from_secs(5))?;
    let took = began.elapsed();
    eprintln!("stopped {took:?} after SIGTERM while waiting for the broker");
    ensure!(
        status.success(),
        "a stop while starting exits 0, got {status}"
    );
    ensure!(took < Duration::from_secs(1), "took {took:?}");
    Ok(())
}

/// SIGTERM to a ready binary with nothing in flight stops it within 2 s, exit 0; and again with
/// its broker gone (nothing to flush, nothing to wait for).
pub async fn sigterm_with_nothing_in_flight_stops_quickly(
    target: &crate::Target,
    binary: Binary,
) -> anyhow::Result<()> {
    let bound = Duration::from_secs(30);
    let mut broker = target.broker.start()?;
    let dir = tempfile::tempdir()?;
    let database_url = target.database().fresh_url(dir.path(), binary.name).await?;
    let env = [("NATS_URL", broker.url()), ("DATABASE_URL", database_url)];
    let stop = |mut service: crate::process::ServiceProcess, when: &str| {
        let began = Instant::now();
        let status = service.terminate(Duration::from_secs(5))?;
        let took = began.elapsed();
        eprintln!("stopped {took:?} after SIGTERM {when}");
        ensure!(status.success(), "a graceful stop exits 0, got {status}");
        ensure!(took < Duration::from_secs(2), "took {took:?} {when}");
        anyhow::Ok(())
    };
    let service = crate::process::ServiceProcess::start(Path::new(binary.path), &env)?;
    service.wait_ready(bound).await?;
    stop(service, "with the broker up")?;

    let service = crate::process::ServiceProcess::start(Path::new(binary.path), &env)?;
    service.wait_ready(bound).await?;
    broker.process().kill()?;
    let http = reqwest::Client::new();
    let readyz = format!("{}/readyz", service.url());
    crate::eventually("/readyz to notice the broker is gone", bound, || async {
        Ok((http.get(&readyz).send().await?.status().as_u16() == 503).then_some(()))
    })
    .await?;
    stop(service, "with the broker gone")
}
