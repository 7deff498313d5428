//! Logging set-up for the binary: level from `-D`/`-V`, to stderr or the `-l` file, which
//! SIGUSR1 reopens (as nats-server does) so that log rotation works.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::options::Options;

/// The `-l` log file, which can be reopened under the same path after it was rotated away.
#[derive(Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    fn open(path: &Path) -> anyhow::Result<LogFile> {
        let file = open_append(path)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Opens the path again; lines written from now on go to the new file.
    pub fn reopen(&self) -> anyhow::Result<()> {
        let fresh = open_append(&self.path)?;
        *self.lock() = fresh;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, File> {
        // A panic while writing a log line leaves the file usable.
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

/// One log line's access to the file.
pub struct LogFileWriter<'a>(MutexGuard<'a, File>);

impl Write for LogFileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LogFileWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LogFileWriter(self.lock())
    }
}

/// Installs the global subscriber; `RUST_LOG` overrides the level when set. Returns the log
/// file, when logging to one, for reopening.
pub fn init(opts: &Options) -> anyhow::Result<Option<LogFile>> {
    let level = match (opts.trace, opts.debug) {
        (true, _) => "trace",
        (false, true) => "debug",
        _ => "info",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("broker={level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match (&opts.log_file, opts.log_time) {
        (Some(path), time) => {
            let file = LogFile::open(path)?;
            let builder = builder.with_ansi(false).with_writer(file.clone());
            if time {
                builder.init()
            } else {
                builder.without_time().init()
            }
            Ok(Some(file))
        }
        (None, time) => {
            // Colours only on a terminal, never in a file, a pipe or a container's log.
            let builder = builder
                .with_ansi(io::stderr().is_terminal())
                .with_writer(io::stderr);
            if time {
                builder.init()
            } else {
                builder.without_time().init()
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_writes_to_a_new_file_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.log");
        let log = LogFile::open(&path).unwrap();
        log.make_writer().write_all(b"before\n").unwrap();
        std::fs::rename(&path, dir.path().join("broker.log.1")).unwrap();
        log.reopen().unwrap();
        log.make_writer().write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        let rotated = std::fs::read_to_string(dir.path().join("broker.log.1")).unwrap();
        assert_eq!(rotated, "before\n");
    }
}
