//! A service binary run as a child process with JSON logs; its bound HTTP address is read from
//! the `listening` log line (services bind port 0 in tests, and log it before they connect:
//! wait for [`ServiceProcess::wait_ready`] before using the API). Killed (SIGKILL) on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};

/// How long a service gets to report its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running service process.
pub struct ServiceProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServiceProcess {
    /// Starts `program` with `HTTP_ADDR=127.0.0.1:0`, `LOG_JSON=true` and `env`, and waits for
    /// the address it reports.
    pub fn start(program: &Path, env: &[(&str, String)]) -> anyhow::Result<Self> {
        Self::start_with_args(program, &[], env)
    }

    /// [`ServiceProcess::start`] with command-line arguments.
    pub fn start_with_args(
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("LOG_JSON", "true")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (found, addr) = mpsc::channel();
        std::thread::spawn(move || forward_logs(stdout, found));
        match addr.recv_timeout(START_TIMEOUT) {
            Ok(addr) => Ok(Self { child, addr }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!(
                    "{} did not report a listening address within {START_TIMEOUT:?} (exit: {status:?})",
                    program.display()
                )
            }
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (bounded) until `/readyz` answers 200: connected and serving.
    pub async fn wait_ready(&self, bound: Duration) -> anyhow::Result<()> {
        crate::wait::ready(&reqwest::Client::new(), &self.url(), bound).await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `bound` for the process to exit.
    pub fn terminate(&mut self, bound: Duration) -> anyhow::Result<ExitStatus> {
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: kill(2) on our own unreaped child, whose pid cannot have been reused.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(std::io::Error::last_os_error()).context("sending SIGTERM");
        }
        self.wait_exit(bound)
    }

    /// Waits up to `bound` for the process to exit by itself.
    pub fn wait_exit(&mut self, bound: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = std::time::Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() >= deadline {
                bail!("the service did not exit within {bound:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Echoes the child's log lines to stderr and sends the address of the first `listening` line.
fn forward_logs(stdout: std::process::ChildStdout, found: mpsc::Sender<SocketAddr>) {
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        eprintln!("{line}");
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let fields = &value["fields"];
        let listening = fields["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("listening"));
        if let (true, Some(addr)) = (listening, fields["addr"].as_str()) {
            if let Ok(addr) = addr.parse() {
                let _ = found.send(addr);
            }
        }
    }
}
