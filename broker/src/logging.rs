//! Logging set-up for the binary: level from `-D`/`-V`, to stderr or the `-l` file, which
//! SIGUSR1 reopens (as nats-server does) so that log rotation works. A configuration reload may
//! change the level, the file and the timestamps ([`Logging::apply`]).

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::options::Options;

/// Where log lines go: the log file (with its path, to reopen it), or stderr.
#[derive(Clone, Default)]
pub struct LogTarget {
    file: Arc<Mutex<Option<(PathBuf, File)>>>,
}

impl LogTarget {
    /// Logs to `path` from now on (appending), or to stderr with `None`.
    fn set(&self, path: Option<&Path>) -> anyhow::Result<()> {
        let file = match path {
            Some(path) => Some((path.to_path_buf(), open_append(path)?)),
            None => None,
        };
        *self.lock() = file;
        Ok(())
    }

    /// Opens the file's path again, so lines go to a new file after rotation; `false` when
    /// logging to stderr.
    pub fn reopen(&self) -> anyhow::Result<bool> {
        let mut slot = self.lock();
        let Some((path, file)) = slot.as_mut() else {
            return Ok(false);
        };
        *file = open_append(path)?;
        Ok(true)
    }

    fn lock(&self) -> MutexGuard<'_, Option<(PathBuf, File)>> {
        // A panic while writing a log line leaves the target usable.
        self.file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn open_append(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))
}

/// One log line's access to the target.
pub struct LogWriter<'a>(MutexGuard<'a, Option<(PathBuf, File)>>);

impl Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.as_mut() {
            Some((_, file)) => file.write(buf),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.0.as_mut() {
            Some((_, file)) => file.flush(),
            None => io::stderr().flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for LogTarget {
    type Writer = LogWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self.lock())
    }
}

/// Timestamps that `logtime` switches on and off.
struct SwitchedTime(Arc<AtomicBool>);

impl FormatTime for SwitchedTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        if self.0.load(Ordering::Relaxed) {
            SystemTime.format_time(w)
        } else {
            Ok(())
        }
    }
}

/// The installed logger's settings that a reload may change.
#[derive(Clone)]
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    /// Where lines go; SIGUSR1 reopens it.
    pub target: LogTarget,
    time: Arc<AtomicBool>,
}

/// The filter for the options' level; `RUST_LOG` overrides it when set.
fn filter(opts: &Options) -> EnvFilter {
    let level = match (opts.trace, opts.debug) {
        (true, _) => "trace",
        (false, true) => "debug",
        _ => "info",
    };
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("broker={level},warn")))
}

impl Logging {
    /// Puts the options' level, log file and timestamps in force.
    pub fn apply(&self, opts: &Options) -> anyhow::Result<()> {
        self.target.set(opts.log_file.as_deref())?;
        self.time.store(opts.log_time, Ordering::Relaxed);
        self.filter
            .reload(filter(opts))
            .context("changing the log level")
    }
}

/// Installs the global subscriber.
pub fn init(opts: &Options) -> anyhow::Result<Logging> {
    let target = LogTarget::default();
    target.set(opts.log_file.as_deref())?;
    let time = Arc::new(AtomicBool::new(opts.log_time));
    let (filter, handle) = reload::Layer::new(filter(opts));
    // Colours only on a terminal, never in a file, a pipe or a container's log.
    let ansi = opts.log_file.is_none() && io::stderr().is_terminal();
    let format = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_timer(SwitchedTime(time.clone()))
        .with_writer(target.clone());
    tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .try_init()
        .context("installing the logger")?;
    Ok(Logging {
        filter: handle,
        target,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_writes_to_a_new_file_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.log");
        let log = LogTarget::default();
        log.set(Some(&path)).unwrap();
        log.make_writer().write_all(b"before\n").unwrap();
        std::fs::rename(&path, dir.path().join("broker.log.1")).unwrap();
        assert!(log.reopen().unwrap());
        log.make_writer().write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        let rotated = std::fs::read_to_string(dir.path().join("broker.log.1")).unwrap();
        assert_eq!(rotated, "before\n");
    }

    #[test]
    fn the_target_moves_between_files_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let log = LogTarget::default();
        assert!(!log.reopen().unwrap(), "stderr has nothing to reopen");
        log.set(Some(&first)).unwrap();
        log.make_writer().write_all(b"one\n").unwrap();
        log.set(Some(&second)).unwrap();
        log.make_writer().write_all(b"two\n").unwrap();
        log.set(None).unwrap();
        assert!(!log.reopen().unwrap());
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(&second).unwrap(), "two\n");
        let unwritable = dir.path().join("missing").join("c.log");
        assert!(log.set(Some(&unwritable)).is_err());
    }

    #[test]
    fn timestamps_follow_their_switch() {
        let on = Arc::new(AtomicBool::new(true));
        let time = SwitchedTime(on.clone());
        let mut text = String::new();
        time.format_time(&mut Writer::new(&mut text)).unwrap();
        assert!(!text.is_empty());
        on.store(false, Ordering::Relaxed);
        let mut text = String::new();
        time.format_time(&mut Writer::new(&mut text)).unwrap();
        assert!(text.is_empty());
    }
}
