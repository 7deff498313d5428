//! Logging set-up for the binary: level from `-D`/`-V`, to stderr or the `-l` file.

use std::fs::OpenOptions;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::options::Options;

/// Installs the global subscriber; `RUST_LOG` overrides the level when set.
pub fn init(opts: &Options) -> anyhow::Result<()> {
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
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            let builder = builder.with_ansi(false).with_writer(Mutex::new(file));
            if time {
                builder.init()
            } else {
                builder.without_time().init()
            }
        }
        (None, true) => builder.with_writer(std::io::stderr).init(),
        (None, false) => builder.with_writer(std::io::stderr).without_time().init(),
    }
    Ok(())
}
