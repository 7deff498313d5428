//! One child process of the stack: `bank <component> <args>` in a process group of its own (so
//! a Ctrl-C in the terminal reaches only the stack, which then stops children in order), with a
//! parent-death signal (so a stack killed with `kill -9` leaves no orphans), its output in a
//! log file or prefixed on the terminal.

use std::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::config::LogTarget;
use crate::plan::Planned;

/// Where children's output goes.
#[derive(Clone, Debug)]
pub enum LogSink {
    /// Appended to `<dir>/<component>.log`.
    Files(PathBuf),
    /// Printed here, each line prefixed with the component's name.
    Terminal,
}

impl LogSink {
    /// The sink for `target`, with files under `dir`.
    pub fn new(target: LogTarget, dir: &Path) -> Self {
        match target {
            LogTarget::Files => LogSink::Files(dir.to_owned()),
            LogTarget::Terminal => LogSink::Terminal,
        }
    }
}

/// The log file of component `name` under `dir`.
pub fn log_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit(pub Option<ExitStatus>);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::unix::process::ExitStatusExt;
        match self.0 {
            None => write!(f, "was lost (waiting for it failed)"),
            Some(status) => match (status.code(), status.signal()) {
                (Some(code), _) => write!(f, "exited with status {code}"),
                (None, Some(signal)) => write!(f, "was killed by signal {signal}"),
                (None, None) => write!(f, "ended ({status})"),
            },
        }
    }
}

/// A running child.
pub struct Child {
    name: String,
    process: tokio::process::Child,
}

impl Child {
    /// Starts `planned` as `exe <subcommand> <args>`.
    pub fn spawn(exe: &Path, planned: &Planned, sink: &LogSink) -> anyhow::Result<Self> {
        let mut command = Command::new(exe);
        command
            .arg(planned.component.subcommand())
            .args(&planned.args)
            .envs(planned.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls (prctl, getppid, kill) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The stack died between fork and prctl: do as the signal would have.
                if libc::getppid() != parent as libc::pid_t {
                    libc::kill(libc::getpid(), libc::SIGTERM);
                }
                Ok(())
            });
        }
        match sink {
            LogSink::Files(dir) => {
                let path = log_file(dir, &planned.name);
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                let copy = file.try_clone().context("duplicating the log file")?;
                command.stdout(file).stderr(copy).env("NO_COLOR", "1");
            }
            LogSink::Terminal => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        let mut process = command
            .spawn()
            .with_context(|| format!("starting {}", planned.name))?;
        if let LogSink::Terminal = sink {
            if let Some(out) = process.stdout.take() {
                tokio::spawn(prefix_lines(planned.name.clone(), out));
            }
            if let Some(err) = process.stderr.take() {
                tokio::spawn(prefix_lines(planned.name.clone(), err));
            }
        }
        Ok(Self {
            name: planned.name.clone(),
            process,
        })
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// Waits for it to end.
    pub async fn wait(&mut self) -> Exit {
        Exit(self.process.wait().await.ok())
    }

    /// Sends SIGTERM, waits until `deadline`, then kills it (SIGKILL).
    pub async fn stop(&mut self, deadline: Instant) {
        if let Some(pid) = self.pid() {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill(2) on our own child, not yet reaped, so the pid is still ours.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        if tokio::time::timeout_at(deadline, self.process.wait())
            .await
            .is_err()
        {
            eprintln!("bank: {} did not stop in time; killing it", self.name);
            let _ = self.process.kill().await;
        }
    }
}

/// Prints each line of `stream` as `<name> | <line>`.
async fn prefix_lines(name: String, stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{name:>12} | {line}");
    }
}
